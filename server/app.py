"""Server assembly and lifecycle.

`create_server(settings)` builds and starts the gRPC server (servicers, health, reflection), begins
loading engines in the background and returns `(server, port)`; health reports NOT_SERVING until
the default engine is loaded. `TokenwireServer.shutdown()` is the SIGTERM path: health goes
NOT_SERVING, new work is refused with UNAVAILABLE while health and reflection keep answering,
in-flight streams get the grace period to finish, then the listener closes and engines unload.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Mapping

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from server.backends.registry import BACKENDS, BackendFactory
from server.config import ConfigError, ModelSpec, Settings, embedded_model_path
from server.core.backend import Backend
from server.core import gguf_info
from server.core.catalog import Catalog
from server.core.engines import Engine, EngineManager, EngineState
from server.core.model_library import ModelLibrary
from server.core.model_store import ModelStore
from server.core.types import LoadParams
from server.downloads.engines import EnginesFromDownloads, Preload, is_url
from server.downloads.manager import DownloadManager
from server.downloads.types import CatalogResolver
from server.errors import TokenwireError
from server.interceptors import ErrorInterceptor
from server.monitoring.drain import DrainInterceptor
from server.monitoring.hub import Monitoring
from server.monitoring.interceptor import (GRPC_CORE_LOGGER, LATE_STATUS_FILTER,
                                           ObservabilityInterceptor)
from server.servicers.download import DownloadServicer
from server.security.admission import AdmissionInterceptor
from server.security.interceptor import SecurityInterceptor
from server.security.state import SecurityState
from server.servicers.auth import AuthServicer
from server.servicers.engine import EngineServicer
from server.core.session_store import open_session_store
from server.core.side_work import SideWorkGate
from server.core.sessions import SessionManager
from server.servicers.generation import GenerationServicer
from server.servicers.kserve import SERVICE_NAME as KSERVE_SERVICE
from server.servicers.kserve import KServeServicer
from server.servicers.model import ModelServicer
from server.servicers.monitoring import (BenchmarkServicer, HardwareServicer, LogServicer,
                                         MetricsServicer, StatusServicer)
from server.servicers.server_info import ServerServicer
from server.servicers.session import SessionServicer
from tokenwire.v1 import (auth_service_pb2, auth_service_pb2_grpc, benchmark_service_pb2,
                          benchmark_service_pb2_grpc, download_service_pb2,
                          download_service_pb2_grpc, engine_service_pb2, engine_service_pb2_grpc,
                          generation_service_pb2, generation_service_pb2_grpc,
                          hardware_service_pb2, hardware_service_pb2_grpc, log_service_pb2,
                          log_service_pb2_grpc, metrics_service_pb2, metrics_service_pb2_grpc,
                          model_service_pb2, model_service_pb2_grpc, server_service_pb2,
                          server_service_pb2_grpc, session_service_pb2, session_service_pb2_grpc,
                          status_service_pb2, status_service_pb2_grpc)
from tokenwire.inference import grpc_service_pb2_grpc as kserve_pb2_grpc

log = logging.getLogger(__name__)

GENERATION_SERVICE = generation_service_pb2.DESCRIPTOR.services_by_name["GenerationService"].full_name
ENGINE_SERVICE = engine_service_pb2.DESCRIPTOR.services_by_name["EngineService"].full_name


def _service_name(module, name: str) -> str:
    return module.DESCRIPTOR.services_by_name[name].full_name


MODEL_SERVICE = _service_name(model_service_pb2, "ModelService")
SERVER_SERVICE = _service_name(server_service_pb2, "ServerService")
DOWNLOAD_SERVICE = _service_name(download_service_pb2, "DownloadService")
SESSION_SERVICE = _service_name(session_service_pb2, "SessionService")
HARDWARE_SERVICE = _service_name(hardware_service_pb2, "HardwareService")
METRICS_SERVICE = _service_name(metrics_service_pb2, "MetricsService")
STATUS_SERVICE = _service_name(status_service_pb2, "StatusService")
LOG_SERVICE = _service_name(log_service_pb2, "LogService")
BENCHMARK_SERVICE = _service_name(benchmark_service_pb2, "BenchmarkService")
AUTH_SERVICE = _service_name(auth_service_pb2, "AuthService")
# Services whose health follows the default engine; "" is the server as a whole.
ENGINE_BACKED_SERVICES = ("", GENERATION_SERVICE, SESSION_SERVICE, BENCHMARK_SERVICE,
                          KSERVE_SERVICE)
#: Seconds the gRPC server gives calls still being answered when it stops after a drain.
STOP_GRACE_S = 3.0

# Services that answer whether or not a model is loaded, until the server drains.
ALWAYS_ON_SERVICES = (ENGINE_SERVICE, MODEL_SERVICE, SERVER_SERVICE, DOWNLOAD_SERVICE,
                      HARDWARE_SERVICE, METRICS_SERVICE, STATUS_SERVICE, LOG_SERVICE, AUTH_SERVICE)


def engine_health_name(engine_id: str) -> str:
    """The grpc.health.v1 service name of one engine, e.g. tokenwire.engine/default."""
    return f"tokenwire.engine/{engine_id}"


class TokenwireServer:
    def __init__(self, settings: Settings, grpc_server: grpc.aio.Server, engines: EngineManager,
                 health_servicer: health.aio.HealthServicer, port: int,
                 downloads: DownloadManager, sessions: SessionManager | None = None,
                 monitoring: Monitoring | None = None, security: SecurityState | None = None):
        self.settings = settings
        self.sessions = sessions
        self.monitoring = monitoring
        self.grpc_server = grpc_server
        self.engines = engines
        self.downloads = downloads
        self.health = health_servicer
        self.port = port
        self._loading: list[asyncio.Task] = []
        self._loaded_at_start: list[str] = []  # engines (not downloads) loaded by _start
        # asyncio keeps only weak references to tasks: hold health updates until they are done.
        self._health_updates: set[asyncio.Task] = set()
        self._engine_health_names: set[str] = set()
        self._stopped = asyncio.Event()
        self.security = security

    def _publish_health(self, engines: EngineManager) -> None:
        serving, not_serving = (health_pb2.HealthCheckResponse.SERVING,
                                health_pb2.HealthCheckResponse.NOT_SERVING)
        statuses = {service: serving if engines.ready else not_serving
                    for service in ENGINE_BACKED_SERVICES}
        statuses.update({service: not_serving if engines.draining else serving
                         for service in ALWAYS_ON_SERVICES})
        # Each engine by name (issue 20): SERVING while it is loaded and the server not draining;
        # an engine that is gone reads NOT_SERVING.
        names = {engine_health_name(engine.id): serving
                 if engine.state is EngineState.LOADED and not engines.draining else not_serving
                 for engine in engines.engines()}
        statuses.update({name: not_serving for name in self._engine_health_names - set(names)})
        statuses.update(names)
        self._engine_health_names |= set(names)
        for service, status in statuses.items():
            # set() is a coroutine on the aio servicer; schedule it on the running loop.
            task = asyncio.get_running_loop().create_task(self.health.set(service, status))
            self._health_updates.add(task)
            task.add_done_callback(self._health_updates.discard)

    async def wait_until_loaded(self) -> None:
        """Waits for the startup loads to finish (successfully or not)."""
        await asyncio.gather(*self._loading)

    async def failed_startup_loads(self) -> list[Engine]:
        """Waits for the startup loads; the engines loaded at start (the default one and each
        load_immediately model, not those still to be downloaded) that did not load."""
        await self.wait_until_loaded()
        engines = {engine.id: engine for engine in self.engines.engines()}
        return [engines[engine_id] for engine_id in self._loaded_at_start
                if engine_id in engines and engines[engine_id].state is EngineState.FAILED]

    async def shutdown(self, grace_seconds: float | None = None) -> bool:
        """Drains and stops; True if every in-flight request finished within the grace period."""
        if self._stopped.is_set():
            return True
        grace = self.settings.server.shutdown_grace_seconds if grace_seconds is None else grace_seconds
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        self.downloads.end_watches()
        finished = await self.engines.drain(grace)
        # The engines are done, but the calls that used them may still be sending their last
        # messages: stopping the listener now would cut those off.
        while finished and self.security.in_flight and loop.time() < deadline:
            await asyncio.sleep(0.01)
        if not finished:
            log.warning("shutdown: in-flight requests still running after %.1fs; cancelling them", grace)
        for task in self._loading:
            task.cancel()
        # Transfers stop with their partial files kept, to resume at the next start.
        await self.downloads.close()
        # Calls that came in while draining are being refused (UNAVAILABLE, which clients and
        # proxies retry); the grace lets those answers out instead of cancelling them. stop()
        # returns as soon as no call is left.
        await self.grpc_server.stop(grace=max(min(STOP_GRACE_S, deadline - loop.time()), 0.5)
                                    if finished else 0)
        # A model load still under way gets what is left of the grace to finish, then is freed.
        await self.engines.close(max(deadline - loop.time(), 0))
        if self.sessions is not None:
            self.sessions.store.close()
        if self.monitoring is not None:
            self.monitoring.uninstall()
        self._stopped.set()
        return finished

    async def wait_for_termination(self) -> None:
        await self._stopped.wait()


def _backend(spec: ModelSpec, params, settings: Settings,
             backends: Mapping[str, BackendFactory]) -> Backend:
    if spec.backend == "openai_upstream":
        from server.backends.openai_upstream import OpenAIUpstreamBackend

        return OpenAIUpstreamBackend(spec.id, spec.upstream)
    return backends[spec.backend](spec.id, spec.path, params, settings.engine.max_queue)


def _catalog_resolver(catalog: Catalog) -> CatalogResolver:
    def resolve(name: str):
        entry = catalog.find(name)
        return None if entry is None else (entry.url, entry.filename, entry.sha256)

    return resolve


def _catalog_names(catalog: Catalog):
    """The names of the catalog entry an engine id is (Foundry's simple name and the
    publisher-style id that a catalog model's engine takes), or ()."""
    def names(engine_id: str) -> tuple[str, ...]:
        entry = catalog.find(engine_id)
        return () if entry is None else (entry.name, entry.model_id)

    return names


def _embedded_model():
    try:
        return embedded_model_path()
    except ConfigError:
        return None  # not installed: the store simply does not list it


def _grpc_options(settings: Settings) -> list[tuple[str, int]]:
    return [
        ("grpc.max_receive_message_length", settings.server.max_request_size),
        ("grpc.max_send_message_length", settings.server.max_request_size),
        # Concurrency is bounded by the security interceptor, which refuses at once; an HTTP/2
        # stream limit would make extra calls queue silently in the client instead.
        ("grpc.max_connection_idle_ms", int(settings.server.idle_timeout * 1000)),
        ("grpc.so_reuseport", 0),
    ]


async def create_server(
    settings: Settings, *, backends: Mapping[str, BackendFactory] = BACKENDS,
    catalog: CatalogResolver | None = None,
) -> tuple[TokenwireServer, int]:
    # Starting reaches outside this call (the process's logging, a listening port, the session
    # database): a start that fails part way undoes what it did, so that the caller can report
    # the error and go on, or start again, in a process as it was.
    async with contextlib.AsyncExitStack() as undo:
        started = await _start(settings, backends, catalog, undo)
        undo.pop_all()  # from here on, shutdown() undoes it all
    return started


async def _start(settings: Settings, backends: Mapping[str, BackendFactory],
                 catalog: CatalogResolver | None,
                 undo: contextlib.AsyncExitStack) -> tuple[TokenwireServer, int]:
    def make_backend(engine_id: str, path: str, params) -> Backend:
        return backends["llama_cpp"](engine_id, path, params, settings.engine.max_queue)

    for warning in settings.exposure_warnings():
        log.warning("%s", warning)
    engines = EngineManager(settings.default_engine_id(), backend_factory=make_backend,
                            memory_budget_bytes=settings.engine.memory_budget_mb << 20,
                            unload_grace_seconds=settings.engine.unload_grace_seconds,
                            aliases=settings.alias_table())
    url_specs = [spec for spec in settings.engine_specs() if is_url(spec.path)]
    for spec in settings.engine_specs():
        if spec in url_specs:
            continue  # created when its download completes (below)
        params = settings.resolved_load_params(spec)
        engines.add(spec.id, _backend(spec, params, settings, backends), params,
                    lazy=not spec.load_immediately)
    store = ModelStore(settings.model_store.directory, embedded=_embedded_model())
    library = ModelLibrary(store, Catalog.load(settings.model_store.catalog_path), engines)
    engines.catalog_names = _catalog_names(library.catalog)

    monitoring = Monitoring(settings, engines)
    monitoring.install()
    undo.callback(monitoring.uninstall)
    logging.getLogger(GRPC_CORE_LOGGER).addFilter(LATE_STATUS_FILTER)
    undo.callback(logging.getLogger(GRPC_CORE_LOGGER).removeFilter, LATE_STATUS_FILTER)
    security = SecurityState(settings)
    # Observability outermost, so refused calls are counted and traced too; then auth, rate
    # limits and limits; then the error table.
    grpc_server = grpc.aio.server(
        interceptors=[ObservabilityInterceptor(monitoring.metrics),
                      AdmissionInterceptor(settings, security), SecurityInterceptor(security),
                      ErrorInterceptor(), DrainInterceptor(engines, ENGINE_BACKED_SERVICES)],
        options=_grpc_options(settings))
    generation_service_pb2_grpc.add_GenerationServiceServicer_to_server(
        GenerationServicer(engines, lambda: SideWorkGate(
            per_second=settings.engine.side_work_per_second, burst=settings.engine.side_work_burst,
            max_waiting=settings.engine.side_work_max_waiting)), grpc_server)
    server_backends = tuple(backends) + ("openai_upstream",)
    creator = EnginesFromDownloads(engines, library,
                                   lambda: settings.resolve_load_params(LoadParams()))
    resolver = catalog or _catalog_resolver(library.catalog)
    downloads = DownloadManager(settings.downloads, lambda: store.directory, catalog=resolver,
                                on_downloaded=creator, on_abandoned=creator.forget)
    engine_service_pb2_grpc.add_EngineServiceServicer_to_server(
        EngineServicer(engines, library, settings, backends=("llama_cpp",),
                       download_then_add=creator.download_then_add(downloads)), grpc_server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(library), grpc_server)
    server_servicer = ServerServicer(library, backends=server_backends, grpc_port=0,
                                     log_level=settings.logging.level)
    server_service_pb2_grpc.add_ServerServiceServicer_to_server(server_servicer, grpc_server)
    download_service_pb2_grpc.add_DownloadServiceServicer_to_server(DownloadServicer(downloads),
                                                                    grpc_server)
    sessions = SessionManager(open_session_store(**settings.sessions.store_args()), engines,
                              kv_reuse=settings.sessions.kv_reuse)
    undo.callback(sessions.store.close)
    session_service_pb2_grpc.add_SessionServiceServicer_to_server(SessionServicer(sessions),
                                                                  grpc_server)
    for add, servicer in (
        (hardware_service_pb2_grpc.add_HardwareServiceServicer_to_server, HardwareServicer),
        (metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server, MetricsServicer),
        (status_service_pb2_grpc.add_StatusServiceServicer_to_server, StatusServicer),
        (log_service_pb2_grpc.add_LogServiceServicer_to_server, LogServicer),
        (benchmark_service_pb2_grpc.add_BenchmarkServiceServicer_to_server, BenchmarkServicer),
    ):
        add(servicer(monitoring), grpc_server)
    auth_service_pb2_grpc.add_AuthServiceServicer_to_server(AuthServicer(security), grpc_server)
    # The Open Inference Protocol (KServe v2 / Triton) beside the contract, on the same port.
    kserve_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(KServeServicer(engines), grpc_server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, grpc_server)
    reflection.enable_server_reflection(
        (GENERATION_SERVICE, ENGINE_SERVICE, MODEL_SERVICE, SERVER_SERVICE, DOWNLOAD_SERVICE,
         SESSION_SERVICE, HARDWARE_SERVICE, METRICS_SERVICE, STATUS_SERVICE, LOG_SERVICE,
         BENCHMARK_SERVICE, AUTH_SERVICE, KSERVE_SERVICE, health.SERVICE_NAME,
         reflection.SERVICE_NAME),
        grpc_server)

    address = f"{settings.server.host}:{settings.server.grpc_port}"
    try:
        port = grpc_server.add_insecure_port(address)
    except RuntimeError as exc:
        raise OSError(f"cannot listen on {address}: {exc}") from None
    server_servicer.grpc_port = port
    monitoring.status.grpc_port = port
    server = TokenwireServer(settings, grpc_server, engines, health_servicer, port, downloads,
                             sessions, monitoring, security)
    engines.subscribe(server._publish_health)
    # The first statuses are set before the port answers: the health servicer's own default for
    # the server as a whole ("") is SERVING, which a probe must never see while the model loads.
    await asyncio.gather(*list(server._health_updates))
    await grpc_server.start()
    undo.push_async_callback(grpc_server.stop, 0)
    preloads = {spec.id: _preload_of(spec, settings) for spec in url_specs}
    for preload in preloads.values():
        creator.expect_preload(preload)
    undo.push_async_callback(downloads.close)
    await downloads.start()
    log.info("gRPC listening on %s:%d", settings.server.host, port)

    for spec in settings.engine_specs():
        if spec in url_specs:
            server._loading.append(asyncio.create_task(
                _preload(creator, downloads, preloads[spec.id], store.directory)))
        elif spec.load_immediately or spec.id == engines.default_id:
            server._loaded_at_start.append(spec.id)
            server._loading.append(asyncio.create_task(engines.load(spec.id)))
    return server, port


def _preload_of(spec: ModelSpec, settings: Settings) -> Preload:
    """A configured model whose path is a URL, in the terms of the downloads package."""
    return Preload(engine_id=spec.id, url=spec.path, expected_sha256=spec.sha256,
                   params=settings.resolved_load_params(spec), load=spec.load_immediately)


def check_model_files(settings: Settings) -> None:
    """Every configured model file exists and is a GGUF, before anything listens: a ConfigError
    (exit status 2) naming the file and what is wrong with it otherwise. URLs are downloaded later
    and checked then; a file that looks right but fails to load stops the server once it has
    tried (exit status 1, in _serve)."""
    for spec in settings.engine_specs():
        if spec.backend != "llama_cpp" or is_url(spec.path):
            continue
        where = f"model file {spec.path} (engine '{spec.id}')"
        try:
            with open(spec.path, "rb") as file:
                magic = file.read(len(gguf_info.GGUF_MAGIC))
        except FileNotFoundError:
            raise ConfigError(f"{where} does not exist") from None
        except OSError as exc:
            raise ConfigError(f"{where} cannot be read: {exc.strerror or exc}") from None
        if magic != gguf_info.GGUF_MAGIC:
            raise ConfigError(f"{where} is not a GGUF file")
        try:
            gguf_info.read(spec.path)  # the header and tensor table, through a memory map
        except (OSError, gguf_info.NotGguf) as exc:
            raise ConfigError(f"{where} is a damaged GGUF file ({exc})") from None


async def _preload(creator: EnginesFromDownloads, downloads: DownloadManager, preload: Preload,
                   directory) -> None:
    try:
        await creator.preload(downloads, preload, directory)
    except TokenwireError as exc:
        log.error("model %s (%s) cannot be preloaded: %s", preload.engine_id, preload.url,
                  exc.message)
