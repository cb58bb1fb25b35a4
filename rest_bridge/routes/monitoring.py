"""Health and metrics in the shapes of Kolosal (doc 000), Kai (doc 002) and the Rust service
(doc 003): /health and /v1/health (one superset body), /readiness, /metrics content-negotiated
(Prometheus text for Prometheus, Kolosal's JSON otherwise), /metrics/system, /metrics/completion.

Readiness agrees with grpc.health.v1: the server's StatusService reports ready exactly when the
server-wide health is SERVING, and these routes answer 503 otherwise.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from rest_bridge import errors
from rest_bridge import monitoring_shapes as shapes
from rest_bridge.grpc_client import forwarded_metadata, grpc_client
from rest_bridge.rpc_map import calls
from tokenwire.v1 import metrics_service_pb2 as metrics_pb
from tokenwire.v1 import status_service_pb2 as status_pb

blueprint = Blueprint("monitoring", __name__)
errors.register_family(blueprint, errors.openai_body)

GET_STATUS = "tokenwire.v1.StatusService/GetStatus"
GET_SNAPSHOT = "tokenwire.v1.MetricsService/GetMetricsSnapshot"
GET_PROMETHEUS = "tokenwire.v1.MetricsService/GetPrometheusMetrics"
PROMETHEUS_TYPES = ("text/plain", "application/openmetrics-text")


def _status() -> status_pb.GetStatusResponse:
    return grpc_client().status.GetStatus(status_pb.GetStatusRequest(), metadata=forwarded_metadata())


def _snapshot() -> metrics_pb.GetMetricsSnapshotResponse:
    return grpc_client().metrics.GetMetricsSnapshot(metrics_pb.GetMetricsSnapshotRequest(),
                                                    metadata=forwarded_metadata())


def prometheus_response(openmetrics: bool = False) -> Response:
    fmt = (metrics_pb.EXPOSITION_FORMAT_OPENMETRICS if openmetrics
           else metrics_pb.EXPOSITION_FORMAT_PROMETHEUS_TEXT)
    answer = grpc_client().metrics.GetPrometheusMetrics(
        metrics_pb.GetPrometheusMetricsRequest(format=fmt), metadata=forwarded_metadata())
    return Response(answer.text, content_type=answer.content_type)


def _exposition_asked() -> str | None:
    """The Prometheus format the Accept header asks for over JSON, or None for JSON."""
    quality: dict[str, float] = {}
    for value, q in request.accept_mimetypes:
        mimetype = value.split(";")[0].strip().lower()
        quality[mimetype] = max(quality.get(mimetype, 0.0), q)
    best = max(PROMETHEUS_TYPES, key=lambda t: quality.get(t, 0.0))
    if quality.get(best, 0.0) > 0 and quality[best] >= quality.get("application/json", 0.0):
        return best
    return None


def _health_answer(body: dict, ready: bool):
    response = jsonify(body)
    response.status_code = 200 if ready else 503
    return response


@blueprint.get("/health")
@blueprint.get("/v1/health")
@calls(GET_STATUS)
def health():
    """Health: one body with every field Kolosal, Kai and the Rust service document; 503 while
    the default engine loads or the server drains."""
    status = _status()
    return _health_answer(shapes.superset_health(status), status.ready)


@blueprint.get("/readiness")
@calls(GET_STATUS)
def readiness():
    """Readiness (doc 003): ready when the default engine is loaded and the server not draining."""
    status = _status()
    return _health_answer({"status": "ready" if status.ready else "not_ready",
                           "models_available": status.engines.loaded,
                           "timestamp": shapes.iso(), "message": status.message}, status.ready)


@blueprint.get("/metrics")
@blueprint.get("/v1/metrics")
@calls(GET_SNAPSHOT, GET_PROMETHEUS)
def metrics():
    """System and completion metrics: Prometheus text when Accept asks for text/plain or
    OpenMetrics (what Prometheus sends), Kolosal's JSON otherwise."""
    asked = _exposition_asked()
    if asked is not None:
        return prometheus_response(openmetrics=asked == "application/openmetrics-text")
    snapshot = _snapshot()
    return jsonify({"timestamp": shapes.iso(snapshot.timestamp_unix_ms),
                    "system": shapes.kolosal_system(snapshot.system),
                    "completion": shapes.kolosal_completion(snapshot)})


@blueprint.get("/metrics/system")
@blueprint.get("/v1/metrics/system")
@calls(GET_SNAPSHOT)
def system_metrics():
    """System metrics only: CPU, memory, GPUs."""
    snapshot = _snapshot()
    return jsonify({"timestamp": shapes.iso(snapshot.timestamp_unix_ms),
                    "system": shapes.kolosal_system(snapshot.system)})


@blueprint.get("/metrics/completion")
@blueprint.get("/v1/metrics/completion")
@calls(GET_SNAPSHOT)
def completion_metrics():
    """Completion metrics only: requests, success rate, tokens/s, TTFT, per engine."""
    snapshot = _snapshot()
    return jsonify({"timestamp": shapes.iso(snapshot.timestamp_unix_ms),
                    "completion": shapes.kolosal_completion(snapshot)})
