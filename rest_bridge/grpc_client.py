"""The bridge's gRPC channel, owned by the Flask app (`init_app`) and closed when the process exits.

Every stub and the transcoder call through `BridgeChannel`, which gives all route families the
same behaviour without any view doing anything:

- the request's credentials and request id travel as call metadata, with the client's address
  vouched for by the bridge secret (the server ignores an address without it);
- unary calls get the configured deadline (504 / DEADLINE_EXCEEDED past it) and are cancelled
  when the HTTP client disconnects while waiting, so the engine stops (`wait_while_connected`,
  which rest_bridge.streaming uses too while a stream waits for its first message);
- each call is remembered for the request, so rate-limit metadata the server sends becomes HTTP
  headers (`copy_rate_limit_headers`), whatever the route family.
"""

from __future__ import annotations

import atexit
import socket
import time
from typing import Any, Callable, Mapping

import grpc
from flask import Flask, Response, current_app, g, has_request_context, request
from werkzeug.exceptions import HTTPException

from tokenwire.client import affinity_value
from tokenwire.v1 import (auth_service_pb2_grpc, benchmark_service_pb2_grpc,
                          download_service_pb2_grpc, engine_service_pb2_grpc,
                          generation_service_pb2_grpc, hardware_service_pb2_grpc,
                          log_service_pb2_grpc, metrics_service_pb2_grpc, model_service_pb2_grpc,
                          server_service_pb2_grpc, session_service_pb2_grpc,
                          status_service_pb2_grpc)

EXTENSION = "tokenwire.grpc"
BRIDGE_SECRET_KEY = "x-tokenwire-bridge-secret"
CLIENT_ADDRESS_KEY = "x-tokenwire-client-address"
BRIDGE_RELAY_KEY = "x-tokenwire-bridge-relay"
# How often a waiting unary call looks for a client that went away.
DISCONNECT_POLL_S = 0.25

# Metadata the server sends that becomes HTTP headers, with their HTTP spelling.
RATE_LIMIT_HEADERS = {
    f"{prefix}-{name}": f"{http_prefix}-{name.capitalize()}"
    for prefix, http_prefix in (("x-ratelimit", "X-RateLimit"), ("x-rate-limit", "X-Rate-Limit"))
    for name in ("limit", "remaining", "reset")
}
RATE_LIMIT_HEADERS["retry-after"] = "Retry-After"

# Headers the server needs to see; the API key header configured on the server joins them.
REQUEST_ID_HEADER = "x-request-id"
FORWARDED_HEADERS = (REQUEST_ID_HEADER, "authorization", "x-api-key", "x-session-id")
# Session affinity (issue 20): every call whose request names a session carries the session's id
# as this header, so a load balancer that hashes on it keeps the session on one replica.
SESSION_HEADER = "x-session-id"


def session_affinity(message: Any) -> tuple[tuple[str, str], ...]:
    """(x-session-id, id) for a request message with a session_id field set; nothing otherwise."""
    session_id = getattr(message, "session_id", "")
    if not (isinstance(session_id, str) and session_id):
        return ()
    return ((SESSION_HEADER, affinity_value(session_id)),)


class ClientGone(HTTPException):
    code = 499
    description = "the client closed the connection"


class GrpcClient:
    def __init__(self, channel: grpc.Channel, *, owns_channel: bool):
        self.channel = channel
        self._owns_channel = owns_channel
        self.generation = generation_service_pb2_grpc.GenerationServiceStub(channel)
        self.engines = engine_service_pb2_grpc.EngineServiceStub(channel)
        self.auth = auth_service_pb2_grpc.AuthServiceStub(channel)
        self.models = model_service_pb2_grpc.ModelServiceStub(channel)
        self.server = server_service_pb2_grpc.ServerServiceStub(channel)
        self.downloads = download_service_pb2_grpc.DownloadServiceStub(channel)
        self.sessions = session_service_pb2_grpc.SessionServiceStub(channel)
        self.hardware = hardware_service_pb2_grpc.HardwareServiceStub(channel)
        self.metrics = metrics_service_pb2_grpc.MetricsServiceStub(channel)
        self.status = status_service_pb2_grpc.StatusServiceStub(channel)
        self.logs = log_service_pb2_grpc.LogServiceStub(channel)
        self.benchmark = benchmark_service_pb2_grpc.BenchmarkServiceStub(channel)

    def relay(self) -> "GrpcClient":
        """A client on the same connection for the socket.io relay's own calls, which run outside
        any HTTP request and are vouched for as the relay's (see BridgeChannel.metadata)."""
        return GrpcClient(self.channel.as_relay(), owns_channel=False)

    def close(self) -> None:
        if self._owns_channel:
            self._owns_channel = False
            self.channel.close()


def _is_loopback_target(target: str) -> bool:
    """Whether a gRPC target names this machine (host:port, [v6]:port, dns:///, unix:)."""
    for scheme in ("dns:///", "ipv4:", "ipv6:"):
        target = target.removeprefix(scheme)
    if target.startswith("unix:"):
        return True
    if target.startswith("["):
        host = target[1:target.find("]")]
    else:
        host = target.rpartition(":")[0] if target.count(":") == 1 else target
    return host in ("localhost", "::1") or host.startswith("127.")


def init_app(app: Flask, target: str, *, max_message_bytes: int,
             channel: grpc.Channel | None = None, request_timeout_s: float | None = None,
             bridge_secret: str = "") -> GrpcClient:
    owns = channel is None
    if channel is None:
        options = [("grpc.max_send_message_length", max_message_bytes),
                   ("grpc.max_receive_message_length", max_message_bytes)]
        if _is_loopback_target(target):
            # gRPC honours https_proxy: a machine with a proxy set and no no_proxy for loopback
            # would send the bridge's calls to its own server through the proxy.
            options.append(("grpc.enable_http_proxy", 0))
        channel = grpc.insecure_channel(target, options=options)
    from rest_bridge import policy

    policy.init_app(app, channel)  # the raw channel: fetching the policy needs no forwarding
    client = GrpcClient(BridgeChannel(channel, request_timeout_s=request_timeout_s,
                                      bridge_secret=bridge_secret), owns_channel=owns)
    if owns:
        atexit.register(client.close)
    app.extensions[EXTENSION] = client
    app.after_request(copy_rate_limit_headers)
    return client


def grpc_client() -> GrpcClient:
    return current_app.extensions[EXTENSION]


def forwarded_metadata() -> tuple[tuple[str, str], ...]:
    """The incoming request's headers that travel to the gRPC server as call metadata: the
    standard ones and the API key header the server is configured with (which may change live),
    and the current trace context (W3C traceparent/tracestate of the bridge's request span)."""
    from rest_bridge.policy import current_policy
    from rest_bridge.tracing import trace_metadata

    return header_metadata(request.headers, current_policy().api_key_header) + trace_metadata()


def header_metadata(headers: Mapping[str, str], api_key_header: str) -> tuple[tuple[str, str], ...]:
    """FORWARDED_HEADERS and the configured API key header, those present in `headers` (in ASCII,
    as gRPC metadata must be), as (lowercase name, value) pairs."""
    names = FORWARDED_HEADERS
    custom = api_key_header.lower()
    if custom not in names:
        names = (*names, custom)
    return tuple((name, headers[name]) for name in names
                 if name in headers and headers[name].isascii())


# -- the channel ----------------------------------------------------------------------------------


class BridgeChannel(grpc.Channel):
    def __init__(self, inner: grpc.Channel, *, request_timeout_s: float | None, bridge_secret: str,
                 relay: bool = False):
        self._inner = inner
        self._timeout = request_timeout_s
        self._secret = bridge_secret
        self._relay = relay

    def as_relay(self) -> "BridgeChannel":
        """The same connection, vouching for the socket.io relay's calls."""
        return BridgeChannel(self._inner, request_timeout_s=self._timeout,
                             bridge_secret=self._secret, relay=True)

    def metadata(self, given: Any, message: Any = None) -> tuple[tuple[str, str], ...]:
        """`given` (what the view passed, usually forwarded_metadata()), without any name the
        client may not set, plus the session affinity of `message` and the bridge's own vouching."""
        pairs = [(k, v) for k, v in (given or ()) if not k.lower().startswith("x-tokenwire-")]
        affinity = session_affinity(message)
        if affinity:  # the session the call names wins over a header the client sent
            pairs = [(k, v) for k, v in pairs if k.lower() != SESSION_HEADER] + list(affinity)
        if not has_request_context():
            # Only the relay's channel vouches for a call made outside a request (the relay
            # checked its clients' keys when they connected; the server lets it call user-level
            # methods, never admin ones). Any other such call goes out as what it carries.
            if self._secret and self._relay:
                pairs += [(BRIDGE_SECRET_KEY, self._secret), (BRIDGE_RELAY_KEY, "socket.io")]
            return tuple(pairs)
        names = {k for k, _ in pairs}
        pairs += [(k, v) for k, v in forwarded_metadata() if k not in names]
        if self._secret:
            pairs += [(BRIDGE_SECRET_KEY, self._secret),
                      (CLIENT_ADDRESS_KEY, request.remote_addr or "unknown")]
        return tuple(pairs)

    def unary_unary(self, method, *args, **kwargs):
        return _UnaryUnary(self, self._inner.unary_unary(method, *args, **kwargs))

    def unary_stream(self, method, *args, **kwargs):
        return _Streaming(self, self._inner.unary_stream(method, *args, **kwargs))

    def stream_unary(self, method, *args, **kwargs):
        return _Streaming(self, self._inner.stream_unary(method, *args, **kwargs))

    def stream_stream(self, method, *args, **kwargs):
        return _Streaming(self, self._inner.stream_stream(method, *args, **kwargs))

    def subscribe(self, callback, try_to_connect=False):
        self._inner.subscribe(callback, try_to_connect)

    def unsubscribe(self, callback):
        self._inner.unsubscribe(callback)

    def close(self):
        self._inner.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _remember(call) -> None:
    if has_request_context():
        g.setdefault("tokenwire_calls", []).append(call)


class _UnaryUnary:
    def __init__(self, channel: BridgeChannel, inner):
        self._channel, self._inner = channel, inner

    def _start(self, request_message, timeout, metadata, kwargs):
        timeout = timeout if timeout is not None else self._channel._timeout
        future = self._inner.future(request_message, timeout=timeout,
                                    metadata=self._channel.metadata(metadata, request_message),
                                    **kwargs)
        _remember(future)
        return future

    def __call__(self, request_message, timeout=None, metadata=None, **kwargs):
        return _wait(self._start(request_message, timeout, metadata, kwargs)).result()

    def with_call(self, request_message, timeout=None, metadata=None, **kwargs):
        future = _wait(self._start(request_message, timeout, metadata, kwargs))
        return future.result(), future

    def future(self, request_message, timeout=None, metadata=None, **kwargs):
        return self._start(request_message, timeout, metadata, kwargs)


class _Streaming:
    """Streaming calls: no default deadline (a long generation is not a slow request); the
    streaming response cancels the call when the client goes away."""

    def __init__(self, channel: BridgeChannel, inner):
        self._channel, self._inner = channel, inner

    def __call__(self, request_or_iterator, timeout=None, metadata=None, **kwargs):
        call = self._inner(request_or_iterator, timeout=timeout,
                           metadata=self._channel.metadata(metadata, request_or_iterator), **kwargs)
        _remember(call)
        return call

    def __getattr__(self, name):
        return getattr(self._inner, name)


def client_socket() -> socket.socket | None:
    """The HTTP client's socket (werkzeug's or gunicorn's), or None outside a request or when
    the WSGI server does not expose it (Flask's test client)."""
    if not has_request_context():
        return None
    environ = request.environ
    return environ.get("gunicorn.socket") or environ.get("werkzeug.socket")


def client_gone(sock: socket.socket) -> bool:
    """True once the client closed its side (EOF) or the socket failed. Reads nothing: a byte the
    client sent ahead stays for the WSGI server."""
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True


def wait_while_connected(ready: Callable[[float], bool], cancel: Callable[[], None],
                         sock: socket.socket | None, timeout: float | None = None) -> bool:
    """Waits until `ready(poll_s)` (which blocks at most poll_s) says the awaited thing happened,
    looking every DISCONNECT_POLL_S whether the HTTP client behind `sock` went away; if it did,
    `cancel()` (the gRPC call, so the server drops the request, queued or running) and raise
    ClientGone. False if `timeout` passed first. Without a socket it only waits.

    The one place the bridge watches a client while nothing is being written to it: a unary call
    in flight, a stream before its first message (queued behind other requests), a silent stream.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = DISCONNECT_POLL_S if deadline is None else min(DISCONNECT_POLL_S,
                                                               deadline - time.monotonic())
        if ready(max(left, 0.0)):
            return True
        if sock is not None and client_gone(sock):
            cancel()
            raise ClientGone()
        if deadline is not None and time.monotonic() >= deadline:
            return False


def _future_done(future, timeout: float) -> bool:
    try:
        future.exception(timeout=timeout)
        return True
    except grpc.FutureTimeoutError:
        return False


def _wait(future):
    """Waits for a unary call; cancels it if the HTTP client disconnects meanwhile."""
    sock = client_socket()
    if sock is None:
        future.exception()  # blocks until done
    else:
        wait_while_connected(lambda poll_s: _future_done(future, poll_s), future.cancel, sock)
    return future


# -- rate-limit headers ---------------------------------------------------------------------------


def _metadata_of(call) -> list:
    pairs = []
    try:
        if call.done():
            pairs += list(call.initial_metadata() or ()) + list(call.trailing_metadata() or ())
        else:
            pairs += list(call.initial_metadata() or ())  # a started stream: already received
    except Exception:  # a call cancelled before any metadata arrived has none to give
        return []
    return pairs


def copy_rate_limit_headers(response: Response) -> Response:
    """Server metadata (X-RateLimit-*, X-Rate-Limit-*, Retry-After) -> this response's headers."""
    for call in g.get("tokenwire_calls", ()):
        for key, value in _metadata_of(call):
            header = RATE_LIMIT_HEADERS.get(key)
            if header and isinstance(value, str):
                response.headers[header] = value
    return response
