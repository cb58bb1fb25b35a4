"""`tokenwire serve` with a model it cannot use stops with a non-zero status and one line saying
which file and why, instead of running on without an engine (issue 22, item 5): a missing file or
one that is not a GGUF exits 2 before anything listens; a GGUF that fails to load exits 1 once the
load has failed, and its ports are closed."""

from __future__ import annotations

import os
import socket
import subprocess

import pytest

from server.config import embedded_model_path
from tests.e2e.cli_process import ServeProcess, read_ports
from tests.helpers import wait_for

EXIT_WAIT_S = 120  # a bound for a loaded 2-core machine, not a speed requirement


def serve(*args: str) -> ServeProcess:
    served = ServeProcess(*args)
    served.proc = subprocess.Popen(served.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, env=served.env)
    return served


def finish(served: ServeProcess) -> tuple[int, str, str]:
    try:
        out, err = served.proc.communicate(timeout=EXIT_WAIT_S)
    except subprocess.TimeoutExpired:
        served.kill()
        raise AssertionError("tokenwire serve kept running with a model it cannot load") from None
    return served.proc.returncode, out, err


def tokenwire_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("tokenwire: ")]


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def truncated_gguf(tmp_path) -> str:
    """The embedded model's header and tensor table with half its weights cut off."""
    source = embedded_model_path()
    path = tmp_path / "truncated.gguf"
    with open(source, "rb") as src:
        path.write_bytes(src.read(os.path.getsize(source) // 2))
    return str(path)


def test_a_missing_model_file_exits_2_naming_it_before_listening(tmp_path):
    missing = tmp_path / "no-such-model.gguf"
    status, out, err = finish(serve("--model-path", str(missing)))
    assert status == 2
    assert tokenwire_lines(err) == [
        f"tokenwire: model file {missing} (engine 'default') does not exist"]
    assert "listening" not in out and "Traceback" not in err


def test_a_file_that_is_not_a_gguf_exits_2_naming_it_before_listening(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(os.urandom(64 * 1024))
    status, out, err = finish(serve("--model-path", str(bad)))
    assert status == 2
    assert tokenwire_lines(err) == [f"tokenwire: model file {bad} (engine 'default') is not a GGUF file"]
    assert "listening" not in out and "Traceback" not in err


@pytest.mark.parametrize("bridge", ["in-process", "gunicorn"])
def test_a_gguf_that_fails_to_load_exits_1_and_closes_its_ports(tmp_path, bridge):
    model = truncated_gguf(tmp_path)
    served = serve("--model-path", model, "--bridge", bridge)
    try:
        ports = read_ports(served.proc, {"gRPC", "REST"})
        status, _, err = finish(served)
    finally:
        served.kill()
    assert status == 1
    [line] = [line for line in tokenwire_lines(err) if "failed to load" in line]
    assert line.startswith("tokenwire: engine 'default' failed to load") and model in line
    assert "Traceback" not in err
    # Nothing is left listening: not the gRPC port, not the bridge (a gunicorn child included).
    wait_for(lambda: not answers(ports["gRPC"]) and not answers(ports["REST"]), timeout=30)


def test_with_several_engines_one_that_fails_to_load_stops_the_server(tmp_path):
    """The default engine loads; another one asked for at start-up does not: the server exits 1
    naming that one, rather than serving without it."""
    broken = truncated_gguf(tmp_path)
    config = tmp_path / "config.yaml"
    config.write_text("models:\n"
                      f"  - id: small\n    path: '{embedded_model_path()}'\n"
                      f"  - id: broken\n    path: '{broken}'\n    load_immediately: true\n")
    served = serve("--config", str(config))
    try:
        read_ports(served.proc, {"gRPC", "REST"})
        status, _, err = finish(served)
    finally:
        served.kill()
    assert status == 1
    failed = [line for line in tokenwire_lines(err) if "failed to load" in line]
    assert len(failed) == 1 and failed[0].startswith("tokenwire: engine 'broken' failed to load")
    assert broken in failed[0]


def test_a_lazy_engine_whose_file_is_missing_is_refused_at_start(tmp_path):
    """A model loaded on first use is checked at start too: its file must be there and be a GGUF."""
    config = tmp_path / "config.yaml"
    missing = tmp_path / "later.gguf"
    config.write_text("models:\n"
                      f"  - id: small\n    path: '{embedded_model_path()}'\n"
                      f"  - id: later\n    path: '{missing}'\n    load_immediately: false\n")
    status, out, err = finish(serve("--config", str(config)))
    assert status == 2
    assert tokenwire_lines(err) == [f"tokenwire: model file {missing} (engine 'later') does not exist"]
    assert "listening" not in out
