"""OpenAPI documentation of the session API family (`rest_bridge.families.rust.routes`), the shapes
of reference document 003. Schemas are namespaced `rust.*`."""

from __future__ import annotations

TAG = "Sessions (raw SSE)"
TAGS = [{
    "name": TAG,
    "description": "Server-side chat sessions with raw-token SSE and a WebSocket, as the Rust LLM "
                   "Inference Service documents them. Errors answer `{\"error\": \"...\"}`.",
}]


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/rust.{name}"}


_ERRORS = {
    "400": "A parameter is missing, malformed or out of range.",
    "404": "No session or model has this id.",
    "409": "The session is answering another message (one turn at a time).",
    "429": "A rate limit or the engine's queue is full.",
    "500": "Inference failed.",
    "503": "The model is loading, or the server is draining.",
}


def _errors(*codes: str) -> dict:
    return {code: {"description": _ERRORS[code],
                   "content": {"application/json": {"schema": ref("Error")}}}
            for code in codes or _ERRORS}


_RAW_SSE = {"text/event-stream": {"schema": {
    "type": "string",
    "description": "One event per token: `data: <token text>` (a newline inside a token "
                   "continues on another `data:` line). An error after the stream began arrives "
                   "as `event: error` with `data: {\"error\": \"...\"}`."}}}

_SESSION_ID = {"name": "session_id", "in": "path", "required": True, "schema": {"type": "string"},
               "description": "The session id."}

_CHAT_PROPERTIES = {
    "model-name": {"type": "string", "description": "Engine id of a session this call creates "
                                                     "(an existing session keeps its model)."},
    "prompt": {"type": "string", "description": "The user message."},
    "session-id": {"type": "string", "description": "Session to continue; created when it does "
                                                     "not exist. Absent: a new session (its id is "
                                                     "in the `X-Session-Id` header)."},
    "max-token": {"type": "integer", "default": 512, "description": "Most tokens to generate."},
    "temperature": {"type": "number", "default": 0.7},
    "top-p": {"type": "number", "default": 0.95},
    "top-k": {"type": "integer", "default": 40},
    "repeat-penalty": {"type": "number", "default": 1.1},
    "system-prompt": {"type": "string", "description": "System prompt; replaces the session's "
                                                        "when it differs."},
    "stop": {"type": "array", "items": {"type": "string"}},
    "device": {"type": "string", "enum": ["cpu", "cuda", "metal"],
               "description": "Accepted for compatibility; the engine runs where it was loaded."},
}

SCHEMAS: dict[str, dict] = {
    "rust.Error": {"type": "object", "required": ["error"],
                   "properties": {"error": {"type": "string"}}},
    "rust.CompletionRequest": {
        "type": "object", "required": ["model", "prompt"],
        "properties": {
            "model": {"type": "string", "description": "Engine id."},
            "prompt": {"type": "string"},
            "max_tokens": {"type": "integer", "default": 128},
            "temperature": {"type": "number", "default": 0.7},
            "top_p": {"type": "number", "default": 0.95},
            "stop": {"type": "array", "items": {"type": "string"}},
            "stream": {"type": "boolean", "default": False},
        }},
    "rust.Completion": {
        "type": "object", "required": ["text", "model", "tokens"],
        "properties": {"text": {"type": "string"}, "model": {"type": "string"},
                       "tokens": {"type": "integer", "description": "Tokens generated."}}},
    "rust.ChatRequest": {"type": "object", "required": ["model-name", "prompt"],
                         "properties": _CHAT_PROPERTIES},
    "rust.Message": {"type": "object", "required": ["role", "content"],
                     "properties": {"role": {"type": "string"}, "content": {"type": "string"}}},
    "rust.Rollback": {"type": "object", "required": ["amount"],
                      "properties": {"amount": {"type": "integer", "minimum": 0,
                                                "description": "Messages to remove from the end."}}},
    "rust.Status": {"type": "object", "properties": {"status": {"type": "string", "enum": ["ok"]}}},
    "rust.ModelList": {"type": "object", "properties": {
        "models": {"type": "array", "items": {"type": "string"}}}},
    "rust.Model": {"type": "object", "properties": {
        "id": {"type": "string"}, "name": {"type": "string"},
        "context_length": {"type": "integer", "nullable": True},
        "quantization": {"type": "string", "nullable": True}}},
}

PATHS: dict[str, dict] = {
    "/completions": {"post": {
        "tags": [TAG], "operationId": "Rust_Completions", "summary": "Complete a prompt",
        "requestBody": {"required": True, "content": {"application/json": {"schema": ref("CompletionRequest")}}},
        "responses": {"200": {"description": "`stream` false: one JSON object; true: raw-token SSE.",
                              "content": {"application/json": {"schema": ref("Completion")}, **_RAW_SSE}},
                      **_errors("400", "404", "429", "500", "503")},
    }},
    "/chat/completions": {"post": {
        "tags": [TAG], "operationId": "Rust_ChatCompletions",
        "summary": "Chat in a session (raw-token SSE), or OpenAI chat",
        "description": "A kebab-case body runs one turn of a server-side session and streams raw "
                       "tokens; the turn joins the history when the answer is complete. A body "
                       "with `messages` is OpenAI's chat completion (see /v1/chat/completions), "
                       "with OpenAI's answers and error bodies.",
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "oneOf": [ref("ChatRequest"),
                      {"$ref": "#/components/schemas/openai.CreateChatCompletionRequest"}]}}}},
        "responses": {"200": {"description": "Raw-token SSE (kebab-case body) or OpenAI's answer.",
                              "headers": {"X-Session-Id": {"schema": {"type": "string"},
                                                           "description": "The session's id."}},
                              "content": _RAW_SSE},
                      **_errors()},
    }},
    "/chat/ws": {"get": {
        "tags": [TAG], "operationId": "Rust_ChatWebSocket", "summary": "Chat over a WebSocket",
        "description": "Upgrade to a WebSocket, send one JSON message shaped like the kebab-case "
                       "chat body, and receive the answer as text frames, one per token; the "
                       "server closes the socket when the answer is complete. An error is one "
                       "text frame `__ERROR__:<message>`.",
        "responses": {"101": {"description": "Switching to the WebSocket protocol."}},
    }},
    "/sessions": {"get": {
        "tags": [TAG], "operationId": "Rust_ListSessions", "summary": "List session ids",
        "responses": {"200": {"description": "Session ids, most recently used first.",
                              "content": {"application/json": {"schema": {
                                  "type": "array", "items": {"type": "string"}}}}},
                      **_errors("500", "503")},
    }},
    "/chat/history/{session_id}": {
        "get": {
            "tags": [TAG], "operationId": "Rust_GetHistory", "summary": "A session's history",
            "parameters": [_SESSION_ID],
            "responses": {"200": {"description": "Messages, oldest first; the system prompt first.",
                                  "content": {"application/json": {"schema": {
                                      "type": "array", "items": ref("Message")}}}},
                          **_errors("404", "500")},
        },
        "delete": {
            "tags": [TAG], "operationId": "Rust_DeleteHistory", "summary": "Delete a session",
            "parameters": [_SESSION_ID],
            "responses": {"204": {"description": "Deleted."}, **_errors("404", "409", "500")},
        },
    },
    "/chat/history/{session_id}/rollback": {"post": {
        "tags": [TAG], "operationId": "Rust_Rollback", "summary": "Remove the last messages",
        "parameters": [_SESSION_ID],
        "requestBody": {"required": True, "content": {"application/json": {"schema": ref("Rollback")}}},
        "responses": {"200": {"description": "Rolled back.",
                              "content": {"application/json": {"schema": ref("Status")}}},
                      **_errors("400", "404", "409", "500")},
    }},
    "/models": {"get": {
        "tags": [TAG], "operationId": "Rust_ListModels", "summary": "List model ids",
        "responses": {"200": {"description": "The model ids, the default first.",
                              "content": {"application/json": {"schema": ref("ModelList")}}},
                      **_errors("500")},
    }},
    "/models/{model_id}": {"get": {
        "tags": [TAG], "operationId": "Rust_GetModel", "summary": "One model",
        "parameters": [{"name": "model_id", "in": "path", "required": True,
                        "schema": {"type": "string"}, "description": "The model (engine) id."}],
        "responses": {"200": {"description": "The model.",
                              "content": {"application/json": {"schema": ref("Model")}}},
                      **_errors("404", "500")},
    }},
}
