"""GenerationService against the real engine and the embedded SmolLM2 model."""

from __future__ import annotations

import math

import grpc
import pytest

from tests.conftest import BAN_END_OF_GENERATION, CAPITAL_QUESTION
from tests.helpers import wait_for
from tokenwire import (DeadlineExceededError, InvalidArgumentError, NotFoundError)



def _text(deltas) -> str:
    return "".join(d.text for d in deltas)


def test_greedy_chat_answers_paris(client):
    deltas = list(client.generate(messages=CAPITAL_QUESTION, temperature=0, max_tokens=32))
    assert "Paris" in _text(deltas)
    final = deltas[-1]
    assert final.finish_reason in ("stop", "length")
    assert final.usage.prompt_tokens > 0
    assert final.usage.completion_tokens == final.usage.total_tokens - final.usage.prompt_tokens
    assert final.timings.time_to_first_token_ms > 0
    assert final.model == "default"
    assert all(d.finish_reason is None for d in deltas[:-1])


def _counts(usage) -> tuple[int, int, int]:
    return usage.prompt_tokens, usage.completion_tokens, usage.total_tokens


def test_stream_concatenates_to_complete_for_the_same_seed(client):
    request = dict(messages=[{"role": "user", "content": "Write a short poem about rain."}],
                   temperature=0.9, top_p=0.9, seed=1234, max_tokens=48)
    streamed = list(client.generate(**request))
    whole = client.complete(**request)
    assert _text(streamed) == whole.text
    assert [t for d in streamed for t in d.token_ids] == list(whole.token_ids)
    assert streamed[-1].seed == whole.seed == 1234
    # The same tokens counted alike; only the KV reuse differs (the second request finds the
    # first one's prompt cached).
    assert _counts(streamed[-1].usage) == _counts(whole.usage)
    assert whole.usage.cached_prompt_tokens >= streamed[-1].usage.cached_prompt_tokens


def test_same_seed_same_output_and_random_seed_is_reported(client):
    request = dict(prompt="The three best things about summer are", temperature=1.0, max_tokens=24)
    first = client.complete(seed=7, **request)
    second = client.complete(seed=7, **request)
    assert first.text == second.text
    unseeded = client.complete(**request)
    assert client.complete(seed=unseeded.seed, **request).text == unseeded.text


def test_max_tokens_gives_length(client):
    result = client.complete(prompt="Count: 1, 2, 3,", temperature=0, max_tokens=5,
                             logit_bias=BAN_END_OF_GENERATION)
    assert result.finish_reason == "length"
    assert result.usage.completion_tokens == 5


def test_stop_sequence_cuts_exactly(client):
    # Find what the model writes greedily, then stop on a string from the middle of it.
    free = client.complete(prompt="Count: 1, 2, 3,", temperature=0, max_tokens=24,
                           logit_bias=BAN_END_OF_GENERATION).text
    assert " 6" in free, free
    stop = " 6"
    deltas = list(client.generate(prompt="Count: 1, 2, 3,", temperature=0, max_tokens=24,
                                  logit_bias=BAN_END_OF_GENERATION, stop=[stop, "never appears"]))
    assert _text(deltas) == free[: free.index(stop)]
    assert deltas[-1].finish_reason == "stop_sequence"
    assert all(stop not in d.text for d in deltas)


@pytest.mark.parametrize("content", [
    "Reply with only emoji: 🎉🚀🌧️🐍🔥😀",
    "请用中文写一句关于春天的话。",
])
def test_deltas_are_whole_utf8_characters(client, content):
    deltas = list(client.generate(messages=[{"role": "user", "content": content}], temperature=0.7,
                                  seed=3, max_tokens=60))
    text = _text(deltas)
    assert any(ord(ch) > 0x2000 for ch in text), text  # the model did write wide characters
    for d in deltas:
        d.text.encode("utf-8")  # a lone surrogate would raise here
        assert "\ufffd" not in d.text or "\ufffd" in text


def test_cancel_after_three_tokens_frees_the_engine_within_one_step(client, server):
    backend = server.backend()
    before = backend.health()
    stream = client.generate(prompt="Tell me a very long story.", temperature=0, max_tokens=500,
                             logit_bias=BAN_END_OF_GENERATION)
    received = [next(stream) for _ in range(3)]
    assert all(d.finish_reason is None for d in received)
    stream.close()  # cancels the RPC
    wait_for(lambda: backend.health().cancelled_total > before.cancelled_total)
    after = backend.health()
    assert after.active_requests == 0
    assert after.max_steps_after_cancel <= 1
    assert after.tokens_generated_total - before.tokens_generated_total < 100
    # The next request starts at once: it did not queue behind the cancelled one.
    nxt = client.complete(prompt="Hello", temperature=0, max_tokens=2)
    assert nxt.timings.queue_ms < 50


def test_deadline_stops_generation(client, server):
    backend = server.backend()
    before = backend.health()
    with pytest.raises(DeadlineExceededError):
        list(client.generate(prompt="Tell me a very long story.", temperature=0, max_tokens=500,
                             logit_bias=BAN_END_OF_GENERATION, timeout=0.2))
    wait_for(lambda: backend.health().cancelled_total > before.cancelled_total)
    assert backend.health().active_requests == 0
    assert backend.health().tokens_generated_total - before.tokens_generated_total < 500
    assert client.complete(prompt="Hello", temperature=0, max_tokens=2).usage.completion_tokens >= 1


@pytest.mark.parametrize("kwargs, field", [
    (dict(), "input"),
    (dict(prompt="hi", max_tokens=-1), "max_tokens"),
    (dict(prompt="hi", temperature=math.nan), "sampling.temperature"),
    (dict(prompt="hi", temperature=-0.5), "sampling.temperature"),
    (dict(prompt="hi", top_p=1.5), "sampling.top_p"),
    (dict(prompt="hi", min_p=2.0), "sampling.min_p"),
    (dict(prompt="hi", logit_bias={5: 500.0}), "sampling.logit_bias"),
    (dict(prompt="hi", stop=[""]), "stop"),
    (dict(messages=[]), "chat.messages"),
    (dict(messages=[{"role": "wizard", "content": "hi"}]), "chat.messages[0].role"),
])
def test_bad_input_is_invalid_argument_naming_the_field(client, kwargs, field):
    with pytest.raises(InvalidArgumentError) as caught:
        list(client.generate(**kwargs))
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert field in [v.field for v in caught.value.violations]
    assert field in caught.value.message
    # The server is still up and serving.
    assert client.complete(prompt="Hi", temperature=0, max_tokens=1).usage.completion_tokens == 1


def test_unknown_model_is_not_found(client):
    with pytest.raises(NotFoundError) as caught:
        client.complete(prompt="hi", model="no-such-model")
    assert caught.value.reason == "MODEL_NOT_FOUND"
    assert "no-such-model" in caught.value.message


def test_prompt_longer_than_the_context_states_both_numbers(client, server):
    n_ctx = server.backend().info().n_ctx
    long_prompt = "hello " * (n_ctx + 100)
    n_prompt = len(client.tokenize(long_prompt, add_special_tokens=True, parse_special_tokens=True))
    with pytest.raises(InvalidArgumentError) as caught:
        client.complete(prompt=long_prompt, max_tokens=4)
    assert caught.value.reason == "CONTEXT_LENGTH_EXCEEDED"
    assert str(n_prompt) in caught.value.message and str(n_ctx) in caught.value.message
    assert caught.value.violations[0].field == "prompt"


def test_tokenize_detokenize_round_trip(client):
    text = "Hello, world! Ünïcödé ✓"
    ids = client.tokenize(text)
    assert ids and all(isinstance(i, int) for i in ids)
    assert client.detokenize(ids) == text
    special = client.tokenize("<|im_start|>", parse_special_tokens=True)
    assert len(special) == 1
    assert client.detokenize(special, render_special_tokens=True) == "<|im_start|>"


def test_detokenize_rejects_ids_outside_the_vocabulary(client):
    with pytest.raises(InvalidArgumentError) as caught:
        client.detokenize([1, 10_000_000])
    assert caught.value.violations[0].field == "token_ids"


def test_a_prompt_far_beyond_the_window_is_refused_without_tokenizing_it(client):
    with pytest.raises(InvalidArgumentError) as caught:
        client.complete(prompt="lorem ipsum " * 250_000, max_tokens=1)  # 3 MB
    (violation,) = caught.value.violations
    assert violation.field == "prompt"
    # "at least": the count is the bound from the byte length, not a tokenization.
    assert "the prompt is at least" in violation.description
