"""The KV cache's size and element types (issue 23): with n_ctx 0 each sequence gets the model's
trained context (GGUF context_length) unless the memory share caps it; cache_type_k/_v load f16,
q8_0 and q4_0 caches that answer, and report what they are."""

from __future__ import annotations

import grpc
import pytest

from server.config import embedded_model_path
from server.core import engines, gguf_info
from server.core.types import LoadParams
from tests.helpers import ServerThread, make_settings
from tokenwire.v1 import engine_service_pb2 as engine_pb
from tokenwire.v1 import engine_service_pb2_grpc as engine_grpc
from tokenwire.v1 import generation_pb2 as gen_pb
from tokenwire.v1 import generation_service_pb2 as svc_pb
from tokenwire.v1 import generation_service_pb2_grpc as svc_grpc

MODEL = str(embedded_model_path())
INFO = gguf_info.read(MODEL)
GiB = 1 << 30


def test_the_embedded_model_says_what_it_was_trained_for():
    assert INFO.context_length == 8192
    # 30 layers x 3 KV heads x 64 dims x (K and V) x 2 bytes
    assert engines.kv_bytes_per_token(INFO, LoadParams()) == 30 * 3 * 64 * 2 * 2


def test_the_trained_context_decides_when_memory_allows_it():
    per_token = engines.kv_bytes_per_token(INFO, LoadParams())
    plan = engines.context_plan(MODEL, LoadParams(n_ctx=0, n_parallel=4), available_bytes=64 * GiB)
    assert plan.source == "trained context"
    assert (plan.n_ctx_seq, plan.n_ctx, plan.trained) == (8192, 4 * 8192, 8192)
    assert plan.memory_cap * 4 * per_token <= 64 * GiB * engines.AUTO_KV_MEMORY_SHARE
    # Unified: one cache of the trained context that any one sequence may fill.
    unified = engines.context_plan(MODEL, LoadParams(n_ctx=0, n_parallel=4, kv_unified=True),
                                   available_bytes=64 * GiB)
    assert (unified.n_ctx_seq, unified.n_ctx) == (8192, 8192)


def test_the_memory_share_decides_when_memory_is_short():
    per_token = engines.kv_bytes_per_token(INFO, LoadParams())
    model_bytes = engines.os.path.getsize(MODEL)
    available = model_bytes + 200 * (1 << 20)  # 200 MiB beside the weights
    plan = engines.context_plan(MODEL, LoadParams(n_ctx=0, n_parallel=2), available_bytes=available)
    assert plan.source == "memory" and plan.n_ctx_seq < 8192
    assert plan.n_ctx_seq % engines.AUTO_CTX_STEP == 0
    assert plan.n_ctx * per_token <= 200 * (1 << 20) * engines.AUTO_KV_MEMORY_SHARE
    # A quantized cache holds more tokens in the same memory.
    q8 = engines.context_plan(MODEL, LoadParams(n_ctx=0, n_parallel=2, cache_type_k="q8_0",
                                                cache_type_v="q8_0"), available_bytes=available)
    assert q8.n_ctx_seq > 1.8 * plan.n_ctx_seq


def test_a_configured_context_is_split_as_before():
    plan = engines.context_plan(MODEL, LoadParams(n_ctx=4096, n_parallel=4), available_bytes=GiB)
    assert (plan.n_ctx, plan.n_ctx_seq, plan.source) == (4096, 1024, "configured")


def test_an_engine_sized_from_the_model_reports_it():
    settings = make_settings(engine={"n_ctx": 0, "n_parallel": 1})
    running = ServerThread(settings).start()
    try:
        with grpc.insecure_channel(running.target) as channel:
            engine = engine_grpc.EngineServiceStub(channel).GetEngine(
                engine_pb.GetEngineRequest(engine_id="default"), timeout=60).engine
    finally:
        running.stop()
    # The window is the trained context unless this machine's free memory caps it.
    assert engine.context.trained_context_length == 8192
    assert engine.context.source in ("trained context", "memory")
    expected = min(8192, engine.context.memory_cap_tokens)
    assert engine.n_ctx == engine.context.n_ctx_per_sequence == expected
    assert engine.memory.context_bytes == expected * engines.kv_bytes_per_token(INFO, LoadParams())


@pytest.mark.parametrize("cache_type", ["f16", "q8_0", "q4_0"])
def test_each_cache_type_loads_answers_and_is_reported(cache_type):
    settings = make_settings(engine={"n_ctx": 1024, "n_parallel": 1, "cache_type_k": cache_type,
                                     "cache_type_v": cache_type})
    running = ServerThread(settings).start()
    try:
        with grpc.insecure_channel(running.target) as channel:
            engine = engine_grpc.EngineServiceStub(channel).GetEngine(
                engine_pb.GetEngineRequest(engine_id="default"), timeout=60).engine
            result = svc_grpc.GenerationServiceStub(channel).Complete(svc_pb.CompleteRequest(
                chat=gen_pb.ChatMessages(messages=[
                    gen_pb.ChatMessage(role="system", content="Answer in one word."),
                    gen_pb.ChatMessage(role="user", content="What is the capital of France?")]),
                max_tokens=8, sampling=gen_pb.SamplingParams(temperature=0)), timeout=120)
    finally:
        running.stop()
    assert (engine.context.cache_type_k, engine.context.cache_type_v) == (cache_type, cache_type)
    assert engine.params.cache_type_k == cache_type
    per_token = engines.kv_bytes_per_token(INFO, LoadParams(cache_type_k=cache_type,
                                                            cache_type_v=cache_type))
    assert engine.memory.context_bytes == 1024 * per_token
    assert "Paris" in result.text


def test_an_unknown_cache_type_is_refused_with_its_field():
    from server.convert import load_params_from_pb
    from server.errors import InvalidArgument

    with pytest.raises(InvalidArgument) as caught:
        load_params_from_pb(engine_pb.LoadParams(cache_type_k="q2_k"))
    assert caught.value.violations[0].field == "params.cache_type_k"
