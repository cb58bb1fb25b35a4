"""Runs the bridge for `tokenwire serve` and `tokenwire bridge`, in one of two ways.

- **in-process** (`serve`'s default): werkzeug's threaded server on threads of the calling process
  (rest_bridge.threaded_server). One interpreter and one copy of gRPC serve both the server and the
  bridge.
- **gunicorn**: gthread workers in a child process. This is the one choice for `tokenwire bridge`.
  gunicorn forks, and forking a process that already runs gRPC threads is unsafe, so this bridge is
  always its own process. The parent binds the listening socket itself and hands its descriptor to
  gunicorn (`fd://`), so `--port 0` works and the caller knows the port before gunicorn starts.
  With gthread each open stream holds one worker thread, so the thread count bounds concurrent
  streams.

Either way, responses are written as the app yields them (SSE is never buffered), and stopping
closes the listening socket first and lets the requests in flight finish.
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal

from rest_bridge import gunicorn_conf
from rest_bridge.config import BridgeConfig

# Threads (gunicorn) or connections (in-process) served at once, unless the caller says.
DEFAULT_THREADS = 64

BridgeRuntime = Literal["in-process", "gunicorn"]


@dataclass(frozen=True)
class BridgeOptions:
    host: str
    port: int
    threads: int = DEFAULT_THREADS
    graceful_timeout_s: float = 30.0
    log_level: str = "info"
    access_log: bool = False
    #: How long an idle keep-alive connection stays open (the server's idle_timeout). gunicorn only:
    #: the in-process server closes every connection after its response.
    keepalive_s: float = 5.0
    #: How long a new connection may take to send its request line and headers (in-process only).
    header_timeout_s: float = 30.0
    runtime: BridgeRuntime = "gunicorn"


class RunningBridge(ABC):
    """A started bridge, whichever way it runs: its port, and how it ends."""

    port: int

    @abstractmethod
    def wait(self) -> int | None:
        """Blocks until the bridge stops serving (on its own, or after stop()); its exit status."""

    @abstractmethod
    def stop(self) -> None:
        """Stops accepting connections; requests in flight go on."""

    @abstractmethod
    def finish(self, timeout: float) -> bool:
        """Waits up to `timeout` for requests in flight, then ends them; False if it had to."""


class GunicornBridge(RunningBridge):
    def __init__(self, process: subprocess.Popen, port: int) -> None:
        self.process, self.port = process, port

    def wait(self) -> int | None:
        return self.process.wait()

    def stop(self) -> None:
        self.process.terminate()  # gunicorn: stop accepting, finish in-flight requests, exit

    def finish(self, timeout: float) -> bool:
        try:
            self.process.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return False


class InProcessBridge(RunningBridge):
    def __init__(self, server) -> None:  # rest_bridge.threaded_server.ThreadedBridgeServer
        self.server, self.port = server, server.port

    def wait(self) -> int | None:
        self.server.wait_stopped()
        return 1 if self.server.failure is not None else 0

    def stop(self) -> None:
        self.server.stop_accepting()

    def finish(self, timeout: float) -> bool:
        # Connection threads are daemons: whatever is left ends with the process.
        return self.server.wait_idle(timeout)


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def gunicorn_command(sock: socket.socket, options: BridgeOptions) -> list[str]:
    command = [
        sys.executable, "-m", "gunicorn",
        "--worker-class", "gthread", "--workers", "1", "--threads", str(options.threads),
        "--worker-connections", str(max(options.threads * 2, 100)),
        "--bind", f"fd://{sock.fileno()}",
        "--graceful-timeout", str(math.ceil(options.graceful_timeout_s)),
        "--keep-alive", str(max(1, math.ceil(options.keepalive_s))),
        "--log-level", options.log_level.lower(),
        "--error-logfile", "-",
        # gunicorn 27's control socket lives at one fixed path per user: two bridges would clash.
        "--no-control-socket",
        # A file path, not `python:rest_bridge.gunicorn_conf`: importing the module would import
        # the rest_bridge package (grpc, Flask) into the master, which never serves (~27 MiB).
        "--config", gunicorn_conf.__file__,
    ]
    if options.access_log:
        command += ["--access-logfile", "-"]
    return command + ["rest_bridge.wsgi:app"]


def start_bridge(config: BridgeConfig, options: BridgeOptions) -> RunningBridge:
    """Starts the bridge as `options.runtime` says; it serves when this returns."""
    sock = bind(options.host, options.port)
    try:
        if options.runtime == "in-process":
            return _start_in_process(sock, config, options)
        return _start_gunicorn(sock, config, options)
    finally:
        sock.close()  # the server holds its own copy


def _start_gunicorn(sock: socket.socket, config: BridgeConfig,
                    options: BridgeOptions) -> GunicornBridge:
    env = {**os.environ, **config.to_env(), gunicorn_conf.PARENT_PID_ENV: str(os.getpid())}
    process = subprocess.Popen(gunicorn_command(sock, options), pass_fds=(sock.fileno(),), env=env)
    return GunicornBridge(process, sock.getsockname()[1])


def _start_in_process(sock: socket.socket, config: BridgeConfig,
                      options: BridgeOptions) -> InProcessBridge:
    from rest_bridge import create_app
    from rest_bridge.threaded_server import ThreadedBridgeServer

    server = ThreadedBridgeServer(sock, create_app(config), max_connections=options.threads,
                                  header_timeout_s=options.header_timeout_s)
    server.start()
    return InProcessBridge(server)
