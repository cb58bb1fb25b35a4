"""Stored responses are sessions of the server's session store (SessionService): the response
`resp_<x>` is the session `response-<x>` (a prefix of their own, so that they stand apart from
other sessions in the session list), holding the whole history up to and including that
response's output. So a stored response is listed, read, continued and
deleted through the session APIs too, and survives restarts as sessions do.

`session_id` is the one place that maps the two kinds of id.
"""

from __future__ import annotations

import re

import grpc

from rest_bridge.errors import HttpError
from rest_bridge.grpc_client import grpc_client
from tokenwire.v1 import auth_service_pb2
from tokenwire.v1 import generation_pb2 as gen_pb
from tokenwire.v1 import session_service_pb2 as session_pb

SESSION_PREFIX = "response-"
#: Response ids that map to a valid session id (^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$).
RESPONSE_ID = re.compile(r"resp_([A-Za-z0-9]{1,%d})" % (128 - len(SESSION_PREFIX)))

GET_SESSION = "tokenwire.v1.SessionService/GetSession"
CREATE_SESSION = "tokenwire.v1.SessionService/CreateSession"
DELETE_SESSION = "tokenwire.v1.SessionService/DeleteSession"


def session_id(response_id: str) -> str | None:
    """The session that stores `response_id`, or None for an id this server never makes."""
    match = RESPONSE_ID.fullmatch(response_id)
    return SESSION_PREFIX + match.group(1) if match else None


def _not_found(response_id: str, param: str | None) -> HttpError:
    if param == "previous_response_id":
        return HttpError(404, f"Previous response with id '{response_id}' not found.",
                         param=param, code="previous_response_not_found")
    return HttpError(404, f"Response with id '{response_id}' not found.")


def _session_of(response_id: str, method: str, param: str | None) -> str:
    found = session_id(response_id)
    if found is None:
        # No call would be made: ask the server first whether the caller may call the method at
        # all, so a caller without a valid key learns that (401/403), not whether an id exists.
        grpc_client().auth.CheckAccess(auth_service_pb2.CheckAccessRequest(methods=[method]))
        raise _not_found(response_id, param)
    return found


def _missing(error: grpc.RpcError) -> bool:
    return isinstance(error, grpc.RpcError) and error.code() == grpc.StatusCode.NOT_FOUND


def load(response_id: str, *, param: str | None = None) -> session_pb.GetSessionResponse:
    """The session of a stored response; a 404 (naming `param`) when there is none."""
    request = session_pb.GetSessionRequest(session_id=_session_of(response_id, GET_SESSION, param))
    try:
        return grpc_client().sessions.GetSession(request)
    except grpc.RpcError as error:
        if _missing(error):
            raise _not_found(response_id, param) from None
        raise


def history(previous_response_id: str | None) -> list[gen_pb.ChatMessage]:
    """The stored messages a new response continues (none without a previous response)."""
    if previous_response_id is None:
        return []
    return list(load(previous_response_id, param="previous_response_id").messages)


def save(response_id: str, request: session_pb.CreateSessionRequest) -> None:
    request.session_id = session_id(response_id)
    grpc_client().sessions.CreateSession(request)


def delete(response_id: str) -> None:
    request = session_pb.DeleteSessionRequest(
        session_id=_session_of(response_id, DELETE_SESSION, None))
    try:
        grpc_client().sessions.DeleteSession(request)
    except grpc.RpcError as error:
        if _missing(error):
            raise _not_found(response_id, None) from None
        raise
