"""Typed bodies: the 400 names the field as the client spelled it; the schema is OpenAPI 3.0's."""

from __future__ import annotations

from typing import Literal

import pytest
from openapi_schema_validator import OAS30Validator
from pydantic import Field, field_validator

from rest_bridge import bodies
from rest_bridge.errors import HttpError


class Part(bodies.Body):
    type: Literal["text"]
    text: str


class Message(bodies.Body):
    role: str
    content: str | list[Part] | None = None


class Request(bodies.Body):
    ERROR_CODES = {"model": "missing_model_name"}

    model: str
    messages: list[Message] = []
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, alias="max-token")
    stop: str | list[str] | None = None

    @field_validator("messages")
    @classmethod
    def _not_empty(cls, messages):
        if not messages:
            raise ValueError("'messages' must be a non-empty array")
        return messages


class Usage(bodies.Answer):
    prompt_tokens: int
    """Tokens in the prompt."""


class Reply(bodies.Answer):
    text: str
    usage: Usage | None = None
    stop: str | list[str] | None = None


def error_of(value) -> HttpError:
    with pytest.raises(HttpError) as caught:
        bodies.validate(Request, value)
    assert caught.value.status == 400
    return caught.value


def test_a_valid_body_parses_with_json_types_only():
    body = bodies.validate(Request, {"model": "m", "messages": [{"role": "user", "content": "hi"}],
                                     "temperature": 1, "max-token": 8, "extra": True})
    assert body.temperature == 1.0 and body.max_tokens == 8
    assert body.present("temperature") and not body.present("stop")


@pytest.mark.parametrize("value, param, words", [
    ({"messages": [{"role": "user"}]}, "model", "is required"),
    ({"model": 5, "messages": [{"role": "user"}]}, "model", "must be a string, not a number"),
    ({"model": "m", "messages": [{"role": 1}]}, "messages[0].role", "must be a string"),
    ({"model": "m", "messages": [{"role": "u"}], "temperature": True}, "temperature", "a number"),
    ({"model": "m", "messages": [{"role": "u"}], "max-token": "8"}, "max-token", "an integer"),
    ({"model": "m", "messages": [{"role": "u"}], "temperature": 3}, "temperature", "2"),
    ({"model": "m", "messages": []}, "messages", "non-empty"),
])
def test_a_wrong_field_is_a_400_naming_it(value, param, words):
    error = error_of(value)
    assert error.param == param
    assert words in error.message


def test_a_family_code_comes_with_its_field():
    assert error_of({"messages": [{"role": "u"}]}).code == "missing_model_name"
    assert error_of({"model": "m", "messages": []}).code is None


def test_schemas_are_openapi_3_0_and_accept_what_they_document():
    schemas = bodies.schemas("demo", Request, Reply)
    assert {"demo.Request", "demo.Message", "demo.Part", "demo.Reply", "demo.Usage"} <= set(schemas)
    reply = schemas["demo.Reply"]
    # A nullable reference is written inline: 3.0's `nullable` does not reach through $ref.
    assert reply["properties"]["usage"]["nullable"] is True
    assert reply["properties"]["usage"]["properties"]["prompt_tokens"]["description"] == \
        "Tokens in the prompt."
    assert "max-token" in schemas["demo.Request"]["properties"]
    resolver_doc = {"components": {"schemas": schemas}}

    def conforms(name, value):
        schema = {**schemas[name], "components": resolver_doc["components"]}
        OAS30Validator(schema).validate(value)

    conforms("demo.Reply", {"text": "x", "usage": None, "stop": None})
    conforms("demo.Reply", Reply(text="x", usage=Usage(prompt_tokens=3), stop=["a"]).body())
    conforms("demo.Request", {"model": "m", "messages": [{"role": "u", "content": None}]})
    with pytest.raises(Exception):
        conforms("demo.Request", {"model": 5})


def test_no_2020_12_keywords_are_left():
    text = repr(bodies.schemas("demo", Request, Reply))
    for keyword in ("'const'", "'$defs'", "'prefixItems'", "'examples'", "'null'"):
        assert keyword not in text


# -- integers are checked against the proto field they land in ------------------------------------


class LogsQuery(bodies.Body):
    from tokenwire.v1 import log_service_pb2 as _log_pb

    PROTO = _log_pb.ListLogsRequest
    PROTO_FIELDS = {"how_many": "count", "page": None}
    how_many: int = 10
    page: int = 0


def test_an_integer_its_proto_field_cannot_hold_is_a_400_naming_it():
    assert bodies.validate(LogsQuery, {"how_many": 2**31 - 1}).how_many == 2**31 - 1
    with pytest.raises(HttpError) as caught:
        bodies.validate(LogsQuery, {"how_many": 99999999999999})
    assert caught.value.status == 400 and caught.value.param == "how_many"
    assert "2147483647" in caught.value.message
    assert bodies.validate(LogsQuery, {"page": 2**40}).page == 2**40  # it goes to no proto field


def test_an_unknown_enum_number_is_a_400():
    from tokenwire.v1 import hardware_service_pb2 as hw_pb

    class Mode(bodies.Body):
        PROTO = hw_pb.SetPerformanceModeRequest
        mode: int

    assert bodies.validate(Mode, {"mode": 1}).mode == 1
    with pytest.raises(HttpError) as caught:
        bodies.validate(Mode, {"mode": 99})
    assert caught.value.param == "mode"


def _family_bodies() -> list[type[bodies.Body]]:
    import importlib
    import pkgutil

    import rest_bridge.families as families

    for info in pkgutil.iter_modules(families.__path__):
        if importlib.util.find_spec(f"rest_bridge.families.{info.name}.bodies"):
            importlib.import_module(f"rest_bridge.families.{info.name}.bodies")
    found, todo = [], list(bodies.Body.__subclasses__())
    while todo:
        model = todo.pop()
        todo += model.__subclasses__()
        if model.__module__.startswith("rest_bridge.families."):
            found.append(model)
    return found


def _takes_int(annotation) -> bool:
    import typing

    if annotation is int:
        return True
    return any(_takes_int(arg) for arg in typing.get_args(annotation) if arg is not bool)


def test_every_integer_field_of_every_family_body_names_its_proto_field():
    models = _family_bodies()
    assert len(models) > 10
    unmapped = []
    for model in models:
        for name, info in model.model_fields.items():
            if not _takes_int(info.annotation):
                continue
            if model.PROTO is None and model.PROTO_FIELDS.get(name, "") is not None:
                unmapped.append(f"{model.__module__}.{model.__name__}.{name}")
            else:
                bodies.proto_field(model, name)  # a wrong path raises LookupError
    assert not unmapped, f"integer fields with no PROTO to check their range against: {unmapped}"
