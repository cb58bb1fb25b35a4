"""The session API of the "Rust LLM Inference Service" document (reference-apis 003).

`/completions` ({text, model, tokens}, or raw-token SSE), kebab-case `/chat/completions` (raw-token
SSE over a server-side session), `WS /chat/ws` (JSON in, text tokens out, `__ERROR__:` on
errors), `/sessions`, `/chat/history/:id` (GET, DELETE, rollback) and `/models`. An OpenAI body
(it has `messages`) on `/chat/completions` is served by the OpenAI family's view, with OpenAI's
error shape. Errors here answer `{"error": "..."}` as the document shows.

Raw SSE: each token is one event, `data: <text>` (a token holding a newline spans several
`data:` lines, which SSE readers join with "\\n"). An error after the stream started arrives as
`event: error` with `data: {"error": "..."}`.
"""

from __future__ import annotations

import json
from typing import Iterator

import grpc
from flask import Blueprint, Response, jsonify, request
from flask_sock import Sock
from simple_websocket import ConnectionClosed
from werkzeug.exceptions import HTTPException
from werkzeug.routing.exceptions import WebsocketMismatch

from rest_bridge import errors
from rest_bridge.bodies import parse, validate
from rest_bridge.errors import HttpError
from rest_bridge.families.openai import routes as openai
from rest_bridge.families.rust import bodies
from rest_bridge.grpc_client import grpc_client
from rest_bridge.rpc_map import calls
from rest_bridge.streaming import PeekedCall, stream_response
from tokenwire.errors import from_rpc_error
from tokenwire.v1 import auth_service_pb2 as auth_pb
from tokenwire.v1 import engine_service_pb2 as engine_pb
from tokenwire.v1 import session_service_pb2 as session_pb

blueprint = Blueprint("rust_sessions", __name__)
sock = Sock()

ERROR_PREFIX = "__ERROR__:"
SESSION_ID_HEADER = "X-Session-Id"
TRUNCATED_HEADER = "X-Truncated-Messages"


def error_body(failure: errors.Failure) -> dict:
    return bodies.Error(error=failure.message).body()


#: The document's answer to a client over its rate limit: a plain-text body, not JSON.
RATE_LIMITED_BODY = "Rate limit exceeded"


def _error_response(exc: BaseException) -> Response:
    """This family's errors: `{"error": "..."}`, except the 429, which the document shows as
    plain text (`HTTP 429 Too Many Requests` / `Rate limit exceeded`); its rate-limit headers
    and Retry-After stay."""
    response = errors.error_response(exc, error_body)
    if response.status_code == 429:
        response.set_data(RATE_LIMITED_BODY)
        response.mimetype = "text/plain"
    return response


for _exc_type in (HttpError, errors.TokenwireError, grpc.RpcError, HTTPException, Exception):
    blueprint.register_error_handler(_exc_type, _error_response)


def raw_event(text: str) -> bytes:
    return ("".join(f"data: {line}\n" for line in text.split("\n")) + "\n").encode()


def _stream_error(exc: BaseException) -> bytes:
    return f"event: error\ndata: {json.dumps(error_body(errors.failure_of(exc)))}\n\n".encode()


def _raw_tokens(call: PeekedCall) -> Iterator[bytes]:
    for message in call:
        if message.text:
            yield raw_event(message.text)


# -- completions ------------------------------------------------------------------------------


@blueprint.post("/completions")
@calls("tokenwire.v1.GenerationService/Generate", "tokenwire.v1.GenerationService/Complete")
def completions():
    """Text completion: {text, model, tokens}, or raw-token SSE with `stream: true`."""
    body = parse(bodies.CompletionRequest)
    stub = grpc_client().generation
    if body.stream:
        call = PeekedCall(stub.Generate(body.to_pb()))
        return stream_response(call, _raw_tokens, _stream_error, "text/event-stream")
    return jsonify(bodies.Completion.from_pb(stub.Complete(body.to_pb())).body())


@blueprint.post("/chat/completions")
@calls("tokenwire.v1.SessionService/Chat", "tokenwire.v1.GenerationService/Generate",
       "tokenwire.v1.GenerationService/Complete")
def chat_completions():
    """Kebab-case chat over a session, answered with raw-token SSE; an OpenAI body (with
    `messages`) is served as OpenAI's /v1/chat/completions."""
    body = request.get_json(force=True, silent=True)  # the body is read and checked below
    if isinstance(body, dict) and "messages" in body:
        try:
            return openai.chat_completions()
        except Exception as exc:  # the OpenAI family's errors keep the OpenAI shape
            return errors.error_response(exc, openai._error_body)
    call = PeekedCall(grpc_client().sessions.Chat(parse(bodies.ChatRequest).to_pb()))
    response = stream_response(call, _raw_tokens, _stream_error, "text/event-stream")
    if call.first is not None:
        response.headers[SESSION_ID_HEADER] = call.first.session_id
        # History messages left out of this turn's prompt to fit the window (0: none).
        response.headers[TRUNCATED_HEADER] = str(call.first.truncated_messages)
    return response


WS_ONLY = "/chat/ws speaks WebSocket: send an Upgrade: websocket request"


@blueprint.record_once
def _plain_http_to_the_websocket_route(state) -> None:
    """werkzeug refuses a plain HTTP request to a WebSocket route while routing, before any
    blueprint sees it; say what the caller should do, in this family's error shape."""
    def answer(exc: WebsocketMismatch):
        # werkzeug raises it both ways; a WebSocket upgrade sent to a plain route is not ours.
        if request.path != "/chat/ws":
            return exc
        return errors.error_response(HttpError(400, WS_ONLY), error_body)

    state.app.register_error_handler(WebsocketMismatch, answer)


@blueprint.before_request
def _websocket_only():
    """An upgrade is accepted only from a caller who may chat: a refused handshake is a plain
    401/403 the client can read, where a refusal after it could only close the socket."""
    if request.endpoint != "rust_sessions.chat_ws":  # routing let only upgrades through
        return
    grpc_client().auth.CheckAccess(auth_pb.CheckAccessRequest(methods=list(WS_METHODS)))


WS_METHODS = ("tokenwire.v1.SessionService/Chat",)


@sock.route("/chat/ws", bp=blueprint)
@calls(*WS_METHODS)
def chat_ws(ws):
    """WebSocket chat: send one kebab-case JSON message, receive the answer's tokens as text
    frames; the server closes the socket when the answer is complete. Errors arrive as one text
    frame starting with `__ERROR__:`."""
    call = None
    try:
        try:
            body = json.loads(ws.receive())
        except (ValueError, TypeError) as exc:
            raise HttpError(400, f"the message is not valid JSON: {exc}") from None
        call = grpc_client().sessions.Chat(validate(bodies.ChatRequest, body).to_pb())
        for message in call:
            if message.text:
                ws.send(message.text)
    except ConnectionClosed:
        raise  # the client left: nobody to tell; `finally` stops the engine
    except Exception as exc:
        ws.send(ERROR_PREFIX + errors.failure_of(exc).message)
    finally:
        if call is not None:
            call.cancel()  # a no-op after a normal end
    ws.close(reason=1000)


# -- sessions ---------------------------------------------------------------------------------


@blueprint.get("/sessions")
@calls("tokenwire.v1.SessionService/ListSessions")
def list_sessions():
    """Every session id, most recently used first."""
    result = grpc_client().sessions.ListSessions(session_pb.ListSessionsRequest())
    return jsonify([s.session_id for s in result.sessions])


@blueprint.get("/chat/history/<session_id>")
@calls("tokenwire.v1.SessionService/GetSession")
def get_history(session_id: str):
    """The conversation, oldest first, the system prompt (if any) as the first message."""
    result = grpc_client().sessions.GetSession(session_pb.GetSessionRequest(session_id=session_id))
    return jsonify(bodies.Message.history(result))


@blueprint.delete("/chat/history/<session_id>")
@calls("tokenwire.v1.SessionService/DeleteSession")
def delete_history(session_id: str):
    """Deletes the session and its history: 204."""
    grpc_client().sessions.DeleteSession(session_pb.DeleteSessionRequest(session_id=session_id))
    return Response(status=204)


@blueprint.post("/chat/history/<session_id>/rollback")
@calls("tokenwire.v1.SessionService/RollbackSession")
def rollback(session_id: str):
    """Removes the last `amount` messages (the system prompt is not one of them)."""
    body = parse(bodies.Rollback)
    try:
        grpc_client().sessions.RollbackSession(body.to_pb(session_id))
    except grpc.RpcError as exc:
        error = from_rpc_error(exc)
        if error.violations:  # the server names its own field; the client sent `amount`
            raise HttpError(400, "'amount' " + error.violations[0].description, param="amount") from None
        raise error from None
    return jsonify(bodies.Status().body())


# -- models -----------------------------------------------------------------------------------


@blueprint.get("/models")
@calls("tokenwire.v1.EngineService/ListEngines")
def list_models():
    """The model (engine) ids, the default first."""
    engines = grpc_client().engines.ListEngines(engine_pb.ListEnginesRequest()).engines
    return jsonify(bodies.ModelList(models=[e.engine_id for e in engines]).body())


@blueprint.get("/models/<path:model_id>")
@calls("tokenwire.v1.EngineService/GetEngine")
def get_model(model_id: str):
    """One model: id, file name, context length (null until loaded) and quantization."""
    engine = grpc_client().engines.GetEngine(engine_pb.GetEngineRequest(engine_id=model_id)).engine
    return jsonify(bodies.Model.from_pb(engine).body())
