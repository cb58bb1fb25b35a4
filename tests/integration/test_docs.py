"""The OpenAPI document and Swagger UI: complete, valid, true to the answers, and CDN-free."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate

import server
from rest_bridge import openapi
from rest_bridge import docs
from rest_bridge.families import Family
from tests.conftest import CAPITAL_QUESTION

DOC_PATHS = ("/openapi.json", "/api/docs/openapi.json")
UI_PATHS = ("/docs", "/docs/", "/api/docs", "/api/docs/")


@pytest.fixture(scope="module")
def document(bridge_app):
    response = bridge_app.test_client().get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def conforms(document: dict, schema: dict, instance) -> None:
    """Fails the test unless `instance` matches `schema` (which may $ref the document's schemas)."""
    root = {**schema, "components": document["components"]}
    errors = sorted(OAS30Validator(root).iter_errors(instance), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


# -- the document -------------------------------------------------------------------------------


def test_both_urls_serve_the_same_valid_openapi_3_document(http, document):
    assert http.get("/api/docs/openapi.json").get_json() == document
    validate(document)  # raises on an invalid OpenAPI document
    assert document["openapi"].startswith("3.0.")
    assert document["info"]["title"] == "tokenwire"
    assert document["info"]["version"] == server.__version__


def test_the_document_is_built_once_per_app(bridge_app, http):
    http.get("/openapi.json")
    cached = bridge_app.extensions[openapi.EXTENSION]
    http.get("/api/docs/openapi.json")
    assert bridge_app.extensions[openapi.EXTENSION] is cached


def test_every_served_route_is_documented_with_its_methods_and_nothing_else(bridge_app, document):
    served = openapi.served_operations(bridge_app)
    documented = {path: {m for m in item if m in openapi.HTTP_METHODS}
                  for path, item in document["paths"].items()}
    assert served == documented
    # Rules are read from the app, so this is the real route table, not a copy of the document.
    rules = {rule.rule for rule in bridge_app.url_map.iter_rules()}
    assert "/v1/models/<path:model_id>" in rules and "/docs/assets/<path:filename>" in rules
    for path in ("/v1/chat/completions", "/v1/completions", "/v1/models", "/v1/models/{model_id}",
                 "/v1/embeddings", "/v1/generate", "/v1/complete", "/v1/tokenize",
                 "/v1/models/{model}:tokenize", "/v1/engines/{engine_id}", *DOC_PATHS,
                 "/docs", "/api/docs"):
        assert path in document["paths"], path
    assert not any(path.startswith("/static") or "assets" in path for path in document["paths"])


def test_no_served_route_falls_back_to_the_minimal_operation(document):
    undocumented = [f"{method.upper()} {path}" for path, item in document["paths"].items()
                    for method, operation in item.items() if operation.get(openapi.UNDOCUMENTED)]
    assert undocumented == []


def test_operation_ids_are_unique(document):
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))  # the spec validator checks this too
    assert "GenerationService_Tokenize" in ids and "GenerationService_Tokenize_1" in ids


def test_chat_completions_documents_json_and_streamed_answers(document):
    operation = document["paths"]["/v1/chat/completions"]["post"]
    request = operation["requestBody"]["content"]["application/json"]["schema"]
    assert request == ref("openai.CreateChatCompletionRequest")
    content = operation["responses"]["200"]["content"]
    assert content["application/json"]["schema"] == ref("openai.ChatCompletion")
    assert content["text/event-stream"]["schema"] == ref("openai.ChatCompletionChunk")
    assert "[DONE]" in operation["responses"]["200"]["description"]
    for code in ("400", "401", "404", "413", "429", "500", "503", "504"):
        schema = operation["responses"][code]["content"]["application/json"]["schema"]
        assert schema == ref("openai.ErrorResponse")
    schemas = document["components"]["schemas"]
    properties = schemas["openai.CreateChatCompletionRequest"]["properties"]
    for name in ("model", "messages", "temperature", "top_p", "max_tokens", "max_completion_tokens",
                 "stop", "seed", "presence_penalty", "frequency_penalty", "logit_bias", "stream",
                 "stream_options", "n", "user", "top_k", "min_p", "repeat_penalty",
                 "conversation_id", "use_cache"):
        assert name in properties, name


def test_a_streaming_rpc_documents_sse_and_ndjson(document):
    operation = document["paths"]["/v1/generate"]["post"]
    content = operation["responses"]["200"]["content"]
    assert set(content) == {"text/event-stream", "application/x-ndjson"}
    for media in content.values():
        assert media["schema"] == ref("tokenwire.v1.GenerateResponse")
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body == ref("tokenwire.v1.GenerateRequest")
    unary = document["paths"]["/v1/complete"]["post"]["responses"]["200"]["content"]
    assert set(unary) == {"application/json"}


def test_the_tokenize_get_binding_documents_its_path_and_query_parameters(document):
    operation = document["paths"]["/v1/models/{model}:tokenize"]["get"]
    params = {(p["name"], p["in"]): p for p in operation["parameters"]}
    assert params[("model", "path")]["required"] is True
    assert {name for name, where in params if where == "query"} == {
        "text", "add_special_tokens", "parse_special_tokens"}
    assert params[("add_special_tokens", "query")]["schema"] == {"type": "boolean"}
    assert "requestBody" not in operation
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == \
        ref("tokenwire.v1.TokenizeResponse")
    for code in ("400", "404", "413", "429", "500", "503", "504"):
        assert operation["responses"][code]["content"]["application/json"]["schema"] == \
            ref("google.rpc.Status")


def test_message_schemas_follow_the_proto3_json_mapping_with_proto_comments(document):
    schemas = document["components"]["schemas"]
    response = schemas["tokenwire.v1.GenerateResponse"]["properties"]
    assert response["tokenIds"]["type"] == "array"
    assert response["tokenIds"]["items"] == {"type": "integer", "format": "int32"}
    assert response["seed"]["type"] == "string"  # uint64 is a JSON string
    assert response["finishReason"]["allOf"] == [ref("tokenwire.v1.FinishReason")]
    assert schemas["tokenwire.v1.FinishReason"]["enum"][0] == "FINISH_REASON_UNSPECIFIED"
    sampling = schemas["tokenwire.v1.SamplingParams"]["properties"]
    assert sampling["logitBias"]["type"] == "object"
    assert sampling["logitBias"]["additionalProperties"]["type"] == "number"
    assert schemas["tokenwire.v1.Engine"]["properties"]["createdUnix"]["format"] == "int64"
    # Descriptions come from the proto source's comments.
    assert "prompt_tokens + completion_tokens" in \
        schemas["tokenwire.v1.Usage"]["properties"]["totalTokens"]["description"]
    operation = document["paths"]["/v1/tokenize"]["post"]
    assert operation["summary"] == "Tokenize converts text into the engine's token ids"
    assert "NOT_FOUND" in operation["description"]


# -- the document matches real answers ----------------------------------------------------------


def test_documented_schemas_match_real_answers(http, document):
    conforms(document, ref("openai.ModelList"), http.get("/v1/models").get_json())
    engines = http.get("/v1/engines").get_json()
    conforms(document, ref("tokenwire.v1.ListEnginesResponse"), engines)
    engine_id = engines["engines"][0]["engineId"]
    conforms(document, ref("openai.Model"), http.get(f"/v1/models/{engine_id}").get_json())
    tokenized = http.get(f"/v1/models/{engine_id}:tokenize?text=Hello%20world")
    assert tokenized.status_code == 200
    conforms(document, ref("tokenwire.v1.TokenizeResponse"), tokenized.get_json())
    chat = http.post("/v1/chat/completions", json={"messages": CAPITAL_QUESTION, "max_tokens": 4,
                                                   "temperature": 0, "conversation_id": "c1"})
    assert chat.status_code == 200
    conforms(document, ref("openai.ChatCompletion"), chat.get_json())
    embeddings = http.post("/v1/embeddings", json={"input": ["hello"], "encoding_format": "base64"})
    conforms(document, ref("openai.EmbeddingList"), embeddings.get_json())
    error = http.post("/v1/chat/completions", json={"messages": CAPITAL_QUESTION, "n": 0})
    assert error.status_code == 400
    conforms(document, ref("openai.ErrorResponse"), error.get_json())
    status = http.post("/v1/tokenize", json={"model": "no-such-model", "text": "x"})
    assert status.status_code == 404
    conforms(document, ref("google.rpc.Status"), status.get_json())


def test_documented_stream_items_match_real_chunks(http, document):
    import json

    sse = http.post("/v1/chat/completions", json={
        "messages": CAPITAL_QUESTION, "max_tokens": 4, "temperature": 0, "stream": True,
        "stream_options": {"include_usage": True}})
    assert sse.mimetype == "text/event-stream"
    events = [line[len("data: "):] for line in sse.get_data(as_text=True).split("\n\n") if line]
    assert events[-1] == "[DONE]"
    for event in events[:-1]:
        conforms(document, ref("openai.ChatCompletionChunk"), json.loads(event))
    completion = http.post("/v1/completions", json={
        "prompt": ["Hello"], "max_tokens": 3, "stream": True, "echo": True})
    events = [line[len("data: "):] for line in completion.get_data(as_text=True).split("\n\n")
              if line]
    assert events[-1] == "[DONE]"
    for event in events[:-1]:
        conforms(document, ref("openai.TextCompletion"), json.loads(event))
    ndjson = http.post("/v1/generate", json={"prompt": "Hello", "maxTokens": 3})
    assert ndjson.mimetype == "application/x-ndjson"
    lines = ndjson.get_data(as_text=True).splitlines()
    assert lines
    for line in lines:
        conforms(document, ref("tokenwire.v1.GenerateResponse"), json.loads(line))


def test_documented_request_shapes_accept_what_clients_send(document):
    for name, schema in document["components"]["schemas"].items():
        if "example" in schema:
            conforms(document, ref(name), schema["example"])
    conforms(document, ref("openai.CreateChatCompletionRequest"), {
        "model": "m", "messages": [{"role": "user", "content": None},
                                   {"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "stop": None, "stream": True, "stream_options": {"include_usage": True}, "n": 1,
        "logit_bias": {"42": -100}, "seed": 2**64 - 1, "max_completion_tokens": 8})
    conforms(document, ref("openai.CreateCompletionRequest"), {"prompt": ["x"], "stop": ["\n"]})
    conforms(document, ref("openai.CreateEmbeddingRequest"),
             {"input": "x", "encoding_format": "base64"})
    conforms(document, ref("tokenwire.v1.GenerateRequest"), {
        "chat": {"messages": [{"role": "user", "content": "hi"}]},
        "sampling": {"temperature": 0, "seed": "7", "logitBias": {"42": -100}}, "maxTokens": 4})


# -- the fallback for routes no source documents ------------------------------------------------


def test_a_route_no_source_documents_still_appears_with_its_docstring():
    app = Flask(__name__)
    docs.FAMILY.init_app(app)

    @app.route("/v9/things/<int:thing_id>", methods=["GET", "DELETE"])
    def thing(thing_id: int):
        """Reads or removes a thing.

        More words."""
        return ""

    app.add_url_rule("/v9/alias/<int:thing_id>", "thing", thing, methods=["GET"])

    document = openapi.build_document(app)
    validate(document)  # operationIds stay unique although one endpoint has two rules
    item = document["paths"]["/v9/things/{thing_id}"]
    assert set(item) == {"get", "delete"}
    assert item["get"]["summary"] == "Reads or removes a thing"
    assert item["get"][openapi.UNDOCUMENTED] is True
    assert item["get"]["parameters"] == [{"name": "thing_id", "in": "path", "required": True,
                                          "schema": {"type": "integer"}}]
    assert item["get"]["operationId"] != item["delete"]["operationId"]
    # Families and transcoded RPCs this app does not serve are not documented.
    assert set(document["paths"]) == {"/v9/things/{thing_id}", "/v9/alias/{thing_id}", *DOC_PATHS,
                                      "/docs", "/api/docs"}


def test_two_sources_documenting_one_operation_is_an_error(monkeypatch):
    app = Flask(__name__)
    docs.FAMILY.init_app(app)
    # A second family claiming the docs module's operations.
    Family("docs-again", (), docs.FAMILY.docs).init_app(app)
    with pytest.raises(ValueError, match="documented twice"):
        openapi.build_document(app)


def test_proto_comments_are_read_from_the_source():
    source = '''
syntax = "proto3";
package demo.v1;

// Detached: a blank line follows.

// Svc does things.
service Svc {
  // Get gets.
  //
  // Status codes:
  //   OK   always.
  rpc Get(Req) returns (Req) {
    option (google.api.http) = {get: "/v1/{name=things/*}"};  // not a comment of anything
  }
}

// Req asks.
message Req {
  // The name, e.g. "a//b".
  string name = 1;
  oneof pick {
    // Picked.
    int32 a = 2;
  }
  map<string, int32> counts = 3;  // Trailing.
  // Nested is inside.
  message Nested {
    // Deep.
    Kind kind = 1;
  }
  // Kind is a kind.
  enum Kind {
    // None.
    KIND_UNSPECIFIED = 0;
  }
}
'''
    comments = openapi.parse_proto_comments(source)
    assert comments == {
        "demo.v1.Svc": "Svc does things.",
        "demo.v1.Svc.Get": "Get gets.\n\nStatus codes:\n  OK   always.",
        "demo.v1.Req": "Req asks.",
        "demo.v1.Req.name": 'The name, e.g. "a//b".',
        "demo.v1.Req.a": "Picked.",
        "demo.v1.Req.counts": "Trailing.",
        "demo.v1.Req.Nested": "Nested is inside.",
        "demo.v1.Req.Nested.kind": "Deep.",
        "demo.v1.Req.Kind": "Kind is a kind.",
        "demo.v1.Req.Kind.KIND_UNSPECIFIED": "None.",
    }
    assert openapi.markdown(comments["demo.v1.Svc.Get"]) == \
        "Get gets.\n\nStatus codes:\n```\nOK   always.\n```"


def test_path_templates_and_rules_become_openapi_paths():
    assert openapi.template_to_path("/v1/{name=models/*}:tokenize") == "/v1/{name}:tokenize"
    assert openapi.template_to_path("/v1/engines/{engine_id}") == "/v1/engines/{engine_id}"
    assert openapi.rule_to_path('/v1/models/<http_rule("*"):model>:tokenize') == \
        "/v1/models/{model}:tokenize"
    assert openapi.rule_to_path("/v1/models/<path:model_id>") == "/v1/models/{model_id}"


# -- Swagger UI ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", UI_PATHS)
def test_swagger_ui_pages_load_only_local_assets(http, path):
    page = http.get(path)
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "http://" not in html and "https://" not in html
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert len([u for u in urls if u.endswith(".js")]) == 3
    expected_types = {".js": ("text/javascript", "application/javascript"), ".css": ("text/css",),
                      ".png": ("image/png",)}
    for url in urls:
        assert url.startswith("/docs/assets/"), url
        asset = http.get(url)
        assert asset.status_code == 200, url
        suffix = url[url.rindex("."):]
        assert asset.mimetype in expected_types[suffix], (url, asset.mimetype)
        asset.close()
    spec_url = re.search(r'data-openapi-url="([^"]+)"', html).group(1)
    assert spec_url in DOC_PATHS
    assert http.get(spec_url).get_json()["openapi"].startswith("3.0.")


def test_the_page_script_turns_the_validator_badge_off(http):
    script = http.get(f"/docs/assets/{docs.INIT_SCRIPT_NAME}").get_data(as_text=True)
    assert "validatorUrl: null" in script
    assert "http" not in script


@pytest.mark.parametrize("path", [
    "/docs/assets/../routes/docs.py",
    "/docs/assets/..%2F..%2F__init__.py",
    "/docs/assets/%2e%2e/%2e%2e/__init__.py",
    "/docs/assets/../../../../../../etc/passwd",
    "/docs/assets/index.html",  # in the package, but not an asset the page uses
    "/docs/assets/swagger-initializer.js",  # points at petstore.swagger.io
    "/docs/assets/nope.js",
])
def test_assets_outside_the_allow_list_are_404(http, path):
    assert http.get(path).status_code == 404
