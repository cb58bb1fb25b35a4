"""How `tokenwire serve` runs its REST bridge: by default inside the server process (one process),
with `--bridge gunicorn` in gunicorn's own processes. Either way users get the same HTTP API, and
a SIGTERM lets a running SSE stream finish."""

from __future__ import annotations

import json
import socket
import subprocess
import threading

import psutil
import pytest
import requests
import socketio

from tests.conftest import BAN_END_OF_GENERATION, CAPITAL_QUESTION
from tests.e2e.cli_process import TOKENWIRE, ServeProcess
from tests.helpers import wait_for


def chat(base_url: str) -> str:
    answer = requests.post(base_url + "/v1/chat/completions", timeout=120,
                           json={"messages": CAPITAL_QUESTION, "max_tokens": 8, "temperature": 0})
    assert answer.status_code == 200, answer.text
    return answer.json()["choices"][0]["message"]["content"]


@pytest.mark.parametrize("flags, bridge_processes", [((), 0), (("--bridge", "gunicorn"), 2)])
def test_the_bridge_runs_in_the_server_process_unless_gunicorn_is_asked_for(flags,
                                                                             bridge_processes):
    served = ServeProcess(*flags).start()
    try:
        assert "Paris" in chat(served.base_url)
        children = psutil.Process(served.proc.pid).children(recursive=True)
        assert len(children) == bridge_processes  # gunicorn: its master and one worker
        assert all("gunicorn" in " ".join(child.cmdline()) for child in children)
        assert served.terminate() == 0
    finally:
        served.kill()


def test_sigterm_during_an_sse_stream_lets_it_finish_and_exits_zero():
    served = ServeProcess("--shutdown-grace", "60").start()
    try:
        body = {"prompt": "Once upon a time", "max_tokens": 80, "temperature": 0, "stream": True,
                "logit_bias": {str(token): bias for token, bias in BAN_END_OF_GENERATION.items()}}
        with requests.post(served.base_url + "/v1/completions", json=body, stream=True,
                           timeout=120) as response:
            assert response.status_code == 200
            lines = response.iter_lines()
            first = next(line for line in lines if line)
            exit_code: list[int] = []
            stopper = threading.Thread(target=lambda: exit_code.append(served.terminate()))
            stopper.start()
            events = [first, *(line for line in lines if line)]
        stopper.join(60)
        assert events[-1] == b"data: [DONE]"
        chunks = [json.loads(event.removeprefix(b"data: ")) for event in events[:-1]]
        assert chunks[-1]["choices"][0]["finish_reason"] == "length"
        assert exit_code == [0]
    finally:
        served.kill()


def test_a_socketio_client_gets_events_over_a_websocket_from_the_in_process_bridge():
    served = ServeProcess().start()
    client = socketio.Client(reconnection=False)
    statuses: list[dict] = []
    client.on("model_status", statuses.append)
    try:
        client.connect(served.base_url, socketio_path="socket.io", transports=["websocket"],
                       wait_timeout=30)
        assert client.transport() == "websocket"
        status = wait_for(lambda: statuses, timeout=30)[0]
        assert status["model_id"] == "default" and status["status"] == "loaded"
    finally:
        client.disconnect()
        served.kill()


def test_a_rest_port_in_use_stops_the_server_with_a_clear_message():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = subprocess.run([TOKENWIRE, "serve", "--host", "127.0.0.1", "--grpc-port", "0",
                                 "--port", str(port)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert f"cannot start the REST bridge on port {port}" in result.stderr
