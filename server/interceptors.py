"""Server interceptors. ErrorInterceptor turns domain errors into gRPC statuses with rich details,
so servicers raise and never call `context.abort` themselves."""

from __future__ import annotations

import inspect
import logging
import uuid

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from server.errors import FieldViolation, InvalidArgument, TokenwireError, status_code_for

log = logging.getLogger(__name__)

ERROR_DOMAIN = "tokenwire"
STATUS_DETAILS_KEY = "grpc-status-details-bin"


def _pack(message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def rich_status(code: grpc.StatusCode, message: str, *, reason: str,
                metadata: dict[str, str] | None = None,
                violations: list | None = None) -> status_pb2.Status:
    details = [_pack(error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN,
                                                 metadata=metadata or {}))]
    if violations:
        details.append(_pack(error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
            for v in violations])))
    return status_pb2.Status(code=code.value[0], message=message, details=details)


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


def _check_request(request) -> None:
    if isinstance(request, Message):
        violations = unknown_enum_values(request)
        if violations:
            raise InvalidArgument(violations)


def _wrap_unary(behavior):
    async def handler(request, context):
        try:
            _check_request(request)
            return await behavior(request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _abort(context, exc)

    return handler


def _wrap_stream(behavior):
    if not inspect.isasyncgenfunction(behavior):
        # A handler that writes with context.write() and returns (grpc's aio health Watch).
        return _wrap_unary(behavior)

    async def handler(request, context):
        try:
            _check_request(request)
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
        common = dict(request_deserializer=handler.request_deserializer,
                      response_serializer=handler.response_serializer)
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(_wrap_unary(handler.unary_unary), **common)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(_wrap_stream(handler.unary_stream), **common)
        return handler  # client- and bidi-streaming methods (reflection) handle their own errors
