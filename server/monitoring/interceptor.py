"""The server's outermost interceptor: per-RPC counts and durations, a server span continuing the
caller's W3C trace context from the metadata, and one access-log line per call.

It sits outside ErrorInterceptor, so it sees the status code that interceptor chose (through
`context.code()`) rather than the domain exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import re
import time

import grpc
from grpc._cython import cygrpc
from opentelemetry import trace

from server.monitoring.logbuffer import ACCESS_LOGGER
from server.monitoring.metrics import Metrics
from server.monitoring.tracing import extract_context, tracer

log = logging.getLogger(__name__)
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


async def _write(context: grpc.aio.ServicerContext, response) -> None:
    """Sends one message of a stream; a call that can no longer take one ends as cancelled.

    grpc's core fails the write of a client that has gone (cancelled, disconnected, past its
    deadline), at times before it reports the cancellation: left to grpc, that is an ERROR with a
    traceback for an ordinary cancel. The call is over either way, so it ends as a cancelled one.
    """
    try:
        await context.write(response)
    except grpc.aio.InternalError as exc:
        log.debug("stream write failed, the client has gone: %s", exc)
        raise asyncio.CancelledError("the client has gone") from None


GRPC_CORE_LOGGER = "grpc._cython.cygrpc"


class LateStatusFilter(logging.Filter):
    """Demotes grpc's ERROR for a final status that could not be sent to DEBUG.

    When a client cancels just after reading its last message, the handler has already finished
    and grpc's send of the status fails; grpc logs that as an ERROR with a traceback unless it
    has noticed the cancellation first, a race the server cannot win. A failed batch holding only
    the status means the call was already over on the client's side: nothing was lost, so it is
    not an error. Any other failed batch stays an ERROR.
    """

    ENDING_OPS = frozenset({"SendInitialMetadataOperation", "SendStatusFromServerOperation"})

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if record.levelno >= logging.ERROR and isinstance(error, cygrpc.ExecuteBatchError):
            ops = set(re.findall(r"cygrpc\.(\w+Operation) object", str(error)))
            if "SendStatusFromServerOperation" in ops and ops <= self.ENDING_OPS:
                record.levelno, record.levelname = logging.DEBUG, "DEBUG"
                record.msg = f"final status not sent, the client had gone: {record.msg}"
                record.exc_info = record.exc_text = None
                return logging.getLogger(GRPC_CORE_LOGGER).isEnabledFor(logging.DEBUG)
        return True


LATE_STATUS_FILTER = LateStatusFilter()


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

        # A coroutine that writes each response itself, not an async generator handed to grpc:
        # the span stays current from the first step to the last in this one task. grpc drops a
        # generator whose client cancelled while it waited at a `yield`, and asyncio then closes it
        # in a task (a contextvars Context) of its own, where the span's context cannot be
        # detached ("Failed to detach context", an ERROR per cancel) and the backend's abort waits
        # for the collector.
        async def handler(request, context):
            started, span, error = time.perf_counter(), self._start(method, context), None
            peer = self._peer(context)
            try:
                with trace.use_span(span, end_on_exit=False):
                    async with contextlib.aclosing(behavior(request, context)) as responses:
                        async for response in responses:
                            await _write(context, response)
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
