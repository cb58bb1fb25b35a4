"""Impetus's (doc 001) hardware, health and benchmark routes: /api/hardware/*, /api/health/*,
POST /api/models/benchmark/{model_id}. Errors use Impetus's body:
{"error", "type", "details", "timestamp"}."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from rest_bridge import errors
from rest_bridge import monitoring_shapes as shapes
from rest_bridge.errors import HttpError
from rest_bridge.grpc_client import forwarded_metadata, grpc_client
from rest_bridge.routes.monitoring import GET_PROMETHEUS, GET_STATUS, _status, prometheus_response
from rest_bridge.rpc_map import calls
from tokenwire.v1 import benchmark_service_pb2 as bench_pb
from tokenwire.v1 import hardware_service_pb2 as hw_pb

blueprint = Blueprint("impetus_monitoring", __name__)

IMPETUS_TYPES = {400: "validation_error", 401: "authentication_error", 403: "permission_error",
                 404: "not_found", 409: "conflict", 413: "validation_error", 429: "rate_limit_error",
                 503: "service_unavailable"}


def impetus_body(f: errors.Failure) -> dict:
    details = [f"{d['field']}: {d['description']}" for d in f.details] or (
        [f"{f.param}: invalid"] if f.param else [])
    return {"error": f.message, "type": IMPETUS_TYPES.get(f.status, "internal_error"),
            "details": details, "timestamp": shapes.iso()}


errors.register_family(blueprint, impetus_body)

MODES = {"efficiency": hw_pb.PERFORMANCE_MODE_EFFICIENCY, "balanced": hw_pb.PERFORMANCE_MODE_BALANCED,
         "performance": hw_pb.PERFORMANCE_MODE_PERFORMANCE}


def _json_object() -> dict:
    body = request.get_json(silent=True)
    if request.content_length and body is None:
        raise HttpError(400, "the body is not valid JSON")
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise HttpError(400, "the body must be a JSON object")
    return body


@blueprint.get("/api/hardware/info")
@calls("tokenwire.v1.HardwareService/GetHardwareInfo")
def hardware_info():
    """CPU, memory, GPU, thermal state, OS and versions."""
    info = grpc_client().hardware.GetHardwareInfo(hw_pb.GetHardwareInfoRequest(),
                                                  metadata=forwarded_metadata())
    return jsonify(shapes.impetus_info(info))


@blueprint.get("/api/hardware/metrics")
@calls("tokenwire.v1.HardwareService/GetHardwareMetrics")
def hardware_metrics():
    """A snapshot of CPU, memory, GPU and the server process."""
    answer = grpc_client().hardware.GetHardwareMetrics(hw_pb.GetHardwareMetricsRequest(),
                                                       metadata=forwarded_metadata())
    return jsonify(shapes.impetus_metrics(answer.metrics))


@blueprint.get("/api/hardware/performance-mode")
@calls("tokenwire.v1.HardwareService/GetPerformanceMode")
def get_performance_mode():
    """The performance mode in force and the engine settings it set."""
    answer = grpc_client().hardware.GetPerformanceMode(hw_pb.GetPerformanceModeRequest(),
                                                       metadata=forwarded_metadata())
    return jsonify(shapes.performance_mode(answer))


@blueprint.post("/api/hardware/performance-mode")
@calls("tokenwire.v1.HardwareService/SetPerformanceMode")
def set_performance_mode():
    """Sets efficiency, balanced or performance: decode threads and prompt batch of every engine."""
    mode = _json_object().get("mode")
    if mode not in MODES:
        raise HttpError(400, f"mode must be one of {', '.join(MODES)}", param="mode")
    answer = grpc_client().hardware.SetPerformanceMode(hw_pb.SetPerformanceModeRequest(mode=MODES[mode]),
                                                       metadata=forwarded_metadata())
    return jsonify({"success": True, **shapes.performance_mode(answer)})


def _answer(body: dict, ok: bool):
    response = jsonify(body)
    response.status_code = 200 if ok else 503
    return response


@blueprint.get("/api/health")
@calls(GET_STATUS)
def health():
    """Basic health: 503 while the default engine loads or the server drains."""
    s = _status()
    return _answer({"status": shapes.health_status_word(s), "timestamp": shapes.iso(),
                    "version": s.version, "uptime_seconds": s.uptime_seconds}, s.ready)


@blueprint.get("/api/health/ready")
@calls(GET_STATUS)
def ready():
    """Kubernetes readiness probe."""
    s = _status()
    checks = {c.key: c.healthy for c in s.checks}
    return _answer({"ready": s.ready, "timestamp": shapes.iso(),
                    "checks": {"memory_available": checks.get("memory_available", False),
                               "models_loaded": s.engines.loaded > 0 and s.ready,
                               # tokenwire runs llama.cpp; MLX is reported as absent, honestly.
                               "mlx_available": False,
                               "not_draining": not s.draining},
                    "message": s.message}, s.ready)


@blueprint.get("/api/health/live")
@calls(GET_STATUS)
def live():
    """Kubernetes liveness probe: the server process answers."""
    s = _status()
    now = shapes.iso()
    return jsonify({"alive": s.live, "timestamp": now, "uptime_seconds": s.uptime_seconds,
                    "last_heartbeat": now})


@blueprint.get("/api/health/status")
@calls(GET_STATUS)
def detailed_status():
    """Every component's check, engine counts and process figures."""
    s = _status()
    return jsonify({
        "status": shapes.health_status_word(s), "ready": s.ready, "alive": s.live,
        "draining": s.draining, "message": s.message, "timestamp": shapes.iso(),
        "version": s.version, "uptime_seconds": s.uptime_seconds,
        "default_model": s.default_engine_id,
        "components": {c.key: {"name": c.name, "healthy": c.healthy,
                               "status": "healthy" if c.healthy else "unhealthy",
                               "message": c.message} for c in s.checks},
        "engines": {"loaded": s.engines.loaded, "loading": s.engines.loading,
                    "unloaded": s.engines.unloaded, "failed": s.engines.failed,
                    "total": s.engines.total},
        "requests_in_flight": s.requests_in_flight,
        "system": {"memory_usage_mb": s.process_rss_bytes / shapes.MB,
                   "cpu_usage_percent": s.cpu_usage_percent},
    })


@blueprint.get("/api/health/metrics")
@calls(GET_PROMETHEUS)
def prometheus_metrics():
    """Prometheus text, whatever the Accept header says."""
    return prometheus_response()


def _field(body: dict, name: str, kind):
    value = body.get(name)
    if value is None:
        return None
    if kind is bool:
        if not isinstance(value, bool):
            raise HttpError(400, f"{name} must be true or false", param=name)
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)):
        raise HttpError(400, f"{name} must be {'an integer' if kind is int else 'a number'}", param=name)
    return kind(value)


@blueprint.post("/api/models/benchmark/<path:model_id>")
@calls("tokenwire.v1.BenchmarkService/RunBenchmark")
def benchmark(model_id: str):
    """Real generations on the model: tokens/s, first-token latency, memory, per sample."""
    body = _json_object()
    pb = bench_pb.RunBenchmarkRequest(engine_id=model_id)
    for name, kind in (("num_samples", int), ("max_tokens", int), ("temperature", float),
                       ("include_warmup", bool), ("include_memory_test", bool)):
        value = _field(body, name, kind)
        if value is not None:
            setattr(pb, name, value)
    # A benchmark runs as long as it takes; no deadline beyond the client's patience.
    r = grpc_client().benchmark.RunBenchmark(pb, metadata=forwarded_metadata())
    return jsonify({
        "model_id": r.engine_id, "timestamp": shapes.iso(r.timestamp_unix_ms),
        "tokens_per_second": r.tokens_per_second,
        "first_token_latency_ms": r.first_token_latency_ms,
        "total_tokens": r.total_tokens, "total_time_seconds": r.total_time_seconds,
        "memory_usage_mb": r.memory_usage_bytes / shapes.MB if r.HasField("memory_usage_bytes") else None,
        "gpu_utilization_percent": r.gpu_utilization_percent if r.HasField("gpu_utilization_percent") else None,
        "samples": [{"tokens": s.tokens, "time_seconds": s.time_seconds,
                     "tokens_per_second": s.tokens_per_second,
                     "first_token_latency_ms": s.first_token_latency_ms,
                     "decode_tokens_per_second": s.decode_tokens_per_second} for s in r.samples],
    })
