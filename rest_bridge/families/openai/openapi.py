"""OpenAPI documentation of the OpenAI route family (`rest_bridge.families.openai.routes`).

OpenAI's own shapes (structured output, tool calls, log probabilities and n choices included),
plus what tokenwire adds: the sampling knobs `top_k`, `min_p` and `repeat_penalty`, llama-server's
`grammar` and `json_schema`, `conversation_id` (continues a server-side session), `use_cache` and
`performance_metrics` in the answers. The schemas are the bodies' (`families.openai.bodies`),
namespaced `openai.*`; this module writes the operations.
"""

from __future__ import annotations

from rest_bridge.bodies import schemas
from rest_bridge.families.openai import bodies
from rest_bridge.openapi_parts import JSON, SSE, Operations, path_parameter

TAG = "OpenAI"
TAGS = [{
    "name": TAG,
    "description": "OpenAI-compatible routes: point the official SDKs at this server's `/v1`. "
                   "Errors answer `{\"error\": {\"message\", \"type\", \"param\", \"code\"}}`.",
}]


ERRORS = {
    "400": "The request is malformed, a parameter is out of range or not supported "
           "(`code: unsupported_parameter`), a JSON schema or tool schema uses a keyword that "
           "cannot be enforced (the message names it), n exceeds the engine's parallel "
           "sequences, or the prompt does not fit the context window. `param` names the "
           "parameter at fault.",
    "401": "An API key is required and was missing or wrong.",
    "404": "No model (engine) has the requested id.",
    "413": "The request body is larger than the server's limit.",
    "429": "A rate limit or quota was hit.",
    "500": "The server failed.",
    "503": "The model is still loading, failed to load, or is saturated; or the server is "
           "draining. Retry later or elsewhere.",
    "504": "The request's deadline passed before the answer was ready.",
}
STREAM_NOTE = ("With `stream: true` the answer is `text/event-stream`: one `data: <chunk JSON>` "
               "event per chunk, then `data: [DONE]`. An error after the stream started arrives "
               "as a last `data: {\"error\": ...}` event.")

SCHEMAS = schemas(bodies.NAMESPACE, *bodies.DOCUMENTED)
_op = Operations(bodies.NAMESPACE, TAG, bodies.ErrorResponse)


def _errors(*codes: str) -> dict:
    return {code: ERRORS[code] for code in codes or ERRORS}


def _json_and_sse(answer, chunk) -> dict:
    return {"description": "`stream` false or absent: one JSON object. " + STREAM_NOTE,
            "content": {JSON: {"schema": _op.ref(answer)}, SSE: {"schema": _op.ref(chunk)}}}


PATHS: dict[str, dict] = {
    "/v1/chat/completions": {"post": _op(
        "OpenAI_CreateChatCompletion", "Create a chat completion",
        _json_and_sse(bodies.ChatCompletion, bodies.ChatCompletionChunk),
        description="OpenAI's chat completions. " + STREAM_NOTE + " With "
                    "`stream_options.include_usage` a last chunk before `[DONE]` carries the "
                    "usage.\n\n"
                    "- **Structured output**: `response_format` `json_object` or `json_schema` "
                    "(or llama-server's `grammar` / `json_schema`) is enforced token by token.\n"
                    "- **Tool calls**: `tools` (functions), `tool_choice`, "
                    "`parallel_tool_calls`; calls come back in `message.tool_calls` with "
                    "`finish_reason: \"tool_calls\"` (streamed as `delta.tool_calls`, each call "
                    "whole), and are answered with `tool` messages naming `tool_call_id`.\n"
                    "- **Log probabilities**: `logprobs: true` and `top_logprobs` (0-20).\n"
                    "- **Choices**: `n` up to the engine's parallel sequences; streamed chunks "
                    "carry their choice's `index`, and each choice has its own first (role) and "
                    "finish chunk.\n\n"
                    "With `conversation_id`, `tools` and n > 1 are a 400; the deprecated "
                    "`functions` / `function_call` are a 400.",
        request=bodies.CreateChatCompletionRequest, errors=_errors())},
    "/v1/completions": {"post": _op(
        "OpenAI_CreateCompletion", "Create a text completion (legacy)",
        _json_and_sse(bodies.TextCompletion, bodies.TextCompletion),
        description="OpenAI's legacy completions: one prompt, continued as is. " + STREAM_NOTE +
                    " `response_format`, `grammar` and `json_schema` constrain the output as in "
                    "chat; `logprobs` (0-20) returns the generated tokens' log probabilities "
                    "(with `echo`, the prompt's tokens have none); `n` choices as in chat. "
                    "`suffix` and `best_of` > 1 are not supported (400).",
        request=bodies.CreateCompletionRequest, errors=_errors())},
    "/v1/models": {"get": _op(
        "OpenAI_ListModels", "List the models", bodies.ModelList,
        description="The loaded engines (the default first), as OpenAI model objects.",
        errors=_errors("401", "429", "500", "503", "504"))},
    "/v1/models/{model_id}": {"get": _op(
        "OpenAI_RetrieveModel", "Retrieve a model", bodies.Model,
        parameters=[path_parameter("model_id", "The model id; it may contain `/`.")],
        errors=_errors("401", "404", "429", "500", "503", "504"))},
    "/v1/embeddings": {"post": _op(
        "OpenAI_CreateEmbedding", "Create embeddings", bodies.EmbeddingList,
        description="One embedding per input: the mean of the model's final hidden states, "
                    "L2-normalized.",
        request=bodies.CreateEmbeddingRequest, errors=_errors())},
}
