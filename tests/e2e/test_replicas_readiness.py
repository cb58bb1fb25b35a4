"""Readiness that means ready, on a real `tokenwire serve` process: a grpc.health.v1 Watch (what a
Kubernetes gRPC probe or a gateway reads) sees NOT_SERVING until the default engine can serve,
then SERVING; on SIGTERM it sees NOT_SERVING again while the stream in flight runs to its end,
new work is refused with UNAVAILABLE, and the process exits 0."""

from __future__ import annotations

import subprocess
import threading

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.conftest import BAN_END_OF_GENERATION
from tests.e2e.cli_process import PORT_LINE, TOKENWIRE
from tests.helpers import wait_for
from tokenwire import Client
from tokenwire.errors import UnavailableError

NAMES = ("", "tokenwire.v1.GenerationService", "tokenwire.engine/default")


def _watch(target: str, service: str, seen: list[str]) -> None:
    try:
        with grpc.insecure_channel(target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            for response in stub.Watch(health_pb2.HealthCheckRequest(service=service), timeout=300):
                name = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
                if not seen or seen[-1] != name:
                    seen.append(name)
    except grpc.RpcError:
        pass  # the server went away: the watch ends


def test_health_watch_sees_loading_serving_and_draining_and_the_stream_finishes(tmp_path):
    log = open(tmp_path / "serve.log", "w")
    proc = subprocess.Popen(
        [TOKENWIRE, "serve", "--host", "127.0.0.1", "--grpc-port", "0", "--port", "0",
         "--disable-rate-limit", "--shutdown-grace", "60", "--sessions-db", str(tmp_path / "s.db"),
         "--models-dir", str(tmp_path / "models")],
        stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        line = proc.stdout.readline()  # the gRPC port is printed before the model loads
        match = PORT_LINE.search(line)
        assert match and match.group(1) == "gRPC", line
        target = f"127.0.0.1:{match.group(2)}"
        seen = {name: [] for name in NAMES}
        watchers = [threading.Thread(target=_watch, args=(target, name, seen[name]), daemon=True)
                    for name in NAMES]
        for watcher in watchers:
            watcher.start()
        wait_for(lambda: all(s and s[-1] == "SERVING" for s in seen.values()), timeout=120)
        # The model loads after the port opens: every watch saw it not ready first.
        assert all(s == ["NOT_SERVING", "SERVING"] for s in seen.values()), seen

        with Client(target, timeout=120) as client:
            stream = client.generate(messages=[{"role": "user", "content": "Write a long story."}],
                                     max_tokens=48, logit_bias=BAN_END_OF_GENERATION, temperature=0.0)
            first = next(stream)
            proc.send_signal(15)  # SIGTERM, as Kubernetes sends it
            wait_for(lambda: all(s[-1] == "NOT_SERVING" for s in seen.values()), timeout=30)
            with pytest.raises(UnavailableError):  # draining: no new work
                list(client.generate(prompt="Hello", max_tokens=2))
            rest = list(stream)  # the stream in flight runs to its end
        assert rest[-1].finish_reason == "length"
        assert rest[-1].usage.completion_tokens == 48
        assert first.text is not None
        assert proc.wait(90) == 0
        for watcher in watchers:
            watcher.join(10)
        assert all(s == ["NOT_SERVING", "SERVING", "NOT_SERVING"] for s in seen.values()), seen
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        log.close()
