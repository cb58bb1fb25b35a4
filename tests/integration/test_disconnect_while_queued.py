"""HTTP clients that give up while their request waits in the engine's queue give their place back.

The story: the only sequence is busy with a long generation and one patient client waits first in
line; 20 clients POST chat and text completions (streamed and not) through the REST bridge behind
it and hang up while still queued. Their places come back at once, though they do not stand first
in line; none of them ever reaches the sequence (so none decodes a token), and a client that comes
next is queued and served instead of getting 429. For both ways the bridge runs:
werkzeug's threaded server (`tokenwire serve`'s default) and gunicorn.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading

import grpc
import pytest

from tests.conftest import BAN_END_OF_GENERATION
from tests.helpers import ServerThread, make_settings, wait_for
from tokenwire import Client
from tokenwire.v1 import engine_service_pb2 as engine_pb
from tokenwire.v1 import engine_service_pb2_grpc as engine_grpc

LEAVERS = 20
QUEUE_LIMIT = LEAVERS + 1  # the patient client and the leavers fill it


@pytest.fixture(scope="module")
def one_sequence_server():
    running = ServerThread(make_settings(engine={"n_parallel": 1, "max_queue": QUEUE_LIMIT})).start()
    yield running
    running.stop()


@pytest.fixture(params=["in-process", "gunicorn"])
def bridge_port(request, one_sequence_server):
    from rest_bridge.config import BridgeConfig
    from rest_bridge.serve import BridgeOptions, start_bridge

    bridge = start_bridge(BridgeConfig(grpc_target=one_sequence_server.target,
                                       request_timeout_s=600),
                          BridgeOptions(host="127.0.0.1", port=0, runtime=request.param))
    try:
        wait_for(lambda: _answers(bridge.port), timeout=60, interval=0.1)
        yield bridge.port
    finally:
        bridge.stop()
        bridge.finish(30)


def _answers(port: int) -> bool:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", "/v1/models")
        return connection.getresponse().status == 200
    except OSError:
        return False


class _Engine:
    """The default engine's scheduler as an operator sees it (EngineService/GetEngine)."""

    def __init__(self, server: ServerThread):
        self._server = server
        self._channel = grpc.insecure_channel(server.target)
        self._stub = engine_grpc.EngineServiceStub(self._channel)

    def scheduler(self):
        return self._stub.GetEngine(engine_pb.GetEngineRequest(engine_id="default"),
                                    timeout=30).engine.scheduler

    def queued(self) -> int:
        return self.scheduler().queued_requests

    def cancelled_total(self) -> int:
        return self._server.backend().health().cancelled_total

    def close(self) -> None:
        self._channel.close()


def _post(port: int, path: str, body: dict) -> socket.socket:
    """A raw HTTP client that sends its request and then reads nothing."""
    data = json.dumps(body).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
    return sock


class _LiveClient:
    """A streamed chat completion over http.client, read to its end on a thread of its own."""

    def __init__(self, port: int):
        self.answer: dict = {}
        self._port = port
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self._port, timeout=300)
        connection.request("POST", "/v1/chat/completions", body=json.dumps(
            {"model": "default", "max_tokens": 4, "stream": True,
             "messages": [{"role": "user", "content": "Say hello."}]}),
            headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        self.answer.update(status=response.status, body=response.read())

    def result(self) -> dict:
        self._thread.join(300)
        return self.answer


def _leaver_requests() -> list[tuple[str, dict]]:
    chat = {"model": "default", "max_tokens": 16,
            "messages": [{"role": "user", "content": "Say hello."}]}
    text = {"model": "default", "max_tokens": 16, "prompt": "Hello"}
    shapes = [("/v1/chat/completions", {**chat, "stream": True})] * 10 + \
             [("/v1/completions", {**text, "stream": True})] * 4 + \
             [("/v1/chat/completions", chat)] * 3 + [("/v1/completions", text)] * 3
    assert len(shapes) == LEAVERS
    return shapes


def test_clients_that_leave_while_queued_free_their_places(one_sequence_server, bridge_port):
    engine = _Engine(one_sequence_server)
    grpc_client = Client(one_sequence_server.target, timeout=600)
    # A long story holds the only sequence: everything after it waits in the queue.
    story = grpc_client.generate(prompt="Tell me a long story.", max_tokens=4000, temperature=0,
                                 logit_bias=BAN_END_OF_GENERATION)
    leavers: list[socket.socket] = []
    try:
        next(story)
        wait_for(lambda: engine.scheduler().active_sequences == 1, timeout=60)
        cancelled_before = engine.cancelled_total()

        patient = _LiveClient(bridge_port)  # first in line
        wait_for(lambda: engine.queued() == 1 or patient.answer, timeout=60, interval=0.05)
        leavers = [_post(bridge_port, path, body) for path, body in _leaver_requests()]
        wait_for(lambda: engine.queued() == QUEUE_LIMIT, timeout=60, interval=0.05)
        # The queue is full: one more is refused.
        refused = http.client.HTTPConnection("127.0.0.1", bridge_port, timeout=60)
        refused.request("POST", "/v1/completions", body=json.dumps({"prompt": "Hi", "max_tokens": 2}),
                        headers={"Content-Type": "application/json"})
        assert refused.getresponse().status == 429

        for sock in leavers:  # they all hang up before their turn
            sock.close()
        wait_for(lambda: engine.queued() == 1, timeout=30, interval=0.05)  # the patient one

        # The story still holds the only sequence, so none of them ever got to decode a token:
        # the server counted them cancelled while they were waiting.
        assert engine.scheduler().active_sequences == 1
        assert engine.cancelled_total() - cancelled_before == LEAVERS
        assert next(story).finish_reason is None  # still the same generation, going on
        assert not patient.answer

        # A client that comes now gets a place in the queue (no 429); both are served.
        latecomer = _LiveClient(bridge_port)
        wait_for(lambda: engine.queued() == 2 or latecomer.answer, timeout=60, interval=0.05)
        assert not latecomer.answer, f"answered while the sequence was busy: {latecomer.answer}"
        story.close()  # the story ends; the others' turns come
        for client in (patient, latecomer):
            answer = client.result()
            assert answer["status"] == 200
            assert answer["body"].rstrip().endswith(b"data: [DONE]")
        wait_for(lambda: engine.queued() == 0 and engine.scheduler().active_sequences == 0,
                 timeout=30)
    finally:
        story.close()
        for sock in leavers:
            sock.close()
        grpc_client.close()
        engine.close()
