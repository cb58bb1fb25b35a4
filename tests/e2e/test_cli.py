"""The `tokenwire` command as a user runs it."""

from __future__ import annotations

import os
import subprocess
import threading

import pytest

from tests.conftest import BAN_END_OF_GENERATION
from tests.e2e.cli_process import TOKENWIRE, ServeProcess
from tests.helpers import wait_for
from tokenwire import Client



def run(*args: str, timeout: float = 60, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([TOKENWIRE, *args], capture_output=True, text=True, timeout=timeout, env=env)


def test_version_and_help():
    assert run("--version").stdout.startswith("tokenwire ")
    serve_help = run("serve", "--help").stdout
    for flag in ("--config", "--port", "--grpc-port", "--host", "--log-level", "--model-path",
                 "--model-id", "--gpu-layers", "--context-size", "--main-gpu"):
        assert flag in serve_help


def test_serve_then_generate_streams_to_the_terminal():
    served = ServeProcess().start()
    try:
        out = run("generate", "What is the capital of France?", "--system", "Answer in one word.",
                  "--temperature", "0", "--max-tokens", "16", "--target", served.target, "--stats")
        assert out.returncode == 0, out.stderr
        assert "Paris" in out.stdout
        assert "tokens/s" in out.stderr
        bad = run("generate", "hi", "--top-p", "3", "--target", served.target)
        assert bad.returncode == 1 and "sampling.top_p" in bad.stderr
        assert served.terminate() == 0
    finally:
        served.kill()


def test_sigterm_during_a_stream_lets_it_finish_and_exits_zero():
    served = ServeProcess("--shutdown-grace", "60").start()
    try:
        with Client(served.target, timeout=120) as client:
            stream = client.generate(prompt="Tell me a long story.", temperature=0, max_tokens=150,
                                     logit_bias=BAN_END_OF_GENERATION)
            next(stream)
            exit_code: list[int] = []
            stopper = threading.Thread(target=lambda: exit_code.append(served.terminate()))
            stopper.start()
            rest = list(stream)
            stopper.join(60)
        assert rest[-1].finish_reason == "length"
        assert rest[-1].usage.completion_tokens == 150
        assert exit_code == [0]
    finally:
        served.kill()


def test_bad_config_value_exits_2_naming_the_key(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("server:\n  port: 'eighty'\n")
    out = run("serve", "--config", str(config))
    assert out.returncode == 2
    assert "server.port" in out.stderr and "Traceback" not in out.stderr

    out = run("serve", "--context-size", "-5")
    assert out.returncode == 2 and "engine.n_ctx" in out.stderr and "command line" in out.stderr


def test_bad_environment_value_exits_2_naming_the_variable():
    out = run("serve", env={**os.environ, "TOKENWIRE_SERVER_GRPC_PORT": "not-a-port"})
    assert out.returncode == 2
    assert "server.grpc_port" in out.stderr and "TOKENWIRE_SERVER_GRPC_PORT" in out.stderr


def _port_answers(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.parametrize("bridge", ["in-process", "gunicorn"])
def test_a_killed_server_takes_its_rest_bridge_with_it(bridge):
    """SIGKILL runs no shutdown code; a gunicorn bridge notices its parent is gone and frees the
    port (an in-process one goes with the process)."""
    served = ServeProcess("--bridge", bridge).start()
    try:
        assert _port_answers(served.rest_port)
        served.kill()
        wait_for(lambda: not _port_answers(served.rest_port), timeout=30)
    finally:
        served.kill()
