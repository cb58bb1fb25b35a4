"""What the REST API's property-based tests (tests/integration/test_api_fuzz.py) found, pinned as
plain examples: each failed before its fix, with no server needed."""

from __future__ import annotations

import grpc
import pytest

from rest_bridge import create_app, openapi
from rest_bridge.bodies import validate
from rest_bridge.config import BridgeConfig
from rest_bridge.errors import HttpError
from rest_bridge.families.openai import bodies as openai

QUESTION = [{"role": "user", "content": "Hi"}]


@pytest.fixture(scope="module")
def app():
    with grpc.insecure_channel("127.0.0.1:9") as channel:  # never called
        yield create_app(BridgeConfig(grpc_target="127.0.0.1:9"), channel=channel)


@pytest.mark.parametrize("model, body, name", [
    (openai.CreateChatCompletionRequest, {"messages": QUESTION, "top_logprobs": 0}, "top_logprobs"),
    (openai.CreateChatCompletionRequest, {"messages": QUESTION, "logprobs": 0}, "logprobs"),
    (openai.CreateCompletionRequest, {"prompt": "Hi", "suffix": 0}, "suffix"),
])
def test_a_zero_for_an_unsupported_openai_parameter_is_a_400_naming_it(model, body, name):
    # 0 == False in Python: it passed as "not asked for" and then had no proto field to be
    # range-checked against, a 500 ("internal error in the REST bridge").
    with pytest.raises(HttpError) as refused:
        validate(model, body)
    assert refused.value.status == 400
    assert refused.value.param == name


def test_false_and_null_still_mean_not_asked_for():
    body = validate(openai.CreateChatCompletionRequest,
                    {"messages": QUESTION, "logprobs": False, "top_logprobs": None,
                     "tools": [], "response_format": {"type": "text"}})
    assert body.logprobs is False and body.top_logprobs is None


def test_the_unsupported_parameters_say_so_in_the_document(app):
    schemas = openapi.build_document(app)["components"]["schemas"]
    for schema, name in (("openai.CreateCompletionRequest", "suffix"),):
        assert "Not supported" in schemas[schema]["properties"][name]["description"]


@pytest.mark.parametrize("path, method, endpoint", [
    ("/iblink/v1/foundry-local/models/qi\n/download", "POST", "foundry.download_model"),
    ("/v1/models/a\nb", "GET", "openai.get_model"),
    ("/models/a\nb", "GET", "rust_sessions.get_model"),
    ("/api/models/benchmark/a\nb", "POST", "impetus_monitoring.benchmark"),
])
def test_an_id_with_a_newline_reaches_its_own_route(app, path, method, endpoint):
    # werkzeug's `path` converter stopped at a newline: the request missed its route and got
    # the app's fallback 404 in the OpenAI shape, not the family's.
    matched, _ = app.url_map.bind("localhost").match(path, method=method)
    assert matched == endpoint


def test_the_session_chat_route_documents_the_openai_answers_it_gives(app):
    operation = openapi.build_document(app)["paths"]["/chat/completions"]["post"]
    error = operation["responses"]["400"]["content"]["application/json"]["schema"]
    assert {"$ref": "#/components/schemas/openai.ErrorResponse"} in error["oneOf"]
    assert {"$ref": "#/components/schemas/rust.Error"} in error["oneOf"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/openai.ChatCompletion"}


def test_foundry_streams_document_the_json_events_they_send(app):
    paths = openapi.build_document(app)["paths"]
    logs = paths["/iblink/v1/foundry-local/logs/stream"]["get"]["responses"]["200"]
    assert logs["content"]["text/event-stream"]["schema"] == {
        "$ref": "#/components/schemas/foundry.LogEntry"}
    start = paths["/iblink/v1/foundry-local/start-stream"]["post"]["responses"]["200"]
    assert {"$ref": "#/components/schemas/foundry.ErrorEvent"} in \
        start["content"]["text/event-stream"]["schema"]["oneOf"]


@pytest.mark.parametrize("path, method, code", [
    ("/api/models/unload", "post", "400"), ("/api/models/load", "post", "403"),
    ("/api/models/download", "post", "403"), ("/chat/ws", "get", "400"),
    ("/iblink/v1/foundry-local/switch-model", "post", "403"),
    ("/v1/engines", "post", "403"), ("/v1/engines", "post", "409"),
])
def test_statuses_the_routes_answer_are_documented(app, path, method, code):
    assert code in openapi.build_document(app)["paths"][path][method]["responses"]
