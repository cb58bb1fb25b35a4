"""Serves the bridge from threads of the process that calls it (werkzeug's threaded WSGI server).

This is how `tokenwire serve` runs the bridge by default. One process instead of three (the
server, gunicorn's master and its worker) holds one interpreter and one copy of gRPC and the
generated messages: about 75 MiB less (bench/load.py, 8 streams). The GIL is not a bottleneck:
llama.cpp decodes outside it, and the bridge spends its time blocked on sockets and gRPC calls
(tokens/s through SSE measured the same as with gunicorn).

What differs from gunicorn, and how it is bounded:
- Each connection has its own thread, up to `max_connections` at once. Past that, new
  connections wait in the listen backlog, as they do in front of a busy gunicorn.
- werkzeug answers every request with `Connection: close`, so an idle client holds no thread and
  there is no keep-alive timeout to tune.
- The request line and headers must arrive within `header_timeout_s`, or the connection is dropped
  (a stalled or hostile client cannot keep a thread). After the headers the socket blocks without
  a deadline, so long streams and idle WebSockets are not cut.
- Stopping closes the listening socket at once and lets requests in flight finish; `wait_idle`
  waits for them.
- A WebSocket (flask-sock's routes, socket.io's transport) takes the connection over from HTTP:
  the app reads and writes the raw socket werkzeug hands it as `werkzeug.socket`. Once it has,
  werkzeug must write nothing more on it. flask-sock answers werkzeug with an empty 200 response
  after its handler returns, and werkzeug would write `HTTP/1.1 200 OK ...` after the close frame
  and then read the socket to "drain" it, racing the WebSocket's own reader for the client's close
  reply (a Node WebSocket then never fired `close`). Here the socket an app is given records that
  it was used; a used one ends the request without a response, and the connection is closed only
  once the WebSocket has let go of it (the close handshake is complete), or after
  `WEBSOCKET_CLOSE_TIMEOUT_S`.
"""

from __future__ import annotations

import logging
import socket
import threading
import time

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

ACCESS_LOGGER = "tokenwire.access.http"
log = logging.getLogger(__name__)
access_log = logging.getLogger(ACCESS_LOGGER)

#: How often a full server's accept loop looks whether it is being stopped.
_FULL_POLL_S = 0.25

#: How long a connection waits, after its WebSocket handler returned, for the client's answer to
#: the close frame (the WebSocket's reader lets go of the socket when it arrives).
WEBSOCKET_CLOSE_TIMEOUT_S = 10.0


class _HandedOver(ConnectionAbortedError):
    """The request's socket carries a WebSocket now: werkzeug must write no response on it.

    A ConnectionError is werkzeug's own signal for "this connection is gone", on which it writes
    nothing and does not read the socket again (engine.io raises one for the same reason)."""


class _ConnectionSocket:
    """The connection's socket as a WSGI app sees it (`environ["werkzeug.socket"]`).

    Everything is passed to the real socket. What it records: that the app wrote on it (the
    101 of a WebSocket handshake: the connection is no longer HTTP; a peek to see whether the
    client left is not a write), and that the app let go of it (`close()`: simple-websocket's
    reader calls it once the close handshake is over or the peer went away). The connection's
    handler, which owns the socket, closes it afterwards."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.used = False
        self.released = threading.Event()

    def __getattr__(self, name: str):
        return getattr(self._sock, name)

    def send(self, data, *flags) -> int:
        self.used = True
        return self._sock.send(data, *flags)

    def sendall(self, data, *flags) -> None:
        self.used = True
        self._sock.sendall(data, *flags)

    def close(self) -> None:
        self.released.set()


def _no_response_after_a_websocket(app):
    """Wraps the WSGI app: a request whose socket the app used ends without an HTTP response."""
    def wsgi(environ, start_response):
        result = app(environ, start_response)
        connection = environ.get("werkzeug.socket")
        if isinstance(connection, _ConnectionSocket) and connection.used:
            if hasattr(result, "close"):
                result.close()
            raise _HandedOver()
        return result
    return wsgi


class _Handler(WSGIRequestHandler):
    # StreamRequestHandler applies `timeout` to the socket when the connection starts; the server
    # sets it per instance (see ThreadedBridgeServer).
    timeout: float | None = None
    server: ThreadedBridgeServer

    def parse_request(self) -> bool:
        parsed = super().parse_request()
        # The headers are in: from here on the body, a long stream or a WebSocket may take as long
        # as it takes.
        self.connection.settimeout(None)
        return parsed

    def make_environ(self):
        environ = super().make_environ()
        self._socket = environ["werkzeug.socket"] = _ConnectionSocket(self.connection)
        return environ

    def run_wsgi(self) -> None:
        self._socket = None
        super().run_wsgi()
        if self._socket is not None and self._socket.used:
            # Nothing after a WebSocket is HTTP: no next request on this connection. The socket is
            # closed once the WebSocket's reader has the client's close reply; one that never
            # comes is cut, which also wakes that reader.
            self.close_connection = True
            if not self._socket.released.wait(WEBSOCKET_CLOSE_TIMEOUT_S):
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        access_log.info('%s "%s" %s %s', self.address_string(), self.requestline, code, size)

    def log_error(self, format: str, *args) -> None:  # noqa: A002 (BaseHTTPRequestHandler's name)
        log.info("%s: %s", self.address_string(), format % args)

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        log.debug("%s: %s", self.address_string(), format % args)


class ThreadedBridgeServer(ThreadedWSGIServer):
    """werkzeug's threaded server with a bound on connections and a stop that lets them finish."""

    def __init__(self, sock: socket.socket, app, *, max_connections: int,
                 header_timeout_s: float) -> None:
        host, port = sock.getsockname()[:2]
        handler = type("BridgeHandler", (_Handler,), {"timeout": header_timeout_s})
        # werkzeug adopts a duplicate of the descriptor; the caller closes its own.
        super().__init__(host, port, _no_response_after_a_websocket(app), handler=handler,
                         fd=sock.fileno())
        self._slots = threading.BoundedSemaphore(max_connections)
        self._stopping = threading.Event()
        self._active = 0
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self.failure: BaseException | None = None

    # --- socketserver hooks ---------------------------------------------------------------

    def process_request(self, request, client_address) -> None:
        while not self._slots.acquire(timeout=_FULL_POLL_S):
            if self._stopping.is_set():
                self.shutdown_request(request)
                return
        with self._changed:
            self._active += 1
        try:
            super().process_request(request, client_address)  # starts the connection's thread
        except BaseException:
            self._finished()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._finished()

    def _finished(self) -> None:
        self._slots.release()
        with self._changed:
            self._active -= 1
            self._changed.notify_all()

    # --- life cycle -------------------------------------------------------------------------

    @property
    def active_connections(self) -> int:
        with self._changed:
            return self._active

    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name="rest-bridge", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            self.serve_forever(poll_interval=0.5)
        except BaseException as exc:  # noqa: BLE001 (the owner decides what a dead bridge means)
            self.failure = exc
            log.exception("the REST bridge stopped serving")

    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait_stopped(self, timeout: float | None = None) -> bool:
        """Blocks until the accept loop has ended (after stop_accepting, or on a failure)."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running()

    def stop_accepting(self) -> None:
        """Closes the listening socket; requests in flight go on."""
        self._stopping.set()
        if self.running():
            self.shutdown()  # ends the accept loop
        # Closed here, not left to werkzeug's serve_forever: it closes the socket only after
        # shutdown() has returned, and a client connecting in between would be accepted by the
        # kernel and never answered.
        self.server_close()

    def wait_idle(self, timeout: float) -> bool:
        """Waits for every connection to end; False if some were still open at the deadline."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._active:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True
