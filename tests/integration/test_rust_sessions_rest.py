"""The session API of reference document 003 over the REST bridge: raw-token SSE, history,
rollback, WebSocket (a real client against the gunicorn bridge), models; and Impetus's
conversation_id on /v1/chat/completions."""

from __future__ import annotations

import json
import uuid

import pytest
import requests
from websockets.sync.client import connect

from tests.helpers import wait_for


def kebab(prompt: str, session_id: str | None = None, **extra) -> dict:
    body = {"model-name": "default", "prompt": prompt, "max-token": 6, "temperature": 0}
    if session_id:
        body["session-id"] = session_id
    return {**body, **extra}


def sse_tokens(raw: bytes) -> list[str]:
    """Raw-token SSE events -> their texts (data lines of one event joined with \\n)."""
    tokens = []
    for event in raw.decode().split("\n\n"):
        lines = [line[len("data: "):] if line.startswith("data: ") else line[len("data:"):]
                 for line in event.split("\n") if line.startswith("data:")]
        if lines:
            tokens.append("\n".join(lines))
    return tokens


def test_a_kebab_case_chat_streams_raw_tokens_and_keeps_the_history(http):
    session_id = f"rest-{uuid.uuid4()}"
    answers = []
    for prompt in ("Hi there", "What is 2+2?"):
        response = http.post("/chat/completions", json=kebab(prompt, session_id,
                                                            **{"system-prompt": "Be brief."}))
        assert response.status_code == 200
        assert response.mimetype == "text/event-stream"
        assert response.headers["X-Session-Id"] == session_id
        tokens = sse_tokens(response.data)
        assert tokens and not any(t.startswith("{") for t in tokens)  # raw text, not JSON chunks
        answers.append("".join(tokens))
    assert session_id in http.get("/sessions").get_json()
    history = http.get(f"/chat/history/{session_id}").get_json()
    assert history == [{"role": "system", "content": "Be brief."},
                       {"role": "user", "content": "Hi there"},
                       {"role": "assistant", "content": answers[0]},
                       {"role": "user", "content": "What is 2+2?"},
                       {"role": "assistant", "content": answers[1]}]

    assert http.post(f"/chat/history/{session_id}/rollback", json={"amount": 2}).get_json() == {"status": "ok"}
    assert http.get(f"/chat/history/{session_id}").get_json() == history[:3]
    for amount in (-1, 3):
        response = http.post(f"/chat/history/{session_id}/rollback", json={"amount": amount})
        assert response.status_code == 400 and "amount" in response.get_json()["error"]

    assert http.delete(f"/chat/history/{session_id}").status_code == 204
    for response in (http.get(f"/chat/history/{session_id}"), http.delete(f"/chat/history/{session_id}"),
                     http.post(f"/chat/history/{session_id}/rollback", json={"amount": 0})):
        assert response.status_code == 404
        assert set(response.get_json()) == {"error"}


def test_without_a_session_id_a_new_session_is_named_in_a_header(http):
    response = http.post("/chat/completions", json=kebab("Hello"))
    assert response.status_code == 200 and sse_tokens(response.data)
    session_id = response.headers["X-Session-Id"]
    assert len(http.get(f"/chat/history/{session_id}").get_json()) == 2


@pytest.mark.parametrize("body, status", [
    ({"prompt": "no model"}, 400),
    ({"model-name": "default"}, 400),
    ({"model-name": "default", "prompt": "x", "top-k": "many"}, 400),
    ({"model-name": "default", "prompt": "x", "device": "tpu"}, 400),
    ({"model-name": "default", "prompt": "x", "top-p": 7}, 400),
    ({"model-name": "no-such-model", "prompt": "x"}, 404),
])
def test_bad_chat_bodies_get_documented_errors(http, body, status):
    response = http.post("/chat/completions", json=body)
    assert response.status_code == status
    assert isinstance(response.get_json()["error"], str)


def test_a_first_turn_that_fails_leaves_no_session(http, server):
    too_long = "hello " * (server.backend().info().n_ctx + 100)
    kebab_id, conversation = f"fail-{uuid.uuid4()}", f"fail-conv-{uuid.uuid4()}"
    assert http.post("/chat/completions", json=kebab(too_long, kebab_id)).status_code == 400
    refused = http.post("/v1/chat/completions", json={
        "messages": [{"role": "user", "content": too_long}], "max_tokens": 4,
        "conversation_id": conversation})
    assert refused.status_code == 400
    listed = http.get("/sessions").get_json()
    for session_id in (kebab_id, conversation):
        assert session_id not in listed
        assert http.get(f"/chat/history/{session_id}").status_code == 404


def test_completions_answer_text_model_tokens_or_raw_sse(http):
    body = {"model": "default", "prompt": "Once upon a time", "max_tokens": 5, "temperature": 0}
    answer = http.post("/completions", json=body).get_json()
    assert set(answer) == {"text", "model", "tokens"} and answer["tokens"] == 5
    streamed = http.post("/completions", json={**body, "stream": True})
    assert streamed.mimetype == "text/event-stream"
    assert "".join(sse_tokens(streamed.data)) == answer["text"]
    assert http.post("/completions", json={"prompt": "x"}).status_code == 400


def test_an_openai_body_on_chat_completions_is_served_as_openai(http):
    response = http.post("/chat/completions", json={
        "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3, "temperature": 0})
    assert response.get_json()["object"] == "chat.completion"
    bad = http.post("/chat/completions", json={"messages": []})
    assert bad.status_code == 400 and bad.get_json()["error"]["param"] == "messages"


def test_models_in_the_documented_shapes(http):
    assert http.get("/models").get_json() == {"models": ["default"]}
    model = http.get("/models/default").get_json()
    assert model["id"] == "default" and model["context_length"] > 0
    assert model["quantization"] == "Q4_1"
    assert http.get("/models/nope").status_code == 404


def test_conversation_id_continues_a_server_side_session(http):
    conversation = f"conv-{uuid.uuid4()}"
    body = {"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 4, "temperature": 0,
            "conversation_id": conversation}
    first = http.post("/v1/chat/completions", json=body).get_json()
    assert first["conversation_id"] == conversation
    second = http.post("/v1/chat/completions", json={**body, "messages": [
        {"role": "user", "content": "And again"}], "stream": True})
    assert b"[DONE]" in second.data
    history = http.get(f"/chat/history/{conversation}").get_json()
    assert [m["content"] for m in history if m["role"] == "user"] == ["Hello", "And again"]
    assert history[1]["content"] == first["choices"][0]["message"]["content"]
    # The session's history was reused: the second prompt did not send the first turn.
    assert first["usage"]["prompt_tokens"] < http.post("/v1/chat/completions", json={
        **body, "messages": [{"role": "user", "content": "Third"}]}).get_json()["usage"]["prompt_tokens"]


def test_use_cache_decides_whether_a_turn_reuses_the_conversation_s_kv(http):
    conversation = f"cache-{uuid.uuid4()}"
    body = {"max_tokens": 4, "temperature": 0, "conversation_id": conversation,
            "messages": [{"role": "system", "content": "You are terse. " * 20},
                         {"role": "user", "content": "Hello"}]}
    first = http.post("/v1/chat/completions", json=body).get_json()["usage"]
    # A new conversation computes its prompt (at most the template's opening tokens are shared
    # with whatever a free sequence last held).
    assert first["prompt_tokens_details"]["cached_tokens"] < 8
    turn = {**body, "messages": [{"role": "user", "content": "And again"}]}
    reused = http.post("/v1/chat/completions", json={**turn, "use_cache": True}).get_json()["usage"]
    # The whole earlier conversation (system prompt, first turn) came from the session's KV.
    assert reused["prompt_tokens_details"]["cached_tokens"] > first["prompt_tokens"]
    recomputed = http.post("/v1/chat/completions", json={**turn, "use_cache": False}).get_json()
    assert recomputed["usage"]["prompt_tokens_details"] == {"cached_tokens": 0}
    assert recomputed["usage"]["prompt_tokens"] > reused["prompt_tokens"]


def test_a_second_turn_while_one_runs_is_409(bridge):
    session_id = f"busy-{uuid.uuid4()}"
    long_turn = kebab("Write a long story.", session_id, **{"max-token": 400})
    with requests.post(f"{bridge.base_url}/chat/completions", json=long_turn, stream=True, timeout=120) as first:
        assert first.status_code == 200
        # Keep the iterator: a discarded one is closed at once, and with it the connection (the
        # bridge answers `Connection: close`), which would end the first turn.
        chunks = first.iter_content(chunk_size=None)
        next(chunks)
        second = requests.post(f"{bridge.base_url}/chat/completions", json=kebab("Me too", session_id),
                               timeout=120)
        assert second.status_code == 409 and "another message" in second.json()["error"]


def test_a_real_websocket_client_chats_and_gets_errors_with_the_prefix(bridge):
    ws_url = bridge.base_url.replace("http://", "ws://") + "/chat/ws"
    session_id = f"ws-{uuid.uuid4()}"
    frames = []
    with connect(ws_url, open_timeout=30) as ws:
        ws.send(json.dumps(kebab("Hello!", session_id)))
        for frame in ws:  # ends when the server closes the socket after the answer
            frames.append(frame)
    assert frames and not any(f.startswith("__ERROR__:") for f in frames)
    history = requests.get(f"{bridge.base_url}/chat/history/{session_id}", timeout=30).json()
    assert history[-1] == {"role": "assistant", "content": "".join(frames)}

    for message in (json.dumps({"prompt": "no model name"}), "not json",
                    json.dumps(kebab("x", "", **{"model-name": "no-such-model"}))):
        with connect(ws_url, open_timeout=30) as ws:
            ws.send(message)
            frames = list(ws)
        assert len(frames) == 1 and frames[0].startswith("__ERROR__:"), frames


def test_the_session_service_is_also_served_natively_by_the_transcoder(http):
    created = http.post("/v1/sessions", json={"systemPrompt": "Be brief."})
    assert created.status_code == 200
    session_id = created.get_json()["session"]["sessionId"]
    streamed = http.post(f"/v1/sessions/{session_id}:chat",
                         json={"content": "Hi", "maxTokens": 3, "sampling": {"temperature": 0}})
    assert streamed.status_code == 200
    lines = [json.loads(line) for line in streamed.data.decode().splitlines() if line.strip()]
    assert lines[-1]["messageCount"] == 2 and lines[0]["sessionId"] == session_id
    got = http.get(f"/v1/sessions/{session_id}").get_json()
    assert [m["role"] for m in got["messages"]] == ["user", "assistant"]
    assert http.post(f"/v1/sessions/{session_id}:rollback", json={"messageCount": 5}).status_code == 400
    branched = http.post(f"/v1/sessions/{session_id}:branch", json={"messageCount": 1}).get_json()
    assert branched["session"]["messageCount"] == 1
    assert http.delete(f"/v1/sessions/{session_id}").status_code == 200
    assert http.get(f"/v1/sessions/{session_id}").status_code == 404


def test_a_client_that_leaves_mid_turn_leaves_the_history_as_it_was(bridge):
    base, session_id = bridge.base_url, f"leave-{uuid.uuid4()}"
    assert requests.post(f"{base}/chat/completions", json=kebab("Hi", session_id),
                         timeout=120).status_code == 200
    before = requests.get(f"{base}/chat/history/{session_id}", timeout=30).json()
    story = kebab("Write a long story.", session_id, **{"max-token": 400})
    with requests.post(f"{base}/chat/completions", json=story, stream=True, timeout=120) as left:
        assert left.status_code == 200
        next(left.iter_content(chunk_size=None))  # the turn is running; then the client leaves

    def idle() -> bool:  # a rollback of nothing is refused (409) only while a turn runs
        return requests.post(f"{base}/chat/history/{session_id}/rollback", json={"amount": 0},
                             timeout=30).status_code == 200

    wait_for(idle, timeout=60)
    assert requests.get(f"{base}/chat/history/{session_id}", timeout=30).json() == before


def test_plain_http_to_the_websocket_route_says_to_upgrade(http):
    response = http.get("/chat/ws")
    assert response.status_code == 400
    assert response.get_json() == {"error": "/chat/ws speaks WebSocket: send an Upgrade: "
                                             "websocket request"}


def test_a_websocket_upgrade_to_a_plain_route_is_not_told_about_chat_ws(http):
    response = http.get("/v1/models", headers={"Upgrade": "websocket", "Connection": "Upgrade"})
    assert response.status_code == 400
    assert "/chat/ws" not in response.get_data(as_text=True)
