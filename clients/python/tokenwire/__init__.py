"""tokenwire's Python client: generated gRPC code under `tokenwire.v1` plus a typed `Client`."""

from tokenwire.client import (ChatDelta, Choice, Client, Completion, Delta, Session, Timings,
                              TokenLogprob, ToolCall, TopLogprob, Usage)
from tokenwire.downloads import CancelAllResult, CancelResult, Download
from tokenwire.errors import (AbortedError, AlreadyExistsError, DeadlineExceededError, FailedPreconditionError,
                              FieldViolation, InvalidArgumentError, NotFoundError,
                              PermissionDeniedError, ResourceExhaustedError, TokenwireError,
                              UnavailableError)

__all__ = ["Client", "Completion", "Delta", "Timings", "Usage", "TokenwireError",
           "InvalidArgumentError", "NotFoundError", "UnavailableError", "ResourceExhaustedError",
           "DeadlineExceededError", "FieldViolation", "Download", "CancelResult",
           "CancelAllResult", "AlreadyExistsError", "PermissionDeniedError",
           "FailedPreconditionError", "Session", "ChatDelta", "Choice", "TokenLogprob", "TopLogprob",
           "ToolCall", "AbortedError"]
