"""The answers of the shared health and metrics routes, built from the server's protobuf answers
(shaping only: every figure comes from the server). Kolosal's GPU shape is reused by Impetus."""

from __future__ import annotations

import datetime as dt

from rest_bridge.bodies import Answer
from rest_bridge.model_views import DECIMAL_MB, health_status_word, iso, optional
from tokenwire.v1 import hardware_service_pb2 as hw_pb
from tokenwire.v1 import metrics_service_pb2 as metrics_pb
from tokenwire.v1 import status_service_pb2 as status_pb

NAMESPACE = "monitoring"


class EngineCounts(Answer):
    loaded: int
    unloaded: int
    loading: int
    failed: int
    total: int


class ProcessFigures(Answer):
    uptime_seconds: float
    memory_usage_mb: float
    cpu_usage_percent: float


class Service(Answer):
    name: str
    status: str
    """healthy or unhealthy"""
    message: str


class Health(Answer):
    """Kolosal's fields, Kai's per-service status and the Rust service's `uptime`, in one body."""

    status: str
    """healthy when ready; unhealthy while the default engine loads or failed; draining during
    shutdown (Kolosal, Kai)"""
    timestamp: int
    """Unix seconds (Kolosal)"""
    version: str
    ready: bool
    """Same as grpc.health.v1 SERVING"""
    message: str
    uptime: str
    """running or draining (the Rust service)"""
    engines: EngineCounts
    system: ProcessFigures
    services: dict[str, Service]
    """Per-component status (Kai): config, models, memory_available, draining."""

    @classmethod
    def from_pb(cls, s: status_pb.GetStatusResponse) -> Health:
        e = s.engines
        return cls(
            status=health_status_word(s), timestamp=int(dt.datetime.now(dt.timezone.utc).timestamp()),
            version=s.version, ready=s.ready, message=s.message,
            uptime="draining" if s.draining else "running",
            engines=EngineCounts(loaded=e.loaded, unloaded=e.unloaded, loading=e.loading,
                                 failed=e.failed, total=e.total),
            system=ProcessFigures(uptime_seconds=s.uptime_seconds,
                                  memory_usage_mb=s.process_rss_bytes / DECIMAL_MB,
                                  cpu_usage_percent=s.cpu_usage_percent),
            services={c.key: Service(name=c.name, status="healthy" if c.healthy else "unhealthy",
                                     message=c.message) for c in s.checks})


class Readiness(Answer):
    status: str
    """ready or not_ready"""
    models_available: int
    timestamp: str
    message: str

    @classmethod
    def from_pb(cls, s: status_pb.GetStatusResponse) -> Readiness:
        return cls(status="ready" if s.ready else "not_ready", models_available=s.engines.loaded,
                   timestamp=iso(), message=s.message)


class GpuMetrics(Answer):
    """A GPU in Kolosal's shape (`/metrics/system`), which Impetus's metrics carry as well."""

    id: int
    name: str
    utilization_percent: float | None
    memory_utilization_percent: float
    temperature_celsius: float | None
    power_usage_watts: float | None
    memory_total_bytes: int
    memory_used_bytes: int

    @classmethod
    def from_pb(cls, gpu: hw_pb.GpuStatus) -> GpuMetrics:
        return cls(id=gpu.index, name=gpu.name,
                   utilization_percent=optional(gpu, "utilization_percent"),
                   memory_utilization_percent=gpu.memory_utilization_percent,
                   temperature_celsius=optional(gpu, "temperature_celsius"),
                   power_usage_watts=optional(gpu, "power_usage_watts"),
                   memory_total_bytes=gpu.memory_total_bytes,
                   memory_used_bytes=gpu.memory_used_bytes)


class CpuFigures(Answer):
    usage_percent: float
    per_core_usage_percent: list[float]
    load_average: list[float]


class MemoryFigures(Answer):
    total_bytes: int
    used_bytes: int
    free_bytes: int
    utilization_percent: float


class System(Answer):
    cpu: CpuFigures
    memory: MemoryFigures
    gpus: list[GpuMetrics]
    """NVIDIA GPUs; empty without an NVIDIA driver."""

    @classmethod
    def from_pb(cls, m: hw_pb.HardwareMetrics) -> System:
        return cls(cpu=CpuFigures(usage_percent=m.cpu.usage_percent,
                                  per_core_usage_percent=list(m.cpu.per_core_usage_percent),
                                  load_average=list(m.cpu.load_average)),
                   memory=MemoryFigures(total_bytes=m.memory.total_bytes,
                                        used_bytes=m.memory.used_bytes,
                                        free_bytes=m.memory.available_bytes,
                                        utilization_percent=m.memory.usage_percent),
                   gpus=[GpuMetrics.from_pb(g) for g in m.gpus])


class CompletionFigures(Answer):
    total_requests: int
    successful_requests: int
    failed_requests: int
    success_rate_percent: float
    average_tokens_per_second: float
    average_time_to_first_token_ms: float
    average_inter_token_latency_ms: float
    average_request_duration_ms: float
    total_prompt_tokens: int
    total_completion_tokens: int
    queue_depth: int
    active_requests: int

    @classmethod
    def fields_of(cls, c: metrics_pb.CompletionMetrics) -> dict:
        return dict(
            total_requests=c.total_requests, successful_requests=c.successful_requests,
            failed_requests=c.failed_requests, success_rate_percent=c.success_rate_percent,
            average_tokens_per_second=c.average_tokens_per_second,
            average_time_to_first_token_ms=c.average_time_to_first_token_ms,
            average_inter_token_latency_ms=c.average_inter_token_latency_ms,
            average_request_duration_ms=c.average_request_duration_ms,
            total_prompt_tokens=c.prompt_tokens_total,
            total_completion_tokens=c.completion_tokens_total, queue_depth=c.queue_depth,
            active_requests=c.active_requests)


class EngineCompletion(CompletionFigures):
    current_tokens_per_second: float


class Completion(CompletionFigures):
    engines: dict[str, EngineCompletion]
    """The same figures per engine."""

    @classmethod
    def from_pb(cls, s: metrics_pb.GetMetricsSnapshotResponse) -> Completion:
        return cls(**cls.fields_of(s.completion), engines={
            e.engine_id: EngineCompletion(**cls.fields_of(e.completion),
                                          current_tokens_per_second=e.current_tokens_per_second)
            for e in s.engines})


class SystemMetrics(Answer):
    timestamp: str
    system: System


class CompletionMetrics(Answer):
    timestamp: str
    completion: Completion


class Metrics(SystemMetrics):
    completion: Completion

    @classmethod
    def from_pb(cls, s: metrics_pb.GetMetricsSnapshotResponse) -> Metrics:
        return cls(timestamp=iso(s.timestamp_unix_ms), system=System.from_pb(s.system),
                   completion=Completion.from_pb(s))
