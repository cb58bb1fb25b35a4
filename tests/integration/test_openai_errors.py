"""Bad HTTP input on the OpenAI routes: a 4xx with the OpenAI error body, never a 500."""

from __future__ import annotations

import json

import pytest

CHAT = "/v1/chat/completions"


def _error(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


@pytest.mark.parametrize("data, param", [
    ("{not json", None),
    ("[1, 2]", None),
    ("", None),
    (json.dumps({"model": "default"}), "messages"),
    (json.dumps({"messages": "hi"}), "messages"),
    (json.dumps({"messages": [{"role": "user", "content": 5}]}), "messages[0].content"),
    (json.dumps({"messages": [{"content": "hi"}]}), "messages[0].role"),
    (json.dumps({"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}), "temperature"),
    (json.dumps({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2.5}), "max_tokens"),
    (json.dumps({"messages": [{"role": "user", "content": "hi"}], "stream": "yes"}), "stream"),
    (json.dumps({"messages": [{"role": "user", "content": "hi"}], "stop": [1]}), "stop"),
    (json.dumps({"messages": [{"role": "user", "content": "hi"}], "logit_bias": {"x": 1}}), "logit_bias"),
    (json.dumps({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}), "messages[0].content"),
    (json.dumps({"messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function"}]}), "tools[0].function"),
    (json.dumps({"messages": [{"role": "alien", "content": "hi"}]}), "messages[0].role"),
])
def test_malformed_requests_are_400_with_the_param(http, data, param):
    error = _error(http.post(CHAT, data=data, content_type="application/json"), 400)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    # And the server is still serving.
    ok = http.post(CHAT, json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1})
    assert ok.status_code == 200


def test_body_over_the_size_limit_is_413(http):
    big = {"messages": [{"role": "user", "content": "x" * (80 * 1024)}]}
    error = _error(http.post(CHAT, json=big), 413)
    assert error["type"] == "invalid_request_error"


def test_streaming_errors_before_the_first_token_are_real_http_errors(http):
    response = http.post(CHAT, json={"model": "nope", "stream": True,
                                     "messages": [{"role": "user", "content": "hi"}]})
    error = _error(response, 404)
    assert error["code"] == "model_not_found" and error["type"] == "not_found_error"
    response = http.post(CHAT, json={"stream": True, "top_p": 3,
                                     "messages": [{"role": "user", "content": "hi"}]})
    assert _error(response, 400)["param"] == "top_p"


def test_prompt_longer_than_the_context_is_400(http):
    error = _error(http.post("/v1/completions", json={"prompt": "hello " * 4200}), 400)
    assert error["code"] == "context_length_exceeded" and error["param"] == "prompt"


def test_unknown_route_and_wrong_method(http):
    _error(http.get("/v1/nothing-here"), 404)
    _error(http.get(CHAT), 405)


def test_embeddings_input_errors(http):
    assert _error(http.post("/v1/embeddings", json={"input": []}), 400)["param"] == "input"
    assert _error(http.post("/v1/embeddings", json={"input": ["a", ""]}), 400)["param"] == "input[1]"
    assert _error(http.post("/v1/embeddings", json={"input": "a", "encoding_format": "hex"}),
                  400)["param"] == "encoding_format"
    assert _error(http.post("/v1/embeddings", json={"input": "a", "dimensions": 3}),
                  400)["param"] == "dimensions"
