"""The OpenAPI 3.0 document of every REST route the bridge serves (`build_document(app)`).

OpenAPI 3.0.3 rather than 3.1: the vendored Swagger UI (swagger-ui-bundle's 4.x) renders 3.0 only.

The document has three sources, merged in this order:

1. **The transcoder** (`rest_bridge.transcoder.http_bindings()`): one operation per
   `google.api.http` binding, generated from the proto descriptors. Schemas follow the proto3 JSON
   mapping and are named by the message's full name (`#/components/schemas/tokenwire.v1.Usage`);
   summaries and descriptions come from the comments in `proto/**/*.proto` when the sources are
   there (a checkout), and fall back to the method name when they are not (an installed wheel).
2. **Hand-written route families** (`rest_bridge.families`), those the app registered. Each
   family names the modules that document it (`Family.docs`); such a module has these attributes:

   - `PATHS`: OpenAPI path items keyed by OpenAPI path (`/v1/models/{model_id}`); the parameter
     names must be the Flask rule's variable names, so the path equals the rule converted.
   - `SCHEMAS` (optional): `components.schemas` entries, namespaced by family (`openai.Model`)
     so that two families never collide.
   - `TAGS` (optional): OpenAPI tag objects for the tags the operations use.
3. **The app's URL map.** Every rule the app serves (except `static` and the Swagger UI assets)
   that the first two sources do not document gets a minimal operation built from the rule and
   the view's docstring, marked `x-tokenwire-undocumented: true`, so a route is never silently
   missing from the document. Tests assert that no served route needs this fallback.

Two sources documenting the same operation, or the same schema name differently, is a
programming error and raises `ValueError`.
"""

from __future__ import annotations

import copy
import inspect
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

from flask import Flask
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from rest_bridge import families
from tokenwire import methods

OPENAPI_VERSION = "3.0.3"
EXTENSION = "tokenwire.openapi"  # app.extensions key of the cached document
UNDOCUMENTED = "x-tokenwire-undocumented"

#: Endpoints that are not API routes and stay out of the document.
EXCLUDED_ENDPOINTS = frozenset({"static", "docs.asset", "web_ui.asset"})

#: Where the proto sources are looked for, to read comments (a checkout has them; a wheel not).
PROTO_ROOTS: tuple[Path, ...] = (Path(__file__).resolve().parent.parent / "proto",)

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# Error responses every transcoded operation documents, with what each means for these RPCs.
RPC_ERRORS: dict[str, str] = {
    "400": "INVALID_ARGUMENT, FAILED_PRECONDITION or OUT_OF_RANGE: the request is malformed or a "
           "field is out of range; details carry a google.rpc.BadRequest naming the fields.",
    "401": "UNAUTHENTICATED: API keys are required and the call carries no valid one.",
    "403": "PERMISSION_DENIED: the key may not call this method (admin keys are configured and "
           "it is a user key), or a download source is refused (a private address).",
    "404": "NOT_FOUND: e.g. no engine is loaded under the requested model id.",
    "409": "ALREADY_EXISTS or ABORTED: e.g. an engine or download with that id exists, or the "
           "session is answering another turn.",
    "413": "The request body is larger than the bridge's limit.",
    "429": "RESOURCE_EXHAUSTED: a quota or rate limit was hit.",
    "500": "INTERNAL or UNKNOWN: the server failed.",
    "503": "UNAVAILABLE: the engine is loading or saturated, or the server is draining.",
    "504": "DEADLINE_EXCEEDED: the call's deadline passed.",
    "507": "RESOURCE_EXHAUSTED for lack of memory or disk: loading would exceed the memory "
           "budget, or a download would fill the disk.",
}

STATUS_SCHEMA_NAME = "google.rpc.Status"
STATUS_SCHEMA: dict = {
    "type": "object",
    "description": "A gRPC status as JSON, the error body of the transcoded routes "
                   "(grpc-gateway's shape).",
    "properties": {
        "code": {"type": "integer", "format": "int32",
                 "description": "The google.rpc.Code value, e.g. 3 for INVALID_ARGUMENT."},
        "message": {"type": "string", "description": "A developer-facing error message."},
        "details": {
            "type": "array",
            "description": "Rich error details, each with an `@type` naming its message, e.g. "
                           "type.googleapis.com/google.rpc.BadRequest or google.rpc.ErrorInfo.",
            "items": {"type": "object", "properties": {"@type": {"type": "string"}},
                      "additionalProperties": True},
        },
    },
    "required": ["code", "message"],
}


# -- proto comments -------------------------------------------------------------------------------

_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'')
_PACKAGE = re.compile(r"^\s*package\s+([\w.]+)\s*;")
_SCOPE = re.compile(r"^\s*(message|enum|service|oneof)\s+(\w+)\s*\{")
_RPC = re.compile(r"^\s*rpc\s+(\w+)\s*\(")
_FIELD = re.compile(r"^\s*(?:(?:optional|repeated|required)\s+)?(?:map\s*<[^>]*>|\.?[\w.]+)"
                    r"\s+(\w+)\s*=\s*\d+")
_ENUM_VALUE = re.compile(r"^\s*(\w+)\s*=\s*-?(?:0[xX][0-9a-fA-F]+|\d+)")


def parse_proto_comments(source: str) -> dict[str, str]:
    """Leading (else trailing) `//` comments of a .proto file's declarations, by full name.

    Keys: messages, enums, services, fields and RPCs by their full names
    (`tokenwire.v1.Usage.total_tokens`, `tokenwire.v1.GenerationService.Generate`); enum values as
    `<enum full name>.<VALUE>`. A blank line detaches a comment, as protoc does. Declarations that
    span lines and `/* */` comments are not understood; they just get no description.
    """
    comments: dict[str, str] = {}
    package = ""
    stack: list[tuple[str | None, str | None]] = []  # (kind, name) per open brace
    pending: list[str] = []
    for raw in source.splitlines():
        code, comment = _split_comment(raw)
        code = _STRING.sub('""', code)  # braces inside string literals are not scopes
        if not code.strip():
            if comment is None:
                pending = []  # blank line: what came before is detached
            else:
                pending.append(comment[1:] if comment.startswith(" ") else comment)
            continue
        text = "\n".join(pending) or (comment.strip() if comment else "")
        pending = []
        names = [name for kind, name in stack if kind in ("message", "enum", "service")]
        inner = next((kind for kind, _ in reversed(stack) if kind != "oneof"), None)
        prefix = ".".join(filter(None, [package, *names]))
        decl: tuple[str, str] | None = None
        if m := _PACKAGE.match(code):
            package = m.group(1)
        elif m := _SCOPE.match(code):
            decl = (m.group(1), m.group(2))
            if text:
                comments[f"{prefix}.{m.group(2)}".lstrip(".")] = text
        elif m := _RPC.match(code):
            decl = ("rpc", m.group(1))
            if text and inner == "service":
                comments[f"{prefix}.{m.group(1)}"] = text
        elif inner == "message" and (m := _FIELD.match(code)):
            if text:
                comments[f"{prefix}.{m.group(1)}"] = text
        elif inner == "enum" and (m := _ENUM_VALUE.match(code)):
            if text:
                comments[f"{prefix}.{m.group(1)}"] = text
        for char in code:
            if char == "{":
                stack.append(decl or (None, None))
                decl = None
            elif char == "}" and stack:
                stack.pop()
    return comments


def _split_comment(line: str) -> tuple[str, str | None]:
    """(code, text after `//`) of one line; a `//` inside a string literal is not a comment."""
    quote = None
    i = 0
    while i < len(line):
        char = line[i]
        if quote:
            if char == "\\":
                i += 1
            elif char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif line.startswith("//", i):
            return line[:i], line[i + 2:]
        i += 1
    return line, None


@lru_cache(maxsize=None)
def _file_comments(proto_file: str) -> dict[str, str]:
    for root in PROTO_ROOTS:
        path = root / proto_file
        if path.is_file():
            return parse_proto_comments(path.read_text(encoding="utf-8"))
    return {}


def comment_of(descriptor: Any, key: str | None = None) -> str:
    """The proto comment of a descriptor (message, enum, field, service, method), or ""."""
    file = getattr(descriptor, "file", None)
    if file is None:  # method and service descriptors reach their file through the service
        service = getattr(descriptor, "containing_service", descriptor)
        file = getattr(service, "file", None)
    if file is None:
        return ""
    return _file_comments(file.name).get(key or descriptor.full_name, "")


def markdown(comment: str) -> str:
    """A proto comment as CommonMark: runs of indented lines (status code tables) are fenced."""
    out: list[str] = []
    block: list[str] = []
    for line in comment.splitlines():
        if line.startswith("  ") and line.strip():
            block.append(line)
            continue
        if block:
            out += ["```", *_dedent(block), "```"]
            block = []
        out.append(line)
    if block:
        out += ["```", *_dedent(block), "```"]
    return "\n".join(out).strip()


def _dedent(lines: list[str]) -> list[str]:
    indent = min(len(line) - len(line.lstrip()) for line in lines)
    return [line[indent:] for line in lines]


def summary_of(comment: str, fallback: str) -> str:
    """The first clause of a comment: up to the first '.', ':' or ';' that ends a clause."""
    first = " ".join(comment.split("\n\n")[0].split())
    if not first:
        return fallback
    clause = re.split(r"(?<=[.:;])\s", first, maxsplit=1)[0].rstrip(".:;")
    return clause if len(clause) <= 120 else clause[:117].rstrip() + "..."


# -- proto3 JSON schemas --------------------------------------------------------------------------

_SCALARS: dict[int, dict] = {
    FieldDescriptor.TYPE_DOUBLE: {"type": "number", "format": "double"},
    FieldDescriptor.TYPE_FLOAT: {"type": "number", "format": "float"},
    FieldDescriptor.TYPE_INT64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_SINT64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_SFIXED64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_UINT64: {"type": "string", "format": "uint64"},
    FieldDescriptor.TYPE_FIXED64: {"type": "string", "format": "uint64"},
    FieldDescriptor.TYPE_INT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SINT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_UINT32: {"type": "integer", "format": "int64", "minimum": 0,
                                  "maximum": 4294967295},
    FieldDescriptor.TYPE_FIXED32: {"type": "integer", "format": "int64", "minimum": 0,
                                   "maximum": 4294967295},
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "format": "byte"},
}

_WRAPPERS = {
    "google.protobuf.DoubleValue": FieldDescriptor.TYPE_DOUBLE,
    "google.protobuf.FloatValue": FieldDescriptor.TYPE_FLOAT,
    "google.protobuf.Int64Value": FieldDescriptor.TYPE_INT64,
    "google.protobuf.UInt64Value": FieldDescriptor.TYPE_UINT64,
    "google.protobuf.Int32Value": FieldDescriptor.TYPE_INT32,
    "google.protobuf.UInt32Value": FieldDescriptor.TYPE_UINT32,
    "google.protobuf.BoolValue": FieldDescriptor.TYPE_BOOL,
    "google.protobuf.StringValue": FieldDescriptor.TYPE_STRING,
    "google.protobuf.BytesValue": FieldDescriptor.TYPE_BYTES,
}

#: Well-known types, which have their own JSON forms; inlined instead of referenced.
WELL_KNOWN: dict[str, dict] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time",
                                  "description": "RFC 3339 time, e.g. 2024-01-01T00:00:00Z."},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?\d+(\.\d{1,9})?s$",
                                 "description": "Seconds with an `s` suffix, e.g. 1.5s."},
    "google.protobuf.FieldMask": {"type": "string",
                                  "description": "Comma-separated lowerCamelCase field paths."},
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {"description": "Any JSON value.", "nullable": True},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.Any": {"type": "object", "properties": {"@type": {"type": "string"}},
                            "additionalProperties": True},
    **{name: {**_SCALARS[t], "nullable": True} for name, t in _WRAPPERS.items()},
}


#: Well-known types whose JSON form is one string or number, so one query parameter sets them.
SCALAR_LIKE_WELL_KNOWN = frozenset({"google.protobuf.Timestamp", "google.protobuf.Duration",
                                    "google.protobuf.FieldMask", *_WRAPPERS})


def schema_ref(full_name: str) -> dict:
    return {"$ref": f"#/components/schemas/{full_name}"}


def _is_map(field: FieldDescriptor) -> bool:
    return (field.type == FieldDescriptor.TYPE_MESSAGE and field.is_repeated
            and field.message_type.GetOptions().map_entry)


def _is_synthetic_oneof(oneof) -> bool:
    """proto3 `optional` fields sit in a one-field oneof named `_<field>`."""
    return len(oneof.fields) == 1 and oneof.name == "_" + oneof.fields[0].name


class SchemaRegistry:
    """Builds `components.schemas` entries for messages and enums, on demand and once each."""

    def __init__(self) -> None:
        self.schemas: dict[str, dict] = {}

    def message(self, descriptor: Descriptor) -> dict:
        """A schema for a message: the well-known type's inline schema, or a $ref."""
        name = descriptor.full_name
        if name in WELL_KNOWN:
            return copy.deepcopy(WELL_KNOWN[name])
        if name not in self.schemas:
            self.schemas[name] = {}  # placeholder first: recursive messages refer to themselves
            self.schemas[name] = self._message_schema(descriptor)
        return schema_ref(name)

    def enum(self, descriptor: EnumDescriptor) -> dict:
        name = descriptor.full_name
        if name == "google.protobuf.NullValue":
            return {"nullable": True, "enum": [None]}
        if name not in self.schemas:
            values = [v.name for v in descriptor.values]
            schema: dict = {"type": "string", "enum": values}
            items = []
            for v in descriptor.values:
                doc = " ".join(comment_of(descriptor, f"{name}.{v.name}").split())
                items.append(f"- `{v.name}`" + (f": {doc}" if doc else ""))
            schema["description"] = "\n\n".join(
                filter(None, [markdown(comment_of(descriptor)), "\n".join(items)]))
            self.schemas[name] = schema
        return schema_ref(name)

    def field(self, field: FieldDescriptor, *, with_description: bool = True) -> dict:
        """A field's schema (repeated and map fields included), with its comment as description."""
        if _is_map(field):
            value = field.message_type.fields_by_name["value"]
            schema = {"type": "object", "additionalProperties": self._single(value)}
        elif field.is_repeated:
            schema = {"type": "array", "items": self._single(field)}
        else:
            schema = self._single(field)
        if not with_description:
            return schema
        description = markdown(comment_of(field))
        oneof = field.containing_oneof
        if oneof is not None and not _is_synthetic_oneof(oneof):
            others = ", ".join(f"`{f.json_name}`" for f in oneof.fields)
            description = (description + "\n\n" if description else "") + \
                f"Part of oneof `{oneof.name}`: set at most one of {others}."
        if not description:
            return schema
        if "$ref" in schema:  # OpenAPI 3.0 ignores siblings of $ref
            return {"allOf": [schema], "description": description}
        return {**schema, "description": description}

    def _single(self, field: FieldDescriptor) -> dict:
        if field.type == FieldDescriptor.TYPE_MESSAGE or field.type == FieldDescriptor.TYPE_GROUP:
            return self.message(field.message_type)
        if field.type == FieldDescriptor.TYPE_ENUM:
            return self.enum(field.enum_type)
        return dict(_SCALARS[field.type])

    def _message_schema(self, descriptor: Descriptor) -> dict:
        schema: dict = {"type": "object", "properties": {
            field.json_name: self.field(field) for field in descriptor.fields}}
        description = markdown(comment_of(descriptor))
        if description:
            schema["description"] = description
        return schema


# -- transcoded operations ------------------------------------------------------------------------

_TEMPLATE_VAR = re.compile(r"\{([^}=]+)(?:=[^}]*)?\}")
_RULE_VAR = re.compile(r"<(?:([A-Za-z_]\w*)(?:\([^)>]*\))?:)?([A-Za-z_]\w*)>")


def template_to_path(template: str) -> str:
    """`/v1/{name=models/*}:verb` -> `/v1/{name}:verb`."""
    return _TEMPLATE_VAR.sub(lambda m: "{" + m.group(1).strip() + "}", template)


def rule_to_path(rule: str) -> str:
    """A Flask rule as an OpenAPI path: `/v1/models/<path:model_id>` -> `/v1/models/{model_id}`."""
    return _RULE_VAR.sub(lambda m: "{" + m.group(2) + "}", rule)


def _field_at(message: Descriptor, dotted: str) -> FieldDescriptor:
    field = None
    for part in dotted.split("."):
        field = message.fields_by_name[part]
        message = field.message_type
    assert field is not None
    return field


def _query_parameters(registry: SchemaRegistry, message: Descriptor, exclude: set[str],
                      prefix: str = "", seen: frozenset[str] = frozenset()) -> list[dict]:
    """The fields a GET/no-body binding takes from the query string, nested ones dotted."""
    params = []
    seen = seen | {message.full_name}
    for field in message.fields:
        name = prefix + field.name
        if name in exclude or _is_map(field):
            continue
        if field.type == FieldDescriptor.TYPE_MESSAGE and \
                field.message_type.full_name not in SCALAR_LIKE_WELL_KNOWN:
            if not field.is_repeated and field.message_type.full_name not in seen:
                params += _query_parameters(registry, field.message_type, exclude, name + ".", seen)
            continue
        schema = registry.field(field, with_description=False)
        param: dict = {"name": name, "in": "query", "required": False, "schema": schema}
        if field.is_repeated:
            param.update(style="form", explode=True)
        description = " ".join(comment_of(field).split())
        if description:
            param["description"] = description
        params.append(param)
    return params


def _request_body(registry: SchemaRegistry, binding: Any) -> dict | None:
    if not binding.body:
        return None
    if binding.body == "*":
        top_level_path = {f for f in binding.path_fields if "." not in f}
        schema = registry.message(binding.input_type)
        if top_level_path:
            fields = [f for f in binding.input_type.fields if f.name not in top_level_path]
            schema = {"type": "object",
                      "properties": {f.json_name: registry.field(f) for f in fields}}
            registry.message(binding.input_type)  # keep the full message among the components
            description = markdown(comment_of(binding.input_type))
            if description:
                schema["description"] = description
    else:
        schema = registry.field(_field_at(binding.input_type, binding.body))
    # Not required: the transcoder reads an absent body as the empty message.
    return {"content": {"application/json": {"schema": schema}}}


def _error_responses(codes: dict[str, str], schema_name: str) -> dict:
    return {code: {"description": text,
                   "content": {"application/json": {"schema": schema_ref(schema_name)}}}
            for code, text in codes.items()}


def transcoder_operations(bindings: Iterable[Any], registry: SchemaRegistry) -> tuple[list, list]:
    """(path, method, operation) triples for the transcoder's bindings, and their tags."""
    ops: list[tuple[str, str, dict]] = []
    tags: dict[str, dict] = {}
    per_method: dict[str, int] = {}
    for binding in bindings:
        service = binding.service.rsplit(".", 1)[-1]
        key = f"{service}_{binding.method_name}"
        per_method[key] = per_method.get(key, 0) + 1
        # The transcoder's endpoint names: the second binding of Tokenize is Tokenize_1.
        operation_id = key if per_method[key] == 1 else f"{key}_{per_method[key] - 1}"
        service_descriptor = _service_descriptor(binding)
        method_comment = service_comment = ""
        if service_descriptor is not None:
            method = service_descriptor.methods_by_name.get(binding.method_name)
            method_comment = comment_of(method) if method is not None else ""
            service_comment = comment_of(service_descriptor)
        if service not in tags:
            tags[service] = {"name": service}
            if service_comment:
                tags[service]["description"] = markdown(service_comment)
        path = template_to_path(binding.template)
        parameters = []
        for field_path in binding.path_fields:
            field = _field_at(binding.input_type, field_path)
            param = {"name": field_path, "in": "path", "required": True,
                     "schema": registry.field(field, with_description=False)}
            description = " ".join(comment_of(field).split())
            if description:
                param["description"] = description
            parameters.append(param)
        if binding.body != "*":
            exclude = set(binding.path_fields) | ({binding.body} if binding.body else set())
            parameters += _query_parameters(registry, binding.input_type, exclude)
        output = registry.message(binding.output_type)
        if binding.server_streaming:
            ok = {"description": "A stream of messages: SSE `data:` events when the `Accept` "
                                 "header asks for text/event-stream, newline-delimited JSON "
                                 "otherwise. An error after the stream started ends it with a "
                                 "google.rpc.Status: an `event: error` SSE event, or an NDJSON "
                                 "line `{\"error\": <status>}`.",
                  "content": {
                      "text/event-stream": {"schema": output},
                      "application/x-ndjson": {"schema": output},
                  }}
        else:
            ok = {"description": "OK", "content": {"application/json": {"schema": output}}}
        operation: dict = {
            "tags": [service],
            "operationId": operation_id,
            "summary": summary_of(method_comment, f"{service}.{binding.method_name}"),
        }
        if method_comment:
            operation["description"] = markdown(method_comment)
        if binding.server_streaming:
            operation["description"] = (operation.get("description", "") + "\n\n" +
                                        "Server-streaming RPC: `Accept: text/event-stream` "
                                        "gets server-sent events; any other `Accept` gets "
                                        "`application/x-ndjson`, one JSON object per line.").strip()
        if parameters:
            operation["parameters"] = parameters
        body = _request_body(registry, binding)
        if body is not None:
            operation["requestBody"] = body
        operation["responses"] = {"200": ok, **_error_responses(RPC_ERRORS, STATUS_SCHEMA_NAME)}
        ops.append((path, binding.method.lower(), operation))
    return ops, list(tags.values())


def _service_descriptor(binding: Any):
    """The binding's ServiceDescriptor (`service` may be the full or the short name)."""
    name = binding.service
    if "." not in name:
        name = f"{binding.input_type.file.package}.{name}"
    return methods.service(name)


# -- the document ---------------------------------------------------------------------------------


@dataclass
class _Document:
    paths: dict[str, dict]
    schemas: dict[str, dict]
    tags: list[dict]

    def add_operation(self, path: str, method: str, operation: dict, source: str) -> None:
        item = self.paths.setdefault(path, {})
        if method in item:
            raise ValueError(f"{method.upper()} {path} is documented twice (again by {source})")
        if operation["operationId"] in self.operation_ids():
            raise ValueError(f"operationId {operation['operationId']!r} is used twice "
                             f"(again by {source} for {method.upper()} {path})")
        item[method] = operation

    def operation_ids(self) -> set[str]:
        return {op["operationId"] for item in self.paths.values()
                for key, op in item.items() if key in HTTP_METHODS}

    def free_operation_id(self, wanted: str) -> str:
        used = self.operation_ids()
        candidate, n = wanted, 1
        while candidate in used:
            n += 1
            candidate = f"{wanted}_{n}"
        return candidate

    def add_path_item(self, path: str, item: dict, source: str) -> None:
        for key, value in item.items():
            if key in HTTP_METHODS:
                self.add_operation(path, key, copy.deepcopy(value), source)
            else:  # path-level parameters, summary, description
                self.paths.setdefault(path, {})[key] = copy.deepcopy(value)

    def add_schemas(self, schemas: dict[str, dict], source: str) -> None:
        for name, schema in schemas.items():
            if name in self.schemas and self.schemas[name] != schema:
                raise ValueError(f"schema {name!r} is defined twice, differently (by {source})")
            self.schemas[name] = copy.deepcopy(schema)

    def add_tags(self, tags: Iterable[dict]) -> None:
        known = {t["name"] for t in self.tags}
        for tag in tags:
            if tag["name"] not in known:
                self.tags.append(copy.deepcopy(tag))
                known.add(tag["name"])


def _transcoder_bindings() -> list:
    try:
        from rest_bridge import transcoder
    except ImportError:  # a scratch app without the transcoder
        return []
    return transcoder.http_bindings()


def _served_operations(app: Flask,
                       aliases: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """OpenAPI path -> {method: werkzeug Rule} for every API rule the app serves.

    `aliases` maps a Flask rule to its documented path where converting the rule would not give
    it (the transcoder's rule variables spell `engine.id` as `engine__id`)."""
    served: dict[str, dict[str, Any]] = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint in EXCLUDED_ENDPOINTS:
            continue
        path = (aliases or {}).get(rule.rule) or rule_to_path(rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            served.setdefault(path, {}).setdefault(method.lower(), rule)
    return served


def served_operations(app: Flask) -> dict[str, set[str]]:
    """OpenAPI path -> lower-case methods of every API rule the app serves (tests use it)."""
    aliases = {b.flask_rule: template_to_path(b.template) for b in _transcoder_bindings()}
    return {path: set(by_method) for path, by_method in _served_operations(app, aliases).items()}


def _fallback_operation(app: Flask, rule: Any, method: str, several: bool) -> dict:
    view = app.view_functions.get(rule.endpoint)
    doc = inspect.cleandoc(view.__doc__) if view is not None and view.__doc__ else ""
    operation: dict = {
        "operationId": re.sub(r"\W", "_", rule.endpoint) + (f"_{method}" if several else ""),
        "summary": summary_of(doc, rule.endpoint),
    }
    if "." in rule.endpoint:
        operation["tags"] = [rule.endpoint.split(".", 1)[0]]
    if doc:
        operation["description"] = doc
    parameters = []
    for match in _RULE_VAR.finditer(rule.rule):
        converter, name = match.group(1), match.group(2)
        schema = {"int": {"type": "integer"}, "float": {"type": "number"}}.get(converter or "",
                                                                               {"type": "string"})
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
    if parameters:
        operation["parameters"] = parameters
    operation["responses"] = {"default": {"description": "Not documented yet; see the summary."}}
    operation[UNDOCUMENTED] = True
    return operation


def build_document(app: Flask) -> dict:
    """The OpenAPI document of `app`: transcoded RPCs, route families, then any other rule."""
    registry = SchemaRegistry()
    doc = _Document(paths={}, schemas={}, tags=[])

    # Only the bindings this app serves: a scratch app without the transcoder documents none.
    aliases = {b.flask_rule: template_to_path(b.template) for b in _transcoder_bindings()}
    served = _served_operations(app, aliases)
    bindings = [b for b in _transcoder_bindings()
                if b.method.lower() in served.get(template_to_path(b.template), {})]
    operations, tags = transcoder_operations(bindings, registry)
    for path, method, operation in operations:
        doc.add_operation(path, method, operation, "the transcoder")
    doc.add_tags(tags)
    doc.add_schemas(registry.schemas, "the transcoder")
    if operations:
        doc.add_schemas({STATUS_SCHEMA_NAME: STATUS_SCHEMA}, "the transcoder")

    for module in (m for family in families.registered(app) for m in family.docs):
        module_name = module.__name__
        doc.add_tags(getattr(module, "TAGS", ()))
        doc.add_schemas(getattr(module, "SCHEMAS", {}), module_name)
        for path, item in module.PATHS.items():
            doc.add_path_item(path, item, module_name)

    for path, by_method in served.items():
        for method, rule in by_method.items():
            if method not in doc.paths.get(path, {}):
                several = len((rule.methods or set()) - {"HEAD", "OPTIONS"}) > 1
                operation = _fallback_operation(app, rule, method, several)
                operation["operationId"] = doc.free_operation_id(operation["operationId"])
                doc.add_operation(path, method, operation, "the URL map")

    document: dict = {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "tokenwire",
            "version": metadata.version("tokenwire"),
            "description": "The REST face of tokenwire's gRPC API: the native routes transcoded "
                           "from the proto's `google.api.http` annotations, and the OpenAI-"
                           "compatible routes. Every route calls the gRPC server; errors carry "
                           "the family's error body.",
        },
        "tags": doc.tags,
        "paths": dict(sorted(doc.paths.items())),
        "components": {"schemas": dict(sorted(doc.schemas.items()))},
    }
    return document


def document_for(app: Flask) -> dict:
    """The app's document, built on first use and cached in `app.extensions`."""
    cached = app.extensions.get(EXTENSION)
    if cached is None:
        cached = app.extensions[EXTENSION] = build_document(app)
    return cached
