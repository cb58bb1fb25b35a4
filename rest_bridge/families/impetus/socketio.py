"""socket.io at /socket.io/ (Impetus, doc 001): `model_status`, `hardware_metrics`,
`download_progress` and `inference_stats`, each fed from a gRPC watch stream.

python-socketio runs in threading mode, which both of the bridge's servers support (long-polling,
and websocket through simple-websocket); it is set up on the first request to /socket.io/. Each
event has one source in EVENT_SOURCES: a function that opens its server stream and one that
shapes each message. A source's pump thread starts with the first client, relays to every
connected client, and reopens its stream after an error (the server restarting, or draining) with
a growing pause.

A client's API key is checked when it connects (the methods behind the events it will get); the
relay's own streams are vouched for by the bridge secret, at user level. Origins follow the
bridge's CORS policy.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

import grpc
from flask import Flask
from werkzeug.datastructures import EnvironHeaders

from rest_bridge import admission
from rest_bridge.cors import allowed_origin
from rest_bridge.families.impetus import bodies
from rest_bridge.grpc_client import EXTENSION as GRPC_EXTENSION
from rest_bridge.grpc_client import REQUEST_ID_HEADER, GrpcClient, header_metadata
from rest_bridge.model_views import DOWNLOAD_STATUS, ENGINE_STATUS, iso
from rest_bridge.policy import EXTENSION as POLICY_EXTENSION
from rest_bridge.policy import PolicyCache
from tokenwire.v1 import auth_service_pb2 as auth_pb
from tokenwire.v1 import download_service_pb2 as dl_pb
from tokenwire.v1 import hardware_service_pb2 as hw_pb
from tokenwire.v1 import metrics_service_pb2 as metrics_pb
from tokenwire.v1 import status_service_pb2 as status_pb

if TYPE_CHECKING:
    import socketio

log = logging.getLogger(__name__)

HARDWARE_INTERVAL_MS = 2000
RETRY_MIN_S, RETRY_MAX_S = 0.5, 10.0
CHECK_TIMEOUT_S = 10.0
# Refused handshakes: the OpenAI error type and HTTP status the REST routes would answer with.
REFUSALS = {grpc.StatusCode.UNAUTHENTICATED: ("authentication_error", 401),
            grpc.StatusCode.PERMISSION_DENIED: ("permission_error", 403)}
UNCHECKED = ("server_error", 503)  # the server did not answer the check: try again later


@dataclass(frozen=True)
class EventSource:
    """Where an event's payloads come from: `open` starts the gRPC stream, `shape` turns one
    message into zero or more payloads (a status report yields one per changed engine)."""

    rpc: str
    open: Callable[[GrpcClient], Iterator]
    shape: Callable[[object], Iterable[dict]]
    #: A fresh shaper per stream, for sources that compare a message with the previous one.
    stateful: bool = False


def _model_status_shaper() -> Callable[[object], Iterable[dict]]:
    last: dict[str, tuple] = {}

    def shape(message: status_pb.WatchStatusResponse) -> Iterator[dict]:
        for engine in message.status.engine_states:
            key = (engine.status, engine.error)
            if last.get(engine.engine_id) != key:
                last[engine.engine_id] = key
                yield {"model_id": engine.engine_id,
                       "status": ENGINE_STATUS.get(engine.status, "unknown"),
                       "is_default": engine.is_default, "error": engine.error or None,
                       "server_ready": message.status.ready, "timestamp": iso()}

    return shape


def _inference_stats(message: metrics_pb.WatchInferenceStatsResponse) -> Iterator[dict]:
    s = message.stats
    yield {"model_id": s.engine_id, "kind": s.kind, "prompt_tokens": s.prompt_tokens,
           "completion_tokens": s.completion_tokens, "tokens_per_second": s.tokens_per_second,
           "time_to_first_token_ms": s.time_to_first_token_ms, "queue_ms": s.queue_ms,
           "duration_ms": s.duration_ms, "finish_reason": s.finish_reason,
           "timestamp": iso(s.timestamp_unix_ms)}


def _hardware(message: hw_pb.WatchHardwareMetricsResponse) -> Iterator[dict]:
    yield bodies.HardwareMetrics.from_pb(message.metrics).body()


def _download_progress(message) -> Iterator[dict]:
    d = message.download
    yield {"model_id": d.model_id, "download_id": d.download_id,
           "status": DOWNLOAD_STATUS.get(d.status, "unknown"),
           "progress_percent": d.percent, "downloaded_bytes": d.downloaded_bytes,
           "total_bytes": d.total_bytes if d.HasField("total_bytes") else None,
           "speed_bytes_per_second": d.speed_bytes_per_second,
           "eta_seconds": d.eta_seconds if d.HasField("eta_seconds") else None,
           "error": d.error or None, "timestamp": iso()}


#: event name -> its source.
EVENT_SOURCES: dict[str, EventSource] = {
    "model_status": EventSource(
        "tokenwire.v1.StatusService/WatchStatus",
        lambda client: client.status.WatchStatus(status_pb.WatchStatusRequest()),
        _model_status_shaper, stateful=True),
    "hardware_metrics": EventSource(
        "tokenwire.v1.HardwareService/WatchHardwareMetrics",
        lambda client: client.hardware.WatchHardwareMetrics(
            hw_pb.WatchHardwareMetricsRequest(interval_ms=HARDWARE_INTERVAL_MS)),
        _hardware),
    "inference_stats": EventSource(
        "tokenwire.v1.MetricsService/WatchInferenceStats",
        lambda client: client.metrics.WatchInferenceStats(metrics_pb.WatchInferenceStatsRequest()),
        _inference_stats),
    "download_progress": EventSource(
        "tokenwire.v1.DownloadService/WatchDownloads",
        lambda client: client.downloads.WatchDownloads(dl_pb.WatchDownloadsRequest()),
        _download_progress),
}


class EventRelay:
    def __init__(self, sio: socketio.Server, client: GrpcClient,
                 sources: dict[str, EventSource | None]):
        self.sio = sio
        self.client = client
        self.sources = {event: source for event, source in sources.items() if source is not None}
        self._started = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._calls: dict[str, object] = {}

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        for event, source in self.sources.items():
            threading.Thread(target=self._pump, args=(event, source), name=f"socketio-{event}",
                             daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        for call in list(self._calls.values()):
            call.cancel()

    def welcome(self, sid: str) -> None:
        """A new client gets every model's current status at once, not at the next change."""
        try:
            status = self.client.status.GetStatus(status_pb.GetStatusRequest(), timeout=10)
        except grpc.RpcError as error:
            log.debug("socket.io: no status for a new client (%s)", error.code())
            return
        except ValueError:  # grpc: the channel is closed, the bridge is stopping
            return
        for payload in _model_status_shaper()(status_pb.WatchStatusResponse(status=status)):
            self.sio.emit("model_status", payload, to=sid)

    def _pump(self, event: str, source: EventSource) -> None:
        pause = RETRY_MIN_S
        while not self._stop.is_set():
            try:
                call = source.open(self.client)
            except ValueError:  # grpc: the channel is closed, the bridge is stopping
                return
            self._calls[event] = call
            shape = source.shape() if source.stateful else source.shape
            try:
                for message in call:
                    pause = RETRY_MIN_S
                    for payload in shape(message):
                        self.sio.emit(event, payload)
            except grpc.RpcError as error:
                if self._stop.is_set():
                    return
                log.debug("socket.io %s: stream ended (%s); reopening", event, error.code())
            self._stop.wait(pause)
            pause = min(pause * 2, RETRY_MAX_S)


def _credentials(environ: dict, auth, key_header: str) -> list[tuple[str, str]]:
    """The connecting client's API key as call metadata: from the handshake's headers (what a
    non-browser client sends), or from socket.io's `auth` payload ({"token": KEY} or
    {"api_key": KEY}: browsers cannot set headers on a WebSocket)."""
    pairs = list(header_metadata(EnvironHeaders(environ), key_header))
    has_key = any(value for name, value in pairs if name != REQUEST_ID_HEADER)
    if isinstance(auth, dict) and not has_key:
        key = auth.get("token") or auth.get("api_key")
        if isinstance(key, str) and key.isascii():
            pairs.append(("authorization", f"Bearer {key}"))
    return pairs


def _allow_origin(policies: PolicyCache, eio) -> Callable[[str | None, dict], bool]:
    """engine.io's origin check, from the same live policy as every other route: same-origin
    requests, and origins the CORS settings allow. engine.io echoes an allowed origin (never `*`)
    and sends Allow-Credentials only when the policy allows credentials."""
    def allowed(origin: str | None, environ: dict) -> bool:
        cors = policies.get().cors
        eio.cors_credentials = cors.allow_credentials
        if not origin:
            return True
        if origin == f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', '')}":
            return True
        return allowed_origin(cors, origin) is not None

    return allowed


SOCKETIO_PATH = "socket.io"
SOCKETIO_PREFIX = f"/{SOCKETIO_PATH}/"


class _OnFirstUse:
    """Routes /socket.io/ to a socket.io app built on the first request there. python-socketio
    (and the HTTP client libraries its client half imports) costs about 6 MiB that a bridge no
    socket.io client talks to never needs."""

    def __init__(self, app, build: Callable[[object], object]) -> None:
        self._app, self._build = app, build
        self._built = None
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        if not environ.get("PATH_INFO", "").startswith(SOCKETIO_PREFIX):
            return self._app(environ, start_response)
        with self._lock:
            if self._built is None:
                self._built = self._build(self._app)
        return self._built(environ, start_response)


def setup(app: Flask) -> None:
    """The family's hook: socket.io over the app's own gRPC client."""
    init_app(app, app.extensions[GRPC_EXTENSION])


def init_app(app: Flask, client: GrpcClient,
             sources: dict[str, EventSource | None] = EVENT_SOURCES) -> None:
    """Serves socket.io at /socket.io/, set up on its first request."""
    app.wsgi_app = _OnFirstUse(app.wsgi_app, lambda wsgi_app: _socketio_app(app, wsgi_app, client,
                                                                            sources))


def _socketio_app(app: Flask, wsgi_app, client: GrpcClient,
                  sources: dict[str, EventSource | None]):
    import socketio

    policies: PolicyCache = app.extensions[POLICY_EXTENSION]
    sio = socketio.Server(async_mode="threading", cors_credentials=False)
    sio.eio.cors_allowed_origins = _allow_origin(policies, sio.eio)
    relay = EventRelay(sio, client.relay(), sources)
    # What a client must be allowed to call to receive the events (the relay calls on its behalf).
    methods = sorted({"tokenwire.v1.StatusService/GetStatus", *(s.rpc for s in relay.sources.values())})

    @sio.event
    def connect(sid, environ, auth=None):
        policy = policies.get()
        refused = admission.refusal(environ.get("REMOTE_ADDR"), policy)
        if refused is not None:  # the relay's streams come from the bridge itself: check here
            raise socketio.exceptions.ConnectionRefusedError(
                refused.message, dict(zip(("type", "status"), REFUSALS[refused.code])))
        metadata = _credentials(environ, auth, policy.api_key_header)
        try:
            client.auth.CheckAccess(auth_pb.CheckAccessRequest(methods=methods), metadata=metadata,
                                    timeout=CHECK_TIMEOUT_S)
        except grpc.RpcError as error:
            # The client sees {message, data: {type, status}} (socket.io's connect_error). A check
            # that could not run refuses too: the relay's streams are vouched for by the bridge
            # secret, so an unchecked client would get events its key may not allow.
            kind = REFUSALS.get(error.code(), UNCHECKED)
            raise socketio.exceptions.ConnectionRefusedError(
                error.details(), {"type": kind[0], "status": kind[1]}) from None
        relay.start()
        sio.start_background_task(relay.welcome, sid)

    app.extensions["tokenwire.socketio"] = relay
    return socketio.WSGIApp(sio, wsgi_app, socketio_path=SOCKETIO_PATH)
