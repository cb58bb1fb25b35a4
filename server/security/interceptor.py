"""The security interceptor: runs before any servicer code, outermost of the server interceptors.

For every call that is not public it checks the API key (and the admin scope the method declares
in the proto), counts the call against its client's rate limit, refuses it at once when the
server already runs `max_connections` requests, and bounds unary calls by `request_timeout`.
Rate-limit values go out as initial metadata (and trailing metadata on RESOURCE_EXHAUSTED), which
the REST bridge copies into HTTP headers. Nothing here logs metadata: keys never reach a log.
"""

from __future__ import annotations

import asyncio
import inspect

import grpc

from server.errors import (PermissionDenied, RateLimited, RequestTimeout, ServerBusy,
                           TokenwireError, Unauthenticated)
from server.interceptors import abort_with
from server.security.access import ADMIN, PUBLIC, access_of
from server.security.caller import CALLER
from server.security.keys import ADMIN_ROLE, Identity, credentials
from server.security.state import (BRIDGE_RELAY_KEY, BRIDGE_SECRET_KEY, CLIENT_ADDRESS_KEY,
                                   SecurityState)

Trailers = tuple[tuple[str, str], ...]


class _Refused(Exception):
    def __init__(self, error: TokenwireError, trailers: Trailers = ()):
        self.error, self.trailers = error, trailers


def peer_address(peer: str) -> str:
    """"ipv4:127.0.0.1:5000" -> "127.0.0.1"; "ipv6:[::1]:5000" -> "::1"; "unix:/x" -> "unix"."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rsplit(":", 1)[0]
    if kind == "ipv6":
        return rest.rsplit(":", 1)[0].strip("[]")
    return kind or "unknown"


def authorize(state: SecurityState, metadata: list[tuple[str, str]], level: int) -> Identity | None:
    """The caller's identity (None: anonymous, allowed) for a method of Access `level`; raises
    Unauthenticated or PermissionDenied. Never says anything about what was sent."""
    keys = state.keys
    if not (keys.enabled and len(keys.ring)) or level == PUBLIC:
        return None
    presented = credentials(metadata, keys.header_name)
    identity = keys.ring.match(presented) if presented else None
    if identity is None and presented:
        raise Unauthenticated("Invalid API key.")
    if identity is None and keys.keys_required:
        ways = ["'Authorization: Bearer <key>'", "'X-API-Key: <key>'"]
        if keys.header_name.lower() not in ("authorization", "x-api-key"):
            ways.append(f"'{keys.header_name}: <key>'")
        raise Unauthenticated(f"Missing API key: send {', '.join(ways)}.")
    if level == ADMIN and keys.ring.admin_count and (identity is None
                                                     or identity.role != ADMIN_ROLE):
        if identity is None:
            raise Unauthenticated("This method needs an admin API key.")
        raise PermissionDenied("This method needs an admin API key; the key sent is a user key.")
    return identity


def client_address(state: SecurityState, context, metadata: list[tuple[str, str]]) -> str:
    """The caller's address: the one the server's own bridge forwards (vouched for by its
    secret), else the peer's."""
    values = dict(metadata)
    if CLIENT_ADDRESS_KEY in values and state.is_bridge(values.get(BRIDGE_SECRET_KEY)):
        return values[CLIENT_ADDRESS_KEY]
    return peer_address(context.peer() or "")


class SecurityInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, state: SecurityState):
        self.state = state

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        level = access_of(handler_call_details.method,
                          public_reflection=self.state.public_reflection)
        if level == PUBLIC:
            return handler
        common = dict(request_deserializer=handler.request_deserializer,
                      response_serializer=handler.response_serializer)
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(self._unary(handler.unary_unary, level),
                                                       **common)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._streaming(handler.unary_stream, level), **common)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                self._unary(handler.stream_unary, level, timeout=False), **common)
        return grpc.stream_stream_rpc_method_handler(
            self._streaming(handler.stream_stream, level), **common)

    # -- admission ---------------------------------------------------------------------------------

    def _admit(self, context, level: int) -> Trailers:
        """Raises _Refused, or returns the rate-limit metadata and takes a concurrency slot."""
        state = self.state
        metadata = [(m.key, m.value) for m in context.invocation_metadata() or ()]
        if level != ADMIN and self._is_bridge_relay(metadata):
            return self._take_slot(())
        try:
            identity = authorize(state, metadata, level)
        except TokenwireError as error:
            raise _Refused(error) from None
        CALLER.set(identity.key_id if identity else client_address(state, context, metadata))
        headers: Trailers = ()
        # Admin keys are the operator's: never rate-limited, so a flood of user traffic cannot
        # lock the operator out of the very calls that would fix it.
        if state.rate_limit_enabled and not (identity and identity.role == ADMIN_ROLE):
            client = identity.key_id if identity else client_address(state, context, metadata)
            verdict = state.limiter.check(client)
            headers = verdict.headers()
            if not verdict.allowed:
                raise _Refused(RateLimited(f"Rate limit exceeded. Try again in "
                                           f"{verdict.retry_after_seconds} seconds.",
                                           metadata={"retry_after_seconds":
                                                     str(verdict.retry_after_seconds)}),
                               headers)
        return self._take_slot(headers)

    def _is_bridge_relay(self, metadata: list[tuple[str, str]]) -> bool:
        values = dict(metadata)
        return BRIDGE_RELAY_KEY in values and self.state.is_bridge(values.get(BRIDGE_SECRET_KEY))

    def _take_slot(self, headers: Trailers) -> Trailers:
        state = self.state
        if state.in_flight >= state.max_concurrent:
            raise _Refused(ServerBusy(f"The server is already running its limit of "
                                      f"{state.max_concurrent} concurrent requests; retry shortly."),
                           headers + (("retry-after", "1"),))
        state.in_flight += 1
        return headers

    async def _enter(self, context, level: int, *, unary: bool) -> bool:
        try:
            headers = self._admit(context, level)
        except _Refused as refused:
            await abort_with(context, refused.error, refused.trailers)
            return False  # not reached: abort raises
        if headers and unary:
            # Sent with the status: no extra frame (error paths merge them into their trailers).
            context.set_trailing_metadata(headers)
        elif not unary:
            # Sent at once, even when empty: a stream's caller needs them before the first message
            # (HTTP headers in the bridge), and a watch stream may have no message for a long time;
            # nobody should block waiting for headers that would come only with it.
            try:
                await context.send_initial_metadata(headers)
            except BaseException:
                self._leave()
                raise
        return True

    def _leave(self) -> None:
        self.state.in_flight -= 1

    # -- wrappers ----------------------------------------------------------------------------------

    def _unary(self, behavior, level: int, *, timeout: bool = True):
        async def handler(request, context):
            await self._enter(context, level, unary=True)
            try:
                if not timeout:
                    return await behavior(request, context)
                limit = self.state.request_timeout_s
                try:
                    return await asyncio.wait_for(behavior(request, context), limit)
                except asyncio.TimeoutError:
                    await abort_with(context, RequestTimeout(
                        f"The request took longer than the server's request_timeout of {limit:g} "
                        "seconds; its work was stopped."))
            finally:
                self._leave()

        return handler

    def _streaming(self, behavior, level: int):
        if not inspect.isasyncgenfunction(behavior):  # writes with context.write() and returns
            return self._unary(behavior, level, timeout=False)

        async def handler(request, context):
            await self._enter(context, level, unary=False)
            try:
                async for response in behavior(request, context):
                    yield response
            finally:
                self._leave()

        return handler
