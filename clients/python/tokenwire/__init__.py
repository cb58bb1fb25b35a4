"""tokenwire's Python client: generated gRPC code under `tokenwire.v1` plus a typed `Client`."""

from tokenwire.client import Client, Completion, Delta, Timings, Usage
from tokenwire.errors import (DeadlineExceededError, FieldViolation, InvalidArgumentError,
                              NotFoundError, ResourceExhaustedError, TokenwireError,
                              UnavailableError)

__all__ = ["Client", "Completion", "Delta", "Timings", "Usage", "TokenwireError",
           "InvalidArgumentError", "NotFoundError", "UnavailableError", "ResourceExhaustedError",
           "DeadlineExceededError", "FieldViolation"]
