"""Who may call at all, before API keys and rate limits: Kolosal's server.allow_public_access
(only this machine's clients unless it is true, whatever address the server binds) and its
features.* switches (a service that is off answers NOT_FOUND)."""

from __future__ import annotations

import inspect

import grpc

from server.config import Settings, is_loopback
from server.errors import NotFound, PermissionDenied, TokenwireError
from server.interceptors import abort_with
from server.security.interceptor import client_address
from server.security.state import SecurityState
from tokenwire.v1 import metrics_service_pb2, status_service_pb2

METRICS_SERVICE = metrics_service_pb2.DESCRIPTOR.services_by_name["MetricsService"].full_name
STATUS_SERVICE = status_service_pb2.DESCRIPTOR.services_by_name["StatusService"].full_name


class AdmissionInterceptor(grpc.aio.ServerInterceptor):
    """Who may call at all, before keys and rate limits (Kolosal's server.allow_public_access and
    features.*), on every method: health and reflection included.

    Without allow_public_access only loopback clients are admitted, whatever address the server
    binds: the peer's address, or the client address the server's own bridge vouches for (its
    secret). Anyone else gets PERMISSION_DENIED, which the bridge answers with HTTP 403. A
    feature that is off answers NOT_FOUND on its service, naming the setting."""

    def __init__(self, settings: Settings, security: SecurityState):
        self._public = not security.local_clients_only
        self._security = security
        self._disabled: dict[str, NotFound] = {}
        if not settings.features.metrics:
            self._disabled[METRICS_SERVICE] = NotFound(
                "metrics are disabled on this server (features.metrics: false; --enable-metrics "
                "turns them on)", reason="FEATURE_DISABLED", metadata={"feature": "metrics"})
        if not settings.features.health_check:
            self._disabled[STATUS_SERVICE] = NotFound(
                "the health check is disabled on this server (features.health_check: false, "
                "--disable-health-check)", reason="FEATURE_DISABLED",
                metadata={"feature": "health_check"})

    def _refusal(self, method: str, context) -> TokenwireError | None:
        if not self._public:
            metadata = [(m.key, m.value) for m in context.invocation_metadata() or ()]
            address = client_address(self._security, context, metadata)
            if address != "unix" and not is_loopback(address):
                return PermissionDenied(
                    f"this server admits only clients on its own machine; {address} is not one "
                    "(server.allow_public_access is false; --allow-public-access lets other "
                    "machines call)", reason="PUBLIC_ACCESS_DISABLED")
        return self._disabled.get(method.lstrip("/").split("/", 1)[0])

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None or (self._public and not self._disabled):
            return handler
        method = handler_call_details.method
        common = dict(request_deserializer=handler.request_deserializer,
                      response_serializer=handler.response_serializer)

        def unary(behavior):
            async def admitted(request, context):
                refusal = self._refusal(method, context)
                if refusal is not None:
                    await abort_with(context, refusal)
                return await behavior(request, context)
            return admitted

        def streaming(behavior):
            if not inspect.isasyncgenfunction(behavior):  # writes with context.write()
                return unary(behavior)

            async def admitted(request, context):
                refusal = self._refusal(method, context)
                if refusal is not None:
                    await abort_with(context, refusal)
                async for message in behavior(request, context):
                    yield message
            return admitted

        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(unary(handler.unary_unary), **common)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(unary(handler.stream_unary), **common)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(streaming(handler.unary_stream), **common)
        return grpc.stream_stream_rpc_method_handler(streaming(handler.stream_stream), **common)
