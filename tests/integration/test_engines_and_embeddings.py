"""EngineService describes engines; Embed returns pooled, normalized vectors."""

from __future__ import annotations

import threading

import grpc
import pytest

from tests.conftest import BAN_END_OF_GENERATION
from tests.helpers import wait_for

from tokenwire.v1 import engine_service_pb2 as engine_pb
from tokenwire.v1 import engine_service_pb2_grpc as engine_grpc
from tokenwire.v1 import generation_pb2 as generation_pb
from tokenwire.v1 import generation_service_pb2 as gen_pb
from tokenwire.v1 import generation_service_pb2_grpc as gen_grpc


@pytest.fixture
def channel(server):
    with grpc.insecure_channel(server.target) as ch:
        yield ch


def test_list_and_get_engines(channel):
    stub = engine_grpc.EngineServiceStub(channel)
    (engine,) = stub.ListEngines(engine_pb.ListEnginesRequest()).engines
    assert engine.engine_id == "default" and engine.is_default
    assert engine.status == engine_pb.ENGINE_STATUS_LOADED
    assert engine.backend == "llama_cpp" and engine.model_path.endswith(".gguf")
    assert engine.n_ctx == 4096 // 4 and engine.created_unix > 0  # n_ctx split over 4 sequences
    got = stub.GetEngine(engine_pb.GetEngineRequest(engine_id="default")).engine
    assert got.engine_id == "default"
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetEngine(engine_pb.GetEngineRequest(engine_id="nope"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def _cosine(a, b):
    return sum(x * y for x, y in zip(a, b))


def test_embeddings_are_normalized_and_meaningful(channel):
    stub = gen_grpc.GenerationServiceStub(channel)
    response = stub.Embed(gen_pb.EmbedRequest(inputs=[
        "The cat sat on the mat.", "A cat was sitting on a mat.", "Quarterly revenue grew 4%."]))
    a, b, c = (list(e.values) for e in response.embeddings)
    assert len(a) == 576  # SmolLM2-135M's hidden size
    assert abs(sum(x * x for x in a) - 1.0) < 1e-3
    assert _cosine(a, b) > _cosine(a, c)
    assert response.prompt_tokens == sum(e.tokens for e in response.embeddings)
    raw = stub.Embed(gen_pb.EmbedRequest(inputs=["The cat sat on the mat."], skip_normalize=True))
    assert abs(sum(x * x for x in raw.embeddings[0].values) - 1.0) > 1e-3


@pytest.mark.parametrize("inputs, field", [([], "inputs"), (["ok", ""], "inputs[1]")])
def test_embed_rejects_bad_inputs(channel, inputs, field):
    stub = gen_grpc.GenerationServiceStub(channel)
    with pytest.raises(grpc.RpcError) as caught:
        stub.Embed(gen_pb.EmbedRequest(inputs=inputs))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in caught.value.details()


def _stream_in_background(channel, counts: list[int]):
    """A long greedy stream (end of generation banned) whose received tokens are counted in
    counts[0]; returns the call, to cancel it."""
    stub = gen_grpc.GenerationServiceStub(channel)
    call = stub.Generate(gen_pb.GenerateRequest(
        prompt="Once upon a time", max_tokens=4000,
        sampling=generation_pb.SamplingParams(temperature=0, logit_bias=BAN_END_OF_GENERATION)))

    def read():
        try:
            for message in call:
                counts[0] += len(message.token_ids)
        except grpc.RpcError:
            pass  # cancelled by the test

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    wait_for(lambda: counts[0] >= 3, timeout=120)
    return call, reader


def test_a_large_embedding_request_does_not_stall_a_running_stream(channel):
    """256 inputs are embedded between generation steps, a chunk at a time: the stream keeps
    producing tokens while the request runs (it used to get none until all 256 were done)."""
    counts = [0]
    call, reader = _stream_in_background(channel, counts)
    try:
        stub = gen_grpc.GenerationServiceStub(channel)
        inputs = [f"Sentence number {i} is about a lighthouse keeper and the sea." for i in range(256)]
        before = counts[0]
        response = stub.Embed(gen_pb.EmbedRequest(inputs=inputs), timeout=240)
        during = counts[0] - before
        assert len(response.embeddings) == 256
        assert during >= 64, f"the stream got {during} tokens while 256 inputs were embedded"
    finally:
        call.cancel()
        reader.join(30)


def test_an_embedding_beside_a_running_stream_is_the_same_as_alone(channel):
    stub = gen_grpc.GenerationServiceStub(channel)
    text = ["The cat sat on the mat. " * 40]  # longer than one chunk of some batch sizes
    alone = list(stub.Embed(gen_pb.EmbedRequest(inputs=text)).embeddings[0].values)
    counts = [0]
    call, reader = _stream_in_background(channel, counts)
    try:
        beside = list(stub.Embed(gen_pb.EmbedRequest(inputs=text)).embeddings[0].values)
    finally:
        call.cancel()
        reader.join(30)
    # Beside a stream the input is decoded in smaller chunks: the same vector up to float noise.
    assert _cosine(alone, beside) > 0.99999
    assert max(abs(a - b) for a, b in zip(alone, beside)) < 1e-3
    assert counts[0] >= 3


def test_the_python_client_embeds_as_the_service_does(client, channel):
    vectors = client.embed(["The cat sat on the mat.", "Quarterly revenue grew 4%."])
    stub = gen_grpc.GenerationServiceStub(channel)
    direct = stub.Embed(gen_pb.EmbedRequest(inputs=["The cat sat on the mat."], skip_normalize=True))
    raw = client.embed(["The cat sat on the mat."], normalize=False)
    assert len(vectors) == 2 and len(vectors[0]) == 576
    assert abs(sum(x * x for x in vectors[0]) - 1.0) < 1e-3
    assert raw[0] == tuple(direct.embeddings[0].values)
