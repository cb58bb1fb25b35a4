"""The native REST API generated from the google.api.http annotations, against the real server.

A few cases the real engine cannot produce on demand (an error in the middle of a stream, what
metadata reached the server) run against a small fake gRPC server instead.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from concurrent import futures

import grpc
import pytest
from flask import Flask
from google.api import annotations_pb2

import tokenwire.v1
from rest_bridge import errors, grpc_client, transcoder
from tests.conftest import BAN_END_OF_GENERATION
from tests.helpers import wait_for
from tokenwire.v1 import engine_service_pb2, engine_service_pb2_grpc
from tokenwire.v1 import generation_service_pb2, generation_service_pb2_grpc

LOGIT_BIAS = {str(token): bias for token, bias in BAN_END_OF_GENERATION.items()}
STORY = {"prompt": "Once upon a time", "maxTokens": 8, "sampling": {"temperature": 0}}


def sse_events(body: bytes) -> list[tuple[str, dict]]:
    """(event name, JSON data) per SSE event; the name is "message" when none is given."""
    events = []
    for block in body.decode().split("\n\n"):
        if not block.strip():
            continue
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields.get("event", "message"), json.loads(fields["data"])))
    return events


def ndjson_lines(body: bytes) -> list[dict]:
    return [json.loads(line) for line in body.decode().splitlines()]


def assert_google_error(response, status: int, code: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["code"] == code and body["message"], body
    assert isinstance(body["details"], list)
    return body


# -- unary -----------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [
    {"text": "Hello", "parseSpecialTokens": False},
    {"text": "Hello", "parse_special_tokens": False},
])
def test_tokenize_with_json_body(http, body):
    response = http.post("/v1/tokenize", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    data = response.get_json()
    assert data["tokenIds"] and all(isinstance(t, int) for t in data["tokenIds"])
    assert data["model"] == "default"


def test_tokenize_with_path_and_query(http):
    via_body = http.post("/v1/tokenize", json={"text": "Hello world", "addSpecialTokens": True})
    for query in ("text=Hello%20world&add_special_tokens=true",
                  "text=Hello%20world&addSpecialTokens=true"):
        response = http.get(f"/v1/models/default:tokenize?{query}")
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.get_json() == via_body.get_json()


def test_engines(http):
    listed = http.get("/v1/engines")
    assert listed.status_code == 200
    (engine,) = listed.get_json()["engines"]
    assert engine["engineId"] == "default" and engine["isDefault"] is True
    response = http.get("/v1/engines/default")
    assert response.status_code == 200
    got = response.get_json()["engine"]
    assert got["engineId"] == "default" and got["status"] == "ENGINE_STATUS_LOADED"
    assert got["backend"] == "llama_cpp" and got["nCtx"] == 4096 // 4  # per sequence
    assert got["error"] == ""  # fields without presence are always printed


def test_detokenize_with_path_and_body_round_trips(http):
    token_ids = http.post("/v1/tokenize", json={"text": "The cat sat on the mat."}).get_json()["tokenIds"]
    response = http.post("/v1/models/default:detokenize", json={"tokenIds": token_ids})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {"text": "The cat sat on the mat.", "model": "default"}


def test_path_variable_overrides_the_body(http):
    response = http.post("/v1/models/nope:detokenize", json={"model": "default", "tokenIds": [1]})
    assert_google_error(response, 404, grpc.StatusCode.NOT_FOUND.value[0])


# -- streaming -------------------------------------------------------------------------------


def test_generate_as_sse_matches_complete(http):
    complete = http.post("/v1/complete", json=STORY)
    assert complete.status_code == 200, complete.get_data(as_text=True)
    response = http.post("/v1/generate", json=STORY, headers={"Accept": "text/event-stream"})
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    events = sse_events(response.get_data())
    assert events and {name for name, _ in events} == {"message"}
    assert "".join(data["text"] for _, data in events) == complete.get_json()["text"]
    assert events[-1][1]["finishReason"] == complete.get_json()["finishReason"]


def test_generate_as_ndjson_runs_to_max_tokens(http):
    request = {**STORY, "sampling": {"temperature": 0, "logitBias": LOGIT_BIAS}}
    response = http.post("/v1/generate", json=request)  # no Accept: NDJSON
    assert response.status_code == 200
    assert response.mimetype == "application/x-ndjson"
    lines = ndjson_lines(response.get_data())
    assert all(line["finishReason"] == "FINISH_REASON_UNSPECIFIED" for line in lines[:-1])
    assert lines[-1]["finishReason"] == "FINISH_REASON_LENGTH"
    assert lines[-1]["usage"]["completionTokens"] == 8
    assert sum(len(line["tokenIds"]) for line in lines) == 8


def test_accept_any_is_not_sse(http):
    response = http.post("/v1/generate", json=STORY, headers={"Accept": "*/*"})
    assert response.mimetype == "application/x-ndjson"


def test_generate_error_before_the_first_message_is_an_http_status(http):
    request = {"prompt": "Hi", "sampling": {"topP": 2}}
    for accept in ("text/event-stream", "application/x-ndjson"):
        response = http.post("/v1/generate", json=request, headers={"Accept": accept})
        body = assert_google_error(response, 400, grpc.StatusCode.INVALID_ARGUMENT.value[0])
        assert response.mimetype == "application/json"
        assert "sampling.top_p" in json.dumps(body["details"])


def test_client_disconnect_stops_the_engine(http):
    request = {"prompt": "Once upon a time", "maxTokens": 3000,
               "sampling": {"temperature": 0, "logitBias": LOGIT_BIAS}}
    response = http.post("/v1/generate", json=request, buffered=False)
    assert response.status_code == 200
    assert json.loads(next(iter(response.response)))["tokenIds"]

    def in_flight() -> int:
        return http.get("/v1/engines/default").get_json()["engine"]["requestsInFlight"]

    assert in_flight() == 1
    response.close()  # what the WSGI server does when the client goes away
    wait_for(lambda: in_flight() == 0, timeout=30)


# -- errors ----------------------------------------------------------------------------------

INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT.value[0]


@pytest.mark.parametrize("data, mentions", [
    (b'{"text": "Hello"', "not valid JSON"),
    (b"\xff\xfe{", "not valid JSON"),
    (b"[" * 20000 + b"]" * 20000, "not valid JSON"),
    (b'["text"]', "JSON object"),
    (b'"text"', "JSON object"),
    (b"null", "JSON object"),
    (b'{"text": "Hello", "bogus": 1}', "bogus"),
    (b'{"text": 5}', "text"),
    (b'{"addSpecialTokens": "yes"}', "addSpecialTokens"),  # named as the client named it
    (b'{"model": {"id": 1}}', "model"),
])
def test_malformed_bodies_are_400(http, data, mentions):
    response = http.post("/v1/tokenize", data=data, content_type="application/json")
    body = assert_google_error(response, 400, INVALID_ARGUMENT)
    assert mentions in body["message"]


@pytest.mark.parametrize("data, mentions", [
    ({"prompt": "Hi", "sampling": "hot"}, "sampling"),
    ({"prompt": "Hi", "sampling": {"logitBias": {"x": 1}}}, "logitBias"),
    ({"prompt": "Hi", "maxTokens": 1.5}, "maxTokens"),
    ({"prompt": "Hi", "max_tokens": 2**40}, "max_tokens"),
    ({"prompt": "Hi", "stop": [1]}, "stop"),
    ({"prompt": "Hi", "chat": {"messages": []}}, "input"),
])
def test_wrong_types_in_nested_fields_are_400(http, data, mentions):
    response = http.post("/v1/complete", json=data)
    body = assert_google_error(response, 400, INVALID_ARGUMENT)
    assert mentions in body["message"]


def test_out_of_range_field_is_a_bad_request_from_the_server(http):
    response = http.post("/v1/complete", json={"prompt": "Hi", "sampling": {"topP": 2}})
    body = assert_google_error(response, 400, INVALID_ARGUMENT)
    (bad_request,) = [d for d in body["details"] if d["@type"].endswith("google.rpc.BadRequest")]
    assert [v["field"] for v in bad_request["fieldViolations"]] == ["sampling.top_p"]


def test_empty_body_is_an_empty_message(http):
    response = http.post("/v1/complete", data=b"", content_type="application/json")
    body = assert_google_error(response, 400, INVALID_ARGUMENT)
    assert "input" in json.dumps(body)  # the server, not the bridge, says what is missing


@pytest.mark.parametrize("method, path, body", [
    ("POST", "/v1/tokenize", {"model": "nope", "text": "Hi"}),
    ("GET", "/v1/models/nope:tokenize?text=Hi", None),
    ("GET", "/v1/engines/nope", None),
])
def test_unknown_model_or_engine_is_404(http, method, path, body):
    response = http.open(path, method=method, json=body)
    assert_google_error(response, 404, grpc.StatusCode.NOT_FOUND.value[0])


@pytest.mark.parametrize("query, mentions", [
    ("text=Hi&add_special_tokens=maybe", "add_special_tokens"),
    ("text=Hi&addSpecialTokens=1", "addSpecialTokens"),
    ("text=Hi&bogus=1", "bogus"),
    ("text=Hi&text=again", "text"),
    ("text=Hi&add_special_tokens=true&addSpecialTokens=false", "twice"),
])
def test_bad_query_parameters_are_400(http, query, mentions):
    response = http.get(f"/v1/models/default:tokenize?{query}")
    body = assert_google_error(response, 400, INVALID_ARGUMENT)
    assert mentions in body["message"]


def test_query_parameters_are_refused_where_the_body_holds_every_field(http):
    response = http.post("/v1/tokenize?model=default", json={"text": "Hi"})
    body = assert_google_error(response, 400, INVALID_ARGUMENT)
    assert "body" in body["message"]


def test_body_over_the_limit_is_413_json(http):
    response = http.post("/v1/tokenize", data=b'{"text": "' + b"a" * (70 * 1024) + b'"}',
                         content_type="application/json")
    assert response.status_code == 413
    body = response.get_json()
    assert body["message"] and body["code"] == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]


def test_server_keeps_serving_after_errors(http):
    for data in (b"{", b'{"bogus": 1}', b"[]", b"\x00" * 100):
        assert http.post("/v1/tokenize", data=data, content_type="application/json").status_code == 400
    assert http.get("/v1/engines/nope").status_code == 404
    response = http.post("/v1/tokenize", json={"text": "still here"})
    assert response.status_code == 200 and response.get_json()["tokenIds"]


# -- discovery and routing -------------------------------------------------------------------


def annotated_methods() -> set[tuple[str, str, str, str]]:
    """(service, method, HTTP verb, template) for every binding, read straight from the descriptors."""
    found = set()
    for info in pkgutil.iter_modules(tokenwire.v1.__path__):
        if not info.name.endswith("_pb2"):
            continue
        module = importlib.import_module(f"tokenwire.v1.{info.name}")
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                options = method.GetOptions()
                if method.client_streaming or not options.HasExtension(annotations_pb2.http):
                    continue
                rule = options.Extensions[annotations_pb2.http]
                for r in (rule, *rule.additional_bindings):
                    verb = r.WhichOneof("pattern")
                    found.add((service.full_name, method.name, verb.upper(), getattr(r, verb)))
    return found


def test_bindings_cover_every_annotated_method(bridge_app):
    bindings = transcoder.http_bindings()
    expected = annotated_methods()
    assert {(b.service, b.method_name, b.method, b.template) for b in bindings} == expected
    assert len(bindings) == len(expected)
    assert ("tokenwire.v1.GenerationService", "Tokenize", "GET", "/v1/models/{model}:tokenize") in expected
    rules = {(rule.rule, method) for rule in bridge_app.url_map.iter_rules()
             if rule.endpoint.startswith("transcoder.") for method in rule.methods}
    for binding in bindings:
        assert (binding.flask_rule, binding.method) in rules, binding
        assert binding.input_type.full_name and binding.output_type.full_name
    generate = next(b for b in bindings if b.method_name == "Generate")
    assert generate.server_streaming and generate.body == "*"
    get_engine = next(b for b in bindings if b.method_name == "GetEngine")
    assert get_engine.path_fields == ("engine_id",) and get_engine.body == ""


def test_model_verbs_route_past_the_openai_model_rule(bridge_app):
    urls = bridge_app.url_map.bind("localhost")
    assert urls.match("/v1/models/default:tokenize", method="GET") == (
        "transcoder.GenerationService_Tokenize_1", {"model": "default"})
    assert urls.match("/v1/models/default:detokenize", method="POST")[0].startswith("transcoder.")
    endpoint, values = urls.match("/v1/models/default", method="GET")
    assert not endpoint.startswith("transcoder.") and list(values.values()) == ["default"]


@pytest.mark.parametrize("competing", ["/v1/models/<model_id>", "/v1/models/<path:model_id>"])
@pytest.mark.parametrize("transcoder_first", [True, False])
def test_verb_rules_win_whatever_the_registration_order(competing, transcoder_first):
    app = Flask(__name__)
    register_competing = lambda: app.add_url_rule(competing, "model", lambda model_id: model_id)
    if not transcoder_first:
        register_competing()
    app.register_blueprint(transcoder.build_blueprint())
    if transcoder_first:
        register_competing()
    urls = app.url_map.bind("localhost")
    assert urls.match("/v1/models/a:b:tokenize", method="GET")[1] == {"model": "a:b"}
    assert urls.match("/v1/models/default", method="GET") == ("model", {"model_id": "default"})


@pytest.mark.parametrize("template, path, expected", [
    ("/v1/{name=shelves/*/books/*}:cancel", "/v1/shelves/s1/books/b2:cancel",
     {"name": "shelves/s1/books/b2"}),
    ("/v1/files/{path=**}", "/v1/files/a/b/c.txt", {"path": "a/b/c.txt"}),
    ("/v1/{engine.id}/status", "/v1/e1/status", {"engine__id": "e1"}),
    ("/v1/*/things/{thing}", "/v1/anything/things/t", {"_wildcard0": "anything", "thing": "t"}),
])
def test_templates_translate_to_matching_rules(template, path, expected):
    rule, _ = transcoder.translate_template(template)
    app = Flask(__name__)
    app.url_map.converters["http_rule"] = transcoder.HttpRuleConverter
    app.add_url_rule(rule, "view", lambda **kwargs: "")
    assert app.url_map.bind("localhost").match(path) == ("view", expected)


@pytest.mark.parametrize("template", [
    "v1/x", "/v1/{a=**}/b", "/v1/{a", "/v1/{a.}", "/v1/{a}/{a}", "/v1/{a=b=c}", "/v1/x:{a}"])
def test_bad_templates_are_refused(template):
    with pytest.raises(ValueError):
        transcoder.translate_template(template)


def test_nested_path_fields_and_typed_query_values(bridge_app):
    binding = transcoder.HttpBinding(
        method="POST", template="/x/{sampling.top_k}/{model}", flask_rule="", body="sampling",
        service="tokenwire.v1.GenerationService", method_name="Complete",
        input_type=generation_service_pb2.CompleteRequest.DESCRIPTOR,
        output_type=generation_service_pb2.CompleteResponse.DESCRIPTOR,
        server_streaming=False, path_fields=("sampling.top_k", "model"))
    query = "prompt=Hi&max_tokens=5&stop=a&stop=b"
    with bridge_app.test_request_context(f"/x?{query}", method="POST",
                                         json={"temperature": 0.5, "topK": 1}):
        message = transcoder.bind_request(binding, {"sampling__top_k": "7", "model": "m"})
    assert message.prompt == "Hi" and message.max_tokens == 5 and list(message.stop) == ["a", "b"]
    assert message.sampling.temperature == 0.5 and message.sampling.top_k == 7  # path wins
    assert message.model == "m"
    with bridge_app.test_request_context("/x?sampling.top_p=0.5", method="POST", json={}):
        with pytest.raises(errors.HttpError) as caught:
            transcoder.bind_request(binding, {"sampling__top_k": "7", "model": "m"})
    assert caught.value.status == 400 and "request body" in caught.value.message
    with bridge_app.test_request_context("/x", method="POST"):
        with pytest.raises(errors.HttpError) as caught:
            transcoder.bind_request(binding, {"sampling__top_k": "seven", "model": "m"})
    assert "path variable sampling.top_k" in caught.value.message


# -- against a fake server: metadata, mid-stream errors --------------------------------------


class FakeEngines(engine_service_pb2_grpc.EngineServiceServicer):
    def __init__(self):
        self.metadata: dict[str, str] = {}

    def GetEngine(self, request, context):
        self.metadata = dict(context.invocation_metadata())
        engine = engine_service_pb2.Engine(engine_id=request.engine_id)
        return engine_service_pb2.GetEngineResponse(engine=engine)


class FailingGeneration(generation_service_pb2_grpc.GenerationServiceServicer):
    def Generate(self, request, context):
        yield generation_service_pb2.GenerateResponse(text="Once")
        context.abort(grpc.StatusCode.INTERNAL, "the engine failed while decoding")


@pytest.fixture(scope="module")
def fake_http():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    engines = FakeEngines()
    engine_service_pb2_grpc.add_EngineServiceServicer_to_server(engines, server)
    generation_service_pb2_grpc.add_GenerationServiceServicer_to_server(FailingGeneration(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        app = Flask(__name__)
        grpc_client.init_app(app, f"127.0.0.1:{port}", max_message_bytes=1 << 20, channel=channel)
        app.register_blueprint(transcoder.build_blueprint())
        yield app.test_client(), engines
    server.stop(None)


def test_auth_and_request_id_headers_become_metadata(fake_http):
    http, engines = fake_http
    response = http.get("/v1/engines/e1", headers={
        "Authorization": "Bearer secret", "X-API-Key": "key", "X-Request-Id": "req-1", "X-Other": "no"})
    assert response.status_code == 200 and response.get_json()["engine"]["engineId"] == "e1"
    forwarded = {k: v for k, v in engines.metadata.items() if k in grpc_client.FORWARDED_HEADERS}
    assert forwarded == {"authorization": "Bearer secret", "x-api-key": "key", "x-request-id": "req-1"}
    assert "x-other" not in engines.metadata


def test_mid_stream_error_as_sse_event(fake_http):
    http, _ = fake_http
    response = http.post("/v1/generate", json={"prompt": "x"}, headers={"Accept": "text/event-stream"})
    assert response.status_code == 200
    events = sse_events(response.get_data())
    assert [name for name, _ in events] == ["message", "error"]
    assert events[0][1]["text"] == "Once"
    status = events[1][1]
    assert status["code"] == grpc.StatusCode.INTERNAL.value[0]
    assert status["message"] == "the engine failed while decoding"


def test_mid_stream_error_as_ndjson_line(fake_http):
    http, _ = fake_http
    response = http.post("/v1/generate", json={"prompt": "x"})
    first, last = ndjson_lines(response.get_data())
    assert first["text"] == "Once"
    assert last["error"]["code"] == grpc.StatusCode.INTERNAL.value[0]
