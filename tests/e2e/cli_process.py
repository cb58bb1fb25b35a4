"""Runs `tokenwire serve` as a user would: a subprocess, found by the port line it prints."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from tests.helpers import wait_for
from tokenwire import Client

TOKENWIRE = str(Path(sys.executable).parent / "tokenwire")
PORT_LINE = re.compile(r"(gRPC|REST) listening on [\d.]+:(\d+)")


def read_ports(proc: subprocess.Popen, expected: set[str]) -> dict[str, int]:
    """Reads the 'X listening on HOST:PORT' lines a tokenwire process prints at start."""
    ports: dict[str, int] = {}
    while set(ports) != expected:
        line = proc.stdout.readline()  # blocks until the next line or exit
        match = PORT_LINE.search(line)
        if not match:
            proc.kill()
            raise AssertionError(f"expected a port line; got {line!r}; stderr: {proc.stderr.read()}")
        ports[match.group(1)] = int(match.group(2))
    return ports


class OutputDrain:
    """Reads a child's stdout and stderr to the end in threads, once its port lines are read.

    Nobody reads a child's pipes while a test talks to it; a child that writes more than a pipe
    holds (64 KiB: DEBUG logs, repeated warnings) would block in its next write, with whatever
    lock it holds, and every request it serves would hang. Draining keeps it running; what it
    wrote is kept for the test and for the sentinel check."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self._buffers = {"stdout": io.StringIO(), "stderr": io.StringIO()}
        self._threads = [threading.Thread(target=self._copy, args=(name,), daemon=True)
                         for name in self._buffers]
        for thread in self._threads:
            thread.start()

    def _copy(self, name: str) -> None:
        for line in getattr(self.proc, name):
            self._buffers[name].write(line)

    def finish(self, timeout: float) -> tuple[str, str]:
        """Waits for the child to exit (TimeoutExpired if it does not) and returns what it wrote
        after its port lines: (stdout, stderr)."""
        self.proc.wait(timeout)
        for thread in self._threads:
            thread.join(10)
        return self._buffers["stdout"].getvalue(), self._buffers["stderr"].getvalue()


class ServeProcess:
    def __init__(self, *args: str, env: dict[str, str] | None = None):
        self.args = [TOKENWIRE, "serve", "--host", "127.0.0.1", "--grpc-port", "0", "--port", "0",
                     "--request-timeout", "600", *args]
        # A fresh session database per process, unless the test chose one.
        self.env = {**os.environ,
                    "TOKENWIRE_SESSIONS_STORE_PATH": f"{tempfile.mkdtemp(prefix='tokenwire-sessions-')}/sessions.db",
                    **(env or {})}
        self.proc: subprocess.Popen | None = None
        self.drain: OutputDrain | None = None
        self.port = 0
        self.rest_port = 0

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    def start(self, *, wait_serving: bool = True) -> "ServeProcess":
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=self.env)
        ports = read_ports(self.proc, {"gRPC", "REST"})
        self.port, self.rest_port = ports["gRPC"], ports["REST"]
        self.drain = OutputDrain(self.proc)
        if not wait_serving:
            return self
        with Client(self.target, timeout=5) as client:
            wait_for(lambda: client.health() == "SERVING", timeout=60, interval=0.05)
        return self

    def terminate(self, timeout: float = 60) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def output(self, timeout: float = 60) -> tuple[str, str]:
        """(stdout, stderr) written after the port lines, once the process has exited."""
        return self.drain.finish(timeout)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class BridgeProcess:
    """`tokenwire bridge` in front of a gRPC server: gunicorn (its default) or in-process."""

    def __init__(self, grpc_target: str, *args: str, env: dict[str, str] | None = None,
                 runtime: str = "gunicorn"):
        self.args = [TOKENWIRE, "bridge", "--grpc-target", grpc_target, "--host", "127.0.0.1",
                     "--port", "0", "--max-request-size", str(64 * 1024), "--request-timeout", "600",
                     "--runtime", runtime, *args]
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen | None = None
        self.drain: OutputDrain | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "BridgeProcess":
        import urllib.error
        import urllib.request

        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=self.env)
        self.port = read_ports(self.proc, {"REST"})["REST"]
        self.drain = OutputDrain(self.proc)

        def answers() -> bool:
            try:
                with urllib.request.urlopen(self.base_url + "/v1/models", timeout=2) as response:
                    return response.status == 200
            except urllib.error.HTTPError as error:
                return error.code == 401  # keys required: up, and refusing strangers
            except OSError:
                return False

        wait_for(answers, timeout=30, interval=0.05)
        return self

    def stop(self) -> int:
        """SIGTERM, then the exit code; what the bridge printed joins the sentinel check."""
        from tests import sentinel

        self.proc.send_signal(signal.SIGTERM)
        try:
            out, err = self.drain.finish(timeout=30)
            sentinel.captured_output.extend([out, err])
            return self.proc.returncode
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
