"""FoundryLocalAPI's (doc 004) monitoring routes under /iblink/v1/foundry-local: health, recent
logs and the live log stream (SSE). The other Foundry routes live in routes.py beside it."""

from __future__ import annotations

import queue
import threading

import grpc
from flask import Blueprint, jsonify, request

from rest_bridge import errors
from rest_bridge import monitoring_shapes as shapes
from rest_bridge.errors import HttpError
from rest_bridge.grpc_client import grpc_client
from rest_bridge.families.health.routes import GET_STATUS, server_status
from rest_bridge.rpc_map import calls, check_admin_routes_first
from rest_bridge.streaming import sse_event, sse_response
from tokenwire.v1 import log_service_pb2 as log_pb

PREFIX = "/iblink/v1/foundry-local"
SERVICE_NAME = "foundry-local-api"
DEFAULT_COUNT = 100
KEEPALIVE_S = 5.0  # an idle stream writes a comment this often, so a gone client is noticed

blueprint = Blueprint("foundry_monitoring", __name__, url_prefix=PREFIX)


errors.register_family(blueprint, errors.foundry_body)
# The log stream sends its headers before the first record: access is checked before that.
check_admin_routes_first(blueprint)


def _record(r: log_pb.LogRecord) -> dict:
    return {"timestamp": shapes.iso(r.timestamp_unix_ms), "level": r.level, "message": r.message,
            "source": r.source}


@blueprint.get("/health")
@calls(GET_STATUS)
def health():
    """The API and the model server behind it ("running" once the default model is loaded)."""
    s = server_status()
    running = s.ready
    state = "running" if running else ("stopping" if s.draining else
                                       "starting" if s.engines.loading else "stopped")
    return jsonify({
        "status": "healthy", "service": SERVICE_NAME, "version": s.version,
        "timestamp": shapes.iso(),
        "foundry_local": {"is_running": running, "status": state,
                          "port": int(request.environ.get("SERVER_PORT") or 0) if running else None,
                          "model": s.default_engine_id if running else None},
    })


@blueprint.get("/logs")
@calls("tokenwire.v1.LogService/ListLogs")
def logs():
    """The most recent log entries, oldest first (?count=N, default 100)."""
    raw = request.args.get("count", str(DEFAULT_COUNT))
    try:
        count = int(raw)
    except ValueError:
        raise HttpError(400, f"count must be an integer, got {raw!r}", param="count",
                        code="invalid_count") from None
    answer = grpc_client().logs.ListLogs(log_pb.ListLogsRequest(count=count))
    return jsonify([_record(r) for r in answer.records])


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
                records.put(_record(message.record))
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
                        yield sse_event({"timestamp": shapes.iso(), "level": "ERROR",
                                         "source": "bridge",
                                         "message": f"log stream ended: {item.details()}"})
                    return
                yield sse_event(item)
        finally:
            call.cancel()

    return sse_response(events())


# -- documentation of these routes (the family convention of rest_bridge.openapi) ----------------

from rest_bridge.openapi_monitoring import answer, array, boolean, integer, obj, operation, string  # noqa: E402

TAGS = [{"name": "Foundry Local monitoring",
         "description": "FoundryLocalAPI health and logs (recent entries and a live SSE stream)."}]
_TAG = TAGS[0]["name"]
_entry = obj({"timestamp": string(), "level": string(), "message": string("Secrets redacted."),
              "source": string()})
SCHEMAS = {
    "foundry.LogEntry": _entry,
    "foundry.Health": obj({
        "status": string(), "service": string(), "version": string(), "timestamp": string(),
        "foundry_local": obj({"is_running": boolean(), "status": string(),
                              "port": integer(nullable=True), "model": string(nullable=True)})}),
    "foundry.MonitoringError": obj({"error": obj({"message": string(), "type": string(),
                                                  "code": string()})}),
}
PATHS = {
    f"{PREFIX}/health": {"get": operation(
        _TAG, "Foundry_Health", "Health", "The API and whether the model server runs.",
        answer("Health.", "foundry.Health"))},
    f"{PREFIX}/logs": {"get": operation(
        _TAG, "Foundry_Logs", "Recent logs", "The most recent entries, oldest first.",
        {"description": "Entries.", "content": {"application/json": {"schema": array(
            {"$ref": "#/components/schemas/foundry.LogEntry"})}}},
        {"400": answer("count is not an integer between 1 and the buffer size.",
                       "foundry.MonitoringError")},
        parameters=[{"name": "count", "in": "query", "required": False,
                     "schema": {"type": "integer", "default": DEFAULT_COUNT, "minimum": 1}}])},
    f"{PREFIX}/logs/stream": {"get": operation(
        _TAG, "Foundry_LogStream", "Stream live logs",
        "Server-Sent Events: `data: {timestamp, level, message, source}` per new entry.",
        {"description": "An SSE stream.", "content": {"text/event-stream": {"schema": {
            "type": "string", "description": "data: lines, each a foundry.LogEntry."}}}})},
}
