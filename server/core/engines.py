"""The engine manager: which engines exist, their state, which one is the default, and draining.

Servicers ask it for an engine by model id inside `lease()`, which also counts in-flight work so
that unloading and shutdown can wait for it. State changes are published to listeners (the health
servicer).

Lifecycle operations (create, load, unload, remove, switch) run one at a time under one lock: they
are rare, and serialising them rules out races such as two switches or a load during a removal.
Unloading is graceful: the engine stops taking new requests at once, requests in flight finish
(up to the grace period; `force` cancels them at once), then the model is freed. A load is refused
with MemoryBudgetExceeded before it starts when it would not fit the memory budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import time
from dataclasses import dataclass, field
from typing import AsyncIterator, Callable

import psutil

from server.core import gguf_info, tool_calls
from server.core.backend import Backend
from server.core.types import KV_CACHE_TYPE_BYTES, Delta, GenerationRequest, LoadParams
from server.errors import (AlreadyExists, EngineUnavailable, MemoryBudgetExceeded, ModelNotFound,
                           PreconditionFailed, TokenwireError)

log = logging.getLogger(__name__)

#: Memory a loaded engine needs besides its weights and KV cache (compute buffers, logits, the
#: sampler), measured at about 40-60 MiB for small models; rounded up.
RUNTIME_OVERHEAD_BYTES = 96 << 20


class EngineState(enum.Enum):
    LOADING = "loading"
    LOADED = "loaded"
    FAILED = "failed"
    UNLOADED = "unloaded"
    UNLOADING = "unloading"


@dataclass(frozen=True)
class MemoryEstimate:
    """What an engine takes in RAM (or VRAM) once loaded, estimated from its GGUF header."""

    model_bytes: int
    context_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.model_bytes + self.context_bytes + RUNTIME_OVERHEAD_BYTES


#: Share of the memory left after the weights that an automatically sized KV cache may take.
AUTO_KV_MEMORY_SHARE = 0.25
#: An automatic window is a multiple of this (and never below it).
AUTO_CTX_STEP = 256
#: The trained context assumed for a model whose GGUF does not say.
UNKNOWN_TRAINED_CONTEXT = 4096


@dataclass(frozen=True)
class ContextPlan:
    """How big an engine's KV cache is and why."""

    n_ctx: int  # KV cells in all (what llama.cpp is given)
    n_ctx_seq: int  # the most one sequence may use: the window a request gets
    trained: int  # the model's trained context (GGUF context_length; 0: unknown)
    memory_cap: int  # the most tokens per sequence the memory share allows (0: not computed)
    source: str  # "configured", "trained context" or "memory"

    def describe(self) -> str:
        if self.source == "configured":
            return f"{self.n_ctx_seq} tokens per sequence ({self.n_ctx} KV cells, configured)"
        return (f"{self.n_ctx_seq} tokens per sequence ({self.n_ctx} KV cells), decided by the "
                f"{self.source}: trained context {self.trained or 'unknown'}, memory allows "
                f"{self.memory_cap}")


def kv_bytes_per_token(info: gguf_info.GgufInfo, params: LoadParams) -> int:
    """K and V for one token over all layers, in the configured cache types."""
    f16 = info.kv_bytes_per_token()  # 2 bytes per element, K and V
    k = KV_CACHE_TYPE_BYTES[params.cache_type_k or "f16"]
    v = KV_CACHE_TYPE_BYTES[params.cache_type_v or "f16"]
    return int(round(f16 / 4 * (k + v)))


def plan_context(*, n_ctx: int | None, n_parallel: int, kv_unified: bool, trained: int,
                 per_token: int, model_bytes: int, available_bytes: int) -> ContextPlan:
    """The KV cache size. A configured n_ctx (> 0) is taken as it is, split between the
    sequences unless unified. 0 (or None): each sequence gets the model's trained context, capped
    so that the cache takes at most AUTO_KV_MEMORY_SHARE of the memory left after the weights."""
    n_parallel = max(1, n_parallel)
    if n_ctx:
        seq = n_ctx if kv_unified else n_ctx // n_parallel
        return ContextPlan(n_ctx, seq, trained, 0, "configured")
    streams = 1 if kv_unified else n_parallel
    share = max(available_bytes - model_bytes, 0) * AUTO_KV_MEMORY_SHARE
    cap = int(share // (max(per_token, 1) * streams)) // AUTO_CTX_STEP * AUTO_CTX_STEP
    cap = max(cap, AUTO_CTX_STEP)
    want = trained or UNKNOWN_TRAINED_CONTEXT
    seq, source = (want, "trained context") if want <= cap else (cap, "memory")
    return ContextPlan(seq * streams, seq, trained, cap, source)


def context_plan(path: str, params: LoadParams, available_bytes: int | None = None) -> ContextPlan:
    """plan_context for a model file and its load params (available: the machine's now)."""
    try:
        info = gguf_info.read(path)
        trained, per_token = info.context_length, kv_bytes_per_token(info, params)
    except (OSError, gguf_info.NotGguf):
        trained, per_token = 0, 0
    try:
        model_bytes = os.path.getsize(path)
    except OSError:
        model_bytes = 0
    if available_bytes is None:
        available_bytes = psutil.virtual_memory().available
    return plan_context(n_ctx=params.n_ctx, n_parallel=params.n_parallel or 1,
                        kv_unified=bool(params.kv_unified), trained=trained, per_token=per_token,
                        model_bytes=model_bytes, available_bytes=available_bytes)


def estimate_memory(path: str, params: LoadParams) -> MemoryEstimate:
    try:
        model_bytes = os.path.getsize(path)
    except OSError:
        return MemoryEstimate(0, 0)  # the load itself will say the file is missing
    try:
        per_token = kv_bytes_per_token(gguf_info.read(path), params)
    except gguf_info.NotGguf:
        per_token = 0  # the load itself will say what is wrong with the file
    n_ctx = params.n_ctx or context_plan(path, params).n_ctx
    return MemoryEstimate(model_bytes, n_ctx * per_token)


@dataclass
class Engine:
    id: str
    backend: Backend
    params: LoadParams
    state: EngineState = EngineState.UNLOADED
    error: str = ""
    #: Load on the first request that names it (configured with load_immediately: false). An
    #: engine unloaded on request is not lazy: requests get a clear UNAVAILABLE instead.
    lazy: bool = False
    requests_total: int = 0
    in_flight: int = 0
    created_unix: int = field(default_factory=lambda: int(time.time()))
    loaded_unix: int = 0
    load_seconds: float = 0.0
    last_used_unix: int = 0
    last_tokens_per_second: float = 0.0
    memory: MemoryEstimate | None = None
    idle: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.idle.set()

    @property
    def model_path(self) -> str:
        return self.backend.model_path

    def record_generation(self, tokens_per_second: float) -> None:
        """The decode speed of the engine's latest finished generation (Kolosal's last_inference_tps)."""
        if tokens_per_second > 0:
            self.last_tokens_per_second = tokens_per_second


Listener = Callable[["EngineManager"], None]
#: Watches a generation as it streams (metrics, spans): (engine id, request, deltas) -> deltas.
Observe = Callable[[str, GenerationRequest, AsyncIterator[Delta]], AsyncIterator[Delta]]
BackendFactory = Callable[[str, str, LoadParams], Backend]


class EngineManager:
    def __init__(self, default_id: str, *, backend_factory: BackendFactory | None = None,
                 memory_budget_bytes: int = 0, unload_grace_seconds: float = 30.0,
                 aliases: dict[str, str] | None = None):
        self.default_id = default_id
        #: Configured other names: alias -> engine id (config `aliases`, Kai's model_mapping).
        self.aliases: dict[str, str] = dict(aliases or {})
        #: The catalog's names of the entry an engine id is (a catalog model's engine takes its
        #: publisher-style id; Foundry's users name it by its simple name); set by the server
        #: once its catalog is loaded.
        self.catalog_names: Callable[[str], tuple[str, ...]] = lambda engine_id: ()
        self._factory = backend_factory
        self.memory_budget_bytes = memory_budget_bytes
        self.unload_grace_seconds = unload_grace_seconds
        self._engines: dict[str, Engine] = {}
        self._listeners: list[Listener] = []
        self._draining = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._in_flight = 0
        self._lifecycle = asyncio.Lock()
        self._background: set[asyncio.Task] = set()
        # Backend loads under way by engine id, which may outlive their caller: a later load of
        # the same engine joins its task, and close() waits for them.
        self._loads: dict[str, asyncio.Task] = {}
        self.observe: Observe | None = None  # set by the monitoring hub

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

    # -- names ---------------------------------------------------------------------------------

    def resolve(self, name: str) -> str:
        """The engine id a request's model name means: the default for "", an engine id, a
        configured alias, then (ignoring case) an id, alias or catalog name that names exactly
        one engine. A name that means nothing comes back as it is (NOT_FOUND names it).

        Every lookup by name goes through here, so every RPC and REST family accepts the same
        names."""
        if not name:
            return self.default_id
        if name in self._engines:
            return name
        target = self.aliases.get(name)
        if target is not None and target in self._engines:
            return target
        key = name.lower()
        matches = {engine.id for engine in self._engines.values()
                   if key in (n.lower() for n in (engine.id, *self.aliases_of(engine)))}
        return matches.pop() if len(matches) == 1 else name

    def aliases_of(self, engine: Engine) -> list[str]:
        """The other names an engine answers to: configured aliases, then, for an engine whose id
        is a catalog entry's, the entry's other name. (An engine created by hand from a file that
        a catalog entry also has keeps its own name: "load <catalog name>" then makes the
        catalog model's engine, as it always did.)"""
        names = [alias for alias, target in self.aliases.items() if target == engine.id]
        names += [n for n in self.catalog_names(engine.id)
                  if n.lower() != engine.id.lower() and n not in names]
        return names

    def lookup_configured(self, name: str) -> Engine | None:
        """The engine with this exact id or configured alias, or None (no catalog names)."""
        return self._engines.get(self.aliases.get(name, name))

    def lookup(self, name: str) -> Engine | None:
        """The engine a name means, or None."""
        return self._engines.get(self.resolve(name))

    def describe(self, engine_id: str) -> Engine:
        """An engine whatever its state (unlike get(), which wants one that can serve)."""
        engine = self.lookup(engine_id)
        if engine is None:
            raise ModelNotFound(engine_id or self.default_id, list(self._engines))
        return engine

    def using_path(self, path: str) -> list[Engine]:
        """Engines whose model is this file."""
        target = os.path.realpath(path)
        return [e for e in self._engines.values()
                if e.model_path and os.path.realpath(e.model_path) == target]

    def budget_bytes(self) -> int:
        """The memory budget: configured, else the machine's total RAM."""
        return self.memory_budget_bytes or psutil.virtual_memory().total

    def committed_bytes(self, *, excluding: tuple[str, ...] = ()) -> int:
        """Estimated memory of the engines that are loaded, loading or still unloading."""
        return sum(e.memory.total_bytes for e in self._engines.values()
                   if e.memory and e.id not in excluding
                   and e.state in (EngineState.LOADED, EngineState.LOADING, EngineState.UNLOADING))

    # -- lifecycle -----------------------------------------------------------------------------

    def add(self, engine_id: str, backend: Backend, params: LoadParams, *, lazy: bool = False) -> Engine:
        """Registers an engine (not loaded yet)."""
        engine = self._engines[engine_id] = Engine(engine_id, backend, params, lazy=lazy)
        self._changed()
        return engine

    async def create(self, engine_id: str, path: str, params: LoadParams, *, load: bool = True) -> Engine:
        """A new engine for a model file; loaded now unless `load` is false (then lazily)."""
        if self._factory is None:
            raise RuntimeError("this EngineManager was built without a backend factory")
        async with self._lifecycle:
            if engine_id in self._engines:
                raise AlreadyExists(f"an engine with id '{engine_id}' already exists",
                                    reason="ENGINE_EXISTS", metadata={"engine_id": engine_id})
            engine = self.add(engine_id, self._factory(engine_id, path, params), params, lazy=not load)
            if load:
                try:
                    await self._load(engine, raise_errors=True)
                except MemoryBudgetExceeded:
                    # Nothing was loaded: forget the engine rather than list a failure.
                    del self._engines[engine_id]
                    self._changed()
                    raise
            return engine

    async def load(self, engine_id: str, *, raise_errors: bool = False) -> Engine:
        """Loads an engine (no-op if loaded). With raise_errors, a failure is also raised."""
        async with self._lifecycle:
            return await self._load(self.describe(engine_id), raise_errors=raise_errors)

    async def reload(self, engine_id: str, *, force: bool = False) -> Engine:
        async with self._lifecycle:
            engine = self.describe(engine_id)
            await self._unload(engine, force=force)
            return await self._load(engine, raise_errors=True)

    async def unload(self, engine_id: str, *, force: bool = False) -> Engine:
        async with self._lifecycle:
            engine = self.describe(engine_id)
            await self._unload(engine, force=force)
            return engine

    async def unload_all(self, *, force: bool = False) -> list[str]:
        """Unloads every loaded engine; returns their ids."""
        async with self._lifecycle:
            loaded = [e for e in self._engines.values() if e.state is EngineState.LOADED]
            await asyncio.gather(*(self._unload(e, force=force) for e in loaded))
            return [e.id for e in loaded]

    async def remove(self, engine_id: str, *, force: bool = False) -> Engine:
        """Unloads an engine (gracefully unless forced) and forgets it."""
        async with self._lifecycle:
            engine = self.describe(engine_id)
            if engine.id == self.default_id:
                raise PreconditionFailed(
                    f"engine '{engine.id}' is the default engine; switch the default to another "
                    "engine before removing it, or unload it", reason="ENGINE_IS_DEFAULT")
            await self._unload(engine, force=force)
            del self._engines[engine.id]
            self._changed()
            return engine

    async def switch(self, engine_id: str, path: str | None = None,
                     params: LoadParams | None = None) -> tuple[Engine, str]:
        """Makes `engine_id` the default, creating it from `path` if it does not exist yet.

        The new engine is loaded before it replaces the old one, so requests naming no model are
        always served; the old default finishes its in-flight requests and is unloaded in the
        background. When both do not fit the memory budget together but the new one fits alone,
        the old one is unloaded first (a short gap) instead of refusing. Returns the new default
        and the previous default's id.
        """
        async with self._lifecycle:
            previous = self._engines.get(self.default_id)
            engine = self.lookup(engine_id)
            created = False
            if engine is None:
                if path is None or params is None or self._factory is None:
                    raise ModelNotFound(engine_id, list(self._engines))
                engine = self.add(engine_id, self._factory(engine_id, path, params), params)
                created = True
            unloaded_previous = False
            try:
                if previous is not None and previous is not engine and previous.state is EngineState.LOADED:
                    if engine.state is not EngineState.LOADED and not self._fits(engine, excluding=None):
                        self._check_budget(engine, excluding=previous.id)  # fits alone, or raises
                        await self._unload(previous, force=False)
                        unloaded_previous = True
                await self._load(engine, raise_errors=True)
            except TokenwireError:
                if created:
                    del self._engines[engine.id]
                    self._changed()
                if unloaded_previous:  # the switch failed: the old default serves again
                    await self._load(previous, raise_errors=False)
                raise
            old_id = self.default_id
            self.default_id = engine.id
            self._changed()
            if previous is not None and previous is not engine and previous.state is EngineState.LOADED:
                self._in_background(self._unload_quietly(previous))
            log.info("default engine switched from %s to %s", old_id, engine.id)
            return engine, old_id

    async def _load(self, engine: Engine, *, raise_errors: bool) -> Engine:
        if engine.state is EngineState.LOADED:
            return engine
        running = self._loads.get(engine.id)
        if running is not None and not running.done():  # an earlier caller gave up on it: join
            return await self._joined(engine, running, raise_errors)
        if engine.state is EngineState.UNLOADING:
            await engine.idle.wait()
        previous = engine.state
        engine.state, engine.error = EngineState.LOADING, ""
        self._changed()
        # Reading the GGUF header (and, the first time, importing its reader) is file I/O: off
        # the event loop; the result is cached for the budget check and for GetEngine.
        if engine.model_path:
            try:
                await asyncio.to_thread(estimate_memory, engine.model_path, engine.params)
            except asyncio.CancelledError:  # nothing was started: the engine is as it was
                engine.state = previous
                self._changed()
                raise
        try:
            self._check_budget(engine, excluding=None)
        except MemoryBudgetExceeded as exc:
            if raise_errors:
                engine.state = previous  # nothing was tried: the engine is as it was
                self._changed()
                raise
            engine.state, engine.error = EngineState.FAILED, exc.message
            log.error("engine %s not loaded: %s", engine.id, exc.message)
            self._changed()
            return engine
        # A task of its own, shielded: a caller that gives up (deadline, disconnect, shutdown)
        # must not leave the engine marked loading forever while the loader thread finishes
        # anyway; the task records how the load ended, and close() can wait for it.
        loading = self._loads[engine.id] = asyncio.ensure_future(self._run_load(engine))

        def forget(task: asyncio.Task) -> None:
            if self._loads.get(engine.id) is task:  # not a later load of the same engine
                del self._loads[engine.id]

        loading.add_done_callback(forget)
        return await self._joined(engine, loading, raise_errors)

    @staticmethod
    async def _joined(engine: Engine, loading: asyncio.Task, raise_errors: bool) -> Engine:
        """Waits for a load task without ever cancelling it (it records its own outcome)."""
        if not await asyncio.shield(loading) and raise_errors:
            raise PreconditionFailed(f"engine '{engine.id}' failed to load its model: {engine.error}",
                                     reason="ENGINE_LOAD_FAILED")
        return engine

    async def _run_load(self, engine: Engine) -> bool:
        """Loads the backend and records the outcome in the engine; True if it loaded."""
        started = time.perf_counter()
        try:
            await engine.backend.load()
        except asyncio.CancelledError:
            engine.state, engine.error = EngineState.FAILED, "loading was cancelled"
            self._changed()
            raise
        except Exception as exc:  # a native loader can fail in ways nobody listed
            message = exc.message if isinstance(exc, TokenwireError) else str(exc) or type(exc).__name__
            engine.state, engine.error = EngineState.FAILED, message
            log.error("engine %s failed to load: %s", engine.id, message)
            self._changed()
            return False
        engine.state, engine.lazy = EngineState.LOADED, False
        engine.loaded_unix, engine.load_seconds = int(time.time()), time.perf_counter() - started
        log.info("engine %s loaded in %.1fs: %s", engine.id, engine.load_seconds, engine.backend.info())
        self._changed()
        return True

    async def _unload(self, engine: Engine, *, force: bool) -> None:
        if engine.state is not EngineState.LOADED:
            if engine.state is EngineState.FAILED:
                engine.state, engine.error = EngineState.UNLOADED, ""
            engine.lazy = False
            return
        engine.state = EngineState.UNLOADING
        self._changed()
        if not force and engine.in_flight:
            try:
                await asyncio.wait_for(engine.idle.wait(), timeout=self.unload_grace_seconds)
            except asyncio.TimeoutError:
                log.warning("engine %s: %d requests still running after %.0fs; cancelling them",
                            engine.id, engine.in_flight, self.unload_grace_seconds)
        # Closing the backend ends whatever still runs with UNAVAILABLE.
        await engine.backend.close()
        engine.state, engine.lazy, engine.memory = EngineState.UNLOADED, False, None
        self._changed()
        log.info("engine %s unloaded", engine.id)

    async def _unload_quietly(self, engine: Engine) -> None:
        async with self._lifecycle:
            await self._unload(engine, force=False)

    def _in_background(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _fits(self, engine: Engine, *, excluding: str | None) -> bool:
        try:
            self._check_budget(engine, excluding=excluding)
            return True
        except MemoryBudgetExceeded:
            return False

    def _check_budget(self, engine: Engine, *, excluding: str | None) -> None:
        """Refuses a load that would not fit (counting every other loaded engine except
        `excluding`); records the engine's estimate when it fits."""
        if not engine.model_path:
            return  # runs elsewhere (an upstream server): takes none of this machine's budget
        estimate = estimate_memory(engine.model_path, engine.params)
        need = estimate.total_bytes
        committed = self.committed_bytes(excluding=(engine.id, excluding or engine.id))
        budget = self.budget_bytes()
        if committed + need > budget:
            raise MemoryBudgetExceeded(
                f"loading engine '{engine.id}' needs about {need >> 20} MiB but only "
                f"{max(budget - committed, 0) >> 20} MiB of the {budget >> 20} MiB memory budget is "
                "free; unload an engine or raise engine.memory_budget_mb",
                required_bytes=need, available_bytes=max(budget - committed, 0))
        available = psutil.virtual_memory().available
        if need > available:
            raise MemoryBudgetExceeded(
                f"loading engine '{engine.id}' needs about {need >> 20} MiB but the machine has "
                f"{available >> 20} MiB available", required_bytes=need, available_bytes=available)
        engine.memory = estimate

    # -- serving -------------------------------------------------------------------------------

    def get(self, model_id: str) -> Engine:
        engine = self.lookup(model_id)
        if engine is None:
            raise ModelNotFound(model_id or self.default_id, list(self._engines))
        engine_id = engine.id
        if engine.state is EngineState.LOADING:
            raise EngineUnavailable(f"engine '{engine_id}' is still loading; retry shortly",
                                    reason="ENGINE_LOADING")
        if engine.state is EngineState.UNLOADING:
            raise EngineUnavailable(f"engine '{engine_id}' is being unloaded",
                                    reason="ENGINE_UNLOADING")
        if engine.state is not EngineState.LOADED:
            detail = f": {engine.error}" if engine.error else "; load it first"
            raise EngineUnavailable(f"engine '{engine_id}' is {engine.state.value}{detail}",
                                    reason="ENGINE_NOT_LOADED")
        return engine

    async def generate(self, engine: Engine, request: GenerationRequest) -> AsyncIterator[Delta]:
        """Every generation goes through here (the generation RPCs, session turns): the
        backend's deltas, watched by the observer, with the engine's last speed kept."""
        if request.messages is not None:
            request = tool_calls.prepare(request, engine.backend.info().tool_format)
        deltas = engine.backend.generate(request)
        if request.tools:
            deltas = tool_calls.interpret(request, deltas)
        if self.observe is not None:
            deltas = self.observe(engine.id, request, deltas)
        async with contextlib.aclosing(deltas) as stream:  # a client that leaves stops it now
            async for delta in stream:
                if delta.finish is not None:
                    engine.record_generation(delta.finish.timings.tokens_per_second)
                yield delta

    @contextlib.asynccontextmanager
    async def lease(self, model_id: str) -> AsyncIterator[Engine]:
        """The engine for a request, counted as in flight until the block exits."""
        if self._draining:
            raise EngineUnavailable("the server is shutting down; retry on another instance",
                                    reason="SERVER_DRAINING")
        engine = self.lookup(model_id)
        if engine is not None and engine.state is EngineState.UNLOADED and engine.lazy:
            async with self._lifecycle:
                if engine.state is EngineState.UNLOADED and engine.lazy:
                    await self._load(engine, raise_errors=False)
        engine = self.get(engine.id if engine is not None else model_id)
        engine.in_flight += 1
        engine.requests_total += 1
        engine.last_used_unix = int(time.time())
        engine.idle.clear()
        self._in_flight += 1
        self._idle.clear()
        try:
            yield engine
        finally:
            engine.in_flight -= 1
            if engine.in_flight == 0:
                engine.idle.set()
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

    async def close(self, grace_seconds: float = 0.0) -> None:
        """Frees every engine (the end of a shutdown).

        A load under way is waited for, up to `grace_seconds`, and freed like any loaded engine:
        its loader thread cannot be interrupted, so a load left running would finish after the
        close with its model (and a started scheduler) kept for the life of the process. One
        that outlasts the grace is cancelled rather than left pending on a loop about to close;
        the thread still finishes, and what it built is freed only when the process exits.
        """
        for task in list(self._background):
            task.cancel()
        if self._loads:
            _, late = await asyncio.wait(set(self._loads.values()), timeout=grace_seconds)
            for task in late:
                task.cancel()
            if late:
                log.warning("shutdown: %d engine load(s) still running after %.1fs; given up",
                            len(late), grace_seconds)
                await asyncio.wait(late)
        for engine in self._engines.values():
            if engine.state in (EngineState.LOADED, EngineState.UNLOADING):
                await engine.backend.close()
                engine.state = EngineState.UNLOADED
        self._changed()
