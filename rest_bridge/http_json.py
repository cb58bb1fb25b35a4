"""Reading JSON request bodies, with a 400 that says what is wrong (413 past the size limit).
Their members are read by the families' typed bodies (`rest_bridge.bodies`)."""

from __future__ import annotations

import json
from typing import Any

from flask import request

from rest_bridge.errors import HttpError

#: read_json()'s answer for an empty body (JSON `null` is a value, so None cannot say it).
NO_BODY = object()


def json_kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            int: "a number", float: "a number"}.get(type(value), "null")


def read_json() -> Any:
    """The body as a JSON value, or NO_BODY when it is empty."""
    raw = request.get_data(cache=True)  # raises 413 past MAX_CONTENT_LENGTH
    if not raw.strip():
        return NO_BODY
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise HttpError(400, f"the request body is not valid JSON: {exc}") from None


def json_object() -> dict:
    """The body as a JSON object: the shape every hand-written route family takes."""
    body = read_json()
    if body is NO_BODY:
        raise HttpError(400, "the request body is empty; send a JSON object")
    if not isinstance(body, dict):
        raise HttpError(400, f"the request body must be a JSON object, not {json_kind(body)}")
    return body


def json_object_or_empty() -> dict:
    """The body as a JSON object, or {} when there is none (routes whose fields are all optional)."""
    body = read_json()
    if body is NO_BODY:
        return {}
    if not isinstance(body, dict):
        raise HttpError(400, f"the request body must be a JSON object, not {json_kind(body)}")
    return body
