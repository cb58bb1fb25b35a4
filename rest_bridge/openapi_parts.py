"""Pieces of OpenAPI operations that the route families' documentation shares. Schemas are not
written here: they come from the families' bodies (`rest_bridge.bodies.schemas`)."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from rest_bridge.bodies import ref

JSON = "application/json"
SSE = "text/event-stream"

PROMETHEUS_CONTENT = {
    "text/plain": {"schema": {"type": "string", "description": "Prometheus text format 0.0.4."}},
    "application/openmetrics-text": {"schema": {"type": "string", "description": "OpenMetrics 1.0."}},
}


def path_parameter(name: str, description: str) -> dict:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string"}}


def query_parameter(name: str, description: str, schema: dict | None = None) -> dict:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema or {"type": "string"}}


def json_content(schema: dict) -> dict:
    return {JSON: {"schema": schema}}


def answer(description: str, schema: dict) -> dict:
    """A response whose JSON body is `schema` (usually a `rest_bridge.bodies.ref`)."""
    return {"description": description, "content": json_content(schema)}


@dataclass(frozen=True)
class Operations:
    """Writes one family's operations: its schema namespace, tag and error body model."""

    namespace: str
    tag: str
    error: type[BaseModel] | None = None

    def ref(self, model: type[BaseModel] | str) -> dict:
        return ref(self.namespace, model)

    def __call__(self, operation_id: str, summary: str, ok: type[BaseModel] | dict | None = None,
                 *, description: str = "", request: type[BaseModel] | None = None,
                 request_required: bool = True, request_example: dict | None = None,
                 parameters: list[dict] | None = None, errors: dict[str, str] | None = None,
                 responses: dict[str, dict] | None = None, tag: str | None = None) -> dict:
        """`ok` is the 200's body model, or its whole response object (a stream, several
        media types); `errors` (status -> text) answer the family's error body; `responses`
        are other response objects as they are (a 101, a 204, a 503 with another body)."""
        op: dict = {"operationId": operation_id, "tags": [tag or self.tag], "summary": summary}
        if description:
            op["description"] = description
        if parameters:
            op["parameters"] = parameters
        if request is not None:
            media = {"schema": self.ref(request)}
            if request_example is not None:
                media["example"] = request_example
            op["requestBody"] = {"required": request_required, "content": {JSON: media}}
        op["responses"] = {}
        if ok is not None:
            op["responses"]["200"] = ok if isinstance(ok, dict) else answer(summary, self.ref(ok))
        op["responses"].update(responses or {})
        for code, text in (errors or {}).items():
            op["responses"][code] = ({"description": text} if self.error is None
                                     else answer(text, self.ref(self.error)))
        return op
