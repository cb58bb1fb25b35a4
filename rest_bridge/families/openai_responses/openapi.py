"""OpenAPI documentation of the OpenAI Responses family (`families.openai_responses.routes`).

The schemas are the bodies' (`families.openai_responses.bodies`), namespaced
`openai_responses.*`; this module writes the operations.
"""

from __future__ import annotations

from rest_bridge.bodies import schemas
from rest_bridge.families.openai_responses import bodies
from rest_bridge.openapi_parts import JSON, SSE, Operations, path_parameter

TAG = "OpenAI Responses"
TAGS = [{
    "name": TAG,
    "description": "OpenAI's Responses API: point the official SDKs at this server's `/v1` and "
                   "call `client.responses`. Function tools, `text.format` (JSON object, JSON "
                   "schema) and `previous_response_id` are supported; built-in tools (web "
                   "search, file search, ...) are not (400). Stored responses (`store`, true by "
                   "default) are sessions of the server's session store: the response "
                   "`resp_<x>` is the session `response-<x>`, listed, read, continued and "
                   "deleted by the session APIs too. Errors answer "
                   "`{\"error\": {\"message\", \"type\", \"param\", \"code\"}}`.",
}]

ERRORS = {
    "400": "The request is malformed, a parameter is out of range or not supported "
           "(`code: unsupported_parameter`, `unsupported_content`), or the input does not fit "
           "the context window.",
    "401": "An API key is required and was missing or wrong.",
    "403": "The key may not call this route.",
    "404": "No model (engine) has the requested id, or `previous_response_id` names no stored "
           "response (`code: previous_response_not_found`, `param: previous_response_id`).",
    "413": "The request body is larger than the server's limit.",
    "429": "A rate limit or quota was hit.",
    "500": "The server failed.",
    "503": "The model is still loading, failed to load, or is saturated; or the server is "
           "draining. Retry later or elsewhere.",
    "504": "The request's deadline passed before the answer was ready.",
    "507": "The session store is full: the response could not be stored.",
}
STREAM_NOTE = (
    "With `stream: true` the answer is `text/event-stream`: each event is `event: <type>` and "
    "`data: <event JSON>` with `type` and an increasing `sequence_number`: `response.created`, "
    "`response.in_progress`; for text `response.output_item.added`, "
    "`response.content_part.added`, `response.output_text.delta` (one per piece of text), "
    "`response.output_text.done`, `response.content_part.done`, `response.output_item.done`; "
    "for each function call `response.output_item.added`, "
    "`response.function_call_arguments.delta` and `.done`, `response.output_item.done`; last "
    "`response.completed` (or `response.incomplete` when `max_output_tokens` cut it short) with "
    "the whole response. An error after the stream started is an `error` event followed by "
    "`response.failed`. The response is stored before its last event is sent.")

SCHEMAS = schemas(bodies.NAMESPACE, *bodies.DOCUMENTED)
_op = Operations(bodies.NAMESPACE, TAG, bodies.ErrorResponse)


def _errors(*codes: str) -> dict:
    return {code: ERRORS[code] for code in codes}


RESPONSE_ID = path_parameter("response_id", "A response id (`resp_...`).")
STORED_NOTE = (
    "A stored response is rebuilt from its session: `id`, `created_at`, `model`, "
    "`instructions`, `temperature`, `top_p`, `max_output_tokens`, `output` (the messages after "
    "the response's input) and `previous_response_id`. The session store keeps no token counts "
    "nor finish reason, so `usage` is null and `status` is `completed`; nor the request's "
    "`tools`, `tool_choice`, `text` and `metadata`, which read as their defaults.")

PATHS: dict[str, dict] = {
    "/v1/responses": {"post": _op(
        "OpenAI_CreateResponse", "Create a model response",
        {"description": "`stream` false or absent: the response object. " + STREAM_NOTE,
         "content": {JSON: {"schema": _op.ref(bodies.Response)},
                     SSE: {"schema": _op.ref(bodies.ResponseStreamEvent)}}},
        description=(
            "OpenAI's Responses API. `input` is a string or input items: messages (roles user, "
            "assistant, system, developer; text content only), `function_call` and "
            "`function_call_output` items. `instructions` are a system message put first and "
            "are not carried over by `previous_response_id`, which puts the stored history of "
            "that response before this input. Function tools only (flat shape); the server "
            "makes tool calls itself, with the arguments enforced by the function's schema; "
            "`text.format` `json_object` and `json_schema` are enforced token by token (and "
            "cannot be combined with tools unless `tool_choice` is `none`). A length cut "
            "gives `status: incomplete` with `incomplete_details.reason: max_output_tokens`. "
            "With `store` (the default) the response is kept as the session `response-<x>` "
            "(for `resp_<x>`): its instructions become the session's system prompt, its "
            "temperature, top_p and max_output_tokens its defaults, and its history the "
            "previous history, this input and this output. Logprobs, reasoning, background "
            "mode, conversations and prompt templates are not supported (400). " + STREAM_NOTE),
        request=bodies.CreateResponseRequest,
        errors=_errors("400", "401", "403", "404", "413", "429", "500", "503", "504", "507"))},
    "/v1/responses/{response_id}": {
        "get": _op(
            "OpenAI_RetrieveResponse", "Retrieve a stored response", bodies.Response,
            description=STORED_NOTE, parameters=[RESPONSE_ID],
            errors=_errors("401", "403", "404", "429", "500", "503", "504")),
        "delete": _op(
            "OpenAI_DeleteResponse", "Delete a stored response", bodies.DeletedResponse,
            description="Deletes the response's session (and so its whole stored history). "
                        "Responses that continued it keep their own copies.",
            parameters=[RESPONSE_ID],
            errors={**_errors("401", "403", "404", "429", "500", "503", "504"),
                    "409": "A turn is running in the response's session (through the session "
                           "API)."}),
    },
}
