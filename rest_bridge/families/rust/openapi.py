"""OpenAPI documentation of the session API family (`rest_bridge.families.rust.routes`), the shapes
of reference document 003, from the bodies it reads and sends (`rest_bridge.families.rust.bodies`).
Schemas are namespaced `rust.*`."""

from __future__ import annotations

from rest_bridge.bodies import ref, schemas
from rest_bridge.families.rust import bodies
from rest_bridge.openapi_parts import JSON, SSE, Operations, answer, path_parameter

TAG = "Sessions (raw SSE)"
TAGS = [{"name": TAG, "description": "Server-side chat sessions with raw-token SSE and a WebSocket,"
                                     " as the Rust LLM Inference Service documents them. Errors "
                                     "answer `{\"error\": \"...\"}`."}]

NS = bodies.NAMESPACE
SCHEMAS = schemas(NS, bodies.Error, bodies.CompletionRequest, bodies.Completion, bodies.ChatRequest,
                  bodies.Message, bodies.Rollback, bodies.Status, bodies.ModelList, bodies.Model)

_ERRORS = {
    "400": "A parameter is missing, malformed or out of range.",
    "404": "No session or model has this id.",
    "409": "The session is answering another message (one turn at a time).",
    "429": "A rate limit or the engine's queue is full.",
    "500": "Inference failed.",
    "503": "The model is loading, or the server is draining.",
}

_RAW_SSE = {SSE: {"schema": {
    "type": "string",
    "description": "One event per token: `data: <token text>` (a newline inside a token "
                   "continues on another `data:` line). An error after the stream began arrives "
                   "as `event: error` with `data: {\"error\": \"...\"}`."}}}

_SESSION_ID = path_parameter("session_id", "The session id.")


_operations = Operations(NS, TAG, bodies.Error)


def _op(operation_id: str, summary: str, ok: dict | tuple, errors: str = "", *, request=None,
        parameters: list[dict] | None = None, description: str = "") -> dict:
    """`ok`: the success responses, or (description, schema) of a JSON 200; `errors`: codes of
    `_ERRORS` (all when empty)."""
    return _operations(operation_id, summary, description=description, request=request,
                       parameters=parameters,
                       responses={"200": answer(*ok)} if isinstance(ok, tuple) else ok,
                       errors={code: _ERRORS[code] for code in errors.split() or _ERRORS})


def _chat_completions() -> dict:
    """Two bodies, two families: a kebab-case body is this family's session chat (raw-token
    SSE, `{"error": "..."}` errors); a body with `messages` is OpenAI's chat completion, with
    OpenAI's answers and error bodies. Each response documents both."""
    from rest_bridge.families.openai import openapi as openai

    either_error = {"oneOf": [ref(NS, bodies.Error), ref("openai", "ErrorResponse")]}
    errors = {**{code: _ERRORS.get(code, text) for code, text in openai.ERRORS.items()},
              **_ERRORS}
    operation = _operations(
        "Rust_ChatCompletions", "Chat in a session (raw-token SSE), or OpenAI chat",
        description="A kebab-case body runs one turn of a server-side session and streams raw "
                    "tokens; the turn joins the history when the answer is complete. A body "
                    "with `messages` is OpenAI's chat completion (see /v1/chat/completions), "
                    "with OpenAI's answers and error bodies.",
        responses={"200": {
            "description": "Raw-token SSE (kebab-case body), or OpenAI's answer: one JSON object, "
                           "or SSE chunks with `stream: true`.",
            "headers": {"X-Session-Id": {"schema": {"type": "string"},
                                         "description": "The session's id (kebab-case body)."}},
            "content": {JSON: {"schema": ref("openai", "ChatCompletion")},
                        SSE: {"schema": {"oneOf": [_RAW_SSE[SSE]["schema"],
                                                   ref("openai", "ChatCompletionChunk")]}}}}})
    for code, text in sorted(errors.items()):
        operation["responses"][code] = {"description": text,
                                        "content": {JSON: {"schema": either_error}}}
    operation["requestBody"] = {"required": True, "content": {JSON: {"schema": {"oneOf": [
        ref(NS, bodies.ChatRequest), ref("openai", "CreateChatCompletionRequest")]}}}}
    return operation


PATHS: dict[str, dict] = {
    "/completions": {"post": _op(
        "Rust_Completions", "Complete a prompt", {"200": {
            "description": "`stream` false: one JSON object; true: raw-token SSE.",
            "content": {JSON: {"schema": ref(NS, bodies.Completion)}, **_RAW_SSE}}},
        "400 404 429 500 503", request=bodies.CompletionRequest)},
    "/chat/completions": {"post": _chat_completions()},
    "/chat/ws": {"get": {
        "tags": [TAG], "operationId": "Rust_ChatWebSocket", "summary": "Chat over a WebSocket",
        "description": "Upgrade to a WebSocket, send one JSON message shaped like the kebab-case "
                       "chat body, and receive the answer as text frames, one per token; the "
                       "server closes the socket when the answer is complete. An error is one "
                       "text frame `__ERROR__:<message>`.",
        "responses": {
            "101": {"description": "Switching to the WebSocket protocol."},
            **{code: answer(text, ref(NS, bodies.Error)) for code, text in (
                ("400", "A plain HTTP request, without `Upgrade: websocket`."),
                ("401", "An API key is required and was missing or wrong (the handshake is "
                        "refused)."),
                ("403", "The key may not chat."))}},
    }},
    "/sessions": {"get": _op("Rust_ListSessions", "List session ids", (
        "Session ids, most recently used first.", {"type": "array", "items": {"type": "string"}}),
        "500 503")},
    "/chat/history/{session_id}": {
        "get": _op("Rust_GetHistory", "A session's history", (
            "Messages, oldest first; the system prompt first.",
            {"type": "array", "items": ref(NS, bodies.Message)}), "404 500",
            parameters=[_SESSION_ID]),
        "delete": _op("Rust_DeleteHistory", "Delete a session", {
            "204": {"description": "Deleted."}}, "404 409 500", parameters=[_SESSION_ID]),
    },
    "/chat/history/{session_id}/rollback": {"post": _op(
        "Rust_Rollback", "Remove the last messages", ("Rolled back.", ref(NS, bodies.Status)),
        "400 404 409 500", request=bodies.Rollback, parameters=[_SESSION_ID])},
    "/models": {"get": _op(
        "Rust_ListModels", "List model ids",
        ("The model ids, the default first.", ref(NS, bodies.ModelList)), "500")},
    "/models/{model_id}": {"get": _op(
        "Rust_GetModel", "One model", ("The model.", ref(NS, bodies.Model)), "404 500",
        parameters=[path_parameter("model_id", "The model (engine) id.")])},
}
