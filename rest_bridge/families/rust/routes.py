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
from typing import Any, Iterator

import grpc
from flask import Blueprint, Response, jsonify, request
from flask_sock import Sock
from simple_websocket import ConnectionClosed
from werkzeug.routing.exceptions import WebsocketMismatch

from rest_bridge import errors
from rest_bridge.errors import HttpError
from rest_bridge.grpc_client import grpc_client
from rest_bridge.http_json import json_kind, json_object
from rest_bridge.families.openai import routes as openai
from rest_bridge.rpc_map import calls
from rest_bridge.streaming import PeekedCall, stream_response
from tokenwire.errors import from_rpc_error
from tokenwire.v1 import auth_service_pb2 as auth_pb
from tokenwire.v1 import engine_service_pb2 as engine_pb
from tokenwire.v1 import generation_service_pb2 as gen_svc_pb
from tokenwire.v1 import session_service_pb2 as session_pb

blueprint = Blueprint("rust_sessions", __name__)
sock = Sock()

ERROR_PREFIX = "__ERROR__:"
SESSION_ID_HEADER = "X-Session-Id"
DEVICES = ("cpu", "cuda", "metal")

# Documented defaults of /completions and /chat/completions (applied when a field is absent).
COMPLETION_DEFAULTS = {"max_tokens": 128, "temperature": 0.7, "top_p": 0.95}
CHAT_DEFAULTS = {"max-token": 512, "temperature": 0.7, "top-p": 0.95, "top-k": 40,
                 "repeat-penalty": 1.1}


def error_body(failure: errors.Failure) -> dict:
    return {"error": failure.message}


errors.register_family(blueprint, error_body)


# -- reading bodies ---------------------------------------------------------------------------


def _value(body: dict, name: str, kind: type | tuple, what: str, default: Any = None) -> Any:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise HttpError(400, f"'{name}' must be {what}", param=name)
    if not isinstance(value, kind):
        raise HttpError(400, f"'{name}' must be {what}, not {json_kind(value)}", param=name)
    return value


def _required_string(body: dict, name: str) -> str:
    value = _value(body, name, str, "a string")
    if not value:
        raise HttpError(400, f"'{name}' is required", param=name)
    return value


def _stop(body: dict) -> list[str]:
    stop = body.get("stop")
    if stop is None:
        return []
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        return stop
    raise HttpError(400, "'stop' must be an array of strings", param="stop")


def _fill_sampling(sampling, body: dict, names: dict[str, str], defaults: dict) -> None:
    """names: body field -> SamplingParams field."""
    for name, target in names.items():
        integer = target == "top_k"
        value = _value(body, name, int if integer else (int, float),
                       "an integer" if integer else "a number", defaults.get(name))
        if value is not None:
            setattr(sampling, target, value)


def _max_tokens(body: dict, name: str, defaults: dict) -> int:
    value = _value(body, name, int, "an integer", defaults.get(name))
    if not -2**31 <= value < 2**31:
        raise HttpError(400, f"'{name}' is out of range", param=name)
    return value


def _chat_request(body: dict) -> session_pb.ChatRequest:
    """A kebab-case body as a Chat call that creates the session when it does not exist."""
    pb = session_pb.ChatRequest(content=_required_string(body, "prompt"),
                                model=_required_string(body, "model-name"),
                                create_if_missing=True)
    pb.session_id = _value(body, "session-id", str, "a string", "")
    pb.max_tokens = _max_tokens(body, "max-token", CHAT_DEFAULTS)
    _fill_sampling(pb.sampling, body, {"temperature": "temperature", "top-p": "top_p",
                                       "top-k": "top_k", "repeat-penalty": "repeat_penalty"},
                   CHAT_DEFAULTS)
    system_prompt = _value(body, "system-prompt", str, "a string")
    if system_prompt is not None:
        pb.system_prompt = system_prompt
    pb.stop.extend(_stop(body))
    device = _value(body, "device", str, "a string")
    if device is not None and device not in DEVICES:
        raise HttpError(400, f"'device' must be one of {', '.join(DEVICES)}", param="device")
    return pb


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
    body = json_object()
    stream = _value(body, "stream", bool, "true or false", False)
    pb = (gen_svc_pb.GenerateRequest if stream else gen_svc_pb.CompleteRequest)(
        model=_required_string(body, "model"), prompt=_required_string(body, "prompt"),
        max_tokens=_max_tokens(body, "max_tokens", COMPLETION_DEFAULTS), stop=_stop(body))
    _fill_sampling(pb.sampling, body, {"temperature": "temperature", "top_p": "top_p"},
                   COMPLETION_DEFAULTS)
    stub = grpc_client().generation
    if stream:
        call = PeekedCall(stub.Generate(pb))
        return stream_response(call, _raw_tokens, _stream_error, "text/event-stream")
    result = stub.Complete(pb)
    return jsonify({"text": result.text, "model": result.model, "tokens": result.usage.completion_tokens})


@blueprint.post("/chat/completions")
@calls("tokenwire.v1.SessionService/Chat", "tokenwire.v1.GenerationService/Generate",
       "tokenwire.v1.GenerationService/Complete")
def chat_completions():
    """Kebab-case chat over a session, answered with raw-token SSE; an OpenAI body (with
    `messages`) is served as OpenAI's /v1/chat/completions."""
    body = json_object()
    if "messages" in body:
        try:
            return openai.chat_completions()
        except Exception as exc:  # the OpenAI family's errors keep the OpenAI shape
            return errors.error_response(exc, openai._error_body)
    call = PeekedCall(grpc_client().sessions.Chat(_chat_request(body)))
    response = stream_response(call, _raw_tokens, _stream_error, "text/event-stream")
    if call.first is not None:
        response.headers[SESSION_ID_HEADER] = call.first.session_id
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
        if not isinstance(body, dict):
            raise HttpError(400, f"the message must be a JSON object, not {json_kind(body)}")
        call = grpc_client().sessions.Chat(_chat_request(body))
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
    messages = [{"role": "system", "content": result.session.system_prompt}] \
        if result.session.HasField("system_prompt") else []
    messages += [{"role": m.role, "content": m.content} for m in result.messages]
    return jsonify(messages)


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
    body = json_object()
    amount = _value(body, "amount", int, "an integer")
    if amount is None:
        raise HttpError(400, "'amount' is required", param="amount")
    if not -2**31 <= amount < 2**31:
        raise HttpError(400, "'amount' is out of range", param="amount")
    try:
        grpc_client().sessions.RollbackSession(
            session_pb.RollbackSessionRequest(session_id=session_id, message_count=amount))
    except grpc.RpcError as exc:
        error = from_rpc_error(exc)
        if error.violations:  # the server names its own field; the client sent `amount`
            raise HttpError(400, "'amount' " + error.violations[0].description, param="amount") from None
        raise error from None
    return jsonify({"status": "ok"})


# -- models -----------------------------------------------------------------------------------

def _model_info(engine: engine_pb.Engine) -> dict:
    name = engine.model_path.rsplit("/", 1)[-1]
    return {"id": engine.engine_id, "name": name.removesuffix(".gguf"),
            "context_length": engine.n_ctx or None,
            "quantization": engine.model.quantization or None}  # from the GGUF header


@blueprint.get("/models")
@calls("tokenwire.v1.EngineService/ListEngines")
def list_models():
    """The model (engine) ids, the default first."""
    engines = grpc_client().engines.ListEngines(engine_pb.ListEnginesRequest()).engines
    return jsonify({"models": [e.engine_id for e in engines]})


@blueprint.get("/models/<path:model_id>")
@calls("tokenwire.v1.EngineService/GetEngine")
def get_model(model_id: str):
    """One model: id, file name, context length (null until loaded) and quantization."""
    engine = grpc_client().engines.GetEngine(engine_pb.GetEngineRequest(engine_id=model_id)).engine
    return jsonify(_model_info(engine))
