"""The in-process bridge server (rest_bridge.threaded_server) with a small WSGI app: it bounds
connections, drops clients that never send their headers without cutting long streams, and stops
by refusing new connections while the ones in flight finish."""

from __future__ import annotations

import http.client
import socket
import threading
import time

import pytest

from rest_bridge.serve import bind
from rest_bridge.threaded_server import ThreadedBridgeServer
from tests.helpers import wait_for


class App:
    """/hold blocks until released; /stream sends three chunks with pauses; /echo answers with the
    request body; anything else answers its path at once."""

    def __init__(self):
        self.release = threading.Event()
        self.entered: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        path = environ["PATH_INFO"]
        with self.lock:
            self.entered.append(path)
        if path == "/hold":
            self.release.wait(30)
        start_response("200 OK", [("Content-Type", "text/plain")])
        if path == "/stream":
            return self._stream()
        if path == "/echo":
            return [environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))]
        return [path.encode()]

    @staticmethod
    def _stream():
        for part in (b"one ", b"two ", b"three"):
            yield part
            time.sleep(0.4)

    def count(self, path: str) -> int:
        with self.lock:
            return self.entered.count(path)


@pytest.fixture
def served():
    def start(*, max_connections: int = 8, header_timeout_s: float = 5.0):
        app = App()
        sock = bind("127.0.0.1", 0)
        server = ThreadedBridgeServer(sock, app, max_connections=max_connections,
                                      header_timeout_s=header_timeout_s)
        sock.close()
        server.start()
        started.append((server, app))
        return server, app

    started: list[tuple[ThreadedBridgeServer, App]] = []
    yield start
    for server, app in started:
        app.release.set()
        server.stop_accepting()
        server.wait_idle(10)


def get(port: int, path: str, results: dict | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        answer = (response.status, response.read())
    finally:
        connection.close()
    if results is not None:
        results[path] = answer
    return answer


def in_thread(target, *args) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def test_connections_past_the_limit_wait_until_one_ends(served):
    server, app = served(max_connections=2)
    results: dict = {}
    holders = [in_thread(get, server.port, "/hold") for _ in range(2)]
    wait_for(lambda: app.count("/hold") == 2, timeout=10)

    waiting = in_thread(get, server.port, "/", results)
    waiting.join(0.5)
    assert waiting.is_alive() and app.count("/") == 0  # accepted by the kernel, not served yet
    assert server.active_connections == 2

    app.release.set()
    waiting.join(10)
    assert results["/"] == (200, b"/")
    for holder in holders:
        holder.join(10)
    wait_for(lambda: server.active_connections == 0, timeout=10)


def test_a_silent_client_is_dropped_but_what_follows_the_headers_may_take_its_time(served):
    server, _app = served(header_timeout_s=0.3)
    silent = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        assert silent.recv(1) == b""  # closed by the server: no request line within 0.3 s
    finally:
        silent.close()

    # The headers arrive at once, the body after twice the header timeout (as an upload, or the
    # next WebSocket frame, may): it is read, not cut.
    slow = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        slow.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n")
        time.sleep(0.6)  # the pause under test, not a wait for something
        slow.sendall(b"hello")
        answer = b""
        while chunk := slow.recv(4096):
            answer += chunk
    finally:
        slow.close()
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"\r\nhello\r\n0\r\n\r\n")

    # Three chunks 0.4 s apart: the stream outlives the header timeout and arrives whole.
    assert get(server.port, "/stream") == (200, b"one two three")


def test_every_response_closes_its_connection(served):
    server, _app = served()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request("GET", "/")
        response = connection.getresponse()
        assert response.read() == b"/" and response.getheader("Connection") == "close"
    finally:
        connection.close()
    wait_for(lambda: server.active_connections == 0, timeout=10)


def test_stopping_refuses_new_connections_and_lets_those_in_flight_finish(served):
    server, app = served()
    results: dict = {}
    holder = in_thread(get, server.port, "/hold", results)
    wait_for(lambda: app.count("/hold") == 1, timeout=10)

    server.stop_accepting()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=5)
    assert not server.wait_idle(0.2)  # the held request is still going

    app.release.set()
    assert server.wait_idle(10)
    holder.join(10)
    assert results["/hold"] == (200, b"/hold")
    assert not server.running()
