"""Several `tokenwire serve` replicas on 127.0.0.1 behind Debian's nginx, for the replica tests.

- `Replica`: one `tokenwire serve` process; its output goes to files (a pipe nobody reads would
  fill up and stall the server), its ports come from the lines it prints at start.
- `Nginx`: nginx in the foreground with a generated config: gRPC on one port (`grpc_pass` over
  HTTP/2, h2c), HTTP on another (`proxy_pass`, unbuffered for SSE), both upstreams hashing on the
  `x-session-id` header (`hash $http_x_session_id consistent`), a connection error moving a
  request to the next replica (`*_next_upstream error`), and an access log that names the
  replica each request went to.

A missing nginx is an error that says what to install, never a skip.
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

from tests.e2e.cli_process import PORT_LINE, TOKENWIRE
from tests.helpers import wait_for
from tokenwire import Client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Replica:
    def __init__(self, name: str, *args: str, dsn: str, folder: pathlib.Path,
                 grpc_port: int = 0, rest_port: int = 0):
        self.name = name
        self.folder = folder
        self.dsn = dsn
        self.extra = list(args)
        # Fixed ports once chosen: a restarted replica comes back where nginx expects it.
        self.port = grpc_port or free_port()
        self.rest_port = rest_port or free_port()
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, *, wait_serving: bool = True) -> "Replica":
        self.starts += 1
        log = open(self.folder / f"{self.name}.{self.starts}.log", "w")
        args = [TOKENWIRE, "serve", "--host", "127.0.0.1", "--grpc-port", str(self.port),
                "--port", str(self.rest_port), "--request-timeout", "600", "--disable-rate-limit",
                "--shutdown-grace", "60", "--sessions-store", "postgres",
                "--models-dir", str(self.folder / f"{self.name}-models"), *self.extra]
        env = {**os.environ, "TOKENWIRE_SESSION_DSN": self.dsn}
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
        seen: set[str] = set()
        while seen != {"gRPC", "REST"}:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError(f"replica {self.name} exited ({self.proc.wait()}): "
                                     f"{(self.folder / f'{self.name}.{self.starts}.log').read_text()[-3000:]}")
            log.write(line)
            match = PORT_LINE.search(line)
            if match:
                seen.add(match.group(1))
        threading.Thread(target=self._copy, args=(self.proc.stdout, log), daemon=True).start()
        if wait_serving:
            self.wait_serving()
        return self

    @staticmethod
    def _copy(stream, log) -> None:
        for line in stream:
            log.write(line)
        log.close()

    def wait_serving(self, timeout: float = 120) -> None:
        with Client(self.target, timeout=5) as client:
            wait_for(lambda: client.health() == "SERVING", timeout=timeout, interval=0.05)

    def terminate(self, timeout: float = 90) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if not found:
        raise RuntimeError("nginx is missing: install Debian's nginx (tools/system-deps.sh "
                           "installs tools/system-packages.d/replicas.txt)")
    return found


NGINX_CONF = """\
{user}
worker_processes 1;
error_log {root}/error.log info;
pid {root}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    log_format routed '$server_port $upstream_addr "$http_x_session_id" $request_uri $status';

    upstream tokenwire_grpc {{
        hash $http_x_session_id consistent;
{grpc_servers}
        keepalive 16;
    }}
    upstream tokenwire_http {{
        hash $http_x_session_id consistent;
{http_servers}
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{grpc_port} http2;
        access_log {root}/access.log routed;
        location / {{
            grpc_pass grpc://tokenwire_grpc;
            grpc_next_upstream error timeout;
            grpc_connect_timeout 2s;
            grpc_read_timeout 600s;
            grpc_send_timeout 600s;
            grpc_set_header x-session-id $http_x_session_id;
        }}
    }}
    server {{
        listen 127.0.0.1:{http_port};
        access_log {root}/access.log routed;
        location / {{
            proxy_pass http://tokenwire_http;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_next_upstream error timeout;
            proxy_connect_timeout 2s;
            proxy_read_timeout 600s;
        }}
    }}
}}
"""


class Nginx:
    def __init__(self, replicas: list[Replica]):
        self.root = pathlib.Path(tempfile.mkdtemp(prefix="tokenwire-nginx-"))
        os.chmod(self.root, 0o755)
        self.grpc_port, self.http_port = free_port(), free_port()
        # max_fails=1: one refused connection takes a dead replica out for fail_timeout.
        server = "        server 127.0.0.1:{} max_fails=1 fail_timeout=5s;"
        conf = NGINX_CONF.format(
            user="user root;" if os.geteuid() == 0 else "", root=self.root,
            grpc_port=self.grpc_port, http_port=self.http_port,
            grpc_servers="\n".join(server.format(r.port) for r in replicas),
            http_servers="\n".join(server.format(r.rest_port) for r in replicas))
        (self.root / "nginx.conf").write_text(conf)
        self.proc: subprocess.Popen | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> "Nginx":
        binary = nginx_binary()
        check = subprocess.run([binary, "-t", "-p", str(self.root), "-c", str(self.root / "nginx.conf")],
                               capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stderr
        self.proc = subprocess.Popen([binary, "-p", str(self.root), "-c", str(self.root / "nginx.conf"),
                                      "-g", "daemon off;"], stdout=subprocess.DEVNULL,
                                     stderr=open(self.root / "stderr.log", "w"))

        def listening() -> bool:
            for port in (self.grpc_port, self.http_port):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                except OSError:
                    return False
            return True

        wait_for(listening, timeout=30, interval=0.05)
        return self

    def routes(self) -> list[tuple[str, str, str, str]]:
        """(upstream address, x-session-id, path, status) for each logged request, oldest first.
        An upstream address lists every replica tried ("a, b") when one refused."""
        path = self.root / "access.log"
        if not path.exists():
            return []
        pattern = re.compile(r'^\d+ (.+?) "(.*)" (\S+) (\d+)$')
        return [m.groups() for m in map(pattern.match, path.read_text().splitlines()) if m]

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def last_upstream(address: str) -> str:
    """The replica that answered: the last of the addresses nginx tried."""
    return address.split(",")[-1].strip()


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start
