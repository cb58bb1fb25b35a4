"""OpenAPI building blocks shared by the monitoring route families' documentation."""

from __future__ import annotations


def obj(properties: dict, required: list[str] | None = None, description: str = "") -> dict:
    schema: dict = {"type": "object", "properties": properties, "additionalProperties": True}
    if required is None:
        required = list(properties)
    if required:
        schema["required"] = required
    if description:
        schema["description"] = description
    return schema


def num(description: str = "", nullable: bool = False) -> dict:
    schema: dict = {"type": "number"}
    if description:
        schema["description"] = description
    if nullable:
        schema["nullable"] = True
    return schema


def integer(description: str = "", nullable: bool = False) -> dict:
    schema = num(description, nullable)
    schema["type"] = "integer"
    return schema


def string(description: str = "", nullable: bool = False) -> dict:
    schema = num(description, nullable)
    schema["type"] = "string"
    return schema


def boolean(description: str = "") -> dict:
    return {"type": "boolean", **({"description": description} if description else {})}


def array(items: dict, description: str = "") -> dict:
    return {"type": "array", "items": items, **({"description": description} if description else {})}


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def json_content(schema: dict) -> dict:
    return {"application/json": {"schema": schema}}


PROMETHEUS_CONTENT = {
    "text/plain": {"schema": {"type": "string", "description": "Prometheus text format 0.0.4."}},
    "application/openmetrics-text": {"schema": {"type": "string", "description": "OpenMetrics 1.0."}},
}


def operation(tag: str, operation_id: str, summary: str, description: str, ok: dict,
              errors: dict | None = None, **extra) -> dict:
    responses = {"200": ok}
    responses.update(errors or {})
    return {"tags": [tag], "operationId": operation_id, "summary": summary,
            "description": description, "responses": responses, **extra}


def answer(description: str, schema_name: str) -> dict:
    return {"description": description, "content": json_content(ref(schema_name))}
