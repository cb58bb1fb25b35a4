"""Sessions longer than the context window (issue 23): the oldest whole turns leave the prompt,
never the store; the count is reported; `truncation: error` keeps the old refusal; and a single
request longer than the window gets a 400 that names the window, the prompt and the flag. A
session may keep `truncation: error` as its own policy.

A server of its own with a small window (2 sequences of 1,024 tokens), so that 30 turns of
"Write a detailed paragraph about X" (150 tokens each) go past it several times.
"""

from __future__ import annotations

import json
import uuid

import grpc
import pytest

from tests.helpers import ServerThread, make_settings
from tokenwire.v1 import generation_pb2 as gen_pb
from tokenwire.v1 import generation_service_pb2 as svc_pb
from tokenwire.v1 import generation_service_pb2_grpc as svc_grpc
from tokenwire.v1 import session_service_pb2 as session_pb
from tokenwire.v1 import session_service_pb2_grpc as session_grpc

WINDOW = 1024
TOPICS = ["the ocean", "volcanoes", "the moon", "bread", "bicycles", "libraries", "rain",
          "mountains", "coffee", "trains", "forests", "music", "deserts", "bees", "castles",
          "rivers", "winter", "clocks", "bridges", "gardens", "the sun", "ships", "cities",
          "owls", "paper", "glass", "islands", "storms", "maps", "lighthouses"]
TURNS = 30
MAX_TOKENS = 150
SYSTEM = "You are a helpful writer."


@pytest.fixture(scope="module")
def long_server():
    running = ServerThread(make_settings(engine={"n_ctx": 2 * WINDOW, "n_parallel": 2})).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def channel(long_server):
    with grpc.insecure_channel(long_server.target) as ch:
        yield ch


@pytest.fixture(scope="module")
def long_http(long_server):
    from rest_bridge import create_app
    from rest_bridge.config import BridgeConfig

    with grpc.insecure_channel(long_server.target) as ch:
        app = create_app(BridgeConfig(grpc_target=long_server.target, max_request_size=64 * 1024,
                                      request_timeout_s=600), channel=ch)
        app.testing = True
        yield app.test_client()


def prompt(turn: int) -> str:
    return f"Write a detailed paragraph about {TOPICS[turn]}."


def chat(stub, session_id: str, content: str, **fields) -> list[session_pb.ChatResponse]:
    request = session_pb.ChatRequest(session_id=session_id, content=content, create_if_missing=True,
                                     max_tokens=MAX_TOKENS, system_prompt=SYSTEM,
                                     sampling=gen_pb.SamplingParams(temperature=0), **fields)
    return list(stub.Chat(request, timeout=600))


def history(stub, session_id: str) -> list[tuple[str, str]]:
    got = stub.GetSession(session_pb.GetSessionRequest(session_id=session_id), timeout=60)
    return [(m.role, m.content) for m in got.messages]


# 30 answers of 150 tokens: minutes on a loaded 2-core machine (bounded all the same).
@pytest.mark.timeout(1500)
def test_thirty_turns_over_grpc_drop_the_oldest_turns_and_keep_the_store_whole(channel):
    stub = session_grpc.SessionServiceStub(channel)
    session_id = f"long-{uuid.uuid4()}"
    expected: list[tuple[str, str]] = []
    truncations = []
    for turn in range(TURNS):
        responses = chat(stub, session_id, prompt(turn))
        last, first = responses[-1], responses[0]
        answer = "".join(r.text for r in responses)
        assert answer.strip(), f"turn {turn} got no answer"
        assert last.finish_reason != gen_pb.FINISH_REASON_UNSPECIFIED
        # The prompt stays in the window, with the room for the answer.
        assert last.usage.prompt_tokens + last.usage.completion_tokens <= WINDOW
        # Reported on the first message (before the answer) and on the last, and in usage.
        assert first.truncated_messages == last.truncated_messages == last.usage.truncated_messages
        # Whole turns only: an even number of messages (user + assistant) is left out.
        assert last.truncated_messages % 2 == 0
        assert last.truncated_messages <= len(expected)
        truncations.append((last.truncated_messages, last.reused_prompt_tokens,
                            last.usage.prompt_tokens))
        expected += [("user", prompt(turn)), ("assistant", answer)]
        assert last.message_count == len(expected)
    # The store holds every turn; the prompt left some out.
    assert history(stub, session_id) == expected
    cut_turns = [t for t, (cut, _, _) in enumerate(truncations) if cut]
    assert cut_turns, f"30 turns never outgrew a {WINDOW}-token window: {truncations}"
    # A cut moves in steps that leave headroom: several turns keep the same cut, and such a
    # turn reuses the KV of the previous one (only the new message is prefilled).
    same_cut = [t for t in range(1, TURNS)
                if truncations[t][0] and truncations[t][0] == truncations[t - 1][0]]
    assert same_cut, truncations
    for t in same_cut:
        assert truncations[t][1] > truncations[t][2] // 2, (t, truncations)


@pytest.mark.timeout(1500)
def test_thirty_turns_over_the_rust_rest_route(long_http):
    session_id = f"rest-long-{uuid.uuid4()}"
    expected = [{"role": "system", "content": SYSTEM}]
    cuts = []
    for turn in range(TURNS):
        response = long_http.post("/chat/completions", json={
            "model-name": "default", "prompt": prompt(turn), "session-id": session_id,
            "max-token": MAX_TOKENS, "temperature": 0, "system-prompt": SYSTEM})
        assert response.status_code == 200, response.data
        assert response.headers["X-Session-Id"] == session_id
        cuts.append(int(response.headers["X-Truncated-Messages"]))
        tokens = []
        for event in response.data.decode().split("\n\n"):
            lines = [line[len("data:"):].removeprefix(" ") for line in event.split("\n")
                     if line.startswith("data:")]
            if lines:
                tokens.append("\n".join(lines))
        answer = "".join(tokens)
        assert answer.strip(), f"turn {turn} got no answer"
        expected += [{"role": "user", "content": prompt(turn)},
                     {"role": "assistant", "content": answer}]
    assert long_http.get(f"/chat/history/{session_id}").get_json() == expected
    assert any(cuts) and all(c % 2 == 0 for c in cuts), cuts


def test_truncation_error_refuses_the_turn_and_names_the_window(channel):
    stub = session_grpc.SessionServiceStub(channel)
    session_id = f"strict-{uuid.uuid4()}"
    # An imported history longer than the window.
    filler = "word " * 400
    stub.CreateSession(session_pb.CreateSessionRequest(
        session_id=session_id, system_prompt=SYSTEM,
        messages=[gen_pb.ChatMessage(role=r, content=filler) for r in ("user", "assistant") * 2]),
        timeout=60)
    with pytest.raises(grpc.RpcError) as caught:
        chat(stub, session_id, "And now?", truncation=gen_pb.TRUNCATION_ERROR)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert f"holds {WINDOW} tokens" in caught.value.details()
    assert len(history(stub, session_id)) == 4  # nothing appended
    # The default policy answers the same turn, leaving out the two imported turns it must.
    responses = chat(stub, session_id, "And now?")
    assert responses[-1].truncated_messages >= 2
    assert "".join(r.text for r in responses).strip()
    assert len(history(stub, session_id)) == 6


def test_a_session_created_with_truncation_error_refuses_every_turn_that_does_not_fit(channel):
    stub = session_grpc.SessionServiceStub(channel)
    session_id = f"strict-session-{uuid.uuid4()}"
    filler = "word " * 400
    created = stub.CreateSession(session_pb.CreateSessionRequest(
        session_id=session_id, system_prompt=SYSTEM, truncation=gen_pb.TRUNCATION_ERROR,
        messages=[gen_pb.ChatMessage(role=r, content=filler) for r in ("user", "assistant") * 2]),
        timeout=60).session
    assert created.truncation == gen_pb.TRUNCATION_ERROR
    got = stub.GetSession(session_pb.GetSessionRequest(session_id=session_id), timeout=60)
    assert got.session.truncation == gen_pb.TRUNCATION_ERROR  # stored with the session
    with pytest.raises(grpc.RpcError) as caught:
        chat(stub, session_id, "And now?")  # the turn names no policy: the session's applies
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert f"holds {WINDOW} tokens" in caught.value.details()
    assert len(history(stub, session_id)) == 4
    # A turn's own policy overrides the session's, for that turn only.
    responses = chat(stub, session_id, "And now?", truncation=gen_pb.TRUNCATION_AUTO)
    assert responses[-1].truncated_messages >= 2
    with pytest.raises(grpc.RpcError):
        chat(stub, session_id, "Once more?")
    assert len(history(stub, session_id)) == 6


def test_the_rust_route_s_first_turn_sets_the_session_s_policy(long_http):
    session_id = f"rest-strict-{uuid.uuid4()}"
    filler = "word " * 400
    first = long_http.post("/chat/completions", json={
        "model-name": "default", "prompt": filler, "session-id": session_id, "max-token": 4,
        "temperature": 0, "truncation": "error"})
    first.get_data()  # the answer streams: read to its end, when the turn is stored
    assert first.status_code == 200, first.data
    # Two more long turns do not fit the 1,024-token window; the session refuses, as it was told.
    second = long_http.post("/chat/completions", json={
        "model-name": "default", "prompt": filler, "session-id": session_id, "max-token": 4,
        "temperature": 0})
    second.get_data()
    assert second.status_code == 200, second.data
    third = long_http.post("/chat/completions", json={
        "model-name": "default", "prompt": filler, "session-id": session_id, "max-token": 4,
        "temperature": 0})
    assert third.status_code == 400 and f"holds {WINDOW} tokens" in third.get_data(as_text=True)
    assert len(long_http.get(f"/chat/history/{session_id}").get_json()) == 4


def test_one_request_longer_than_the_window_is_a_400_with_the_flag(channel, long_http):
    stub = svc_grpc.GenerationServiceStub(channel)
    long_text = "word " * 1500
    with pytest.raises(grpc.RpcError) as caught:
        stub.Complete(svc_pb.CompleteRequest(prompt=long_text, max_tokens=4), timeout=60)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    details = caught.value.details()
    assert f"holds {WINDOW} tokens" in details and "the prompt is" in details
    assert "--context-size" in details
    response = long_http.post("/v1/chat/completions", json={
        "model": "default", "max_tokens": 4,
        "messages": [{"role": "user", "content": long_text}]})
    assert response.status_code == 400
    message = json.dumps(response.get_json())
    assert f"holds {WINDOW} tokens" in message and "--context-size" in message


def test_a_generation_may_ask_for_auto_truncation(channel):
    stub = svc_grpc.GenerationServiceStub(channel)
    filler = "word " * 400
    messages = [gen_pb.ChatMessage(role="system", content=SYSTEM)]
    messages += [gen_pb.ChatMessage(role=r, content=filler) for r in ("user", "assistant") * 2]
    messages.append(gen_pb.ChatMessage(role="user", content="Say hi."))
    result = stub.Complete(svc_pb.CompleteRequest(
        chat=gen_pb.ChatMessages(messages=messages), max_tokens=8,
        sampling=gen_pb.SamplingParams(temperature=0), truncation=gen_pb.TRUNCATION_AUTO),
        timeout=120)
    assert result.usage.truncated_messages >= 2 and result.usage.prompt_tokens < WINDOW
    with pytest.raises(grpc.RpcError) as caught:
        stub.Complete(svc_pb.CompleteRequest(chat=gen_pb.ChatMessages(messages=messages),
                                             max_tokens=8), timeout=120)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT


def test_the_responses_api_maps_truncation_auto_and_disabled(long_http):
    filler = "word " * 400
    items = [{"role": r, "content": filler} for r in ("user", "assistant") * 2]
    items.append({"role": "user", "content": "Say hi."})
    base = {"model": "default", "input": items, "max_output_tokens": 8, "temperature": 0,
            "store": False}
    refused = long_http.post("/v1/responses", json=base)
    assert refused.status_code == 400, refused.data
    assert f"holds {WINDOW} tokens" in json.dumps(refused.get_json())
    answered = long_http.post("/v1/responses", json={**base, "truncation": "auto"})
    assert answered.status_code == 200, answered.data
    body = answered.get_json()
    assert body["truncation"] == "auto"
    assert body["usage"]["truncated_messages"] >= 2
    assert body["usage"]["input_tokens"] < WINDOW


def test_the_python_client_asks_for_a_truncation_policy_and_reads_what_was_left_out(long_server):
    from tokenwire import Client
    from tokenwire.errors import InvalidArgumentError

    filler = "word " * 400
    messages = [{"role": "system", "content": SYSTEM},
                *({"role": r, "content": filler} for r in ("user", "assistant") * 2),
                {"role": "user", "content": "And now?"}]
    with Client(long_server.target, timeout=240) as client:
        with pytest.raises(InvalidArgumentError):
            client.complete(messages=messages, max_tokens=4, temperature=0, truncation="error")
        answer = client.complete(messages=messages, max_tokens=4, temperature=0,
                                 truncation="auto")
        assert answer.usage.truncated_messages >= 2
        with pytest.raises(ValueError):
            client.complete(messages=messages, max_tokens=4, truncation="sometimes")
        session = f"client-{uuid.uuid4()}"
        client.create_session(session, system_prompt=SYSTEM,
                              messages=[{"role": r, "content": filler}
                                        for r in ("user", "assistant") * 2])
        deltas = list(client.chat(session, "And now?", max_tokens=4, temperature=0))
        assert deltas[-1].truncated_messages == deltas[-1].usage.truncated_messages >= 2
        assert client.get_session(session).truncation == "auto"
        strict = client.create_session(f"client-strict-{uuid.uuid4()}", system_prompt=SYSTEM,
                                       truncation="error",
                                       messages=[{"role": r, "content": filler}
                                                 for r in ("user", "assistant") * 2])
        assert strict.truncation == "error"
        with pytest.raises(InvalidArgumentError):
            list(client.chat(strict.session_id, "And now?", max_tokens=4, temperature=0))
