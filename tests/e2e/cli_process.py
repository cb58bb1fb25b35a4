"""Runs `tokenwire serve` as a user would: a subprocess, found by the port line it prints."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from tests.helpers import wait_for
from tokenwire import Client

TOKENWIRE = str(Path(sys.executable).parent / "tokenwire")
PORT_LINE = re.compile(r"gRPC listening on [\d.]+:(\d+)")


class ServeProcess:
    def __init__(self, *args: str, env: dict[str, str] | None = None):
        self.args = [TOKENWIRE, "serve", "--host", "127.0.0.1", "--grpc-port", "0", *args]
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen | None = None
        self.port = 0

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, *, wait_serving: bool = True) -> "ServeProcess":
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=self.env)
        line = self.proc.stdout.readline()  # blocks until the port line or exit
        match = PORT_LINE.search(line)
        if not match:
            self.proc.kill()
            raise AssertionError(f"no port line; got {line!r}; stderr: {self.proc.stderr.read()}")
        self.port = int(match.group(1))
        if not wait_serving:
            return self
        with Client(self.target, timeout=5) as client:
            wait_for(lambda: client.health() == "SERVING", timeout=60, interval=0.05)
        return self

    def terminate(self, timeout: float = 60) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
