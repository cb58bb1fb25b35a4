"""The native REST API, generated from the `google.api.http` annotations in the proto.

Every annotated RPC in the `tokenwire.v1` package becomes one Flask route per HTTP binding, with
the semantics of google/api/http.proto (what grpc-gateway and Envoy's transcoder implement):

- the path template binds request fields (`{model}`, `{engine.id}`, `{name=shelves/*/books/*}`);
- `body: "*"` makes the JSON body the request message, `body: "field"` puts it into that field;
- every other field may come from a query parameter (`?sampling.temperature=0.5`);
- responses use the proto3 JSON mapping; server-streaming RPCs answer with SSE when the client
  asks for `text/event-stream`, newline-delimited JSON otherwise.

Adding an annotated RPC to the proto needs no code here. The bridge holds no business logic:
validation of field values is the server's, so REST and gRPC clients get the same errors.
"""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterator

from flask import Blueprint, Response, jsonify, request
from google.api import annotations_pb2, http_pb2
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from werkzeug.routing import BaseConverter

from tokenwire import methods
from rest_bridge import errors, grpc_client
from rest_bridge.http_json import NO_BODY, json_kind, read_json
from rest_bridge.rpc_map import calls
from rest_bridge.streaming import PeekedCall, sse_event, stream_response

SSE_MIMETYPE = "text/event-stream"
NDJSON_MIMETYPE = "application/x-ndjson"

_CONVERTER = "http_rule"  # the werkzeug converter that matches http.proto segment patterns
_HTTP_METHODS = ("get", "put", "post", "delete", "patch")
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_FIELD_PATH = re.compile(rf"{_IDENT}(?:\.{_IDENT})*\Z")
_LITERAL = re.compile(r"[^/{}*<>:=]+\Z")  # what a literal segment or verb may hold
# `**` matches one or more segments: a zero-segment match would bind an empty field, which no
# request wants, and would make `/a/` and `/a` mean different things.
_SEGMENT_REGEX = {"*": "[^/]+", "**": "[^/]+(?:/[^/]+)*"}

_INTEGER_TYPES = frozenset({
    FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT32,
    FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_FIXED32, FieldDescriptor.TYPE_FIXED64, FieldDescriptor.TYPE_SFIXED32,
    FieldDescriptor.TYPE_SFIXED64,
})
_FLOAT_TYPES = frozenset({FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE})
# Stricter than int() and float(), which also take "1_000", " 7" and "inf".
_INTEGER = re.compile(r"[-+]?[0-9]+\Z")
_NUMBER = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?\Z")


@dataclass(frozen=True)
class HttpBinding:
    """One HTTP route of one RPC: the primary `google.api.http` rule or an additional binding."""

    method: str                 # "GET", "POST", "PUT", "PATCH", "DELETE"
    template: str               # the annotation's path template, e.g. "/v1/models/{model}:tokenize"
    flask_rule: str             # the werkzeug rule registered for it
    body: str                   # "" (no body), "*" or a top-level field name
    service: str                # "tokenwire.v1.GenerationService"
    method_name: str            # "Tokenize"
    input_type: Descriptor
    output_type: Descriptor
    server_streaming: bool
    path_fields: tuple[str, ...]  # field paths bound from the path, e.g. ("model",)

    @property
    def grpc_method(self) -> str:
        return f"/{self.service}/{self.method_name}"


def http_bindings() -> list[HttpBinding]:
    """Every HTTP binding of every annotated RPC in the tokenwire.v1 package, in proto order."""
    return list(_discover())


def build_blueprint() -> Blueprint:
    blueprint = Blueprint("transcoder", __name__)
    errors.register_family(blueprint, errors.google_body)
    # Deferred functions run in the order recorded: the converter must exist before the rules.
    blueprint.record_once(
        lambda state: state.app.url_map.converters.setdefault(_CONVERTER, HttpRuleConverter))
    seen: Counter[str] = Counter()
    for binding in _discover():
        name = f"{binding.service.rsplit('.', 1)[-1]}_{binding.method_name}"
        endpoint = f"{name}_{seen[name]}" if seen[name] else name
        seen[name] += 1
        view = calls(binding.grpc_method.lstrip("/"))(functools.partial(_serve, binding))
        blueprint.add_url_rule(binding.flask_rule, endpoint, view, methods=[binding.method])
    return blueprint


#: How long a transcoded stream may take to send its first message before the HTTP headers go
#: out without it (watch streams can be silent for as long as nothing happens).
PEEK_WAIT_S = 5.0


# -- discovery -----------------------------------------------------------------------------------


@functools.cache
def _discover() -> tuple[HttpBinding, ...]:
    bindings: list[HttpBinding] = []
    for method in methods.index().values():
        bindings.extend(_method_bindings(method.descriptor))
    # Same verb and same shape (variable names aside): werkzeug would silently serve only one.
    routes = Counter((b.method, re.sub(r":\w+>", ">", b.flask_rule)) for b in bindings)
    clashes = [f"{verb} {rule}" for (verb, rule), n in routes.items() if n > 1]
    if clashes:
        raise ValueError(f"several RPCs are annotated with the same HTTP route: {clashes}")
    return tuple(bindings)


def _method_bindings(method: MethodDescriptor) -> list[HttpBinding]:
    options = method.GetOptions()
    if not options.HasExtension(annotations_pb2.http):
        return []
    if method.client_streaming:
        # A request stream has no HTTP/1.1 shape the transcoder could map it to (grpc-gateway
        # needs websockets for it); such RPCs stay gRPC-only.
        return []
    rule = options.Extensions[annotations_pb2.http]
    rules = [rule, *rule.additional_bindings]
    return [_binding(method, r) for r in rules]


def _binding(method: MethodDescriptor, rule: http_pb2.HttpRule) -> HttpBinding:
    where = f"{method.full_name}'s google.api.http option"
    kind = rule.WhichOneof("pattern")
    if kind not in _HTTP_METHODS:
        raise ValueError(f"{where}: pattern {kind!r} is not supported (use get/put/post/delete/patch)")
    if rule.response_body:
        raise ValueError(f"{where}: response_body is not supported")
    template = getattr(rule, kind)
    flask_rule, path_fields = translate_template(template)
    for path in path_fields:
        field = _resolve(method.input_type, path.split("."))
        if field is None or _is_message(field) or field.is_repeated:
            raise ValueError(f"{where}: path variable {path!r} must name a singular scalar field "
                             f"of {method.input_type.full_name}")
    if rule.body not in ("", "*") and rule.body not in method.input_type.fields_by_name:
        raise ValueError(f"{where}: body {rule.body!r} is not a field of {method.input_type.full_name}")
    return HttpBinding(
        method=kind.upper(), template=template, flask_rule=flask_rule, body=rule.body,
        service=method.containing_service.full_name, method_name=method.name,
        input_type=method.input_type, output_type=method.output_type,
        server_streaming=method.server_streaming, path_fields=path_fields)


# -- path templates ------------------------------------------------------------------------------


class HttpRuleConverter(BaseConverter):
    """Matches one http.proto variable pattern, e.g. `*` or `shelves/*/books/**`.

    A pattern that spans segments is not part-isolating, so werkzeug matches the rest of the rule
    (later literals and the `:verb`) against it in one regex. Weights are werkzeug's own for one
    segment and for a path, so its specificity order (static text first) decides between rules.
    """

    def __init__(self, map, pattern: str = "*"):
        super().__init__(map)
        self.regex = "/".join(_SEGMENT_REGEX.get(s) or re.escape(s) for s in pattern.split("/"))
        self.part_isolating = "/" not in self.regex
        self.weight = 100 if self.part_isolating else 200


def translate_template(template: str) -> tuple[str, tuple[str, ...]]:
    """An http.proto path template as a werkzeug rule, and the field paths it binds.

    `/v1/models/{model}:tokenize` -> (`/v1/models/<http_rule("*"):model>:tokenize`, ("model",)).
    Dotted field paths become rule variables with `__` for `.` (see `_rule_variable`).
    """
    if not template.startswith("/"):
        raise ValueError(f"path template {template!r} must start with '/'")
    path, verb = _split_verb(template)
    segments = _split_top_level(path[1:])
    parts: list[str] = []
    fields: list[str] = []
    wildcards = 0
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment.startswith("{") and segment.endswith("}"):
            field_path, _, pattern = segment[1:-1].partition("=")
            pattern = pattern or "*"
            if not _FIELD_PATH.match(field_path):
                raise ValueError(f"path template {template!r}: bad field path {field_path!r}")
            _check_pattern(template, pattern, last)
            fields.append(field_path)
            parts.append(f'<{_CONVERTER}("{pattern}"):{_rule_variable(field_path)}>')
        elif segment in _SEGMENT_REGEX:
            # An unnamed wildcard matches but binds nothing (http.proto allows it).
            _check_pattern(template, segment, last)
            parts.append(f'<{_CONVERTER}("{segment}"):_wildcard{wildcards}>')
            wildcards += 1
        elif _LITERAL.match(segment):
            parts.append(segment)
        else:
            raise ValueError(f"path template {template!r}: bad segment {segment!r}")
    if len(set(fields)) != len(fields):
        raise ValueError(f"path template {template!r} binds a field twice")
    rule = "/" + "/".join(parts) + (f":{verb}" if verb else "")
    return rule, tuple(fields)


def _split_verb(template: str) -> tuple[str, str]:
    """Splits off a `:verb`: a colon after the last top-level '/', outside any `{...}`."""
    depth, colon = 0, -1
    for i, char in enumerate(template):
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif depth == 0 and char == "/":
            colon = -1
        elif depth == 0 and char == ":":
            colon = i
    if depth != 0:
        raise ValueError(f"path template {template!r} has unbalanced braces")
    if colon < 0:
        return template, ""
    verb = template[colon + 1:]
    if not _LITERAL.match(verb):
        raise ValueError(f"path template {template!r}: bad verb {verb!r}")
    return template[:colon], verb


def _split_top_level(path: str) -> list[str]:
    segments, depth, current = [], 0, ""
    for char in path:
        depth += {"{": 1, "}": -1}.get(char, 0)
        if char == "/" and depth == 0:
            segments.append(current)
            current = ""
        else:
            current += char
    segments.append(current)
    return segments


def _check_pattern(template: str, pattern: str, last_segment: bool) -> None:
    pieces = pattern.split("/")
    for j, piece in enumerate(pieces):
        if piece == "**" and not (last_segment and j == len(pieces) - 1):
            raise ValueError(f"path template {template!r}: '**' must be the last segment")
        if piece not in _SEGMENT_REGEX and not _LITERAL.match(piece):
            raise ValueError(f"path template {template!r}: bad pattern {pattern!r}")


def _rule_variable(field_path: str) -> str:
    return field_path.replace(".", "__")


# -- serving -------------------------------------------------------------------------------------


def _serve(binding: HttpBinding, /, **path_values: str) -> Response:
    message = bind_request(binding, path_values)
    channel = grpc_client.grpc_client().channel
    serializer = message_factory.GetMessageClass(binding.input_type).SerializeToString
    deserializer = message_factory.GetMessageClass(binding.output_type).FromString
    if not binding.server_streaming:
        rpc = channel.unary_unary(binding.grpc_method, request_serializer=serializer,
                                  response_deserializer=deserializer)
        return jsonify(_to_json(rpc(message)))
    rpc = channel.unary_stream(binding.grpc_method, request_serializer=serializer,
                               response_deserializer=deserializer)
    # Errors before the first message become HTTP statuses; a silent watch stream still answers.
    call = PeekedCall(rpc(message), wait_s=PEEK_WAIT_S)
    if _wants_sse():
        return stream_response(call, _render_sse, _sse_error, SSE_MIMETYPE)
    return stream_response(call, _render_ndjson, _ndjson_error, NDJSON_MIMETYPE)


def _wants_sse() -> bool:
    # Explicitly: `*/*` (curl's default) would otherwise match SSE too.
    return any(value == SSE_MIMETYPE and quality > 0 for value, quality in request.accept_mimetypes)


def _to_json(message: Message) -> dict:
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True)


def _ndjson_line(value: object) -> bytes:
    return (json.dumps(value, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


# A stream with nothing to say yet still opens at once (a WSGI server sends the headers with the
# first body bytes): an SSE comment, or an empty line that NDJSON readers skip.
SSE_OPENING = b": stream open\n\n"
NDJSON_OPENING = b"\n"


def _render_sse(call: PeekedCall) -> Iterator[bytes]:
    if call.waiting:
        yield SSE_OPENING
    yield from (sse_event(_to_json(message)) for message in call)


def _render_ndjson(call: PeekedCall) -> Iterator[bytes]:
    if call.waiting:
        yield NDJSON_OPENING
    yield from (_ndjson_line(_to_json(message)) for message in call)


def _status_json(error: BaseException) -> dict:
    return errors.google_body(errors.failure_of(error))


def _sse_error(error: BaseException) -> bytes:
    return b"event: error\n" + sse_event(_status_json(error))


def _ndjson_error(error: BaseException) -> bytes:
    return _ndjson_line({"error": _status_json(error)})


# -- request binding -----------------------------------------------------------------------------


def bind_request(binding: HttpBinding, path_values: dict[str, str]) -> Message:
    """The request message of the current HTTP request: query, then body, then path variables,
    each later source overriding the earlier for the same field (as grpc-gateway does)."""
    message = message_factory.GetMessageClass(binding.input_type)()
    query = _query_values(binding)
    if query:
        _parse_into(query, message, "invalid query parameters")
    if binding.body:
        body = read_json()
        if binding.body == "*":
            if body is NO_BODY:
                body = {}  # every proto3 field is optional; the server says what is missing
            if not isinstance(body, dict):
                raise errors.HttpError(
                    400, f"the request body must be a JSON object, not {json_kind(body)}")
            _parse_into(body, message, "invalid request body")
        elif body is not NO_BODY:
            _parse_into({binding.body: body}, message, "invalid request body")
    path: dict = {}
    for field_path in binding.path_fields:
        raw = path_values[_rule_variable(field_path)]
        names = field_path.split(".")
        field = _resolve(binding.input_type, names)
        _nest(path, names, _json_value(field, raw, f"path variable {field_path}"))
    if path:
        _parse_into(path, message, "invalid path")
    return message


def _parse_into(value: dict, message: Message, what: str) -> None:
    try:
        json_format.ParseDict(value, message, ignore_unknown_fields=False)
    except json_format.ParseError as exc:
        raise errors.HttpError(400, f"{what}: {exc}") from None


def _query_values(binding: HttpBinding) -> dict:
    """The query string as a proto3-JSON dict keyed by proto field names."""
    values: dict = {}
    bound: set[str] = set()
    for key in request.args:
        names = key.split(".")
        fields = _resolve_path(binding.input_type, names)
        if fields is None:
            raise errors.HttpError(400, f"query parameter {key!r} names no field of "
                                        f"{binding.input_type.name}", param=key)
        proto_path = ".".join(f.name for f in fields)
        leaf = fields[-1]
        if binding.body == "*" or (binding.body and fields[0].name == binding.body):
            raise errors.HttpError(400, f"query parameter {key!r}: {proto_path} is taken from the "
                                        f"request body on this route", param=key)
        if any(f.is_repeated or _is_map(f) for f in fields[:-1]) or _is_map(leaf):
            raise errors.HttpError(400, f"query parameter {key!r}: {proto_path} cannot be set "
                                        f"from the query string", param=key)
        if _is_message(leaf) and not leaf.message_type.full_name.startswith("google.protobuf."):
            raise errors.HttpError(400, f"query parameter {key!r} is a message; set its fields "
                                        f"with dotted names", param=key)
        if proto_path in bound:
            raise errors.HttpError(400, f"query parameter {key!r}: {proto_path} is given twice",
                                   param=key)
        bound.add(proto_path)
        raws = request.args.getlist(key)
        if len(raws) > 1 and not leaf.is_repeated:
            raise errors.HttpError(400, f"query parameter {key!r} is repeated but {proto_path} "
                                        f"holds one value", param=key)
        converted = [_json_value(leaf, raw, f"query parameter {key!r}") for raw in raws]
        _nest(values, [f.name for f in fields], converted if leaf.is_repeated else converted[0])
    return values


def _json_value(field: FieldDescriptor, raw: str, where: str) -> Any:
    """A query or path string as the JSON value the proto3 mapping expects for `field`.

    Range checks are left to ParseDict; this only decides what the text means."""
    kind = field.type
    if kind == FieldDescriptor.TYPE_BOOL:
        if raw.lower() not in ("true", "false"):
            raise errors.HttpError(400, f"{where}: {raw!r} is not true or false", param=field.name)
        return raw.lower() == "true"
    if kind in _INTEGER_TYPES:
        if not _INTEGER.match(raw):
            raise errors.HttpError(400, f"{where}: {raw!r} is not an integer", param=field.name)
        return int(raw)
    if kind in _FLOAT_TYPES:
        if raw in ("NaN", "Infinity", "-Infinity"):
            return raw
        if not _NUMBER.match(raw):
            raise errors.HttpError(400, f"{where}: {raw!r} is not a number", param=field.name)
        return float(raw)
    if kind == FieldDescriptor.TYPE_ENUM:
        if raw in field.enum_type.values_by_name:
            return raw
        if _INTEGER.match(raw):
            return int(raw)
        names = ", ".join(field.enum_type.values_by_name)
        raise errors.HttpError(400, f"{where}: {raw!r} is not one of {names}", param=field.name)
    return raw  # strings, bytes (base64; ParseDict checks it), well-known types as JSON strings


def _resolve_path(message: Descriptor, names: list[str]) -> list[FieldDescriptor] | None:
    """The fields along a dotted path, each name a proto or JSON name; None if one is unknown."""
    fields: list[FieldDescriptor] = []
    current: Descriptor | None = message
    for name in names:
        if current is None:
            return None
        field = next((f for f in current.fields if name in (f.name, f.json_name)), None)
        if field is None:
            return None
        fields.append(field)
        current = field.message_type
    return fields


def _resolve(message: Descriptor, names: list[str]) -> FieldDescriptor | None:
    fields = _resolve_path(message, names)
    return fields[-1] if fields else None


def _is_message(field: FieldDescriptor) -> bool:
    return field.type == FieldDescriptor.TYPE_MESSAGE


def _is_map(field: FieldDescriptor) -> bool:
    return _is_message(field) and field.message_type.GetOptions().map_entry


def _nest(target: dict, names: list[str], value: Any) -> None:
    for name in names[:-1]:
        target = target.setdefault(name, {})
    target[names[-1]] = value
