"""The bridge's one error table: gRPC status -> HTTP status, and each route family's error body.

Views raise either `HttpError` (the HTTP request itself is malformed) or let the typed client
errors from the gRPC call (`tokenwire.errors.TokenwireError`) propagate; the family's handler,
registered on its blueprint, shapes the answer. Nothing here parses an error message.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Callable

import grpc
from flask import Blueprint, Flask, current_app, g, has_request_context, jsonify, request
from werkzeug.exceptions import HTTPException

from tokenwire.errors import TokenwireError, from_rpc_error

log = logging.getLogger(__name__)

# google.rpc.Code -> HTTP, as grpc-gateway and Google's HTTP APIs map them.
HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}

# Reasons whose HTTP status differs from their gRPC code's: a memory budget or a full disk is
# not "too many requests", and retrying soon will not help; a session answering another turn is
# a conflict with the resource's current state (409), not a malformed request.
HTTP_STATUS_BY_REASON: dict[str, int] = {"MEMORY_BUDGET_EXCEEDED": 507, "INSUFFICIENT_STORAGE": 507,
                                         "SESSION_BUSY": 409}

# Seconds a client should wait before retrying a 429 or 503 (RFC 9110 Retry-After).
RETRY_AFTER_S = {429: 1, 503: 1}

# OpenAI error "type" by HTTP status, with Kolosal's types where it documents them.
OPENAI_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    499: "invalid_request_error",
    500: "server_error",
    501: "server_error",
    503: "server_error",
    504: "timeout_error",
    507: "server_error",
}
OPENAI_TYPE_BY_REASON: dict[str, str] = {"ENGINE_FAILURE": "inference_error"}


@dataclass
class HttpError(Exception):
    """The HTTP request is wrong before any gRPC call: bad JSON, wrong type, unsupported option."""

    status: int
    message: str
    param: str | None = None
    code: str | None = None
    details: str | None = None  # a hint for the caller, where a family's body has room for one


@dataclass(frozen=True)
class Failure:
    """A failure in family-neutral terms, ready to be shaped by a family."""

    status: int
    message: str
    grpc_code: grpc.StatusCode | None = None
    reason: str = ""
    fields: tuple[str, ...] = ()
    param: str | None = None
    code: str | None = None
    details: list = field(default_factory=list)


def http_status(error: TokenwireError) -> int:
    return HTTP_STATUS_BY_REASON.get(error.reason) or HTTP_STATUS.get(error.code, 500)


def failure_of(exc: BaseException) -> Failure:
    if isinstance(exc, grpc.RpcError):
        exc = from_rpc_error(exc)
    if isinstance(exc, TokenwireError):
        return Failure(http_status(exc), exc.message, exc.code, exc.reason,
                       tuple(v.field for v in exc.violations),
                       details=[{"field": v.field, "description": v.description} for v in exc.violations])
    if isinstance(exc, HttpError):
        return Failure(exc.status, exc.message, param=exc.param, code=exc.code,
                       details=[exc.details] if exc.details else [])
    if isinstance(exc, HTTPException):
        return Failure(exc.code or 500, exc.description or exc.name)
    log.exception("unhandled error in the bridge", exc_info=exc)
    return Failure(500, "internal error in the REST bridge")


# -- families ------------------------------------------------------------------------------------


def openai_body(f: Failure, param_names: dict[str, str] | None = None) -> dict:
    """{"error": {"message", "type", "param", "code"}}; gRPC field paths become API param names."""
    param = f.param
    if param is None and f.fields:
        names = param_names or {}
        param = names.get(f.fields[0], f.fields[0])
    return {"error": {
        "message": f.message,
        "type": OPENAI_TYPE_BY_REASON.get(f.reason, OPENAI_TYPES.get(f.status, "server_error")),
        "param": param,
        "code": f.code or (f.reason.lower() if f.reason else None),
    }}


# Impetus's error types by HTTP status (a Flask app with pydantic validation).
IMPETUS_TYPES: dict[int, str] = {
    400: "validation_error", 401: "authentication_error", 403: "permission_error",
    404: "not_found", 409: "conflict", 413: "validation_error", 429: "rate_limit_error",
    503: "service_unavailable", 507: "insufficient_storage"}


def impetus_body(f: Failure) -> dict:
    """Impetus's {"error", "type", "details", "timestamp"} (its /api/* routes)."""
    details = [d if isinstance(d, str) else f"{d['field']}: {d['description']}" for d in f.details]
    if not details and f.param:
        details = [f"{f.param}: invalid"]
    if not details and f.reason:
        details = [f"reason: {f.reason}"]
    return {"error": f.message, "type": IMPETUS_TYPES.get(f.status, "internal_error"),
            "details": details, "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


# Foundry's error codes and types by server reason (its documented "Common Error Responses").
FOUNDRY_CODES: dict[str, tuple[str, str]] = {
    "MISSING_MODEL": ("missing_model_name", "invalid_request_error"),
    "MODEL_NOT_FOUND": ("model_not_found", "not_found_error"),
    "MODEL_FILE_NOT_FOUND": ("model_not_found", "not_found_error"),
    "CATALOG_MODEL_NOT_FOUND": ("model_not_found", "not_found_error"),
    "MODEL_NOT_DOWNLOADED": ("model_not_downloaded", "precondition_failed"),
    "DOWNLOAD_FAILED": ("download_failed", "download_error"),
}
FOUNDRY_TYPES_BY_CODE: dict[str, str] = {
    "download_failed": "download_error", "update_failed": "configuration_error",
    "server_start_timeout": "timeout_error", "server_already_running": "conflict_error",
    "model_not_downloaded": "precondition_failed", "missing_model_name": "invalid_request_error",
    "model_not_found": "not_found_error",
}
FOUNDRY_TYPES: dict[int, str] = {408: "timeout_error", 409: "conflict_error"}


def foundry_body(f: Failure) -> dict:
    """FoundryLocal's {"error": {"message", "type", "code", "details"}}."""
    reason_code, reason_type = FOUNDRY_CODES.get(f.reason, (None, None))
    code = f.code or reason_code or (f.reason.lower() if f.reason else None)
    details = "; ".join(d if isinstance(d, str) else f"{d['field']}: {d['description']}"
                        for d in f.details) or None
    return {"error": {
        "message": f.message,
        "type": (reason_type or FOUNDRY_TYPES_BY_CODE.get(code or "") or FOUNDRY_TYPES.get(f.status)
                 or OPENAI_TYPES.get(f.status, "server_error")),
        "code": code,
        "details": details,
    }}


# HTTP-level failures (no gRPC call made) that HTTP_STATUS cannot invert.
GRPC_CODE_FOR_HTTP: dict[int, grpc.StatusCode] = {
    405: grpc.StatusCode.UNIMPLEMENTED,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,  # what gRPC answers past its own message size limit
    415: grpc.StatusCode.INVALID_ARGUMENT,
}


def google_body(f: Failure) -> dict:
    """google.rpc.Status as JSON, the shape grpc-gateway answers with."""
    code = (f.grpc_code or GRPC_CODE_FOR_HTTP.get(f.status)
            or next((c for c, s in HTTP_STATUS.items() if s == f.status), grpc.StatusCode.UNKNOWN))
    body: dict = {"code": code.value[0], "message": f.message, "details": []}
    if f.reason:
        body["details"].append({"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                "reason": f.reason, "domain": "tokenwire"})
    if f.details:
        body["details"].append({"@type": "type.googleapis.com/google.rpc.BadRequest",
                                "fieldViolations": f.details})
    return body


Shaper = Callable[[Failure], dict]

# A refused body up to this size is read and dropped before answering 413: a client still sending
# would otherwise meet a reset connection instead of the answer. Larger ones just get cut off.
DRAIN_LIMIT_BYTES = 64 * 1024 * 1024
_DRAIN_CHUNK = 1 << 16


def _drain_refused_body() -> None:
    length = request.content_length
    stream = request.environ.get("wsgi.input")
    if not length or length > DRAIN_LIMIT_BYTES or stream is None:
        return
    remaining = length
    try:
        while remaining > 0:
            chunk = stream.read(min(remaining, _DRAIN_CHUNK))
            if not chunk:
                break
            remaining -= len(chunk)
    except OSError:
        pass  # the client gave up; nothing to answer

# Malformed-request statuses that must not hide an authentication failure.
_AUTH_FIRST_STATUSES = frozenset({400, 413, 415, 422})


def _auth_first(exc: BaseException) -> BaseException:
    """A request refused before any gRPC call (bad JSON, too large) from a caller who may not
    call the route's methods at all gets the server's 401/403 instead: callers without a valid
    key learn that first, as they would with a well-formed request. Costs a call only when a
    request is already being refused."""
    if isinstance(exc, HttpError):
        status = exc.status
    elif isinstance(exc, HTTPException):
        status = exc.code or 500
    else:
        return exc
    if status not in _AUTH_FIRST_STATUSES or not has_request_context() or g.get("tokenwire_calls"):
        return exc
    from rest_bridge.grpc_client import EXTENSION, grpc_client
    from rest_bridge.rpc_map import ATTRIBUTE

    view = current_app.view_functions.get(request.endpoint or "")
    methods = getattr(view, ATTRIBUTE, None) or getattr(getattr(view, "func", None), ATTRIBUTE, ())
    if not methods or EXTENSION not in current_app.extensions:
        return exc
    from tokenwire.v1 import auth_service_pb2

    try:
        grpc_client().auth.CheckAccess(auth_service_pb2.CheckAccessRequest(methods=methods))
    except grpc.RpcError as error:
        if error.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
            return error
    return exc


def error_response(exc: BaseException, shape: Shaper, statuses: dict[str, int] | None = None):
    """The HTTP answer for `exc` in a family's shape (also for views that serve two families);
    `statuses` gives reasons the HTTP status the family's document specifies where it differs."""
    failure = failure_of(_auth_first(exc))
    if statuses and failure.reason in statuses:
        failure = dataclasses.replace(failure, status=statuses[failure.reason])
    response = jsonify(shape(failure))
    response.status_code = failure.status
    if failure.status == 413 and has_request_context():
        _drain_refused_body()
        response.headers["Connection"] = "close"
    if failure.status in RETRY_AFTER_S:
        response.headers["Retry-After"] = str(RETRY_AFTER_S[failure.status])
    return response


def register_family(target: Blueprint | Flask, shape: Shaper, *,
                    statuses: dict[str, int] | None = None) -> None:
    """Makes every error raised in `target`'s views answer with `shape`'s body."""

    def handle(exc: BaseException):
        return error_response(exc, shape, statuses)

    for exc_type in (HttpError, TokenwireError, grpc.RpcError, HTTPException, Exception):
        target.register_error_handler(exc_type, handle)


def register_app_fallback(app: Flask) -> None:
    """Errors no blueprint owns (unknown path, wrong method): OpenAI shape, as Kolosal documents
    for all of its errors."""
    register_family(app, openai_body)
