"""EngineService describes engines; Embed returns pooled, normalized vectors."""

from __future__ import annotations

import grpc
import pytest

from tokenwire.v1 import engine_service_pb2 as engine_pb
from tokenwire.v1 import engine_service_pb2_grpc as engine_grpc
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
