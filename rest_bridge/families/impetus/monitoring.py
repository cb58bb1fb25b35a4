"""Impetus's (doc 001) hardware, health and benchmark routes: /api/hardware/*, /api/health/*,
POST /api/models/benchmark/{model_id}. Errors use Impetus's body:
{"error", "type", "details", "timestamp"}."""

from __future__ import annotations

from flask import Blueprint, jsonify

from rest_bridge import errors
from rest_bridge import monitoring_shapes as shapes
from rest_bridge.errors import HttpError
from rest_bridge.grpc_client import grpc_client
from rest_bridge.http_json import (boolean_field, integer_field, json_object_or_empty,
                                   number_field)
from rest_bridge.families.health.routes import (GET_PROMETHEUS, GET_STATUS, health_answer,
                                           prometheus_response, server_status)
from rest_bridge.rpc_map import calls
from tokenwire.v1 import benchmark_service_pb2 as bench_pb
from tokenwire.v1 import hardware_service_pb2 as hw_pb

blueprint = Blueprint("impetus_monitoring", __name__)

errors.register_family(blueprint, errors.impetus_body)

def optional_boolean(body: dict, name: str) -> bool | None:
    return boolean_field(body, name, default=None)


MODES = {"efficiency": hw_pb.PERFORMANCE_MODE_EFFICIENCY, "balanced": hw_pb.PERFORMANCE_MODE_BALANCED,
         "performance": hw_pb.PERFORMANCE_MODE_PERFORMANCE}


@blueprint.get("/api/hardware/info")
@calls("tokenwire.v1.HardwareService/GetHardwareInfo")
def hardware_info():
    """CPU, memory, GPU, thermal state, OS and versions."""
    info = grpc_client().hardware.GetHardwareInfo(hw_pb.GetHardwareInfoRequest())
    return jsonify(shapes.impetus_info(info))


@blueprint.get("/api/hardware/metrics")
@calls("tokenwire.v1.HardwareService/GetHardwareMetrics")
def hardware_metrics():
    """A snapshot of CPU, memory, GPU and the server process."""
    answer = grpc_client().hardware.GetHardwareMetrics(hw_pb.GetHardwareMetricsRequest())
    return jsonify(shapes.impetus_metrics(answer.metrics))


@blueprint.get("/api/hardware/performance-mode")
@calls("tokenwire.v1.HardwareService/GetPerformanceMode")
def get_performance_mode():
    """The performance mode in force and the engine settings it set."""
    answer = grpc_client().hardware.GetPerformanceMode(hw_pb.GetPerformanceModeRequest())
    return jsonify(shapes.performance_mode(answer))


@blueprint.post("/api/hardware/performance-mode")
@calls("tokenwire.v1.HardwareService/SetPerformanceMode")
def set_performance_mode():
    """Sets efficiency, balanced or performance: decode threads and prompt batch of every engine."""
    mode = json_object_or_empty().get("mode")
    if mode not in MODES:
        raise HttpError(400, f"mode must be one of {', '.join(MODES)}", param="mode")
    answer = grpc_client().hardware.SetPerformanceMode(hw_pb.SetPerformanceModeRequest(mode=MODES[mode]))
    return jsonify({"success": True, **shapes.performance_mode(answer)})


@blueprint.get("/api/health")
@calls(GET_STATUS)
def health():
    """Basic health: 503 while the default engine loads or the server drains."""
    s = server_status()
    return health_answer({"status": shapes.health_status_word(s), "timestamp": shapes.iso(),
                    "version": s.version, "uptime_seconds": s.uptime_seconds}, s.ready)


@blueprint.get("/api/health/ready")
@calls(GET_STATUS)
def ready():
    """Kubernetes readiness probe."""
    s = server_status()
    checks = {c.key: c.healthy for c in s.checks}
    return health_answer({"ready": s.ready, "timestamp": shapes.iso(),
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
    s = server_status()
    now = shapes.iso()
    return jsonify({"alive": s.live, "timestamp": now, "uptime_seconds": s.uptime_seconds,
                    "last_heartbeat": now})


@blueprint.get("/api/health/status")
@calls(GET_STATUS)
def detailed_status():
    """Every component's check, engine counts and process figures."""
    s = server_status()
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


@blueprint.post("/api/models/benchmark/<path:model_id>")
@calls("tokenwire.v1.BenchmarkService/RunBenchmark")
def benchmark(model_id: str):
    """Real generations on the model: tokens/s, first-token latency, memory, per sample."""
    body = json_object_or_empty()
    pb = bench_pb.RunBenchmarkRequest(engine_id=model_id)
    for name, read in (("num_samples", integer_field), ("max_tokens", integer_field),
                       ("temperature", number_field), ("include_warmup", optional_boolean),
                       ("include_memory_test", optional_boolean)):
        value = read(body, name)
        if value is not None:
            setattr(pb, name, value)
    # A benchmark runs as long as it takes; no deadline beyond the client's patience.
    r = grpc_client().benchmark.RunBenchmark(pb)
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


# -- documentation of these routes (the family convention of rest_bridge.openapi) ----------------

from rest_bridge.openapi_monitoring import (PROMETHEUS_CONTENT, answer, array, boolean, integer,  # noqa: E402
                                            json_content, num, obj, operation, ref, string)

TAGS = [{"name": "Hardware", "description": "Impetus hardware information, metrics and performance modes."},
        {"name": "Health", "description": "Impetus health, readiness, liveness and Prometheus metrics."},
        {"name": "Benchmark", "description": "Impetus model benchmarks with real generations."}]

_memory = obj({"total_gb": num(), "available_gb": num(), "used_gb": num(), "usage_percent": num()})
_thermal = obj({"cpu_temperature_c": num(nullable=True), "thermal_state": string(), "throttling": boolean()})
_gpu = obj({"name": string(), "vendor": string(), "memory_gb": num(),
            "compute_units": integer(nullable=True), "metal_support": boolean(),
            "unified_memory": boolean()})
_modes = ["efficiency", "balanced", "performance"]
_mode_answer = obj({"mode": {"type": "string", "enum": _modes},
                    "engines": array(obj({"engine_id": string(), "n_threads": integer(),
                                          "n_batch": integer()}))})
SCHEMAS = {
    "impetus.Error": obj({"error": string(), "type": string(), "details": array(string()),
                          "timestamp": string()}),
    "impetus.HardwareInfo": obj({
        "chip_type": string(nullable=True), "chip_variant": string(nullable=True),
        "cpu": obj({"brand": string(), "architecture": string(), "performance_cores": integer(),
                    "efficiency_cores": integer(), "total_cores": integer(),
                    "base_frequency_ghz": num(nullable=True), "max_frequency_ghz": num(nullable=True)}),
        "memory": _memory,
        "gpu": {**_gpu, "nullable": True, "description": "The first GPU; null without one."},
        "gpus": array(_gpu, "Every NVIDIA GPU; empty without an NVIDIA driver."),
        "thermal": _thermal, "os_version": string(), "mlx_version": string(nullable=True),
        "python_version": string()}),
    "impetus.HardwareMetrics": obj({
        "timestamp": string(),
        "cpu": obj({"usage_percent": num(), "performance_core_usage": array(num()),
                    "efficiency_core_usage": array(num()), "frequency_ghz": array(num()),
                    "load_average": array(num())}),
        "memory": _memory, "thermal": _thermal,
        "metal": {**obj({"gpu_utilization_percent": num(nullable=True), "memory_used_mb": num(),
                         "memory_total_mb": num(), "memory_usage_percent": num(),
                         "compute_units_active": integer(nullable=True)}),
                  "nullable": True, "description": "The first GPU's figures; null without a GPU."},
        "process": obj({"pid": integer(), "cpu_percent": num(), "memory_mb": num(),
                        "memory_percent": num(), "threads": integer(),
                        "file_descriptors": integer(nullable=True), "uptime_seconds": num()})}),
    "impetus.PerformanceMode": _mode_answer,
    "impetus.PerformanceModeSet": {**_mode_answer, "properties": {**_mode_answer["properties"],
                                                                  "success": boolean()}},
    "impetus.Health": obj({"status": string(), "timestamp": string(), "version": string(),
                           "uptime_seconds": num()}),
    "impetus.Ready": obj({"ready": boolean(), "timestamp": string(),
                          "checks": obj({"memory_available": boolean(), "models_loaded": boolean(),
                                         "mlx_available": boolean()}),
                          "message": string()}),
    "impetus.Live": obj({"alive": boolean(), "timestamp": string(), "uptime_seconds": num(),
                         "last_heartbeat": string()}),
    "impetus.Status": obj({"status": string(), "ready": boolean(), "timestamp": string(),
                           "version": string(), "uptime_seconds": num(),
                           "components": {"type": "object", "additionalProperties": obj(
                               {"name": string(), "healthy": boolean(), "status": string(),
                                "message": string()})},
                           "engines": obj({"loaded": integer(), "total": integer()})}),
    "impetus.BenchmarkRequest": {"type": "object", "properties": {
        "num_samples": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10},
        "max_tokens": {"type": "integer", "minimum": 1, "maximum": 4096, "default": 100},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2, "default": 0.7},
        "include_memory_test": {"type": "boolean", "default": True},
        "include_warmup": {"type": "boolean", "default": True}}},
    "impetus.Benchmark": obj({
        "model_id": string(), "timestamp": string(), "tokens_per_second": num(),
        "first_token_latency_ms": num(), "total_tokens": integer(), "total_time_seconds": num(),
        "memory_usage_mb": num(nullable=True), "gpu_utilization_percent": num(nullable=True),
        "samples": array(obj({"tokens": integer(), "time_seconds": num(),
                              "tokens_per_second": num()}))}),
}

_error = lambda description: answer(description, "impetus.Error")  # noqa: E731


def _op(tag, operation_id, summary, description, schema, errors=None, **extra):
    return operation(tag, operation_id, summary, description, answer(summary, schema), errors, **extra)


PATHS = {
    "/api/hardware/info": {"get": _op("Hardware", "Impetus_HardwareInfo", "Hardware information",
                                      "CPU, memory, GPUs (NVML), thermal state, OS and versions.",
                                      "impetus.HardwareInfo")},
    "/api/hardware/metrics": {"get": _op("Hardware", "Impetus_HardwareMetrics", "Real-time metrics",
                                         "CPU per core, load, memory, GPU and the server process.",
                                         "impetus.HardwareMetrics")},
    "/api/hardware/performance-mode": {
        "get": _op("Hardware", "Impetus_GetPerformanceMode", "Current performance mode",
                   "The mode and each engine's decode threads and prompt batch size.",
                   "impetus.PerformanceMode"),
        "post": _op("Hardware", "Impetus_SetPerformanceMode", "Set performance mode",
                    "efficiency: half the cores, prompt batch at most 128; balanced: as configured; "
                    "performance: every physical core and the full configured batch.",
                    "impetus.PerformanceModeSet", {"400": _error("mode is missing or unknown.")},
                    requestBody={"required": True, "content": json_content(obj(
                        {"mode": {"type": "string", "enum": _modes}}))}),
    },
    "/api/health": {"get": _op("Health", "Impetus_Health", "Basic health check",
                               "503 while the default engine loads or the server drains.",
                               "impetus.Health", {"503": answer("Unhealthy.", "impetus.Health")})},
    "/api/health/ready": {"get": _op("Health", "Impetus_Ready", "Readiness probe",
                                     "Agrees with grpc.health.v1: ready exactly when SERVING.",
                                     "impetus.Ready", {"503": answer("Not ready.", "impetus.Ready")})},
    "/api/health/live": {"get": _op("Health", "Impetus_Live", "Liveness probe",
                                    "The server process answers.", "impetus.Live")},
    "/api/health/status": {"get": _op("Health", "Impetus_Status", "Detailed status",
                                      "Each component's check, engine counts, process figures.",
                                      "impetus.Status")},
    "/api/health/metrics": {"get": operation(
        "Health", "Impetus_PrometheusMetrics", "Prometheus metrics",
        "Always Prometheus text, including impetus_requests_total, impetus_tokens_generated_total "
        "and impetus_cpu_usage_percent.",
        {"description": "Prometheus text.", "content": {"text/plain": PROMETHEUS_CONTENT["text/plain"]}})},
    "/api/models/benchmark/{model_id}": {"post": _op(
        "Benchmark", "Impetus_Benchmark", "Benchmark a model",
        "Runs real generations (after an untimed warm-up) and reports tokens/s, first-token "
        "latency, memory and each sample.", "impetus.Benchmark",
        {"400": _error("A field is out of range."), "404": _error("No such model."),
         "503": _error("The model is loading or the server is draining.")},
        parameters=[{"name": "model_id", "in": "path", "required": True, "schema": {"type": "string"}}],
        requestBody={"required": False, "content": json_content(ref("impetus.BenchmarkRequest"))})},
}
