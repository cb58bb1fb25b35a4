"""Watches each generation as it streams: metrics when it finishes or fails, and engine spans from
the timings it reports. EngineManager.generate wraps every backend iterator with `observe` (the
generation RPCs and session turns alike), so backends stay unaware of monitoring."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, AsyncGenerator, AsyncIterator

from server.errors import TokenwireError
from server.monitoring.tracing import record_engine_spans

if TYPE_CHECKING:
    from server.core.types import Delta, GenerationRequest
    from server.monitoring.metrics import Metrics


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TokenwireError):
        return exc.reason
    if isinstance(exc, (asyncio.CancelledError, GeneratorExit)):
        return "CANCELLED"
    return "INTERNAL"


class GenerationObserver:
    def __init__(self, metrics: "Metrics"):
        self.metrics = metrics

    async def observe(self, engine_id: str, request: "GenerationRequest",
                      deltas: AsyncGenerator["Delta", None]) -> AsyncIterator["Delta"]:
        kind = "completion" if request.prompt is not None else "chat"
        self.metrics.record_start(engine_id, kind)
        finished = False
        try:
            # Closed with this generator, not when it is garbage: a client that leaves must free
            # the backend's sequence now (the backend's cleanup runs in its own `finally`).
            async with contextlib.aclosing(deltas) as stream:
                async for delta in stream:
                    if delta.finish is not None and not finished:
                        finished = True
                        duration = time.monotonic() - request.arrived_at if request.arrived_at else 0.0
                        record_engine_spans(engine_id, delta.finish)
                        self.metrics.record_finish(engine_id, kind, delta.finish, duration)
                    yield delta
        except BaseException as exc:
            if not finished:
                self.metrics.record_failure(engine_id, kind, _reason(exc))
            raise
