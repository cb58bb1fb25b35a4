"""An engine served by an OpenAI-compatible upstream (Kai's model mapping). The upstream here is a
real one: another tokenwire, through its REST bridge, so the whole OpenAI path is exercised."""

from __future__ import annotations

import pytest

from tests.conftest import CAPITAL_QUESTION
from tests.helpers import ServerThread, make_settings
from tokenwire import Client


def _upstream_spec(bridge, **upstream) -> dict:
    return {"id": "remote", "backend": "openai_upstream",
            "upstream": {"base_url": f"{bridge.base_url}/v1", "model": "default", **upstream}}


@pytest.fixture(scope="module")
def proxy(bridge):
    """A server whose engine `remote` forwards to the upstream tokenwire's `default` model."""
    running = ServerThread(make_settings(models=[_upstream_spec(bridge)])).start()
    yield running
    running.stop()


def test_chat_through_the_upstream_matches_the_upstream_itself(proxy, client):
    with Client(proxy.target, timeout=240) as remote:
        via = remote.complete(messages=CAPITAL_QUESTION, model="remote", max_tokens=8, temperature=0)
    direct = client.complete(messages=CAPITAL_QUESTION, max_tokens=8, temperature=0)
    assert via.text == direct.text and "Paris" in via.text
    assert via.model == "remote" and via.usage.completion_tokens == direct.usage.completion_tokens
    assert via.finish_reason == direct.finish_reason


def test_streamed_raw_completion_through_the_upstream(proxy):
    with Client(proxy.target, timeout=240) as remote:
        deltas = list(remote.generate("The capital of France is", model="remote", max_tokens=6,
                                      temperature=0))
    assert "".join(d.text for d in deltas).strip() and deltas[-1].finish_reason in ("length", "stop")
    assert deltas[-1].usage.prompt_tokens > 0 and deltas[-1].timings.time_to_first_token_ms > 0


def test_embeddings_through_the_upstream(proxy, server):
    import grpc

    from tokenwire.v1 import generation_service_pb2 as pb
    from tokenwire.v1 import generation_service_pb2_grpc as pb_grpc

    def embed(target: str, model: str):
        with grpc.insecure_channel(target) as channel:
            return pb_grpc.GenerationServiceStub(channel).Embed(
                pb.EmbedRequest(model=model, inputs=["a cat", "a dog"]), timeout=120).embeddings

    via, direct = embed(proxy.target, "remote"), embed(server.target, "default")
    assert len(via) == 2 and len(via[0].values) == len(direct[0].values)
    assert via[0].values[:4] == pytest.approx(direct[0].values[:4], abs=1e-5)


def test_tokenize_is_unimplemented_on_an_upstream(proxy):
    with Client(proxy.target, timeout=60) as remote:
        with pytest.raises(Exception) as caught:
            remote.tokenize("hello", model="remote")
    assert caught.value.code.name == "UNIMPLEMENTED"
    assert caught.value.reason == "NOT_SUPPORTED_BY_BACKEND"


def test_an_unreachable_upstream_serves_once_it_answers_and_says_why_until_then(bridge):
    """Issue 18: an upstream that is down at start (Kai's Ollama not started yet) does not fail
    its engine or stop the server; requests get UNAVAILABLE naming it, and work once it is up."""
    settings = make_settings(models=[
        {"id": "default", "path": "", "backend": "openai_upstream",
         "upstream": {"base_url": "http://127.0.0.1:9/v1", "model": "default",
                      "timeout_seconds": 5}}])
    running = ServerThread(settings).start()
    try:
        engine = running.server.engines.describe("default")
        assert engine.state.value == "loaded" and not engine.error
        health = engine.backend.health()
        assert not health.healthy and "unreachable" in health.detail
        assert "http://127.0.0.1:9/v1" in health.detail
        with Client(running.target, timeout=60) as client:
            with pytest.raises(Exception) as caught:
                client.complete(messages=CAPITAL_QUESTION, max_tokens=4)
            assert caught.value.code.name == "UNAVAILABLE" and "unreachable" in str(caught.value)
            # The upstream comes up (here: the engine is pointed at the running one).
            engine.backend._client = engine.backend._client.with_options(
                base_url=f"{bridge.base_url}/v1")
            answer = client.complete(messages=CAPITAL_QUESTION, max_tokens=8, temperature=0)
        assert "Paris" in answer.text and engine.backend.health().healthy
    finally:
        running.stop()


def test_an_upstream_without_the_model_fails_its_engine_naming_it(bridge):
    running = ServerThread(make_settings(models=[
        _upstream_spec(bridge, model="no-such-model")])).start()
    try:
        engine = running.server.engines.describe("remote")
        assert engine.state.value == "failed" and "no-such-model" in engine.error
    finally:
        running.stop()


def test_an_upstream_engine_needs_its_upstream_section():
    from server.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="upstream"):
        load_settings(environ={}, overrides={"models": [{"id": "x", "backend": "openai_upstream"}]})
