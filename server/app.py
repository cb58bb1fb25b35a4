"""Server assembly and lifecycle.

`create_server(settings)` builds and starts the gRPC server (servicers, health, reflection), begins
loading engines in the background and returns `(server, port)`; health reports NOT_SERVING until
the default engine is loaded. `TokenwireServer.shutdown()` is the SIGTERM path: health goes
NOT_SERVING, new work is refused with UNAVAILABLE while health and reflection keep answering,
in-flight streams get the grace period to finish, then the listener closes and engines unload.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Mapping

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from server.backends.registry import BACKENDS, BackendFactory
from server.config import Settings
from server.core.engines import EngineManager
from server.interceptors import ErrorInterceptor
from server.security.interceptor import SecurityInterceptor
from server.security.state import SecurityState
from server.servicers.auth import AuthServicer
from server.servicers.engine import EngineServicer
from server.servicers.generation import GenerationServicer
from tokenwire.v1 import (auth_service_pb2, auth_service_pb2_grpc, engine_service_pb2,
                          engine_service_pb2_grpc, generation_service_pb2,
                          generation_service_pb2_grpc)

log = logging.getLogger(__name__)

GENERATION_SERVICE = generation_service_pb2.DESCRIPTOR.services_by_name["GenerationService"].full_name
ENGINE_SERVICE = engine_service_pb2.DESCRIPTOR.services_by_name["EngineService"].full_name
AUTH_SERVICE = auth_service_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name
# Services whose health follows the default engine; "" is the server as a whole.
ENGINE_BACKED_SERVICES = ("", GENERATION_SERVICE)
# Services that answer whether or not a model is loaded, until the server drains.
ALWAYS_ON_SERVICES = (ENGINE_SERVICE, AUTH_SERVICE)


class TokenwireServer:
    def __init__(self, settings: Settings, grpc_server: grpc.aio.Server, engines: EngineManager,
                 health_servicer: health.aio.HealthServicer, port: int, security: SecurityState):
        self.settings = settings
        self.grpc_server = grpc_server
        self.engines = engines
        self.health = health_servicer
        self.port = port
        self._loading: list[asyncio.Task] = []
        # asyncio keeps only weak references to tasks: hold health updates until they are done.
        self._health_updates: set[asyncio.Task] = set()
        self._stopped = asyncio.Event()
        self.security = security

    def _publish_health(self, engines: EngineManager) -> None:
        serving, not_serving = (health_pb2.HealthCheckResponse.SERVING,
                                health_pb2.HealthCheckResponse.NOT_SERVING)
        statuses = {service: serving if engines.ready else not_serving
                    for service in ENGINE_BACKED_SERVICES}
        statuses.update({service: not_serving if engines.draining else serving
                         for service in ALWAYS_ON_SERVICES})
        for service, status in statuses.items():
            # set() is a coroutine on the aio servicer; schedule it on the running loop.
            task = asyncio.get_running_loop().create_task(self.health.set(service, status))
            self._health_updates.add(task)
            task.add_done_callback(self._health_updates.discard)

    async def wait_until_loaded(self) -> None:
        """Waits for the startup loads to finish (successfully or not)."""
        await asyncio.gather(*self._loading)

    async def shutdown(self, grace_seconds: float | None = None) -> bool:
        """Drains and stops; True if every in-flight request finished within the grace period."""
        if self._stopped.is_set():
            return True
        grace = self.settings.server.shutdown_grace_seconds if grace_seconds is None else grace_seconds
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        finished = await self.engines.drain(grace)
        # The engines are done, but the calls that used them may still be sending their last
        # messages: stopping the listener now would cut those off.
        while finished and self.security.in_flight and loop.time() < deadline:
            await asyncio.sleep(0.01)
        if not finished:
            log.warning("shutdown: in-flight requests still running after %.1fs; cancelling them", grace)
        for task in self._loading:
            task.cancel()
        await self.grpc_server.stop(grace=0.5 if finished else 0)
        await self.engines.close()
        self._stopped.set()
        return finished

    async def wait_for_termination(self) -> None:
        await self._stopped.wait()


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
    settings: Settings, *, backends: Mapping[str, BackendFactory] = BACKENDS
) -> tuple[TokenwireServer, int]:
    engines = EngineManager(settings.default_engine_id())
    for spec in settings.engine_specs():
        factory = backends[spec.backend]
        engines.add(spec.id, factory(spec.id, spec.path, settings.resolved_load_params(spec),
                                     settings.engine.max_queue))

    security = SecurityState(settings)
    grpc_server = grpc.aio.server(interceptors=[SecurityInterceptor(security), ErrorInterceptor()],
                                  options=_grpc_options(settings))
    generation_service_pb2_grpc.add_GenerationServiceServicer_to_server(
        GenerationServicer(engines), grpc_server)
    engine_service_pb2_grpc.add_EngineServiceServicer_to_server(EngineServicer(engines), grpc_server)
    auth_service_pb2_grpc.add_AuthServiceServicer_to_server(AuthServicer(security), grpc_server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, grpc_server)
    reflection.enable_server_reflection(
        (GENERATION_SERVICE, ENGINE_SERVICE, AUTH_SERVICE, health.SERVICE_NAME,
         reflection.SERVICE_NAME),
        grpc_server)

    address = f"{settings.server.host}:{settings.server.grpc_port}"
    try:
        port = grpc_server.add_insecure_port(address)
    except RuntimeError as exc:
        raise OSError(f"cannot listen on {address}: {exc}") from None
    server = TokenwireServer(settings, grpc_server, engines, health_servicer, port, security)
    engines.subscribe(server._publish_health)
    await grpc_server.start()
    log.info("gRPC listening on %s:%d", settings.server.host, port)

    for spec in settings.engine_specs():
        if spec.load_immediately or spec.id == engines.default_id:
            server._loading.append(asyncio.create_task(engines.load(spec.id)))
    return server, port
