"""Cheap calls that touch a model (Tokenize, Detokenize) share its engine fairly with the
engine's running streams, and with each other.

Each such call costs the server a gRPC round trip, a worker thread and the interpreter lock,
which on a small machine are taken from the decode loop: a few clients calling Tokenize back to
back (~300 calls/s) cut a running stream's tokens/s by a quarter. So while an engine generates,
its cheap calls are admitted at a bounded rate (a token bucket: `per_second`, bursts of `burst`),
and the permits go round-robin over the callers waiting, so one client's flood delays itself,
not another client's single call. An engine that generates nothing admits every call at once.
Too many callers waiting is RESOURCE_EXHAUSTED, as a full generation queue is.
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import Awaitable, Callable

from server.errors import QueueFull

# Refilled tokens are sums of float products: 0.1 s at 10/s may come out a hair under one.
_ONE = 1 - 1e-9


class SideWorkGate:
    def __init__(self, *, per_second: float, burst: int, max_waiting: int,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep):
        if per_second <= 0 or burst < 1 or max_waiting < 0:
            raise ValueError("per_second must be > 0, burst >= 1, max_waiting >= 0")
        self.per_second, self.burst, self.max_waiting = per_second, burst, max_waiting
        self._clock, self._sleep = clock, sleep
        self._tokens = float(burst)
        self._updated = clock()
        # Waiting callers by client, in the order the clients will be served next.
        self._queues: collections.OrderedDict[str, collections.deque[asyncio.Future]] = (
            collections.OrderedDict())
        self._waiting = 0
        self._pump: asyncio.Task | None = None
        self._generating: Callable[[], bool] = lambda: False

    @property
    def waiting(self) -> int:
        return self._waiting

    async def admit(self, client: str, generating: Callable[[], bool]) -> None:
        """Returns when the call may run; raises QueueFull when too many wait already."""
        self._generating = generating
        self._refill()
        if not self._waiting and not generating():
            return  # an idle engine: nothing to share, and the bucket stays full
        if not self._waiting and self._tokens >= _ONE:
            self._tokens -= 1
            return
        if self._waiting >= self.max_waiting:
            raise QueueFull(f"{self._waiting} tokenize/detokenize calls are already waiting for "
                            "an engine that is generating; retry later")
        future = asyncio.get_running_loop().create_future()
        self._queues.setdefault(client, collections.deque()).append(future)
        self._waiting += 1
        if self._pump is None or self._pump.done():
            self._pump = asyncio.create_task(self._serve_waiting())
        try:
            await future
        except asyncio.CancelledError:
            if not future.done() or future.cancelled():
                self._withdraw(client, future)
            raise

    def _withdraw(self, client: str, future: asyncio.Future) -> None:
        queue = self._queues.get(client)
        if queue is not None and future in queue:
            queue.remove(future)
            self._waiting -= 1
            if not queue:
                del self._queues[client]

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(float(self.burst),
                           self._tokens + (now - self._updated) * self.per_second)
        self._updated = now

    def _next_waiter(self) -> asyncio.Future:
        client, queue = self._queues.popitem(last=False)
        future = queue.popleft()
        self._waiting -= 1
        if queue:
            self._queues[client] = queue  # to the back of the rotation
        return future

    async def _serve_waiting(self) -> None:
        while self._waiting:
            self._refill()
            if self._generating():
                if self._tokens < _ONE:
                    await self._sleep((1 - self._tokens) / self.per_second)
                    continue
                self._tokens = max(0.0, self._tokens - 1)
            future = self._next_waiter()
            if not future.done():
                future.set_result(None)
