"""The official openai SDK against the bridge, served by gunicorn as in production."""

from __future__ import annotations

import base64
import socket
import struct

import openai
import pytest

from tests.conftest import BAN_END_OF_GENERATION, CAPITAL_QUESTION
from tests.helpers import wait_for

EOG_BIAS = {str(token): bias for token, bias in BAN_END_OF_GENERATION.items()}


@pytest.fixture
def sdk(bridge):
    return openai.OpenAI(base_url=bridge.base_url + "/v1", api_key="not-needed", max_retries=0,
                         timeout=240)


def test_chat_answers_paris(sdk):
    reply = sdk.chat.completions.create(model="default", messages=CAPITAL_QUESTION, temperature=0,
                                        max_tokens=24)
    assert "Paris" in reply.choices[0].message.content
    assert reply.choices[0].finish_reason in ("stop", "length")
    assert reply.object == "chat.completion" and reply.model == "default"
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    metrics = reply.model_extra["performance_metrics"]
    assert metrics["tokens_per_second"] > 0 and metrics["inference_time_ms"] > 0


def test_streamed_chunks_concatenate_to_the_non_streamed_text(sdk):
    request = dict(model="default", messages=[{"role": "user", "content": "Write a haiku about snow."}],
                   temperature=0.8, seed=42, max_tokens=40)
    whole = sdk.chat.completions.create(**request).choices[0].message.content
    chunks = list(sdk.chat.completions.create(stream=True, **request))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == whole
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")


def test_include_usage_gives_a_final_usage_chunk(sdk):
    chunks = list(sdk.chat.completions.create(
        model="default", messages=[{"role": "user", "content": "Say hi."}], max_tokens=5,
        logit_bias=EOG_BIAS, stream=True, stream_options={"include_usage": True}))
    last = chunks[-1]
    assert last.choices == [] and last.usage.completion_tokens == 5
    assert all(c.usage is None for c in chunks[:-1])


def test_text_part_content_and_max_completion_tokens(sdk):
    reply = sdk.chat.completions.create(
        model="default", temperature=0, max_completion_tokens=3, logit_bias=EOG_BIAS,
        messages=[{"role": "user", "content": [{"type": "text", "text": "Count to ten:"}]}])
    assert reply.usage.completion_tokens == 3 and reply.choices[0].finish_reason == "length"


def test_stop_as_string_and_list(sdk):
    free = sdk.completions.create(model="default", prompt="1, 2, 3, 4,", temperature=0,
                                  max_tokens=12, logit_bias=EOG_BIAS).choices[0].text
    assert " 6" in free, free
    for stop in (" 6", [" 6", "zzz"]):
        cut = sdk.completions.create(model="default", prompt="1, 2, 3, 4,", temperature=0,
                                     max_tokens=12, logit_bias=EOG_BIAS, stop=stop)
        assert cut.choices[0].text == free[: free.index(" 6")]
        assert cut.choices[0].finish_reason == "stop"


def test_completions_stream_and_echo(sdk):
    streamed = list(sdk.completions.create(model="default", prompt="Once upon a time", max_tokens=8,
                                           temperature=0, stream=True))
    whole = sdk.completions.create(model="default", prompt="Once upon a time", max_tokens=8,
                                   temperature=0, echo=True)
    assert whole.object == "text_completion"
    assert whole.choices[0].text == "Once upon a time" + "".join(c.choices[0].text for c in streamed)


def test_embeddings_float_and_base64(sdk):
    floats = sdk.embeddings.create(model="default", input=["red apple", "green apple"])
    assert [d.index for d in floats.data] == [0, 1]
    vector = floats.data[0].embedding
    assert len(vector) == 576 and abs(sum(v * v for v in vector) - 1) < 1e-3
    raw = sdk.embeddings.with_raw_response.create(model="default", input="red apple",
                                                  encoding_format="base64").http_response.json()
    decoded = struct.unpack("<576f", base64.b64decode(raw["data"][0]["embedding"]))
    assert decoded == pytest.approx(vector, abs=1e-6)
    assert raw["usage"]["prompt_tokens"] > 0


def test_models(sdk):
    assert "default" in [m.id for m in sdk.models.list().data]
    assert sdk.models.retrieve("default").owned_by == "tokenwire"
    with pytest.raises(openai.NotFoundError):
        sdk.models.retrieve("no-such-model")


@pytest.mark.parametrize("extra, param", [
    (dict(temperature=-1), "temperature"),
    (dict(top_p=2), "top_p"),
    (dict(max_tokens=-3), "max_tokens"),
    (dict(n=0), "n"),
    (dict(presence_penalty=7), "presence_penalty"),
    (dict(logit_bias={"5": 1000}), "logit_bias"),
])
def test_out_of_range_parameters_are_bad_requests(sdk, extra, param):
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model="default", messages=[{"role": "user", "content": "hi"}],
                                    **extra)
    assert caught.value.body["param"] == param
    assert caught.value.body["type"] == "invalid_request_error"


def test_unknown_model_is_not_found_streaming_or_not(sdk):
    for stream in (False, True):
        with pytest.raises(openai.NotFoundError) as caught:
            sdk.chat.completions.create(model="no-such-model", stream=stream,
                                        messages=[{"role": "user", "content": "hi"}])
        assert caught.value.body["code"] == "model_not_found"


def test_extra_fields_are_accepted_and_returned(sdk):
    reply = sdk.chat.completions.create(
        model="default", messages=[{"role": "user", "content": "hi"}], max_tokens=2,
        extra_body={"conversation_id": "chat-12345", "use_cache": True, "top_k": 20})
    assert reply.model_extra["conversation_id"] == "chat-12345"


def test_client_disconnect_mid_stream_frees_the_engine(bridge, server):
    backend = server.backend()
    before = backend.health().cancelled_total
    body = ('{"model": "default", "stream": true, "max_tokens": 400, "temperature": 0, '
            '"messages": [{"role": "user", "content": "Tell me a long story."}], '
            '"logit_bias": {"0": -100, "2": -100, "4": -100}}').encode()
    with socket.create_connection(("127.0.0.1", bridge.port), timeout=30) as conn:
        conn.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: test\r\n"
                     b"Content-Type: application/json\r\nContent-Length: "
                     + str(len(body)).encode() + b"\r\n\r\n" + body)
        received = b""
        while received.count(b"data: ") < 4:  # headers, the role chunk and a few tokens
            received += conn.recv(4096)
        assert b"200 OK" in received.split(b"\r\n", 1)[0]
    wait_for(lambda: backend.health().cancelled_total > before, timeout=15)
    assert backend.health().active_requests == 0
    assert backend.health().max_steps_after_cancel <= 1
