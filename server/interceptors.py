"""Server interceptors. ErrorInterceptor turns domain errors into gRPC statuses with rich details,
so servicers raise and never call `context.abort` themselves.

It also owns two checks every request gets before any servicer code: the request's bytes must
parse as the method's message (grpc would otherwise answer UNKNOWN and log a traceback per
request), and its enum fields must hold defined values.
"""

from __future__ import annotations

import inspect
import logging
import uuid

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from server.errors import (FieldViolation, InvalidArgument, MalformedRequest, TokenwireError,
                           status_code_for)

log = logging.getLogger(__name__)

ERROR_DOMAIN = "tokenwire"
STATUS_DETAILS_KEY = "grpc-status-details-bin"

# An error travels in the HTTP/2 trailers: grpc-message (percent-encoded, up to 3 bytes per byte)
# and the Status again in grpc-status-details-bin (base64). Clients refuse trailers past 8 KiB
# (soft limit, at random) and 16 KiB (hard), and then see RESOURCE_EXHAUSTED "Stream removed"
# instead of the error. Messages echo what the caller sent (a 4 KB model name, 300 enum
# violations), so every part is bounded here, in UTF-8 bytes: at most about 6 KiB in all.
MAX_MESSAGE_BYTES = 512
MAX_VIOLATIONS = 8
MAX_FIELD_BYTES = 100
MAX_DESCRIPTION_BYTES = 200
MAX_METADATA_VALUE_BYTES = 100


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` UTF-8 bytes (at a character boundary), marked with "…"."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return text
    return data[:limit - 3].decode("utf-8", "ignore") + "…"


def _pack(message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def rich_status(code: grpc.StatusCode, message: str, *, reason: str,
                metadata: dict[str, str] | None = None,
                violations: list | None = None) -> status_pb2.Status:
    """The Status for an error, every part bounded (see MAX_MESSAGE_BYTES)."""
    metadata = {k: clip(str(v), MAX_METADATA_VALUE_BYTES) for k, v in (metadata or {}).items()}
    violations = list(violations or ())
    if len(violations) > MAX_VIOLATIONS:
        metadata["omitted_field_violations"] = str(len(violations) - MAX_VIOLATIONS)
        violations = violations[:MAX_VIOLATIONS]
    details = [_pack(error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN,
                                                 metadata=metadata))]
    if violations:
        details.append(_pack(error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(
                field=clip(v.field, MAX_FIELD_BYTES),
                description=clip(v.description, MAX_DESCRIPTION_BYTES))
            for v in violations])))
    return status_pb2.Status(code=code.value[0], message=clip(message, MAX_MESSAGE_BYTES),
                             details=details)


async def _abort(context: grpc.aio.ServicerContext, error: Exception,
                 extra_trailers: tuple[tuple[str, str], ...] = ()) -> None:
    if isinstance(error, TokenwireError):
        code = status_code_for(error)
        status = rich_status(code, error.message, reason=error.reason, metadata=error.metadata,
                             violations=error.violations if isinstance(error, InvalidArgument) else None)
    else:
        incident = uuid.uuid4().hex[:12]
        log.exception("unhandled error (incident %s)", incident)
        code = grpc.StatusCode.INTERNAL
        status = rich_status(code, f"internal error (incident {incident})", reason="INTERNAL",
                             metadata={"incident": incident})
    # Trailers set earlier (the rate-limit values of a unary call) stay with the error.
    earlier = tuple((k, v) for k, v in (context.trailing_metadata() or ())
                    if k != STATUS_DETAILS_KEY)
    await context.abort(code, status.message,
                        trailing_metadata=((STATUS_DETAILS_KEY, status.SerializeToString()),
                                           *earlier, *extra_trailers))


abort_with = _abort  # for the security interceptor, which sits outside this one


def unknown_enum_values(message: Message, prefix: str = "") -> list[FieldViolation]:
    """Enum fields holding a number their enum does not define, with their field paths. proto3
    enums are open, so the wire carries any number; no servicer should have to see one."""
    found = []
    for field, value in message.ListFields():
        path = prefix + field.name
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            field = field.message_type.fields_by_name["value"]
            items = [(f"{path}[{key!r}]", value[key]) for key in value]
        elif field.is_repeated:
            items = [(f"{path}[{i}]", item) for i, item in enumerate(value)]
        else:
            items = [(path, value)]
        for where, item in items:
            if field.enum_type is not None and item not in field.enum_type.values_by_number:
                found.append(FieldViolation(where, f"{item} is not a value of "
                                                   f"{field.enum_type.full_name}"))
            elif field.message_type is not None:
                found += unknown_enum_values(item, where + ".")
    return found


class _Undecodable:
    """What the request deserializer hands on for bytes that are not the method's message, so
    that the call reaches the interceptors (authentication first) and ends INVALID_ARGUMENT."""

    __slots__ = ("problem",)

    def __init__(self, problem: str):
        self.problem = problem


def _tolerant(deserializer):
    if deserializer is None:
        return None

    def deserialize(data: bytes):
        try:
            return deserializer(data)
        except Exception as exc:  # noqa: BLE001 - DecodeError, or any other reason not to parse
            return _Undecodable(str(exc) or type(exc).__name__)

    return deserialize


def _check_request(method: str, request) -> None:
    if isinstance(request, _Undecodable):
        # One short line: any client can send these, so never a traceback per request.
        log.info("undecodable request to %s: %s", method, clip(request.problem, 200))
        raise MalformedRequest(f"the request is not a valid message for {method}: "
                               f"{request.problem}")
    if isinstance(request, Message):
        violations = unknown_enum_values(request)
        if violations:
            raise InvalidArgument(violations)


def _wrap_unary(behavior, method: str):
    async def handler(request, context):
        try:
            _check_request(method, request)
            return await behavior(request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _abort(context, exc)

    return handler


def _wrap_stream(behavior, method: str):
    if not inspect.isasyncgenfunction(behavior):
        # A handler that writes with context.write() and returns (grpc's aio health Watch).
        return _wrap_unary(behavior, method)

    async def handler(request, context):
        try:
            _check_request(method, request)
            async for response in behavior(request, context):
                yield response
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _abort(context, exc)

    return handler


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        common = dict(request_deserializer=_tolerant(handler.request_deserializer),
                      response_serializer=handler.response_serializer)
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(_wrap_unary(handler.unary_unary, method),
                                                       **common)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(_wrap_stream(handler.unary_stream, method),
                                                        **common)
        return handler  # client- and bidi-streaming methods (reflection) handle their own errors
