"""The server's outermost interceptor: per-RPC counts and durations, a server span continuing the
caller's W3C trace context from the metadata, and one access-log line per call.

It sits outside ErrorInterceptor, so it sees the status code that interceptor chose (through
`context.code()`) rather than the domain exception.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time

import grpc
from opentelemetry import trace

from server.monitoring.logbuffer import ACCESS_LOGGER
from server.monitoring.metrics import Metrics
from server.monitoring.tracing import extract_context, tracer

access_log = logging.getLogger(ACCESS_LOGGER)

# Calls that would flood the access log (probes, the log stream itself) are counted, not logged.
QUIET_METHODS = frozenset({"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch",
                           "/tokenwire.v1.LogService/StreamLogs", "/tokenwire.v1.LogService/ListLogs",
                           "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"})


def _code_name(context, error: BaseException | None) -> str:
    code = context.code() if hasattr(context, "code") else None
    if isinstance(code, grpc.StatusCode):
        return code.name
    if isinstance(code, int):
        return next((c.name for c in grpc.StatusCode if c.value[0] == code), "UNKNOWN")
    if error is None:
        return "OK"
    if isinstance(error, (asyncio.CancelledError, GeneratorExit)):
        return "CANCELLED"
    return "UNKNOWN"


class ObservabilityInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, metrics: Metrics):
        self.metrics = metrics

    def _done(self, method: str, context, started: float, span, peer: str,
              error: BaseException | None) -> None:
        seconds = time.perf_counter() - started
        code = _code_name(context, error)
        self.metrics.record_rpc(method, code, seconds)
        span.set_attribute("rpc.grpc.status_code", code)
        if code != "OK":
            span.set_status(trace.Status(trace.StatusCode.ERROR, code))
        span.end()
        if method not in QUIET_METHODS:
            access_log.info("rpc %s %s %.1fms peer=%s", method, code, seconds * 1000, peer)

    @staticmethod
    def _peer(context) -> str:
        # Read while the call is alive: grpc.aio's context.peer() dereferences the core call, which
        # a cancelled stream has already released by the time the handler's finally runs (SIGSEGV).
        return context.peer() if hasattr(context, "peer") else ""

    def _start(self, method: str, context):
        parent = extract_context(context.invocation_metadata())
        service, _, name = method.lstrip("/").partition("/")
        return tracer().start_span(method.lstrip("/"), context=parent, kind=trace.SpanKind.SERVER,
                                   attributes={"rpc.system": "grpc", "rpc.service": service,
                                               "rpc.method": name})

    def _unary(self, method: str, behavior):
        async def handler(request, context):
            started, span, error = time.perf_counter(), self._start(method, context), None
            peer = self._peer(context)
            try:
                with trace.use_span(span, end_on_exit=False):
                    return await behavior(request, context)
            except BaseException as exc:
                error = exc
                raise
            finally:
                self._done(method, context, started, span, peer, error)

        return handler

    def _stream(self, method: str, behavior):
        if not inspect.isasyncgenfunction(behavior):  # writes with context.write() and returns
            return self._unary(method, behavior)

        async def handler(request, context):
            started, span, error = time.perf_counter(), self._start(method, context), None
            peer = self._peer(context)
            try:
                with trace.use_span(span, end_on_exit=False):
                    async for response in behavior(request, context):
                        yield response
            except BaseException as exc:
                error = exc
                raise
            finally:
                self._done(method, context, started, span, peer, error)

        return handler

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        common = dict(request_deserializer=handler.request_deserializer,
                      response_serializer=handler.response_serializer)
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(self._unary(method, handler.unary_unary), **common)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(self._stream(method, handler.unary_stream), **common)
        return handler
