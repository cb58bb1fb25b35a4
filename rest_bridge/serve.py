"""Runs the bridge under gunicorn's threaded workers, in a child process.

gunicorn forks, and forking a process that already runs gRPC threads is unsafe, so the bridge is
always its own process. The parent binds the listening socket itself and hands its descriptor to
gunicorn (`fd://`), so `--port 0` works and the caller knows the port before gunicorn starts.
With gthread each open stream holds one worker thread, so the thread count bounds concurrent
streams; responses are written as the app yields them (SSE is never buffered).
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
from dataclasses import dataclass

from rest_bridge import gunicorn_conf
from rest_bridge.config import BridgeConfig

# gunicorn's own knobs for the bridge.
DEFAULT_THREADS = 64


@dataclass(frozen=True)
class BridgeProcessOptions:
    host: str
    port: int
    threads: int = DEFAULT_THREADS
    graceful_timeout_s: float = 30.0
    log_level: str = "info"
    access_log: bool = False
    #: How long an idle keep-alive connection stays open (the server's idle_timeout).
    keepalive_s: float = 5.0


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def gunicorn_command(sock: socket.socket, options: BridgeProcessOptions) -> list[str]:
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


def start_bridge(config: BridgeConfig, options: BridgeProcessOptions) -> tuple[subprocess.Popen, int]:
    """Starts gunicorn serving the bridge; returns the process and the bound port."""
    sock = bind(options.host, options.port)
    try:
        port = sock.getsockname()[1]
        env = {**os.environ, **config.to_env(), gunicorn_conf.PARENT_PID_ENV: str(os.getpid())}
        process = subprocess.Popen(gunicorn_command(sock, options), pass_fds=(sock.fileno(),),
                                   env=env)
    finally:
        sock.close()  # gunicorn holds its own copy
    return process, port
