"""OpenAPI documentation of the OpenAI route family (`rest_bridge.families.openai.routes`).

OpenAI's own shapes, plus what tokenwire adds: the sampling knobs `top_k`, `min_p` and
`repeat_penalty`, `conversation_id` (continues a server-side session), `use_cache` and
`performance_metrics` in the answers. A route family module in the sense of `rest_bridge.openapi`:
`PATHS`, `SCHEMAS`, `TAGS`. Schemas are namespaced `openai.*`.
"""

from __future__ import annotations

TAG = "OpenAI"
TAGS = [{
    "name": TAG,
    "description": "OpenAI-compatible routes: point the official SDKs at this server's `/v1`. "
                   "Errors answer `{\"error\": {\"message\", \"type\", \"param\", \"code\"}}`.",
}]


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/openai.{name}"}


def _described(schema: dict, description: str) -> dict:
    if "$ref" in schema:  # OpenAPI 3.0 ignores the siblings of $ref
        return {"allOf": [schema], "description": description}
    return {**schema, "description": description}


ERRORS = {
    "400": "The request is malformed, a parameter is out of range or not supported "
           "(`code: unsupported_parameter`), or the prompt does not fit the context window.",
    "401": "An API key is required and was missing or wrong.",
    "404": "No model (engine) has the requested id.",
    "413": "The request body is larger than the server's limit.",
    "429": "A rate limit or quota was hit.",
    "500": "The server failed.",
    "503": "The model is still loading, failed to load, or is saturated; or the server is "
           "draining. Retry later or elsewhere.",
    "504": "The request's deadline passed before the answer was ready.",
}


def _errors(*codes: str) -> dict:
    return {code: {"description": ERRORS[code],
                   "content": {"application/json": {"schema": ref("ErrorResponse")}}}
            for code in codes or ERRORS}


STREAM_NOTE = ("With `stream: true` the answer is `text/event-stream`: one `data: <chunk JSON>` "
               "event per chunk, then `data: [DONE]`. An error after the stream started arrives "
               "as a last `data: {\"error\": ...}` event.")

_integer = {"type": "integer"}
_string = {"type": "string"}
_nullable_string = {"type": "string", "nullable": True}

# OpenAPI 3.0's `nullable` does not reach into a $ref or allOf, so nullable objects are inline.
_STREAM_OPTIONS = {
    "type": "object",
    "properties": {"include_usage": {
        "type": "boolean", "default": False,
        "description": "Send one more chunk before `[DONE]` with empty `choices` and the usage; "
                       "every other chunk then carries `usage: null`."}},
}
_USAGE = {
    "type": "object",
    "required": ["prompt_tokens", "completion_tokens", "total_tokens"],
    "properties": {"prompt_tokens": _integer, "completion_tokens": _integer,
                   "total_tokens": _integer,
                   "prompt_tokens_details": {
                       "type": "object",
                       "properties": {"cached_tokens": {
                           "type": "integer",
                           "description": "Prompt tokens whose KV cache was reused (a shared "
                                          "prompt prefix, or the conversation's earlier turns) "
                                          "instead of computed."}}}},
}

# Request parameters shared by chat completions and completions.
_SAMPLING = {
    "model": {"type": "string", "description": "The model (engine) id. Empty or absent: the "
                                               "server's default model."},
    "max_tokens": {"type": "integer", "minimum": 1, "nullable": True,
                   "description": "Most tokens to generate. Absent: until the model stops or "
                                  "the context window is full."},
    "temperature": {"type": "number", "minimum": 0, "nullable": True,
                    "description": "Sampling temperature; 0 is greedy."},
    "top_p": {"type": "number", "exclusiveMinimum": True, "minimum": 0, "maximum": 1,
              "nullable": True, "description": "Nucleus sampling probability mass."},
    "stop": {"oneOf": [{"type": "string", "nullable": True},
                       {"type": "array", "items": {"type": "string"}, "maxItems": 16}],
             "description": "Generation stops before any of these strings (not returned)."},
    "seed": {"type": "integer", "minimum": 0, "maximum": 18446744073709551615, "nullable": True,
             "description": "Random seed: the same seed, request and model give the same output."},
    "presence_penalty": {"type": "number", "minimum": -2, "maximum": 2, "nullable": True},
    "frequency_penalty": {"type": "number", "minimum": -2, "maximum": 2, "nullable": True},
    "logit_bias": {"type": "object", "nullable": True,
                   "additionalProperties": {"type": "number", "minimum": -100, "maximum": 100},
                   "description": "Token id (as a string key) -> bias added to its logit; -100 "
                                  "bans the token."},
    "stream": {"type": "boolean", "default": False, "nullable": True,
               "description": "Answer with server-sent events instead of one JSON object."},
    "stream_options": {**_STREAM_OPTIONS, "nullable": True},
    "n": {"type": "integer", "minimum": 1, "maximum": 1, "default": 1, "nullable": True,
          "description": "Choices per request: only 1 is supported (anything else is a 400)."},
    "user": {"type": "string", "description": "End-user id; accepted and ignored."},
    "top_k": {"type": "integer", "minimum": 0, "nullable": True,
              "description": "tokenwire extra: keep only the k most likely tokens; 0 disables."},
    "min_p": {"type": "number", "minimum": 0, "maximum": 1, "nullable": True,
              "description": "tokenwire extra: drop tokens less likely than min_p times the "
                             "most likely one."},
    "repeat_penalty": {"type": "number", "exclusiveMinimum": True, "minimum": 0,
                       "nullable": True,
                       "description": "tokenwire extra: multiplicative penalty for recently "
                                      "seen tokens; 1 disables it."},
    "conversation_id": {"type": "string", "nullable": True,
                        "description": "tokenwire extra (Impetus): on chat completions, continue "
                                       "the server-side session with this id (created if "
                                       "missing). The server keeps the history, so the last "
                                       "message (the user's) is the new turn and a system "
                                       "message sets the system prompt. Echoed back."},
    "use_cache": {"type": "boolean", "nullable": True,
                  "description": "tokenwire extra (Impetus): with `conversation_id`, false "
                                 "prefills the session's whole history instead of reusing its "
                                 "resident KV cache. Accepted and unused otherwise."},
}

_ANSWER_EXTRAS = {
    "performance_metrics": _described(ref("PerformanceMetrics"),
                                      "tokenwire extra: how fast the answer was produced. In a "
                                      "stream, on the chunk that carries the finish reason."),
    "conversation_id": {"type": "string",
                        "description": "tokenwire extra: the request's `conversation_id`, when "
                                       "it had one."},
}

_FINISH_REASON = {"type": "string", "enum": ["stop", "length"],
                  "description": "`stop`: the model stopped or a stop sequence matched; "
                                 "`length`: max_tokens or the context window was reached."}
_STREAM_FINISH_REASON = {"type": "string", "enum": ["stop", "length", None], "nullable": True,
                         "description": "null until the chunk that ends the choice; then as in "
                                        "a JSON answer."}
_LOGPROBS = {"type": "object", "nullable": True, "description": "Always null (not supported)."}

SCHEMAS: dict[str, dict] = {
    "openai.ErrorResponse": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string", "description": "What went wrong."},
                "type": {"type": "string",
                         "description": "e.g. invalid_request_error, authentication_error, "
                                        "not_found_error, rate_limit_error, server_error, "
                                        "timeout_error."},
                "param": {"type": "string", "nullable": True,
                          "description": "The request parameter at fault, if any."},
                "code": {"type": "string", "nullable": True,
                         "description": "A machine-readable code, e.g. unsupported_parameter."},
            },
        }},
    },
    "openai.TextContentPart": {
        "type": "object",
        "required": ["type", "text"],
        "properties": {"type": {"type": "string", "enum": ["text"]}, "text": {"type": "string"}},
    },
    "openai.ChatMessage": {
        "type": "object",
        "required": ["role"],
        "properties": {
            "role": {"type": "string", "example": "user",
                     "description": "`system`, `developer` (treated as system), `user`, "
                                    "`assistant` or `tool`."},
            "content": {"oneOf": [{"type": "string", "nullable": True},
                                  {"type": "array", "items": ref("TextContentPart")}],
                        "description": "The text, or an array of text parts (joined). Other "
                                       "part types are a 400."},
        },
    },
    "openai.CreateChatCompletionRequest": {
        "type": "object",
        "required": ["messages"],
        "properties": {
            "model": _SAMPLING["model"],
            "messages": {"type": "array", "minItems": 1, "items": ref("ChatMessage"),
                         "description": "The conversation, oldest message first; rendered with "
                                        "the model's chat template."},
            **{k: v for k, v in _SAMPLING.items() if k != "model"},
            "max_completion_tokens": {"type": "integer", "minimum": 1, "nullable": True,
                                      "description": "Takes precedence over max_tokens."},
            "response_format": {"type": "object", "nullable": True,
                                "properties": {"type": {"type": "string", "enum": ["text"]}},
                                "description": "Only `{\"type\": \"text\"}` is supported."},
        },
        "example": {"model": "smollm2-135m", "messages": [
            {"role": "system", "content": "Answer in one word."},
            {"role": "user", "content": "What is the capital of France?"}],
            "temperature": 0, "max_tokens": 16},
    },
    "openai.Usage": _USAGE,
    "openai.PerformanceMetrics": {
        "type": "object",
        "properties": {
            "inference_time_ms": {"type": "number",
                                  "description": "Time to first token plus decoding time."},
            "tokens_per_second": {"type": "number",
                                  "description": "Generated tokens per second while decoding."},
            "time_to_first_token_ms": {"type": "number",
                                       "description": "From the request's arrival to the first "
                                                      "token."},
        },
    },
    "openai.ChatCompletion": {
        "type": "object",
        "required": ["id", "object", "created", "model", "choices", "usage"],
        "properties": {
            "id": {"type": "string", "example": "chatcmpl-0123abcd"},
            "object": {"type": "string", "enum": ["chat.completion"]},
            "created": {"type": "integer", "description": "Unix time in seconds."},
            "model": {"type": "string", "description": "The model that answered."},
            "choices": {"type": "array", "items": {
                "type": "object",
                "required": ["index", "message", "finish_reason"],
                "properties": {
                    "index": _integer,
                    "message": {"type": "object", "required": ["role", "content"], "properties": {
                        "role": {"type": "string", "enum": ["assistant"]},
                        "content": {"type": "string"}}},
                    "logprobs": _LOGPROBS,
                    "finish_reason": _FINISH_REASON,
                },
            }},
            "usage": ref("Usage"),
            **_ANSWER_EXTRAS,
        },
    },
    "openai.ChatCompletionChunk": {
        "type": "object",
        "required": ["id", "object", "created", "model", "choices"],
        "description": "One `data:` event of a chat completion stream. The first chunk's delta "
                       "holds the role; the last one with a choice holds the finish reason.",
        "properties": {
            "id": _string,
            "object": {"type": "string", "enum": ["chat.completion.chunk"]},
            "created": _integer,
            "model": _string,
            "choices": {"type": "array", "items": {
                "type": "object",
                "required": ["index", "delta", "finish_reason"],
                "properties": {
                    "index": _integer,
                    "delta": {"type": "object", "properties": {
                        "role": {"type": "string", "enum": ["assistant"]},
                        "content": {"type": "string", "description": "Text added since the "
                                                                     "previous chunk."}}},
                    "logprobs": _LOGPROBS,
                    "finish_reason": _STREAM_FINISH_REASON,
                },
            }},
            "usage": {**_USAGE, "nullable": True,
                      "description": "Only with `stream_options.include_usage`: null on every "
                                     "chunk but the last, which has empty `choices`."},
            **_ANSWER_EXTRAS,
        },
    },
    "openai.CreateCompletionRequest": {
        "type": "object",
        "required": ["prompt"],
        "properties": {
            "model": _SAMPLING["model"],
            "prompt": {"oneOf": [{"type": "string"},
                                 {"type": "array", "items": {"type": "string"},
                                  "minItems": 1, "maxItems": 1}],
                       "description": "The text to continue, passed to the model as is. An "
                                      "array must hold exactly one string."},
            "echo": {"type": "boolean", "default": False,
                     "description": "Prepend the prompt to the returned text."},
            **{k: v for k, v in _SAMPLING.items() if k != "model"},
        },
        "example": {"prompt": "The capital of France is", "max_tokens": 8, "temperature": 0},
    },
    "openai.TextCompletion": {
        "type": "object",
        "required": ["id", "object", "created", "model", "choices"],
        "description": "A completion; in a stream, each `data:` event is one of these with the "
                       "text added since the previous event, and `usage` follows "
                       "`stream_options.include_usage` as for chat.",
        "properties": {
            "id": {"type": "string", "example": "cmpl-0123abcd"},
            "object": {"type": "string", "enum": ["text_completion"]},
            "created": _integer,
            "model": _string,
            "choices": {"type": "array", "items": {
                "type": "object",
                "required": ["text", "index", "finish_reason"],
                "properties": {
                    "text": _string,
                    "index": _integer,
                    "logprobs": _LOGPROBS,
                    "finish_reason": {**_STREAM_FINISH_REASON,
                                      "description": "Always set in a JSON answer; null on "
                                                     "stream chunks but the last."},
                },
            }},
            "usage": {**_USAGE, "nullable": True,
                      "description": "Always set in a JSON answer; in a stream, as for chat."},
            **_ANSWER_EXTRAS,
        },
    },
    "openai.Model": {
        "type": "object",
        "required": ["id", "object", "created", "owned_by"],
        "properties": {
            "id": {"type": "string", "description": "The id requests use in `model`."},
            "object": {"type": "string", "enum": ["model"]},
            "created": {"type": "integer", "description": "Unix time in seconds."},
            "owned_by": {"type": "string", "example": "tokenwire"},
            "permission": {"type": "array", "items": {"type": "object"},
                           "description": "Always empty."},
            "root": _string,
            "parent": _nullable_string,
        },
    },
    "openai.ModelList": {
        "type": "object",
        "required": ["object", "data"],
        "properties": {"object": {"type": "string", "enum": ["list"]},
                       "data": {"type": "array", "items": ref("Model"),
                                "description": "Every model, the default first."}},
    },
    "openai.CreateEmbeddingRequest": {
        "type": "object",
        "required": ["input"],
        "properties": {
            "input": {"oneOf": [{"type": "string"},
                                {"type": "array", "items": {"type": "string"}, "minItems": 1}],
                      "description": "A text or texts to embed, none empty (token-id inputs "
                                     "are not supported)."},
            "model": _SAMPLING["model"],
            "encoding_format": {"type": "string", "enum": ["float", "base64"],
                                "default": "float",
                                "description": "`base64`: little-endian float32 bytes."},
            "dimensions": {"type": "integer", "description": "Not supported: any value is a "
                                                            "400."},
            "user": _SAMPLING["user"],
        },
        "example": {"input": ["hello world"], "model": "smollm2-135m"},
    },
    "openai.Embedding": {
        "type": "object",
        "required": ["object", "index", "embedding"],
        "properties": {
            "object": {"type": "string", "enum": ["embedding"]},
            "index": {"type": "integer", "description": "The input's position."},
            "embedding": {"oneOf": [{"type": "array", "items": {"type": "number"}},
                                    {"type": "string", "format": "byte"}],
                          "description": "Numbers, or base64 of float32 values with "
                                         "`encoding_format: base64`."},
        },
    },
    "openai.EmbeddingList": {
        "type": "object",
        "required": ["object", "data", "model", "usage"],
        "properties": {
            "object": {"type": "string", "enum": ["list"]},
            "data": {"type": "array", "items": ref("Embedding")},
            "model": _string,
            "usage": {"type": "object", "required": ["prompt_tokens", "total_tokens"],
                      "properties": {"prompt_tokens": _integer, "total_tokens": _integer}},
        },
    },
}


def _json_and_sse(json_schema: str, chunk_schema: str) -> dict:
    return {
        "description": "`stream` false or absent: one JSON object. " + STREAM_NOTE,
        "content": {
            "application/json": {"schema": ref(json_schema)},
            "text/event-stream": {"schema": ref(chunk_schema)},
        },
    }


PATHS: dict[str, dict] = {
    "/v1/chat/completions": {"post": {
        "tags": [TAG],
        "operationId": "OpenAI_CreateChatCompletion",
        "summary": "Create a chat completion",
        "description": "OpenAI's chat completions. " + STREAM_NOTE + " With "
                       "`stream_options.include_usage` a last chunk before `[DONE]` carries "
                       "the usage. Tool calling, logprobs and n > 1 are not supported (400).",
        "requestBody": {"required": True, "content": {
            "application/json": {"schema": ref("CreateChatCompletionRequest")}}},
        "responses": {"200": _json_and_sse("ChatCompletion", "ChatCompletionChunk"),
                      **_errors()},
    }},
    "/v1/completions": {"post": {
        "tags": [TAG],
        "operationId": "OpenAI_CreateCompletion",
        "summary": "Create a text completion (legacy)",
        "description": "OpenAI's legacy completions: one prompt, continued as is. " + STREAM_NOTE +
                       " `suffix`, logprobs and n > 1 are not supported (400).",
        "requestBody": {"required": True, "content": {
            "application/json": {"schema": ref("CreateCompletionRequest")}}},
        "responses": {"200": _json_and_sse("TextCompletion", "TextCompletion"), **_errors()},
    }},
    "/v1/models": {"get": {
        "tags": [TAG],
        "operationId": "OpenAI_ListModels",
        "summary": "List the models",
        "description": "The loaded engines (the default first), as OpenAI model objects.",
        "responses": {"200": {"description": "The models.", "content": {
            "application/json": {"schema": ref("ModelList")}}},
            **_errors("401", "429", "500", "503", "504")},
    }},
    "/v1/models/{model_id}": {"get": {
        "tags": [TAG],
        "operationId": "OpenAI_RetrieveModel",
        "summary": "Retrieve a model",
        "parameters": [{"name": "model_id", "in": "path", "required": True,
                        "schema": {"type": "string"},
                        "description": "The model id; it may contain `/`."}],
        "responses": {"200": {"description": "The model.", "content": {
            "application/json": {"schema": ref("Model")}}},
            **_errors("401", "404", "429", "500", "503", "504")},
    }},
    "/v1/embeddings": {"post": {
        "tags": [TAG],
        "operationId": "OpenAI_CreateEmbedding",
        "summary": "Create embeddings",
        "description": "One embedding per input: the mean of the model's final hidden states, "
                       "L2-normalized.",
        "requestBody": {"required": True, "content": {
            "application/json": {"schema": ref("CreateEmbeddingRequest")}}},
        "responses": {"200": {"description": "The embeddings, in input order.", "content": {
            "application/json": {"schema": ref("EmbeddingList")}}}, **_errors()},
    }},
}
