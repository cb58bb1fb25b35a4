"""OpenAPI operations for route families documented by example (Kolosal, Impetus, Foundry…).

Those APIs are specified by the example bodies in their reference documents, so their OpenAPI
schemas are derived from the same examples: `schema_of(example)` infers a JSON schema (types,
nested objects, arrays, nullable fields), and the operation carries the example itself. One
example therefore documents both the shape and a realistic value, and cannot drift from it.
"""

from __future__ import annotations

from typing import Any

JSON = "application/json"
SSE = "text/event-stream"


def schema_of(example: Any) -> dict:
    """A JSON schema describing `example`'s shape (None becomes a nullable string)."""
    if example is None:
        return {"type": "string", "nullable": True}
    if isinstance(example, bool):
        return {"type": "boolean"}
    if isinstance(example, int):
        return {"type": "integer"}
    if isinstance(example, float):
        return {"type": "number"}
    if isinstance(example, str):
        return {"type": "string"}
    if isinstance(example, list):
        return {"type": "array", "items": schema_of(example[0]) if example else {}}
    if isinstance(example, dict):
        return {"type": "object", "properties": {k: schema_of(v) for k, v in example.items()}}
    raise TypeError(f"not a JSON value: {example!r}")


def path_parameter(name: str, description: str) -> dict:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string"}}


def query_parameter(name: str, description: str, schema: dict | None = None) -> dict:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema or {"type": "string"}}


def operation(operation_id: str, tag: str, summary: str, *, description: str = "",
              request: Any = None, required: tuple[str, ...] = (), response: Any = None,
              status: str = "200", errors: dict[str, str] | None = None, error_example: Any = None,
              parameters: list[dict] | None = None, sse_example: str | None = None,
              extra_responses: dict[str, tuple[str, Any]] | None = None) -> dict:
    """One OpenAPI operation whose request and response schemas come from examples."""
    op: dict = {"operationId": operation_id, "tags": [tag], "summary": summary}
    if description:
        op["description"] = description
    if parameters:
        op["parameters"] = parameters
    if request is not None:
        schema = schema_of(request)
        if required:
            schema["required"] = list(required)
        op["requestBody"] = {"required": bool(required),
                             "content": {JSON: {"schema": schema, "example": request}}}
    responses: dict = {}
    if sse_example is not None:
        responses[status] = {"description": "A stream of server-sent events, one JSON object "
                                            "per `data:` line.",
                             "content": {SSE: {"schema": {"type": "string"}, "example": sse_example}}}
    else:
        responses[status] = {"description": summary,
                             "content": {JSON: {"schema": schema_of(response), "example": response}}}
    for code, (text, example) in (extra_responses or {}).items():
        responses[code] = {"description": text,
                           "content": {JSON: {"schema": schema_of(example), "example": example}}}
    for code, text in (errors or {}).items():
        responses[code] = {"description": text}
        if error_example is not None:
            responses[code]["content"] = {JSON: {"schema": schema_of(error_example)}}
    op["responses"] = responses
    return op
