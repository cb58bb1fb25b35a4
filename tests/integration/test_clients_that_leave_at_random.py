"""Two hundred clients that give up at random points — while queued, while their prompt is being
evaluated, after a few streamed tokens — over REST and over gRPC, sixteen at a time. Afterwards
the engine holds nothing (0 queued, 0 active), the next request is answered, and the log has no
ERROR line: a client that leaves is an ordinary event (issue 22)."""

from __future__ import annotations

import http.client
import json
import logging
import random
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from tests.conftest import BAN_END_OF_GENERATION
from tests.helpers import ServerThread, make_settings, wait_for
from tokenwire import Client
from tokenwire.v1 import generation_service_pb2, generation_service_pb2_grpc

CLIENTS, AT_ONCE, SEED = 200, 16, 20261207
LONG_PROMPT = "Describe the history of the city in great detail. " * 30  # ~300 tokens to prefill
WHERE = ("queued", "prefill", "stream")


class _Errors(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name}: {record.getMessage()}")


@pytest.fixture(scope="module")
def busy_server():
    running = ServerThread(make_settings(engine={"n_parallel": 4, "max_queue": CLIENTS})).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def bridge_port(busy_server):
    from rest_bridge.config import BridgeConfig
    from rest_bridge.serve import BridgeOptions, start_bridge

    bridge = start_bridge(BridgeConfig(grpc_target=busy_server.target, request_timeout_s=600),
                          BridgeOptions(host="127.0.0.1", port=0, runtime="in-process"))
    try:
        yield bridge.port
    finally:
        bridge.stop()
        bridge.finish(30)


def _plan(rng: random.Random, i: int) -> dict:
    where = WHERE[i % 3]
    return {"where": where, "rest": i % 2 == 0,
            "prompt": LONG_PROMPT if where == "prefill" else f"Tell story number {i}.",
            "wait_s": rng.uniform(0.0, 0.05 if where == "queued" else 0.3),
            "tokens": rng.randint(1, 8)}


def _leave_rest(port: int, plan: dict) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    connection.request("POST", "/v1/chat/completions", headers={"Content-Type": "application/json"},
                       body=json.dumps({"model": "default", "max_tokens": 64, "stream": True,
                                        "logit_bias": {str(k): v for k, v in
                                                       BAN_END_OF_GENERATION.items()},
                                        "messages": [{"role": "user", "content": plan["prompt"]}]}))
    sock = connection.sock  # the response takes it over from the connection
    if plan["where"] == "stream":
        response = connection.getresponse()
        events = 0
        while events < plan["tokens"] + 1:  # the role chunk, then tokens
            line = response.fp.readline()
            assert line, "the stream ended before the client left"
            events += line.startswith(b"data: ")
    else:
        time.sleep(plan["wait_s"])
    sock.shutdown(socket.SHUT_RDWR)  # hangs up now, whatever the server was doing
    sock.close()


def _leave_grpc(target: str, plan: dict) -> None:
    with grpc.insecure_channel(target) as channel:
        stub = generation_service_pb2_grpc.GenerationServiceStub(channel)
        request = generation_service_pb2.GenerateRequest(max_tokens=64)
        request.chat.messages.add(role="user", content=plan["prompt"])
        request.sampling.logit_bias.update(BAN_END_OF_GENERATION)
        call = stub.Generate(request, timeout=300)
        if plan["where"] == "stream":
            for _ in range(plan["tokens"]):
                next(call)
        else:
            time.sleep(plan["wait_s"])
        call.cancel()


def test_two_hundred_clients_that_leave_at_random_leave_nothing_behind(busy_server, bridge_port):
    errors = _Errors()
    logging.getLogger().addHandler(errors)
    rng = random.Random(SEED)
    plans = [_plan(rng, i) for i in range(CLIENTS)]
    backend = busy_server.backend()
    cancelled_before = backend.health().cancelled_total
    try:
        def leave(plan: dict) -> None:
            if plan["rest"]:
                _leave_rest(bridge_port, plan)
            else:
                _leave_grpc(busy_server.target, plan)

        with ThreadPoolExecutor(AT_ONCE) as pool:
            list(pool.map(leave, plans))  # re-raises any client's failure

        def drained():
            health = backend.health()
            return health.active_requests == 0 and health.queued_requests == 0

        wait_for(drained, timeout=120, interval=0.05)
        health = backend.health()
        # Every client left before its 64 tokens: each one is a cancellation, none was lost.
        assert health.cancelled_total - cancelled_before >= CLIENTS * 0.9
        assert health.max_steps_after_cancel <= 1
        with Client(busy_server.target, timeout=120) as client:
            answer = client.complete(prompt="Hello", max_tokens=4, temperature=0)
        assert answer.usage.completion_tokens >= 1
        time.sleep(0.5)  # late log lines of the last cancellations
        assert errors.lines == []
    finally:
        logging.getLogger().removeHandler(errors)
