"""Typed exceptions for failed calls, built from the gRPC status and its rich details."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


class TokenwireError(Exception):
    """A call failed. `code` is the gRPC status; `reason` the server's stable ErrorInfo reason."""

    def __init__(self, code: grpc.StatusCode, message: str, *, reason: str = "",
                 metadata: dict[str, str] | None = None,
                 violations: tuple[FieldViolation, ...] = ()):
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.reason = reason
        self.metadata = dict(metadata or {})
        self.violations = violations


class InvalidArgumentError(TokenwireError): ...
class NotFoundError(TokenwireError): ...
class UnavailableError(TokenwireError): ...
class ResourceExhaustedError(TokenwireError): ...
class DeadlineExceededError(TokenwireError): ...
class CancelledError(TokenwireError): ...
class PermissionDeniedError(TokenwireError): ...
class UnauthenticatedError(TokenwireError): ...
class FailedPreconditionError(TokenwireError): ...
class AlreadyExistsError(TokenwireError): ...
class InternalError(TokenwireError): ...
class AbortedError(TokenwireError):
    """A lost race with another writer (a session turn another replica stored first): read the
    state again and retry."""


_BY_CODE: dict[grpc.StatusCode, type[TokenwireError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.CANCELLED: CancelledError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.INTERNAL: InternalError,
    grpc.StatusCode.ABORTED: AbortedError,
}


def from_rpc_error(error: grpc.RpcError) -> TokenwireError:
    code, message = error.code(), error.details() or ""
    reason, metadata, violations = "", {}, ()
    status = rpc_status.from_call(error) if hasattr(error, "trailing_metadata") else None
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason, metadata = info.reason, dict(info.metadata)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations = tuple(FieldViolation(v.field, v.description) for v in bad.field_violations)
    cls = _BY_CODE.get(code, TokenwireError)
    return cls(code, message, reason=reason, metadata=metadata, violations=violations)
