"""FoundryLocalAPI's (doc 004) monitoring routes under /iblink/v1/foundry-local: health, recent
logs and the live log stream (SSE). The other Foundry routes live in routes.py beside it."""

from __future__ import annotations

import queue
import threading

import grpc
from flask import Blueprint, jsonify, request

from rest_bridge import errors
from rest_bridge.bodies import validate
from rest_bridge.families.foundry import bodies
from rest_bridge.families.health.routes import GET_STATUS, server_status
from rest_bridge.grpc_client import grpc_client
from rest_bridge.model_views import iso
from rest_bridge.rpc_map import calls, check_admin_routes_first
from rest_bridge.streaming import sse_event, sse_response
from tokenwire.v1 import log_service_pb2 as log_pb

PREFIX = "/iblink/v1/foundry-local"
SERVICE_NAME = "foundry-local-api"
KEEPALIVE_S = 5.0  # an idle stream writes a comment this often, so a gone client is noticed

blueprint = Blueprint("foundry_monitoring", __name__, url_prefix=PREFIX)


errors.register_family(blueprint, errors.foundry_body)
# The log stream sends its headers before the first record: access is checked before that.
check_admin_routes_first(blueprint)


@blueprint.get("/health")
@calls(GET_STATUS)
def health():
    """The API and the model server behind it ("running" once the default model is loaded)."""
    s = server_status()
    running = s.ready
    state = "running" if running else ("stopping" if s.draining else
                                       "starting" if s.engines.loading else "stopped")
    return jsonify(bodies.Health(
        status="healthy", service=SERVICE_NAME, version=s.version, timestamp=iso(),
        foundry_local=bodies.FoundryLocal(
            is_running=running, status=state,
            port=int(request.environ.get("SERVER_PORT") or 0) if running else None,
            model=s.default_engine_id if running else None),
    ).body())


@blueprint.get("/logs")
@calls("tokenwire.v1.LogService/ListLogs")
def logs():
    """The most recent log entries, oldest first (?count=N, default 100)."""
    query = validate(bodies.LogsQuery, request.args.to_dict())
    answer = grpc_client().logs.ListLogs(query.to_pb())
    return jsonify([bodies.LogEntry.from_pb(r).body() for r in answer.records])


@blueprint.get("/logs/stream")
@calls("tokenwire.v1.LogService/StreamLogs")
def log_stream():
    """Live log entries as Server-Sent Events, one JSON entry per `data:` line."""
    call = grpc_client().logs.StreamLogs(log_pb.StreamLogsRequest())
    records: queue.Queue = queue.Queue(maxsize=10_000)

    def pump() -> None:
        # The gRPC iterator blocks until the next record; reading it on its own thread lets the
        # response thread send keep-alives, and so notice a client that left, on a quiet server.
        try:
            for message in call:
                records.put(bodies.LogEntry.from_pb(message.record).body())
            records.put(None)
        except grpc.RpcError as error:
            records.put(error)

    def events():
        # A comment first: the headers go out now, not when the first record happens to arrive.
        yield b": streaming logs\n\n"
        threading.Thread(target=pump, name="log-stream", daemon=True).start()
        try:
            while True:
                try:
                    item = records.get(timeout=KEEPALIVE_S)
                except queue.Empty:
                    yield b": keep-alive\n\n"
                    continue
                if item is None:
                    return
                if isinstance(item, grpc.RpcError):
                    if item.code() != grpc.StatusCode.CANCELLED:
                        yield sse_event(bodies.LogEntry(
                            timestamp=iso(), level="ERROR", source="bridge",
                            message=f"log stream ended: {item.details()}").body())
                    return
                yield sse_event(item)
        finally:
            call.cancel()

    return sse_response(events())


# -- documentation of these routes (the family convention of rest_bridge.openapi) ----------------

from rest_bridge.bodies import schemas  # noqa: E402
from rest_bridge.openapi_parts import SSE, Operations, answer, query_parameter  # noqa: E402

TAGS = [{"name": "Foundry Local monitoring",
         "description": "FoundryLocalAPI health and logs (recent entries and a live SSE stream)."}]
NS = bodies.NAMESPACE
SCHEMAS = schemas(NS, bodies.Error, bodies.Health, bodies.LogEntry)
_op = Operations(NS, TAGS[0]["name"], bodies.Error)
PATHS = {
    f"{PREFIX}/health": {"get": _op("Foundry_Health", "Health", bodies.Health,
                                    description="The API and whether the model server runs.")},
    f"{PREFIX}/logs": {"get": _op(
        "Foundry_Logs", "Recent logs", answer("Entries.", {"type": "array",
                                                           "items": _op.ref(bodies.LogEntry)}),
        description="The most recent entries, oldest first.",
        errors={"400": "count is not an integer between 1 and the buffer size."},
        parameters=[query_parameter("count", "How many entries.", {
            "type": "integer", "default": bodies.DEFAULT_LOG_COUNT, "minimum": 1})])},
    f"{PREFIX}/logs/stream": {"get": _op(
        "Foundry_LogStream", "Stream live logs", {"description": "An SSE stream.", "content": {
            SSE: {"schema": _op.ref(bodies.LogEntry)}}},
        description="Server-Sent Events: `data: {timestamp, level, message, source}` per new "
                    "entry.")},
}
