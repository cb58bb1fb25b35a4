"""The engine manager: which engines exist, their state, which one is the default, and draining.

Servicers ask it for an engine by model id inside `lease()`, which also counts in-flight work so
that shutdown can wait for it. State changes are published to listeners (the health servicer).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from dataclasses import dataclass, field
from typing import AsyncIterator, Callable

from server.backends.base import Backend
from server.errors import EngineUnavailable, ModelNotFound, TokenwireError

log = logging.getLogger(__name__)


class EngineState(enum.Enum):
    LOADING = "loading"
    LOADED = "loaded"
    FAILED = "failed"
    UNLOADED = "unloaded"


@dataclass
class Engine:
    id: str
    backend: Backend
    state: EngineState = EngineState.UNLOADED
    error: str = ""
    requests_total: int = 0
    in_flight: int = 0
    created_unix: int = field(default_factory=lambda: int(time.time()))


Listener = Callable[["EngineManager"], None]


class EngineManager:
    def __init__(self, default_id: str):
        self.default_id = default_id
        self._engines: dict[str, Engine] = {}
        self._listeners: list[Listener] = []
        self._draining = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._in_flight = 0
        self._load_locks: dict[str, asyncio.Lock] = {}

    # -- observation ---------------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)
        listener(self)

    def _changed(self) -> None:
        for listener in self._listeners:
            listener(self)

    @property
    def draining(self) -> bool:
        return self._draining

    @property
    def ready(self) -> bool:
        """True when the default engine can serve and the server is not draining."""
        engine = self._engines.get(self.default_id)
        return not self._draining and engine is not None and engine.state is EngineState.LOADED

    def engines(self) -> list[Engine]:
        """Every engine, the default first."""
        return sorted(self._engines.values(), key=lambda e: e.id != self.default_id)

    def describe(self, engine_id: str) -> Engine:
        """An engine whatever its state (unlike get(), which wants one that can serve)."""
        engine = self._engines.get(engine_id)
        if engine is None:
            raise ModelNotFound(engine_id, list(self._engines))
        return engine

    # -- lifecycle -----------------------------------------------------------------------------

    def add(self, engine_id: str, backend: Backend) -> Engine:
        engine = self._engines[engine_id] = Engine(engine_id, backend)
        self._changed()
        return engine

    async def load(self, engine_id: str) -> None:
        engine = self._engines[engine_id]
        engine.state, engine.error = EngineState.LOADING, ""
        self._changed()
        try:
            await engine.backend.load()
        except TokenwireError as exc:
            engine.state, engine.error = EngineState.FAILED, exc.message
            log.error("engine %s failed to load: %s", engine_id, exc.message)
        except Exception as exc:  # a native loader can fail in ways nobody listed
            engine.state, engine.error = EngineState.FAILED, str(exc)
            log.exception("engine %s failed to load", engine_id)
        else:
            engine.state = EngineState.LOADED
            log.info("engine %s loaded: %s", engine_id, engine.backend.info())
        self._changed()

    def get(self, model_id: str) -> Engine:
        engine_id = model_id or self.default_id
        engine = self._engines.get(engine_id)
        if engine is None:
            raise ModelNotFound(engine_id, list(self._engines))
        if engine.state is EngineState.LOADING:
            raise EngineUnavailable(f"engine '{engine_id}' is still loading; retry shortly",
                                    reason="ENGINE_LOADING")
        if engine.state is not EngineState.LOADED:
            detail = f": {engine.error}" if engine.error else ""
            raise EngineUnavailable(f"engine '{engine_id}' is {engine.state.value}{detail}",
                                    reason="ENGINE_NOT_LOADED")
        return engine

    @contextlib.asynccontextmanager
    async def lease(self, model_id: str) -> AsyncIterator[Engine]:
        """The engine for a request, counted as in flight until the block exits."""
        if self._draining:
            raise EngineUnavailable("the server is shutting down; retry on another instance",
                                    reason="SERVER_DRAINING")
        engine = self._engines.get(model_id or self.default_id)
        if engine is not None and engine.state is EngineState.UNLOADED:
            # Configured with load_immediately: false, so the first request loads it.
            async with self._load_locks.setdefault(engine.id, asyncio.Lock()):
                if engine.state is EngineState.UNLOADED:
                    await self.load(engine.id)
        engine = self.get(model_id)
        engine.in_flight += 1
        engine.requests_total += 1
        self._in_flight += 1
        self._idle.clear()
        try:
            yield engine
        finally:
            engine.in_flight -= 1
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    async def drain(self, grace_seconds: float) -> bool:
        """Refuses new work and waits for in-flight work; True if it all finished in time."""
        self._draining = True
        self._changed()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout=grace_seconds)
            return True
        except asyncio.TimeoutError:
            return False

    async def close(self) -> None:
        for engine in self._engines.values():
            if engine.state is EngineState.LOADED:
                await engine.backend.close()
                engine.state = EngineState.UNLOADED
        self._changed()
