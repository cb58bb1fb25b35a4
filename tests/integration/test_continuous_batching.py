"""Many streams in one decode loop: correctness under concurrency, cancels, and overflow."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from tests.conftest import BAN_END_OF_GENERATION
from tests.helpers import ServerThread, make_settings, wait_for
from tokenwire import Client, DeadlineExceededError, ResourceExhaustedError, TokenwireError
from tokenwire.v1 import engine_service_pb2 as engine_pb
from tokenwire.v1 import engine_service_pb2_grpc as engine_grpc

PROMPTS = [
    "The history of the printing press",
    "A recipe for tomato soup",
    "Why the sky is blue",
    "The rules of chess",
    "How bees make honey",
    "A day in the life of a lighthouse keeper",
    "The water cycle explained",
    "Tips for learning a new language",
]


def _greedy(client: Client, prompt: str, max_tokens: int) -> tuple[str, tuple[int, ...], str]:
    deltas = list(client.generate(prompt=prompt, temperature=0, max_tokens=max_tokens,
                                  logit_bias=BAN_END_OF_GENERATION))
    return ("".join(d.text for d in deltas), tuple(t for d in deltas for t in d.token_ids),
            deltas[-1].finish_reason)


def _in_parallel(fn, args_list):
    with ThreadPoolExecutor(len(args_list)) as pool:
        return list(pool.map(lambda args: fn(*args), args_list))


def test_sixteen_concurrent_streams_complete_with_their_lengths(client):
    lengths = [8 + 4 * i for i in range(16)]
    results = _in_parallel(lambda p, n: _greedy(client, p, n),
                           [(PROMPTS[i % 8] + f" (part {i})", n) for i, n in enumerate(lengths)])
    for (_, tokens, finish), n in zip(results, lengths):
        assert finish == "length" and len(tokens) == n


def test_greedy_output_is_the_same_alone_and_under_load(client):
    alone = [_greedy(client, prompt, 32) for prompt in PROMPTS]
    together = _in_parallel(lambda p: _greedy(client, p, 32), [(p,) for p in PROMPTS])
    assert together == alone


@pytest.fixture
def eight_slot_server():
    running = ServerThread(make_settings(engine={"n_parallel": 8})).start()
    yield running
    running.stop()


def test_cancelling_one_of_eight_leaves_the_others_complete_and_unchanged(eight_slot_server):
    server = eight_slot_server
    client = Client(server.target, timeout=240)
    alone = {prompt: _greedy(client, prompt, 40) for prompt in PROMPTS}
    victim = PROMPTS[3]
    started = threading.Barrier(len(PROMPTS))

    def run(prompt: str):
        stream = client.generate(prompt=prompt, temperature=0, max_tokens=40,
                                 logit_bias=BAN_END_OF_GENERATION)
        first = next(stream)
        started.wait(timeout=240)
        if prompt == victim:
            stream.close()
            return None
        deltas = [first, *stream]
        return ("".join(d.text for d in deltas), tuple(t for d in deltas for t in d.token_ids),
                deltas[-1].finish_reason)

    before = server.backend().stats().cancelled_total
    results = dict(zip(PROMPTS, _in_parallel(run, [(p,) for p in PROMPTS])))
    for prompt in PROMPTS:
        if prompt != victim:
            assert results[prompt] == alone[prompt]
    wait_for(lambda: server.backend().stats().cancelled_total > before)


@pytest.fixture
def small_batch_server():
    running = ServerThread(make_settings(engine={"n_batch": 64})).start()
    yield running
    running.stop()


def test_a_long_prompt_is_prefilled_in_chunks_between_other_streams_steps(small_batch_server):
    """While a ~900-token prompt is prefilled in chunks of at most 64 tokens, a running stream
    keeps getting tokens: it is never stalled for more than one chunk."""
    long_prompt = "The quick brown fox jumps over the lazy dog. " * 85
    with Client(small_batch_server.target, timeout=240) as client:
        n_long = len(client.tokenize(long_prompt, add_special_tokens=True, parse_special_tokens=True))
        chunks = -(-n_long // 63)  # each step leaves 63 batch positions beside the decode
        assert chunks >= 10
        stream = client.generate(prompt="Count slowly: one, two,", temperature=0, max_tokens=500,
                                 logit_bias=BAN_END_OF_GENERATION)
        next(stream)
        seen_at_long_first: list[int] = []
        received = 0

        def long_request():
            gen = client.generate(prompt=long_prompt, temperature=0, max_tokens=1)
            next(gen)
            seen_at_long_first.append(received)
            list(gen)

        worker = threading.Thread(target=long_request)
        submitted_at = 0
        for _ in stream:
            received += 1
            if received == 5:
                submitted_at = received
                worker.start()
            if seen_at_long_first:
                break
        stream.close()
        worker.join(60)
    assert seen_at_long_first, "the long request never produced its token"
    # One decode step of the short stream per prompt chunk (give or take the first and last).
    assert seen_at_long_first[0] - submitted_at >= chunks - 2


def test_prefix_reuse_skips_the_shared_prompt(client, server):
    system = "You are a meticulous assistant who answers with care. " * 20
    before = server.backend().stats().prompt_tokens_reused_total
    for question in ("What is 2+2?", "What is 3+3?"):
        client.complete(messages=[{"role": "system", "content": system},
                                  {"role": "user", "content": question}],
                        temperature=0, max_tokens=4)
    assert server.backend().stats().prompt_tokens_reused_total - before > 200


def test_engine_status_shows_the_scheduler(server):
    with grpc.insecure_channel(server.target) as channel:
        engine = engine_grpc.EngineServiceStub(channel).GetEngine(
            engine_pb.GetEngineRequest(engine_id="default")).engine
    s = engine.scheduler
    assert s.parallel_sequences == 4 and s.kv_cells_total == 4096
    assert s.max_queued_requests == 64 and s.queued_requests == 0
    assert s.tokens_generated_total > 0


def test_random_cancels_and_deadlines_leave_nothing_held(client, server):
    rng = random.Random(7)

    def chaos(i: int):
        try:
            stream = client.generate(prompt=PROMPTS[i % 8], temperature=0.8, seed=i, max_tokens=64,
                                     timeout=rng.uniform(0.05, 1.5))
            for n, _ in enumerate(stream):
                if n == rng.randint(0, 6):
                    stream.close()
                    break
        except (DeadlineExceededError, TokenwireError):
            pass

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(chaos, range(200)))
    backend = server.backend()
    wait_for(lambda: backend.stats().active == 0 and backend.stats().queued == 0, timeout=30)
    n_ctx = backend.info().n_ctx
    # A request that needs (almost) the whole context fits: every cell came back.
    filler = "hello " * (n_ctx - 40)
    result = client.complete(prompt=filler, max_tokens=4, temperature=0)
    assert result.usage.completion_tokens >= 1
    assert result.usage.prompt_tokens > n_ctx - 100


@pytest.fixture
def tiny_queue_server():
    running = ServerThread(make_settings(engine={"n_parallel": 1, "max_queue": 2})).start()
    yield running
    running.stop()


def test_queue_overflow_is_resource_exhausted_at_once(tiny_queue_server):
    with Client(tiny_queue_server.target, timeout=240) as client:
        busy = client.generate(prompt="Tell a story.", max_tokens=300, logit_bias=BAN_END_OF_GENERATION)
        next(busy)  # occupies the only sequence
        waiting = [client.generate(prompt="Wait", max_tokens=2) for _ in range(2)]
        with ThreadPoolExecutor(2) as pool:
            queued = [pool.submit(lambda g: list(g), g) for g in waiting]
            wait_for(lambda: tiny_queue_server.backend().stats().queued == 2)
            with pytest.raises(ResourceExhaustedError) as caught:
                client.complete(prompt="One too many", max_tokens=2)
            assert caught.value.reason == "QUEUE_FULL"
            busy.close()
            assert all(f.result(60)[-1].finish_reason for f in queued)
