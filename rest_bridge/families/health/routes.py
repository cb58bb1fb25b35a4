"""Health and metrics in the shapes of Kolosal (doc 000), Kai (doc 002) and the Rust service
(doc 003): /health and /v1/health (one superset body), /readiness, /metrics content-negotiated
(Prometheus text for Prometheus, Kolosal's JSON otherwise), /metrics/system, /metrics/completion.

Readiness agrees with grpc.health.v1: the server's StatusService reports ready exactly when the
server-wide health is SERVING, and these routes answer 503 otherwise.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from rest_bridge import errors
from rest_bridge.bodies import schemas
from rest_bridge.families.health import bodies
from rest_bridge.grpc_client import grpc_client
from rest_bridge.model_views import iso
from rest_bridge.rpc_map import calls
from tokenwire.v1 import metrics_service_pb2 as metrics_pb
from tokenwire.v1 import status_service_pb2 as status_pb

blueprint = Blueprint("monitoring", __name__)
errors.register_family(blueprint, errors.openai_body)

GET_STATUS = "tokenwire.v1.StatusService/GetStatus"
GET_SNAPSHOT = "tokenwire.v1.MetricsService/GetMetricsSnapshot"
GET_PROMETHEUS = "tokenwire.v1.MetricsService/GetPrometheusMetrics"
PROMETHEUS_TYPES = ("text/plain", "application/openmetrics-text")


def server_status() -> status_pb.GetStatusResponse:
    return grpc_client().status.GetStatus(status_pb.GetStatusRequest())


def _snapshot() -> metrics_pb.GetMetricsSnapshotResponse:
    return grpc_client().metrics.GetMetricsSnapshot(metrics_pb.GetMetricsSnapshotRequest())


def prometheus_response(openmetrics: bool = False) -> Response:
    fmt = (metrics_pb.EXPOSITION_FORMAT_OPENMETRICS if openmetrics
           else metrics_pb.EXPOSITION_FORMAT_PROMETHEUS_TEXT)
    answer = grpc_client().metrics.GetPrometheusMetrics(
        metrics_pb.GetPrometheusMetricsRequest(format=fmt))
    return Response(answer.text, content_type=answer.content_type)


def _exposition_asked() -> str | None:
    """The Prometheus format the Accept header prefers to JSON, or None for JSON."""
    quality: dict[str, float] = {}
    for value, q in request.accept_mimetypes:
        mimetype = value.split(";")[0].strip().lower()
        quality[mimetype] = max(quality.get(mimetype, 0.0), q)
    best = max(PROMETHEUS_TYPES, key=lambda t: quality.get(t, 0.0))
    # A tie is JSON: axios and other HTTP libraries send "application/json, text/plain, */*" by
    # default, and Kolosal's client reads JSON; Prometheus asks for its formats first.
    if quality.get(best, 0.0) > quality.get("application/json", 0.0):
        return best
    return None


def health_answer(body: dict, ready: bool):
    """A health body: 200 when ready, 503 otherwise (what probes and load balancers read)."""
    response = jsonify(body)
    response.status_code = 200 if ready else 503
    return response


@blueprint.get("/health")
@blueprint.get("/v1/health")
@calls(GET_STATUS)
def health():
    """Health: one body with every field Kolosal, Kai and the Rust service document; 503 while
    the default engine loads or the server drains."""
    status = server_status()
    return health_answer(bodies.Health.from_pb(status).body(), status.ready)


@blueprint.get("/readiness")
@calls(GET_STATUS)
def readiness():
    """Readiness (doc 003): ready when the default engine is loaded and the server not draining."""
    status = server_status()
    return health_answer(bodies.Readiness.from_pb(status).body(), status.ready)


@blueprint.get("/metrics")
@blueprint.get("/v1/metrics")
@calls(GET_SNAPSHOT, GET_PROMETHEUS)
def metrics():
    """System and completion metrics: Prometheus text when Accept prefers text/plain or
    OpenMetrics (what Prometheus sends), Kolosal's JSON otherwise."""
    asked = _exposition_asked()
    if asked is not None:
        return prometheus_response(openmetrics=asked == "application/openmetrics-text")
    return jsonify(bodies.Metrics.from_pb(_snapshot()).body())


@blueprint.get("/metrics/system")
@blueprint.get("/v1/metrics/system")
@calls(GET_SNAPSHOT)
def system_metrics():
    """System metrics only: CPU, memory, GPUs."""
    snapshot = _snapshot()
    return jsonify(bodies.SystemMetrics(timestamp=iso(snapshot.timestamp_unix_ms),
                                        system=bodies.System.from_pb(snapshot.system)).body())


@blueprint.get("/metrics/completion")
@blueprint.get("/v1/metrics/completion")
@calls(GET_SNAPSHOT)
def completion_metrics():
    """Completion metrics only: requests, success rate, tokens/s, TTFT, per engine."""
    snapshot = _snapshot()
    return jsonify(bodies.CompletionMetrics(timestamp=iso(snapshot.timestamp_unix_ms),
                                            completion=bodies.Completion.from_pb(snapshot)).body())


# -- documentation of these routes (the family convention of rest_bridge.openapi) ----------------

from rest_bridge.openapi_parts import PROMETHEUS_CONTENT, Operations, answer, json_content  # noqa: E402

TAGS = [{"name": "Health & Metrics",
         "description": "Health (Kolosal, Kai and the Rust service's fields in one body), "
                        "readiness, and metrics as Prometheus text or Kolosal JSON."}]
SCHEMAS = schemas(bodies.NAMESPACE, bodies.Health, bodies.Readiness, bodies.Metrics,
                  bodies.SystemMetrics, bodies.CompletionMetrics)
_op = Operations(bodies.NAMESPACE, TAGS[0]["name"])


def _health_op(operation_id: str) -> dict:
    return _op(operation_id, "Health check", bodies.Health,
               description="One superset body: Kolosal's engines/system, Kai's per-service status, "
                           "the Rust service's uptime. 503 when not ready (agrees with "
                           "grpc.health.v1).",
               responses={"503": answer("Not ready: the default engine is loading or failed, or "
                                        "the server is draining (the same body).",
                                        _op.ref(bodies.Health))})


def _metrics_op(operation_id: str) -> dict:
    return _op(operation_id, "Combined metrics", {"description": "Metrics.", "content": {
        **json_content(_op.ref(bodies.Metrics)), **PROMETHEUS_CONTENT}},
        description="Prometheus text when Accept prefers text/plain or OpenMetrics to JSON (what "
                    "Prometheus sends), Kolosal's JSON otherwise.")


def _only(operation_id: str, summary: str, model) -> dict:
    return _op(operation_id, summary, model, description=summary + ", as JSON.")


PATHS = {
    "/health": {"get": _health_op("Monitoring_Health")},
    "/v1/health": {"get": _health_op("Monitoring_HealthV1")},
    "/readiness": {"get": _op(
        "Monitoring_Readiness", "Readiness check", bodies.Readiness,
        description="Ready when the default engine is loaded and the server is not draining.",
        responses={"503": answer("Not ready.", _op.ref(bodies.Readiness))})},
    "/metrics": {"get": _metrics_op("Monitoring_Metrics")},
    "/v1/metrics": {"get": _metrics_op("Monitoring_MetricsV1")},
    "/metrics/system": {"get": _only("Monitoring_SystemMetrics", "System metrics only",
                                     bodies.SystemMetrics)},
    "/v1/metrics/system": {"get": _only("Monitoring_SystemMetricsV1", "System metrics only",
                                        bodies.SystemMetrics)},
    "/metrics/completion": {"get": _only("Monitoring_CompletionMetrics", "Completion metrics only",
                                         bodies.CompletionMetrics)},
    "/v1/metrics/completion": {"get": _only("Monitoring_CompletionMetricsV1",
                                            "Completion metrics only", bodies.CompletionMetrics)},
}
