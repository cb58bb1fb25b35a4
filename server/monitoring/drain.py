"""Stop accepting work while draining (issue 20): once the engines drain (SIGTERM), a new call to
a service that does work (generation, sessions, benchmarks) is refused at once with UNAVAILABLE
SERVER_DRAINING, before it reads the session database or waits for anything. Without this, a
call that arrived in the last moments of a drain could still be reading its session's history
when the listener closed, and end CANCELLED instead of with a status a client retries. Calls
already running are not touched: the drain lets them finish. Health, reflection, status and the
other always-on services keep answering, so probes see NOT_SERVING rather than errors.

Sits after the error interceptor, which turns the refusal into its status and details.
"""

from __future__ import annotations

from typing import Iterable

import grpc

from server.errors import Unavailable


def _refusal() -> Unavailable:
    return Unavailable("the server is shutting down; retry on another replica",
                       reason="SERVER_DRAINING")


async def _refuse_unary(request, context):
    raise _refusal()


async def _refuse_stream(request, context):
    raise _refusal()
    yield  # unreachable: makes this an async generator, as streaming handlers are


class DrainInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, engines, services: Iterable[str]):
        self._engines = engines
        self._services = {service for service in services if service}

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None or not self._engines.draining:
            return handler
        service = handler_call_details.method.lstrip("/").split("/", 1)[0]
        if service not in self._services:
            return handler
        common = dict(request_deserializer=handler.request_deserializer,
                      response_serializer=handler.response_serializer)
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(_refuse_unary, **common)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(_refuse_stream, **common)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(_refuse_unary, **common)
        return grpc.stream_stream_rpc_method_handler(_refuse_stream, **common)
