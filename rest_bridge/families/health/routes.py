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
from rest_bridge.grpc_client import grpc_client
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
    """The Prometheus format the Accept header asks for over JSON, or None for JSON."""
    quality: dict[str, float] = {}
    for value, q in request.accept_mimetypes:
        mimetype = value.split(";")[0].strip().lower()
        quality[mimetype] = max(quality.get(mimetype, 0.0), q)
    best = max(PROMETHEUS_TYPES, key=lambda t: quality.get(t, 0.0))
    if quality.get(best, 0.0) > 0 and quality[best] >= quality.get("application/json", 0.0):
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
    return health_answer(shapes.superset_health(status), status.ready)


@blueprint.get("/readiness")
@calls(GET_STATUS)
def readiness():
    """Readiness (doc 003): ready when the default engine is loaded and the server not draining."""
    status = server_status()
    return health_answer({"status": "ready" if status.ready else "not_ready",
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


# -- documentation of these routes (the family convention of rest_bridge.openapi) ----------------

from rest_bridge.openapi_monitoring import (PROMETHEUS_CONTENT, answer, array, boolean, integer,  # noqa: E402
                                            json_content, num, obj, operation, ref, string)

TAGS = [{"name": "Health & Metrics",
         "description": "Health (Kolosal, Kai and the Rust service's fields in one body), "
                        "readiness, and metrics as Prometheus text or Kolosal JSON."}]
_TAG = TAGS[0]["name"]

_service = obj({"name": string(), "status": string("healthy or unhealthy"), "message": string()})
_completion = obj({
    "total_requests": integer(), "successful_requests": integer(), "failed_requests": integer(),
    "success_rate_percent": num(), "average_tokens_per_second": num(),
    "average_time_to_first_token_ms": num(), "average_inter_token_latency_ms": num(),
    "average_request_duration_ms": num(), "total_prompt_tokens": integer(),
    "total_completion_tokens": integer(), "queue_depth": integer(), "active_requests": integer()})
SCHEMAS = {
    "monitoring.Health": obj({
        "status": string("healthy when ready; unhealthy while the default engine loads or failed; "
                         "draining during shutdown (Kolosal, Kai)"),
        "timestamp": integer("Unix seconds (Kolosal)"),
        "version": string(), "ready": boolean("Same as grpc.health.v1 SERVING"),
        "message": string(),
        "uptime": string("running or draining (the Rust service)"),
        "engines": obj({"loaded": integer(), "unloaded": integer(), "loading": integer(),
                        "failed": integer(), "total": integer()}),
        "system": obj({"uptime_seconds": num(), "memory_usage_mb": num(), "cpu_usage_percent": num()}),
        "services": {"type": "object", "additionalProperties": _service,
                     "description": "Per-component status (Kai): config, models, memory_available, draining."},
    }),
    "monitoring.Readiness": obj({"status": string("ready or not_ready"),
                                 "models_available": integer(), "timestamp": string()}),
    "monitoring.Gpu": obj({"id": integer(), "name": string(),
                           "utilization_percent": num(nullable=True),
                           "memory_utilization_percent": num(),
                           "temperature_celsius": num(nullable=True),
                           "power_usage_watts": num(nullable=True)}),
    "monitoring.System": obj({
        "cpu": obj({"usage_percent": num()}, required=["usage_percent"]),
        "memory": obj({"total_bytes": integer(), "used_bytes": integer(), "utilization_percent": num()}),
        "gpus": array(ref("monitoring.Gpu"), "NVIDIA GPUs; empty without an NVIDIA driver."),
    }),
    "monitoring.Completion": {**_completion, "properties": {
        **_completion["properties"],
        "engines": {"type": "object", "additionalProperties": _completion,
                    "description": "The same figures per engine."}}},
    "monitoring.Metrics": obj({"timestamp": string(), "system": ref("monitoring.System"),
                               "completion": ref("monitoring.Completion")}),
    "monitoring.SystemMetrics": obj({"timestamp": string(), "system": ref("monitoring.System")}),
    "monitoring.CompletionMetrics": obj({"timestamp": string(),
                                         "completion": ref("monitoring.Completion")}),
}

_unavailable = {"503": answer("Not ready: the default engine is loading or failed, or the server "
                              "is draining (the same body).", "monitoring.Health")}


def _health_op(operation_id: str) -> dict:
    return operation(_TAG, operation_id, "Health check",
                     "One superset body: Kolosal's engines/system, Kai's per-service status, the "
                     "Rust service's uptime. 503 when not ready (agrees with grpc.health.v1).",
                     answer("Ready.", "monitoring.Health"), _unavailable)


def _metrics_op(operation_id: str) -> dict:
    return operation(_TAG, operation_id, "Combined metrics",
                     "Prometheus text when Accept asks for text/plain or OpenMetrics (what "
                     "Prometheus sends), Kolosal's JSON otherwise.",
                     {"description": "Metrics.",
                      "content": {**json_content(ref("monitoring.Metrics")), **PROMETHEUS_CONTENT}})


def _only(operation_id: str, summary: str, schema: str) -> dict:
    return operation(_TAG, operation_id, summary, summary + ", as JSON.", answer(summary, schema))


PATHS = {
    "/health": {"get": _health_op("Monitoring_Health")},
    "/v1/health": {"get": _health_op("Monitoring_HealthV1")},
    "/readiness": {"get": operation(
        _TAG, "Monitoring_Readiness", "Readiness check",
        "Ready when the default engine is loaded and the server is not draining.",
        answer("Ready.", "monitoring.Readiness"),
        {"503": answer("Not ready.", "monitoring.Readiness")})},
    "/metrics": {"get": _metrics_op("Monitoring_Metrics")},
    "/v1/metrics": {"get": _metrics_op("Monitoring_MetricsV1")},
    "/metrics/system": {"get": _only("Monitoring_SystemMetrics", "System metrics only",
                                     "monitoring.SystemMetrics")},
    "/v1/metrics/system": {"get": _only("Monitoring_SystemMetricsV1", "System metrics only",
                                        "monitoring.SystemMetrics")},
    "/metrics/completion": {"get": _only("Monitoring_CompletionMetrics", "Completion metrics only",
                                         "monitoring.CompletionMetrics")},
    "/v1/metrics/completion": {"get": _only("Monitoring_CompletionMetricsV1",
                                            "Completion metrics only", "monitoring.CompletionMetrics")},
}
