"""Fixed-window request counting per client, plus an optional per-second burst cap.

A client is its API key's fingerprint when it has one, else its address. Windows start at a
client's first request (Kolosal's "reset in N seconds"); stale clients are swept as new ones
arrive, so memory stays bounded by the clients active within one window. Some keys may have
limits of their own (rate_limit.per_key, by key id): the defaults fill what they leave out.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Mapping

SWEEP_EVERY = 1024  # new clients between sweeps of expired windows


@dataclass(frozen=True)
class KeyLimits:
    """One client's own limits; None takes the limiter's default."""

    max_requests: int | None = None
    window_seconds: int | None = None
    burst_per_second: int | None = None


@dataclass(frozen=True)
class _Limits:
    max_requests: int
    window_seconds: int
    burst_per_second: int


@dataclass
class _Window:
    start: float
    count: int = 0
    second: int = -1
    in_second: int = 0


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    retry_after_seconds: int = 0
    reset_at: int = 0  # Unix time (seconds) at which the window resets

    def headers(self) -> tuple[tuple[str, str], ...]:
        """Both spellings, lowercased for gRPC metadata; Retry-After when refused.

        The two documents that define the reset value disagree, and each spelling keeps its
        own: Kolosal's `X-Rate-Limit-Reset: 45` is the seconds until the window resets, the
        Rust service's `X-RateLimit-Reset: 1609459200` the Unix time at which it does (as
        GitHub's and most X-RateLimit-* servers send it; Impetus names the header only)."""
        pairs = [("x-ratelimit-limit", str(self.limit)),
                 ("x-ratelimit-remaining", str(self.remaining)),
                 ("x-ratelimit-reset", str(self.reset_at)),
                 ("x-rate-limit-limit", str(self.limit)),
                 ("x-rate-limit-remaining", str(self.remaining)),
                 ("x-rate-limit-reset", str(self.reset_seconds))]
        if not self.allowed:
            pairs.append(("retry-after", str(self.retry_after_seconds)))
        return tuple(pairs)


class RateLimiter:
    def __init__(self, max_requests: int, window_seconds: int, burst_per_second: int = 0,
                 clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time,
                 per_client: Mapping[str, KeyLimits] | None = None):
        self.max_requests = max_requests
        self.window_seconds = window_seconds
        self.burst_per_second = burst_per_second
        self.per_client: dict[str, KeyLimits] = dict(per_client or {})
        self._clock = clock
        self._wall_clock = wall_clock  # only to say when a window resets, in Unix time
        self._windows: dict[str, _Window] = {}
        self._new_since_sweep = 0

    def configure(self, max_requests: int, window_seconds: int, burst_per_second: int) -> None:
        self.max_requests, self.window_seconds = max_requests, window_seconds
        self.burst_per_second = burst_per_second

    def limits(self, client: str) -> _Limits:
        """`client`'s limits: its own (per_client) where it has them, else the defaults."""
        own = self.per_client.get(client)
        if own is None:
            return _Limits(self.max_requests, self.window_seconds, self.burst_per_second)

        def pick(value: int | None, default: int) -> int:
            return default if value is None else value

        return _Limits(pick(own.max_requests, self.max_requests),
                       pick(own.window_seconds, self.window_seconds),
                       pick(own.burst_per_second, self.burst_per_second))

    def check(self, client: str) -> Verdict:
        """Counts one request for `client` if it is allowed."""
        now = self._clock()
        limits = self.limits(client)
        window = self._windows.get(client)
        if window is None or now - window.start >= limits.window_seconds:
            window = self._windows[client] = _Window(start=now)
            self._new_since_sweep += 1
            if self._new_since_sweep >= SWEEP_EVERY:
                self._sweep(now)
        limit = limits.max_requests
        left = window.start + limits.window_seconds - now
        reset = max(1, math.ceil(left))
        reset_at = math.ceil(self._wall_clock() + left)
        if window.count >= limit:
            return Verdict(False, limit, 0, reset, retry_after_seconds=reset, reset_at=reset_at)
        second = int(now)
        if limits.burst_per_second:
            if window.second != second:
                window.second, window.in_second = second, 0
            if window.in_second >= limits.burst_per_second:
                retry = max(1, math.ceil(second + 1 - now))
                return Verdict(False, limit, limit - window.count, reset,
                               retry_after_seconds=retry, reset_at=reset_at)
            window.in_second += 1
        window.count += 1
        return Verdict(True, limit, limit - window.count, reset, reset_at=reset_at)

    def stats(self) -> list[tuple[str, int, int, int]]:
        """(client, count, remaining, reset seconds) for every client in a live window."""
        now = self._clock()
        self._sweep(now)
        rows = []
        for client, w in sorted(self._windows.items()):
            limits = self.limits(client)
            rows.append((client, w.count, max(0, limits.max_requests - w.count),
                         max(0, math.ceil(w.start + limits.window_seconds - now))))
        return rows

    def clear(self, client: str | None = None) -> int:
        if client is None:
            cleared = len(self._windows)
            self._windows.clear()
            return cleared
        return 1 if self._windows.pop(client, None) is not None else 0

    def _sweep(self, now: float) -> None:
        self._new_since_sweep = 0
        for client in [c for c, w in self._windows.items()
                       if now - w.start >= self.limits(c).window_seconds]:
            del self._windows[client]
