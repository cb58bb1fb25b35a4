"""Domain errors and the one table that maps them to gRPC status codes.

Core code raises these; the error interceptor turns them into a status with rich details
(google.rpc.BadRequest for field violations, google.rpc.ErrorInfo with a stable reason), so the
REST bridge and clients never have to parse a message to know what went wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc


@dataclass(frozen=True)
class FieldViolation:
    """One invalid field, named by its path in the request message (e.g. "sampling.top_p")."""

    field: str
    description: str


class TokenwireError(Exception):
    """Base of every error a caller can cause or must be told about."""

    #: Stable machine-readable reason, sent as google.rpc.ErrorInfo.reason.
    reason = "INTERNAL"

    def __init__(self, message: str, *, metadata: dict[str, str] | None = None,
                 reason: str | None = None):
        super().__init__(message)
        self.message = message
        self.metadata = dict(metadata or {})
        if reason:
            self.reason = reason


class InvalidArgument(TokenwireError):
    reason = "INVALID_ARGUMENT"

    def __init__(self, violations: list[FieldViolation], *, reason: str | None = None):
        message = "; ".join(f"{v.field}: {v.description}" for v in violations)
        super().__init__(message)
        self.violations = violations
        if reason:
            self.reason = reason

    @classmethod
    def single(cls, field_name: str, description: str, *, reason: str | None = None) -> "InvalidArgument":
        return cls([FieldViolation(field_name, description)], reason=reason)


class MalformedRequest(TokenwireError):
    """The request's bytes do not parse as the method's message (no field to name)."""

    reason = "MALFORMED_REQUEST"


class PromptTooLong(InvalidArgument):
    """The prompt does not leave room for a single generated token in the context window."""

    def __init__(self, field_name: str, prompt_tokens: int, n_ctx: int, engine_id: str, *,
                 at_least: bool = False):
        super().__init__(
            [
                FieldViolation(
                    field_name,
                    f"the prompt is {'at least ' if at_least else ''}{prompt_tokens} tokens but "
                    f"the context window of engine "
                    f"'{engine_id}' holds {n_ctx} tokens (prompt plus output)",
                )
            ],
            reason="CONTEXT_LENGTH_EXCEEDED",
        )
        self.metadata.update(prompt_tokens=str(prompt_tokens), n_ctx=str(n_ctx))


class ModelNotFound(TokenwireError):
    reason = "MODEL_NOT_FOUND"

    def __init__(self, model_id: str, known: list[str]):
        listed = ", ".join(sorted(known)) or "none"
        super().__init__(f"model '{model_id}' is not loaded (loaded engines: {listed})",
                         metadata={"model": model_id})


class Unavailable(TokenwireError):
    """Something the request needs cannot serve it now (the server is draining, a DNS resolver
    does not answer); the same request may succeed when retried."""

    reason = "UNAVAILABLE"


class EngineUnavailable(Unavailable):
    """The engine exists but cannot serve now: loading, failed, unloading, or its upstream is
    unreachable."""

    reason = "ENGINE_UNAVAILABLE"


class NotFound(TokenwireError):
    """A named thing (engine, model file, download…) does not exist."""

    reason = "NOT_FOUND"


class ModelFileNotFound(NotFound):
    reason = "MODEL_FILE_NOT_FOUND"

    def __init__(self, name: str):
        super().__init__(f"no local model named '{name}' (see ListLocalModels)",
                         metadata={"model": name})


class AlreadyExists(TokenwireError):
    reason = "ALREADY_EXISTS"


class PreconditionFailed(TokenwireError):
    """The request is valid but the system is not in a state to do it (e.g. a model in use)."""

    reason = "FAILED_PRECONDITION"


class MemoryBudgetExceeded(TokenwireError):
    """Loading would take more memory than the configured budget or than the machine has free."""

    reason = "MEMORY_BUDGET_EXCEEDED"

    def __init__(self, message: str, *, required_bytes: int, available_bytes: int):
        super().__init__(message, metadata={"required_mb": str(required_bytes >> 20),
                                            "available_mb": str(available_bytes >> 20)})


class UnreadableModelFile(TokenwireError):
    """The file is missing its GGUF header or is truncated: it cannot be loaded as a model."""

    reason = "UNREADABLE_MODEL_FILE"


class Unimplemented(TokenwireError):
    """The engine's backend cannot do this (e.g. tokenize on an OpenAI-compatible upstream)."""

    reason = "NOT_SUPPORTED_BY_BACKEND"


class QueueFull(TokenwireError):
    reason = "QUEUE_FULL"


class EngineFailure(TokenwireError):
    """The backend failed while working on a request that was valid."""

    reason = "ENGINE_FAILURE"


class DownloadNotFound(TokenwireError):
    reason = "DOWNLOAD_NOT_FOUND"


class CatalogEntryNotFound(TokenwireError):
    reason = "CATALOG_MODEL_NOT_FOUND"


class AddressRefused(TokenwireError):
    """A URL is well-formed but points where the server's policy forbids (private addresses)."""

    reason = "PRIVATE_ADDRESS_REFUSED"


class DownloadLimitReached(TokenwireError):
    """A server-side limit (concurrent downloads, disk space) refuses the download."""

    reason = "RESOURCE_EXHAUSTED"


class SessionNotFound(TokenwireError):
    reason = "SESSION_NOT_FOUND"

    def __init__(self, session_id: str):
        super().__init__(f"no session has the id '{session_id}'", metadata={"session_id": session_id})


class SessionExists(TokenwireError):
    reason = "SESSION_EXISTS"

    def __init__(self, session_id: str):
        super().__init__(f"a session with the id '{session_id}' already exists",
                         metadata={"session_id": session_id})


class SessionConflict(TokenwireError, ValueError):
    """The history changed since the turn read it: another writer (another replica answering the
    same session) stored its turn first. Nothing was stored; the caller may read the history again
    and retry. A ValueError too, as the interface has always said. Status ABORTED (HTTP 409):
    the conventional code for a lost optimistic-concurrency race."""

    reason = "SESSION_CONFLICT"

    def __init__(self, session_id: str, held: int, expected: int):
        super().__init__(f"session '{session_id}' holds {held} messages, expected {expected}: "
                         f"another turn was stored first; nothing was stored, read the history "
                         f"and retry", metadata={"session_id": session_id})


class SessionBusy(TokenwireError):
    """A turn is running in the session; turns never interleave."""

    reason = "SESSION_BUSY"

    def __init__(self, session_id: str):
        super().__init__(f"session '{session_id}' is answering another message; wait for that "
                         f"turn to finish (or cancel it) and retry", metadata={"session_id": session_id})


class Unauthenticated(TokenwireError):
    """No valid API key. The message never repeats what the caller sent."""

    reason = "INVALID_API_KEY"


class PermissionDenied(TokenwireError):
    """A valid key without the scope the method needs (a user key on an admin method)."""

    reason = "PERMISSION_DENIED"


class RateLimited(TokenwireError):
    """The client used up its requests for the window (or the per-second burst)."""

    reason = "RATE_LIMIT_EXCEEDED"


class ServerBusy(Unavailable):
    """The server already runs its configured maximum of concurrent requests."""

    reason = "TOO_MANY_CONCURRENT_REQUESTS"


class RequestTimeout(TokenwireError):
    """The request ran past the server's request_timeout; its work has been stopped."""

    reason = "REQUEST_TIMEOUT"


# The one place where domain errors become status codes. Order matters only for subclasses,
# which are looked up through the MRO.
STATUS_CODES: dict[type[TokenwireError], grpc.StatusCode] = {
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    MalformedRequest: grpc.StatusCode.INVALID_ARGUMENT,
    ModelNotFound: grpc.StatusCode.NOT_FOUND,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
    QueueFull: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Unimplemented: grpc.StatusCode.UNIMPLEMENTED,
    NotFound: grpc.StatusCode.NOT_FOUND,
    AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    PreconditionFailed: grpc.StatusCode.FAILED_PRECONDITION,
    MemoryBudgetExceeded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    UnreadableModelFile: grpc.StatusCode.FAILED_PRECONDITION,
    EngineFailure: grpc.StatusCode.INTERNAL,
    SessionNotFound: grpc.StatusCode.NOT_FOUND,
    SessionExists: grpc.StatusCode.ALREADY_EXISTS,
    SessionBusy: grpc.StatusCode.FAILED_PRECONDITION,
    SessionConflict: grpc.StatusCode.ABORTED,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    RateLimited: grpc.StatusCode.RESOURCE_EXHAUSTED,
    RequestTimeout: grpc.StatusCode.DEADLINE_EXCEEDED,
    TokenwireError: grpc.StatusCode.INTERNAL,
    # Downloads. PERMISSION_DENIED for refused addresses: the URL is valid (INVALID_ARGUMENT would
    # say it could never work) but the server's policy forbids it; an admin can allow it.
    DownloadNotFound: grpc.StatusCode.NOT_FOUND,
    CatalogEntryNotFound: grpc.StatusCode.NOT_FOUND,
    AddressRefused: grpc.StatusCode.PERMISSION_DENIED,
    DownloadLimitReached: grpc.StatusCode.RESOURCE_EXHAUSTED,
}


def status_code_for(error: TokenwireError) -> grpc.StatusCode:
    for cls in type(error).__mro__:
        if cls in STATUS_CODES:
            return STATUS_CODES[cls]
    return grpc.StatusCode.INTERNAL
