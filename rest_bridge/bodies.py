"""Typed request and response bodies: one pydantic model per body validates, converts and documents.

A family declares its bodies as subclasses of `Body` next to its routes (`families/<f>/bodies.py`):

- `parse(Model)` reads the request's JSON object and validates it; a wrong body is an `HttpError`
  400 naming the field the way the family's clients spell it (`messages[0].role`), so the family's
  error handler shapes it like any other 400 (OpenAI's `param`, Kolosal's, Foundry's codes).
- a model converts itself to its protobuf request (`to_pb()`, written next to the type);
- `schemas(namespace, *models)` gives their JSON schemas as OpenAPI 3.0 `components.schemas`
  entries (`openai.CreateChatCompletionRequest`), so the document cannot drift from the parser.

Validation is strict about JSON types, as the hand-written readers were: "5" is not an integer and
`true` is not a number; an integer is a number. Unknown members are ignored unless a model says
otherwise (`extra="forbid"`), which is what the documented clients expect of a local server.
"""

from __future__ import annotations

import copy
import json
from typing import Annotated, Any, ClassVar, Iterable, TypeVar, Union

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainValidator,
                      ValidationError, ValidationInfo, create_model, model_validator)
from pydantic_core import PydanticCustomError

from rest_bridge.errors import HttpError
from rest_bridge.http_json import json_kind, json_object, json_object_or_empty

B = TypeVar("B", bound="Body")

REF_PREFIX = "#/components/schemas/"


def unsupported(message: str, code: str = "unsupported_parameter") -> PydanticCustomError:
    """A 400 for a parameter (or value) this server does not implement; `code` goes to the
    family's error body."""
    return PydanticCustomError("unsupported", message, {"code": code})


def same_json(a: Any, b: Any) -> bool:
    """Equal as JSON values: `0` is not `false` (nor `1` `true`), as Python's `==` has it."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    return a == b


def only(allowed: tuple, message: str | None = None) -> AfterValidator:
    """A parameter this server implements only for the `allowed` values: any other is a 400."""
    def check(value: Any, info: ValidationInfo) -> Any:
        if not any(same_json(value, a) for a in allowed):
            raise unsupported(message or f"'{info.field_name}' is not supported by this server")
        return value
    return AfterValidator(check)


def one_of(kinds: dict[str, type[Body]], what: str, *, default: str | None = None,
            code: str = "unsupported_parameter") -> PlainValidator:
    """Validates a JSON object as the model its `type` member names (`default` when it has none).
    A type this server does not implement is a 400 naming `<path>.type`; errors inside the
    chosen model keep their own paths (`input[0].call_id`)."""
    names = ", ".join(kinds)

    def refuse(kind: Any) -> Any:
        raise unsupported(f"{what} of type {json.dumps(kind)} are not supported by this server "
                          f"(only {names})", code)

    probe = create_model(f"_{what.title().replace(' ', '')}Type", __base__=Body,
                         type=(Annotated[Any, AfterValidator(refuse)], ...))

    def validate(value: Any) -> Body:
        kind = value.get("type", default) if isinstance(value, dict) else default
        model = kinds.get(kind) if isinstance(kind, str) else None
        if model is not None and (isinstance(value, dict) or default is not None):
            return model.model_validate_json(json.dumps(value))
        probe.model_validate_json(json.dumps(value))  # always fails, naming the path
        raise AssertionError("unreachable")

    return PlainValidator(validate, json_schema_input_type=Union[tuple(kinds.values())])


def json_object_text(text: str) -> str:
    try:
        if isinstance(json.loads(text), dict):
            return text
    except ValueError:
        pass
    raise ValueError("'arguments' must be a JSON object text")


#: A parameter an API defines and this server does not implement: any value but null or false
#: is a 400 (`0` too: it is not false in JSON, and no other value would be read from it).
Unsupported = Annotated[Any, only((None, False)),
                        Field(description="Not supported by this server: any value but null or "
                                          "false is a 400.")]


class Body(BaseModel):
    """A JSON body. `ERROR_CODES` maps a field (its top-level name) to the family's error code for
    a missing or wrong value of it, where the family's document defines one."""

    model_config = ConfigDict(strict=True, extra="ignore", populate_by_name=True,
                              use_attribute_docstrings=True)

    ERROR_CODES: ClassVar[dict[str, str]] = {}
    #: The protobuf message `to_pb` fills, and where an integer field lands in it when its name
    #: there differs (a dotted path, "sampling.top_k"; None: it goes to no proto field). Every
    #: integer a client sends is checked against the range of its proto field (int32, uint64,
    #: an enum's numbers), so `to_pb` cannot overflow and the 400 names the field.
    PROTO: ClassVar[type[Message] | None] = None
    PROTO_FIELDS: ClassVar[dict[str, str | None]] = {}

    def present(self, name: str) -> bool:
        """Whether the client sent `name` (a field left at its default was not sent)."""
        return name in self.model_fields_set


class NullIsAbsent(Body):
    """A body whose members sent as null take their defaults, as the documents' clients expect
    (web pages send unset settings as null)."""

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data):
        return {k: v for k, v in data.items() if v is not None} if isinstance(data, dict) else data


def _given(value: Any) -> Any:
    if value is None or value == "":
        raise PydanticCustomError("missing", "Field required")
    return value


#: A string the client must send; "" and null count as not sent (the documents' clients send them
#: for a model they have not picked).
Given = Annotated[str, BeforeValidator(_given)]


class Answer(BaseModel):
    """A JSON answer. Routes build it and send `answer.body()`; its schema documents the route,
    so what is documented is what is sent."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    def body(self) -> dict:
        return self.model_dump(mode="json")


# -- parsing --------------------------------------------------------------------------------------


def parse(model: type[B], *, optional: bool = False) -> B:
    """The request's JSON object as `model`; `optional` accepts an empty body as `{}`."""
    return validate(model, json_object_or_empty() if optional else json_object())


def validate(model: type[B], value: Any) -> B:
    """`value` (a decoded JSON value) as `model`, or the 400 naming the first wrong field."""
    try:
        # JSON mode: JSON's own types, strictly (object keys are strings, "42" may key a token id).
        body = model.model_validate_json(json.dumps(value))
    except ValidationError as exc:
        raise invalid(model, exc) from None
    check_proto_ranges(body)
    return body


_INT_RANGES = {}
for _kinds, _range in (
        (("INT32", "SINT32", "SFIXED32"), (-2**31, 2**31 - 1)), (("UINT32", "FIXED32"), (0, 2**32 - 1)),
        (("INT64", "SINT64", "SFIXED64"), (-2**63, 2**63 - 1)), (("UINT64", "FIXED64"), (0, 2**64 - 1))):
    _INT_RANGES.update({getattr(FieldDescriptor, f"TYPE_{kind}"): _range for kind in _kinds})


def proto_field(model: type[Body], name: str) -> FieldDescriptor | None:
    """The proto field `model`'s field `name` is written to, or None (see `Body.PROTO_FIELDS`)."""
    path = model.PROTO_FIELDS.get(name, name)
    if model.PROTO is None or path is None:
        return None
    message, field = model.PROTO.DESCRIPTOR, None
    for part in path.split("."):
        field = message.fields_by_name.get(part) if message is not None else None
        if field is None:
            raise LookupError(f"{model.__name__}.{name}: {model.PROTO.__name__} has no field {path}")
        message = field.message_type
    return field


def check_proto_ranges(body: Body, prefix: str = "") -> None:
    """A 400 naming the first integer the client sent that its proto field cannot hold."""
    model = type(body)
    for name in body.model_fields_set:
        value, info = getattr(body, name), model.model_fields[name]
        path = prefix + (info.alias or name)
        items = list(enumerate(value)) if isinstance(value, list) else [(None, value)]
        for index, item in items:
            where = path if index is None else f"{path}[{index}]"
            if isinstance(item, Body):
                check_proto_ranges(item, where + ".")
            elif isinstance(item, int) and not isinstance(item, bool):
                field = proto_field(model, name)
                if field is not None and not _holds(field, item):
                    raise HttpError(400, f"'{where}' is out of range: {_accepted(field)}",
                                    param=where, code=model.ERROR_CODES.get(name))


def _holds(field: FieldDescriptor, value: int) -> bool:
    if field.enum_type is not None:
        return value in field.enum_type.values_by_number
    low, high = _INT_RANGES.get(field.type, (None, None))
    return low is None or low <= value <= high


def _accepted(field: FieldDescriptor) -> str:
    if field.enum_type is not None:
        return "one of " + ", ".join(str(n) for n in field.enum_type.values_by_number)
    low, high = _INT_RANGES[field.type]
    return f"it must be between {low} and {high}"


def field_path(loc: Iterable[Any]) -> str:
    """("messages", 0, "role") -> "messages[0].role"."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not path:
            path = str(part)
        elif str(part).startswith(("function-", "union[", "str", "list[", "dict[")):
            continue  # pydantic's names for the branch of a union that failed
        else:
            path += f".{part}"
    return path


_KINDS = {
    "string_type": "a string", "int_type": "an integer", "int_from_float": "an integer",
    "float_type": "a number", "bool_type": "true or false", "list_type": "an array",
    "dict_type": "an object", "model_type": "an object", "model_attributes_type": "an object",
    "is_instance_of": "an object",
}


def _message(path: str, error: dict) -> str:
    kind = error["type"]
    if kind == "missing":
        return f"'{path}' is required"
    if kind in _KINDS:
        return f"'{path}' must be {_KINDS[kind]}, not {json_kind(error.get('input'))}"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than",
                "string_too_short", "too_short", "too_long"):
        return f"'{path}' must be " + error["msg"].removeprefix("Input should be ").lower()
    if kind == "literal_error":
        return f"'{path}' must be {error['ctx']['expected']}"
    if kind == "extra_forbidden":
        return f"'{path}' is not a known field"
    if kind == "value_error":
        return str(error["ctx"]["error"])  # the validator's own sentence
    if "code" in error.get("ctx", {}):
        return error["msg"]  # a PydanticCustomError carrying the family's code: its sentence
    return f"'{path}': {error['msg']}"


def invalid(model: type[Body], exc: ValidationError) -> HttpError:
    # The first error: with unions pydantic reports one per branch, all about the same field.
    error = exc.errors(include_url=False)[0]
    path = field_path(error["loc"])
    code = error.get("ctx", {}).get("code") or model.ERROR_CODES.get(
        path.split("[", 1)[0].split(".", 1)[0])
    if not path and error["type"] in ("model_type", "dict_type"):
        return HttpError(400, f"the request body must be a JSON object, not "
                              f"{json_kind(error['input'])}")
    return HttpError(400, _message(path, error) if path else
                     f"the request body is not valid: {error['msg']}", param=path or None,
                     code=code)


# -- OpenAPI 3.0 schemas --------------------------------------------------------------------------


def schemas(namespace: str, *models: type[BaseModel]) -> dict[str, dict]:
    """`components.schemas` entries for `models` and every model they use, named
    `<namespace>.<Model>`, in OpenAPI 3.0's dialect of JSON Schema."""
    result: dict[str, dict] = {}
    template = f"{REF_PREFIX}{namespace}.{{model}}"
    for model in models:
        schema = model.model_json_schema(ref_template=template, mode="serialization"
                                         if _is_response(model) else "validation")
        defs = schema.pop("$defs", {})
        resolve = {f"{REF_PREFIX}{namespace}.{name}": d for name, d in defs.items()}
        for name, definition in defs.items():
            result[f"{namespace}.{name}"] = to_openapi30(definition, resolve)
        result[f"{namespace}.{model.__name__}"] = to_openapi30(schema, resolve)
    return result


def ref(namespace: str, model: type[BaseModel] | str) -> dict:
    name = model if isinstance(model, str) else model.__name__
    return {"$ref": f"{REF_PREFIX}{namespace}.{name}"}


def _is_response(model: type[BaseModel]) -> bool:
    return issubclass(model, Answer)


def to_openapi30(schema: Any, defs: dict[str, dict] | None = None) -> Any:
    """JSON Schema 2020-12 as pydantic writes it -> OpenAPI 3.0.3's Schema Object. `defs` (by
    $ref) lets a nullable reference be written inline: 3.0's `nullable` does not reach into a
    $ref or an allOf, so `Usage | None` must be the Usage schema itself with `nullable: true`."""
    defs = defs or {}
    if isinstance(schema, list):
        return [to_openapi30(s, defs) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: to_openapi30(v, defs) for k, v in copy.copy(schema).items()
           if k not in ("title", "examples", "$defs")}
    if "examples" in schema and schema["examples"]:
        out["example"] = schema["examples"][0]
    if "const" in out:
        out["enum"] = [out.pop("const")]
    for key in ("anyOf", "oneOf"):
        branches = out.get(key)
        if branches is None:
            continue
        rest = [b for b in branches if b != {"type": "null"}]
        if len(rest) < len(branches):
            out["nullable"] = True
        if len(rest) == 1:
            del out[key]
            only = rest[0]
            if "$ref" in only and out.get("nullable") and only["$ref"] in defs:
                out = {**to_openapi30(defs[only["$ref"]], defs), **out}
            elif "$ref" in only:  # siblings of $ref are ignored in 3.0: wrap it
                out["allOf"] = [only]
            else:
                out = {**only, **{k: v for k, v in out.items() if k != "type" or "type" not in only}}
        else:
            # A validator applies `nullable` with `type` only: each branch must allow null.
            out[key] = [{**b, "nullable": True} if out.get("nullable") and "$ref" not in b else b
                        for b in rest]
    if "$ref" in out and len(out) > 1:
        target = out.pop("$ref")
        out["allOf"] = [{"$ref": target}]
    for bound, flag in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(out.get(bound), (int, float)) and not isinstance(out.get(bound), bool):
            out[flag] = out.pop(bound)
            out[bound] = True
    if isinstance(out.get("type"), list):  # ["string", "null"]
        kinds = [t for t in out["type"] if t != "null"]
        if len(kinds) < len(out["type"]):
            out["nullable"] = True
        out["type"] = kinds[0] if len(kinds) == 1 else kinds
    if out.get("nullable") and None not in out.get("enum", [None]):
        out["enum"] = [*out["enum"], None]  # 3.0 validators check enum before nullable
    if "prefixItems" in out:
        raise ValueError("OpenAPI 3.0 has no tuple schemas (prefixItems); use a list")
    return out
