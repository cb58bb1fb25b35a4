"""Impetus's (doc 001) hardware, health and benchmark routes: /api/hardware/*, /api/health/*,
POST /api/models/benchmark/{model_id}. Errors use Impetus's body:
{"error", "type", "details", "timestamp"}.

Impetus requires a key on all of its API endpoints ("All API endpoints require Bearer token
authentication"), its health probes and Prometheus metrics included. The server's status and
metrics RPCs are public (the other documents' /health, /readiness and /metrics, and gRPC health,
are what anonymous probes call), so /api/health/* also declares a user method that stands for
"reads the server's state" and asks the server, before answering, whether the caller may call it:
with keys required, no key or a wrong one is a 401 in Impetus's body; with none configured,
everyone passes.
"""

from __future__ import annotations

from flask import Blueprint, jsonify

from rest_bridge import errors
from rest_bridge.bodies import parse
from rest_bridge.families.health.routes import (GET_PROMETHEUS, GET_STATUS, health_answer,
                                                prometheus_response, server_status)
from rest_bridge.families.impetus import bodies
from rest_bridge.grpc_client import grpc_client
from rest_bridge.rpc_map import calls
from tokenwire.v1 import auth_service_pb2 as auth_pb
from tokenwire.v1 import hardware_service_pb2 as hw_pb

blueprint = Blueprint("impetus_monitoring", __name__)

errors.register_family(blueprint, errors.impetus_body)

#: The user method /api/health/* stands for: reading the server's state needs a key when keys
#: are required.
KEYED_READ = "tokenwire.v1.ServerService/GetServerInfo"
_KEYED_HEALTH: set[str] = set()


def _keyed(view):
    _KEYED_HEALTH.add(f"{blueprint.name}.{view.__name__}")
    return view


@blueprint.before_request
def _key_required_on_health():
    from flask import request

    if request.endpoint in _KEYED_HEALTH:
        # Raises UNAUTHENTICATED, which the family's handler answers as a 401.
        grpc_client().auth.CheckAccess(auth_pb.CheckAccessRequest(methods=[KEYED_READ]))


@blueprint.get("/api/hardware/info")
@calls("tokenwire.v1.HardwareService/GetHardwareInfo")
def hardware_info():
    """CPU, memory, GPU, thermal state, OS and versions."""
    info = grpc_client().hardware.GetHardwareInfo(hw_pb.GetHardwareInfoRequest())
    return jsonify(bodies.HardwareInfo.from_pb(info).body())


@blueprint.get("/api/hardware/metrics")
@calls("tokenwire.v1.HardwareService/GetHardwareMetrics")
def hardware_metrics():
    """A snapshot of CPU, memory, GPU and the server process."""
    answer = grpc_client().hardware.GetHardwareMetrics(hw_pb.GetHardwareMetricsRequest())
    return jsonify(bodies.HardwareMetrics.from_pb(answer.metrics).body())


@blueprint.get("/api/hardware/performance-mode")
@calls("tokenwire.v1.HardwareService/GetPerformanceMode")
def get_performance_mode():
    """The performance mode in force and the engine settings it set."""
    answer = grpc_client().hardware.GetPerformanceMode(hw_pb.GetPerformanceModeRequest())
    return jsonify(bodies.PerformanceMode.from_pb(answer).body())


@blueprint.post("/api/hardware/performance-mode")
@calls("tokenwire.v1.HardwareService/SetPerformanceMode")
def set_performance_mode():
    """Sets efficiency, balanced or performance: decode threads and prompt batch of every engine."""
    body = parse(bodies.PerformanceModeRequest, optional=True)
    answer = grpc_client().hardware.SetPerformanceMode(body.to_pb())
    return jsonify(bodies.PerformanceModeSet.from_pb(answer).body())


@blueprint.get("/api/health")
@calls(KEYED_READ, GET_STATUS)
@_keyed
def health():
    """Basic health: 503 while the default engine loads or the server drains."""
    s = server_status()
    return health_answer(bodies.Health.from_pb(s).body(), s.ready)


@blueprint.get("/api/health/ready")
@calls(KEYED_READ, GET_STATUS)
@_keyed
def ready():
    """Kubernetes readiness probe."""
    s = server_status()
    return health_answer(bodies.Ready.from_pb(s).body(), s.ready)


@blueprint.get("/api/health/live")
@calls(KEYED_READ, GET_STATUS)
@_keyed
def live():
    """Kubernetes liveness probe: the server process answers."""
    return jsonify(bodies.Live.from_pb(server_status()).body())


@blueprint.get("/api/health/status")
@calls(KEYED_READ, GET_STATUS)
@_keyed
def detailed_status():
    """Every component's check, engine counts and process figures."""
    return jsonify(bodies.Status.from_pb(server_status()).body())


@blueprint.get("/api/health/metrics")
@calls(KEYED_READ, GET_PROMETHEUS)
@_keyed
def prometheus_metrics():
    """Prometheus text, whatever the Accept header says."""
    return prometheus_response()


@blueprint.post("/api/models/benchmark/<path:model_id>")
@calls("tokenwire.v1.BenchmarkService/RunBenchmark")
def benchmark(model_id: str):
    """Real generations on the model: tokens/s, first-token latency, memory, per sample."""
    body = parse(bodies.BenchmarkRequest, optional=True)
    # A benchmark runs as long as it takes; no deadline beyond the client's patience.
    answer = grpc_client().benchmark.RunBenchmark(body.to_pb(model_id))
    return jsonify(bodies.Benchmark.from_pb(answer).body())


# -- documentation of these routes (the family convention of rest_bridge.openapi) ----------------

from rest_bridge.bodies import schemas  # noqa: E402
from rest_bridge.openapi_parts import PROMETHEUS_CONTENT, Operations, answer, path_parameter  # noqa: E402

TAGS = [{"name": "Hardware", "description": "Impetus hardware information, metrics and performance modes."},
        {"name": "Health", "description": "Impetus health, readiness, liveness and Prometheus metrics."},
        {"name": "Benchmark", "description": "Impetus model benchmarks with real generations."}]

NS = bodies.NAMESPACE
SCHEMAS = schemas(NS, bodies.Error, bodies.HardwareInfo, bodies.HardwareMetrics,
                  bodies.PerformanceMode, bodies.PerformanceModeRequest, bodies.PerformanceModeSet,
                  bodies.Health, bodies.Ready, bodies.Live, bodies.Status, bodies.BenchmarkRequest,
                  bodies.Benchmark)
_op = Operations(NS, "Hardware", bodies.Error)


def _unready(text: str, model) -> dict:
    return {"503": answer(text, _op.ref(model))}


PATHS = {
    "/api/hardware/info": {"get": _op(
        "Impetus_HardwareInfo", "Hardware information", bodies.HardwareInfo,
        description="CPU, memory, GPUs (NVML), thermal state, OS and versions.")},
    "/api/hardware/metrics": {"get": _op(
        "Impetus_HardwareMetrics", "Real-time metrics", bodies.HardwareMetrics,
        description="CPU per core, load, memory, GPU and the server process.")},
    "/api/hardware/performance-mode": {
        "get": _op("Impetus_GetPerformanceMode", "Current performance mode", bodies.PerformanceMode,
                   description="The mode and each engine's decode threads and prompt batch size."),
        "post": _op("Impetus_SetPerformanceMode", "Set performance mode", bodies.PerformanceModeSet,
                    description="efficiency: half the cores, prompt batch at most 128; balanced: as "
                                "configured; performance: every physical core and the full "
                                "configured batch.",
                    request=bodies.PerformanceModeRequest,
                    errors={"400": "mode is missing or unknown."}),
    },
    "/api/health": {"get": _op(
        "Impetus_Health", "Basic health check", bodies.Health, tag="Health",
        description="503 while the default engine loads or the server drains.",
        responses=_unready("Unhealthy.", bodies.Health))},
    "/api/health/ready": {"get": _op(
        "Impetus_Ready", "Readiness probe", bodies.Ready, tag="Health",
        description="Agrees with grpc.health.v1: ready exactly when SERVING.",
        responses=_unready("Not ready.", bodies.Ready))},
    "/api/health/live": {"get": _op("Impetus_Live", "Liveness probe", bodies.Live, tag="Health",
                                    description="The server process answers.")},
    "/api/health/status": {"get": _op(
        "Impetus_Status", "Detailed status", bodies.Status, tag="Health",
        description="Each component's check, engine counts, process figures.")},
    "/api/health/metrics": {"get": _op(
        "Impetus_PrometheusMetrics", "Prometheus metrics", tag="Health",
        ok={"description": "Prometheus text.",
            "content": {"text/plain": PROMETHEUS_CONTENT["text/plain"]}},
        description="Always Prometheus text, including impetus_requests_total, "
                    "impetus_tokens_generated_total and impetus_cpu_usage_percent.")},
    "/api/models/benchmark/{model_id}": {"post": _op(
        "Impetus_Benchmark", "Benchmark a model", bodies.Benchmark, tag="Benchmark",
        description="Runs real generations (after an untimed warm-up) and reports tokens/s, "
                    "first-token latency, memory and each sample.",
        request=bodies.BenchmarkRequest, request_required=False,
        parameters=[path_parameter("model_id", "The model (engine) id.")],
        errors={"400": "A field is out of range.", "404": "No such model.",
                "503": "The model is loading or the server is draining."})},
}
