"""Impetus's (doc 001) request and response bodies: what its routes read, convert to protobuf
(`to_pb`) and answer (`from_pb`, `.body()`); the same models document them."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, field_validator

from rest_bridge.bodies import Answer, Given, NullIsAbsent
from rest_bridge.families.health.bodies import EngineCounts, GpuMetrics
from rest_bridge.model_views import (DECIMAL_GB, DECIMAL_MB, engine_status, health_status_word,
                                     iso, iso_time, megabytes)
from rest_bridge.model_views import optional as _opt
from tokenwire.sizes import GB
from tokenwire.v1 import benchmark_service_pb2 as bench_pb
from tokenwire.v1 import download_service_pb2 as download_pb
from tokenwire.v1 import engine_service_pb2 as engine_pb
from tokenwire.v1 import hardware_service_pb2 as hw_pb
from tokenwire.v1 import model_service_pb2 as model_pb
from tokenwire.v1 import status_service_pb2 as status_pb

NAMESPACE = "impetus"

Mode = Literal["efficiency", "balanced", "performance"]
MODES = {"efficiency": hw_pb.PERFORMANCE_MODE_EFFICIENCY, "balanced": hw_pb.PERFORMANCE_MODE_BALANCED,
         "performance": hw_pb.PERFORMANCE_MODE_PERFORMANCE}

_QWEN = "Qwen/Qwen2.5-0.5B-Instruct-Q8_0-GGUF"


# -- requests -------------------------------------------------------------------------------------


class DiscoverQuery(NullIsAbsent):
    """`GET /api/models/discover`'s query: strings, read as the types below."""

    model_config = ConfigDict(strict=False)

    category: str = ""
    size_limit_gb: float | None = Field(None, gt=0, le=1e9)

    @field_validator("size_limit_gb", mode="before")
    @classmethod
    def _empty_is_no_limit(cls, value):
        return None if value == "" else value

    def to_pb(self) -> model_pb.ListCatalogModelsRequest:
        return model_pb.ListCatalogModelsRequest(
            category=self.category,
            max_size_bytes=int(self.size_limit_gb * GB) if self.size_limit_gb else 0)


class LoadRequest(NullIsAbsent):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"model_id": _QWEN, "force_reload": False}]})

    model_id: Given
    force_reload: bool = False
    """Unload and load again when it is loaded already."""

    def to_pb(self) -> engine_pb.LoadEngineRequest:
        return engine_pb.LoadEngineRequest(engine_id=self.model_id, force_reload=self.force_reload)

    def to_add_pb(self) -> engine_pb.AddEngineRequest:
        """A new engine named after the model, which is what clients then send as `model`."""
        return engine_pb.AddEngineRequest(engine_id=self.model_id, model=self.model_id)


class UnloadRequest(NullIsAbsent):
    model_config = ConfigDict(json_schema_extra={"examples": [{"model_id": _QWEN, "force": False}]})

    model_id: Given
    force: bool = False
    """Cancel requests in flight instead of letting them finish."""

    def to_pb(self) -> engine_pb.UnloadEngineRequest:
        return engine_pb.UnloadEngineRequest(engine_id=self.model_id, force=self.force)


class DownloadRequest(NullIsAbsent):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"model_id": _QWEN, "auto_load": True, "force_download": False}]})

    model_id: Given
    auto_load: bool = False
    """Create an engine (named by the catalog model id) when the download completes."""
    force_download: bool = False
    """Replace a file already on disk (409 otherwise)."""

    def to_pb(self) -> download_pb.StartDownloadRequest:
        return download_pb.StartDownloadRequest(catalog_name=self.model_id, auto_load=self.auto_load,
                                                force=self.force_download)


class PerformanceModeRequest(NullIsAbsent):
    model_config = ConfigDict(json_schema_extra={"examples": [{"mode": "performance"}]})

    mode: Mode

    def to_pb(self) -> hw_pb.SetPerformanceModeRequest:
        return hw_pb.SetPerformanceModeRequest(mode=MODES[self.mode])


def _server_checked(minimum: float, maximum: float, default: float) -> dict:
    # The server checks the range (INVALID_ARGUMENT) and applies the default; documented here.
    return {"minimum": minimum, "maximum": maximum, "default": default}


class BenchmarkRequest(NullIsAbsent):
    PROTO = bench_pb.RunBenchmarkRequest
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"num_samples": 10, "max_tokens": 100, "temperature": 0.7, "include_memory_test": True,
         "include_warmup": True}]})

    num_samples: int | None = Field(None, json_schema_extra=_server_checked(1, 100, 10))
    max_tokens: int | None = Field(None, json_schema_extra=_server_checked(1, 4096, 100))
    temperature: float | None = Field(None, json_schema_extra=_server_checked(0, 2, 0.7))
    include_memory_test: bool | None = Field(None, json_schema_extra={"default": True})
    include_warmup: bool | None = Field(None, json_schema_extra={"default": True})

    def to_pb(self, engine_id: str) -> bench_pb.RunBenchmarkRequest:
        # None leaves a field unset: the server's default.
        return bench_pb.RunBenchmarkRequest(
            engine_id=engine_id, num_samples=self.num_samples, max_tokens=self.max_tokens,
            temperature=self.temperature, include_warmup=self.include_warmup,
            include_memory_test=self.include_memory_test)


# -- model management answers ---------------------------------------------------------------------


class Error(Answer):
    """Impetus's error body, on every /api/* route."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"error": "engine 'x' not found", "type": "not_found_error",
         "details": ["reason: MODEL_NOT_FOUND"], "timestamp": "2025-01-01T12:30:00Z"}]})

    error: str
    type: str
    details: list[str]
    timestamp: str


class PerformanceEstimate(Answer):
    tokens_per_second_measured: float


class DiscoveredModel(Answer):
    model_id: str
    name: str
    description: str
    size_gb: float
    parameters: str
    architecture: str
    quantization: str
    performance_estimate: PerformanceEstimate | None
    """The tokens/s measured on this machine once the model has run here, else null."""
    recommended_memory_gb: float
    tags: list[str]
    categories: list[str]
    is_downloaded: bool
    is_loaded: bool

    @classmethod
    def from_pb(cls, m: model_pb.CatalogModel, measured: float | None) -> DiscoveredModel:
        return cls(model_id=m.model_id, name=m.name, description=m.description,
                   size_gb=round(m.size_bytes / GB, 2), parameters=m.parameters,
                   architecture=m.architecture, quantization=m.quantization,
                   performance_estimate=(None if measured is None else PerformanceEstimate(
                       tokens_per_second_measured=round(measured, 1))),
                   recommended_memory_gb=round(m.recommended_memory_bytes / GB, 1),
                   tags=list(m.tags), categories=list(m.categories),
                   is_downloaded=m.is_downloaded, is_loaded=m.is_loaded)


class HardwareCompatibility(Answer):
    gguf_support: bool
    mlx_support: bool
    metal_support: bool
    gpu_offload: bool


class Discovery(Answer):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "models": [{
            "model_id": _QWEN, "name": "Qwen2.5-0.5B-Instruct-Q8_0-GGUF",
            "description": "Fastest Qwen2.5; multilingual, good for simple tasks.",
            "size_gb": 0.49, "parameters": "0.5B", "architecture": "qwen2",
            "quantization": "Q8_0", "performance_estimate": {"tokens_per_second_measured": 41.3},
            "recommended_memory_gb": 1.0, "tags": ["instruct", "small"],
            "categories": ["instruct", "small"], "is_downloaded": False, "is_loaded": False}],
        "total_models": 1, "categories": ["code", "instruct", "large", "medium", "small"],
        "hardware_compatibility": {"gguf_support": True, "mlx_support": False,
                                   "metal_support": False, "gpu_offload": False}}]})

    models: list[DiscoveredModel]
    total_models: int
    categories: list[str]
    hardware_compatibility: HardwareCompatibility


_LOADED = {"model_id": _QWEN, "status": "loaded", "size_mb": 506.5, "memory_usage_mb": 530.2,
           "load_time_seconds": 3.2, "last_used": "2025-01-01T12:30:00Z", "format": "GGUF",
           "architecture": "qwen2", "parameters": "0.5B", "quantization": "Q8_0",
           "is_default": False}


class LoadedModel(Answer):
    model_id: str
    status: str
    size_mb: float
    memory_usage_mb: float
    load_time_seconds: float
    last_used: str | None
    format: str
    architecture: str
    parameters: str
    quantization: str
    is_default: bool

    @classmethod
    def from_pb(cls, engine: engine_pb.Engine) -> LoadedModel:
        memory = engine.memory.model_bytes + engine.memory.context_bytes
        return cls(model_id=engine.engine_id, status=engine_status(engine),
                   size_mb=megabytes(engine.model_size_bytes), memory_usage_mb=megabytes(memory),
                   load_time_seconds=round(engine.load_seconds, 2),
                   last_used=iso_time(engine.last_used_unix or engine.loaded_unix), format="GGUF",
                   architecture=engine.model.architecture, parameters=engine.model.size_label,
                   quantization=engine.model.quantization, is_default=engine.is_default)


class LoadedModels(Answer):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"models": [_LOADED], "total_memory_usage_mb": 530.2, "available_memory_mb": 12288.0}]})

    models: list[LoadedModel]
    total_memory_usage_mb: float
    available_memory_mb: float

    @classmethod
    def from_pb(cls, answer: engine_pb.ListEnginesResponse) -> LoadedModels:
        return cls(models=[LoadedModel.from_pb(e) for e in answer.engines
                           if e.status == engine_pb.ENGINE_STATUS_LOADED],
                   total_memory_usage_mb=megabytes(answer.memory_committed_bytes),
                   available_memory_mb=megabytes(answer.memory_available_bytes))


class LoadAnswer(Answer):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"success": True, "message": "Model loaded", "data": _LOADED}]})

    success: bool = True
    message: str = "Model loaded"
    data: LoadedModel


class UnloadedModel(Answer):
    model_id: str
    status: str


class UnloadAnswer(Answer):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"success": True, "message": "Model unloaded",
         "data": {"model_id": _QWEN, "status": "unloaded"}}]})

    success: bool = True
    message: str = "Model unloaded"
    data: UnloadedModel


class StartedDownload(Answer):
    model_id: str
    download_id: str
    estimated_size_gb: float


class DownloadAnswer(Answer):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"success": True, "message": "Model download started",
         "data": {"model_id": _QWEN, "download_id": "dl-0123456789abcdef",
                  "estimated_size_gb": 0.49}}]})

    success: bool = True
    message: str = "Model download started"
    data: StartedDownload


# -- hardware answers (decimal GB and MB, as Impetus reports them) --------------------------------


class Memory(Answer):
    total_gb: float
    available_gb: float
    used_gb: float
    usage_percent: float

    @classmethod
    def from_pb(cls, m: hw_pb.MemoryStatus) -> Memory:
        return cls(total_gb=m.total_bytes / DECIMAL_GB, available_gb=m.available_bytes / DECIMAL_GB,
                   used_gb=m.used_bytes / DECIMAL_GB, usage_percent=m.usage_percent)


class Thermal(Answer):
    cpu_temperature_c: float | None
    thermal_state: str
    throttling: bool

    @classmethod
    def from_pb(cls, t: hw_pb.ThermalStatus) -> Thermal:
        return cls(cpu_temperature_c=_opt(t, "cpu_temperature_celsius"),
                   thermal_state=t.thermal_state, throttling=t.throttling)


class Gpu(Answer):
    name: str
    vendor: str
    memory_gb: float
    compute_units: int | None
    metal_support: bool
    unified_memory: bool
    utilization_percent: float | None
    temperature_celsius: float | None
    power_usage_watts: float | None

    @classmethod
    def from_pb(cls, gpu: hw_pb.GpuStatus) -> Gpu:
        return cls(name=gpu.name, vendor=gpu.vendor, memory_gb=gpu.memory_total_bytes / DECIMAL_GB,
                   compute_units=None, metal_support=False, unified_memory=False,
                   utilization_percent=_opt(gpu, "utilization_percent"),
                   temperature_celsius=_opt(gpu, "temperature_celsius"),
                   power_usage_watts=_opt(gpu, "power_usage_watts"))


class Cpu(Answer):
    brand: str
    architecture: str
    performance_cores: int
    efficiency_cores: int
    total_cores: int
    physical_cores: int
    logical_cores: int
    base_frequency_ghz: float | None
    max_frequency_ghz: float | None


_MEMORY = {"total_gb": 18.0, "available_gb": 12.5, "used_gb": 5.5, "usage_percent": 30.6}
_THERMAL = {"cpu_temperature_c": 45.2, "thermal_state": "nominal", "throttling": False}
_GPU = {"name": "NVIDIA GeForce RTX 4090", "vendor": "NVIDIA", "memory_gb": 25.8,
        "compute_units": None, "metal_support": False, "unified_memory": False,
        "utilization_percent": 75.3, "temperature_celsius": 52.0, "power_usage_watts": 120.5}


class HardwareInfo(Answer):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "chip_type": "AMD Ryzen 9 7950X", "chip_variant": None,
        "cpu": {"brand": "AMD Ryzen 9 7950X", "architecture": "x86_64", "performance_cores": 16,
                "efficiency_cores": 0, "total_cores": 32, "physical_cores": 16, "logical_cores": 32,
                "base_frequency_ghz": 4.5, "max_frequency_ghz": 5.7},
        "memory": _MEMORY, "gpu": _GPU, "gpus": [_GPU], "thermal": _THERMAL,
        "os_version": "Linux 6.8.0", "mlx_version": None, "python_version": "3.11.7",
        "backend_versions": {"llama_cpp": "0.3.36"}, "server_version": "0.1.0"}]})

    chip_type: str | None
    chip_variant: str | None
    cpu: Cpu
    memory: Memory
    gpu: Gpu | None
    """The first GPU; null without one."""
    gpus: list[Gpu]
    """Every NVIDIA GPU; empty without an NVIDIA driver."""
    thermal: Thermal
    os_version: str
    mlx_version: str | None
    python_version: str
    backend_versions: dict[str, str]
    server_version: str

    @classmethod
    def from_pb(cls, i: hw_pb.GetHardwareInfoResponse) -> HardwareInfo:
        cpu = i.cpu
        gpus = [Gpu.from_pb(g) for g in i.gpus]
        return cls(
            chip_type=_opt(i, "chip_type") or cpu.brand, chip_variant=_opt(i, "chip_variant"),
            cpu=Cpu(brand=cpu.brand, architecture=cpu.architecture,
                    performance_cores=_opt(cpu, "performance_cores") or cpu.physical_cores,
                    efficiency_cores=_opt(cpu, "efficiency_cores") or 0,
                    total_cores=cpu.logical_cores, physical_cores=cpu.physical_cores,
                    logical_cores=cpu.logical_cores,
                    base_frequency_ghz=_opt(cpu, "base_frequency_ghz"),
                    max_frequency_ghz=_opt(cpu, "max_frequency_ghz")),
            memory=Memory.from_pb(i.memory), gpu=gpus[0] if gpus else None, gpus=gpus,
            thermal=Thermal.from_pb(i.thermal), os_version=i.os_version,
            mlx_version=i.backend_versions.get("mlx"), python_version=i.python_version,
            backend_versions=dict(i.backend_versions), server_version=i.server_version)


class CpuUsage(Answer):
    usage_percent: float
    performance_core_usage: list[float]
    """Apple splits cores by kind; elsewhere every core counts as a performance core."""
    efficiency_core_usage: list[float]
    frequency_ghz: list[float]
    load_average: list[float]


class Accelerator(Answer):
    gpu_utilization_percent: float | None
    memory_used_mb: float
    memory_total_mb: float
    memory_usage_percent: float
    compute_units_active: int | None


class Process(Answer):
    pid: int
    cpu_percent: float
    memory_mb: float
    memory_percent: float
    threads: int
    file_descriptors: int | None
    uptime_seconds: float


class HardwareMetrics(Answer):
    """Also the payload of the socket.io `hardware_metrics` event."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "timestamp": "2025-01-01T12:30:00.000Z",
        "cpu": {"usage_percent": 45.2, "performance_core_usage": [50.1, 48.3, 52.7, 46.9],
                "efficiency_core_usage": [], "frequency_ghz": [3.8, 3.7, 3.9, 3.6],
                "load_average": [2.1, 1.8, 1.5]},
        "memory": _MEMORY, "thermal": _THERMAL,
        "metal": {"gpu_utilization_percent": 75.3, "memory_used_mb": 2048.0,
                  "memory_total_mb": 25757.2, "memory_usage_percent": 8.0,
                  "compute_units_active": None},
        "gpus": [{"id": 0, "name": "NVIDIA GeForce RTX 4090", "utilization_percent": 75.3,
                  "memory_utilization_percent": 8.0, "temperature_celsius": 52.0,
                  "power_usage_watts": 120.5, "memory_total_bytes": 25757220864,
                  "memory_used_bytes": 2048000000}],
        "process": {"pid": 12345, "cpu_percent": 25.3, "memory_mb": 1024.5, "memory_percent": 5.7,
                    "threads": 8, "file_descriptors": 45, "uptime_seconds": 3600.5}}]})

    timestamp: str
    cpu: CpuUsage
    memory: Memory
    thermal: Thermal
    metal: Accelerator | None
    """The first GPU's figures; null without a GPU."""
    gpus: list[GpuMetrics]
    process: Process

    @classmethod
    def from_pb(cls, m: hw_pb.HardwareMetrics) -> HardwareMetrics:
        first = m.gpus[0] if m.gpus else None
        p = m.process
        return cls(
            timestamp=iso(m.timestamp_unix_ms),
            cpu=CpuUsage(usage_percent=m.cpu.usage_percent,
                         performance_core_usage=list(m.cpu.per_core_usage_percent),
                         efficiency_core_usage=[], frequency_ghz=list(m.cpu.frequency_ghz),
                         load_average=list(m.cpu.load_average)),
            memory=Memory.from_pb(m.memory), thermal=Thermal.from_pb(m.thermal),
            metal=None if first is None else Accelerator(
                gpu_utilization_percent=_opt(first, "utilization_percent"),
                memory_used_mb=first.memory_used_bytes / DECIMAL_MB,
                memory_total_mb=first.memory_total_bytes / DECIMAL_MB,
                memory_usage_percent=first.memory_utilization_percent, compute_units_active=None),
            gpus=[GpuMetrics.from_pb(g) for g in m.gpus],
            process=Process(pid=p.pid, cpu_percent=p.cpu_percent, memory_mb=p.rss_bytes / DECIMAL_MB,
                            memory_percent=p.memory_percent, threads=p.threads,
                            file_descriptors=_opt(p, "file_descriptors"),
                            uptime_seconds=p.uptime_seconds))


class EngineTuning(Answer):
    engine_id: str
    n_threads: int
    n_batch: int


def _mode_name(mode: int) -> str:
    return hw_pb.PerformanceMode.Name(mode).removeprefix("PERFORMANCE_MODE_").lower()


class PerformanceMode(Answer):
    mode: Mode
    engines: list[EngineTuning]
    """Each engine's decode threads and prompt batch size under this mode."""

    @classmethod
    def from_pb(cls, report: hw_pb.GetPerformanceModeResponse) -> PerformanceMode:
        return cls(mode=_mode_name(report.mode), engines=[
            EngineTuning(engine_id=e.engine_id, n_threads=e.n_threads, n_batch=e.n_batch)
            for e in report.engines])


class PerformanceModeSet(Answer):
    success: bool = True
    mode: Mode
    engines: list[EngineTuning]

    @classmethod
    def from_pb(cls, report: hw_pb.SetPerformanceModeResponse) -> PerformanceModeSet:
        return cls(**PerformanceMode.from_pb(report).model_dump())


# -- health answers -------------------------------------------------------------------------------


class Health(Answer):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"status": "healthy", "timestamp": "2025-01-01T12:30:00.000Z", "version": "1.0.0",
         "uptime_seconds": 3600.5}]})

    status: str
    timestamp: str
    version: str
    uptime_seconds: float

    @classmethod
    def from_pb(cls, s: status_pb.GetStatusResponse) -> Health:
        return cls(status=health_status_word(s), timestamp=iso(), version=s.version,
                   uptime_seconds=s.uptime_seconds)


class ReadyChecks(Answer):
    memory_available: bool
    models_loaded: bool
    mlx_available: bool
    """Always false: tokenwire runs llama.cpp."""
    not_draining: bool


class Ready(Answer):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"ready": True, "timestamp": "2025-01-01T12:30:00.000Z",
         "checks": {"memory_available": True, "models_loaded": True, "mlx_available": False,
                    "not_draining": True},
         "message": "Ready"}]})

    ready: bool
    timestamp: str
    checks: ReadyChecks
    message: str

    @classmethod
    def from_pb(cls, s: status_pb.GetStatusResponse) -> Ready:
        checks = {c.key: c.healthy for c in s.checks}
        return cls(ready=s.ready, timestamp=iso(), checks=ReadyChecks(
            memory_available=checks.get("memory_available", False),
            models_loaded=s.engines.loaded > 0 and s.ready, mlx_available=False,
            not_draining=not s.draining), message=s.message)


class Live(Answer):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"alive": True, "timestamp": "2025-01-01T12:30:00.000Z", "uptime_seconds": 3600.5,
         "last_heartbeat": "2025-01-01T12:30:00.000Z"}]})

    alive: bool
    timestamp: str
    uptime_seconds: float
    last_heartbeat: str

    @classmethod
    def from_pb(cls, s: status_pb.GetStatusResponse) -> Live:
        now = iso()
        return cls(alive=s.live, timestamp=now, uptime_seconds=s.uptime_seconds,
                   last_heartbeat=now)


class Component(Answer):
    name: str
    healthy: bool
    status: str
    message: str


class SystemFigures(Answer):
    memory_usage_mb: float
    cpu_usage_percent: float


class Status(Answer):
    status: str
    ready: bool
    alive: bool
    draining: bool
    message: str
    timestamp: str
    version: str
    uptime_seconds: float
    default_model: str
    components: dict[str, Component]
    engines: EngineCounts
    requests_in_flight: int
    system: SystemFigures

    @classmethod
    def from_pb(cls, s: status_pb.GetStatusResponse) -> Status:
        e = s.engines
        return cls(
            status=health_status_word(s), ready=s.ready, alive=s.live, draining=s.draining,
            message=s.message, timestamp=iso(), version=s.version,
            uptime_seconds=s.uptime_seconds, default_model=s.default_engine_id,
            components={c.key: Component(name=c.name, healthy=c.healthy,
                                         status="healthy" if c.healthy else "unhealthy",
                                         message=c.message) for c in s.checks},
            engines=EngineCounts(loaded=e.loaded, loading=e.loading, unloaded=e.unloaded,
                                 failed=e.failed, total=e.total),
            requests_in_flight=s.requests_in_flight,
            system=SystemFigures(memory_usage_mb=s.process_rss_bytes / DECIMAL_MB,
                                 cpu_usage_percent=s.cpu_usage_percent))


# -- benchmark answer -----------------------------------------------------------------------------


class BenchmarkSample(Answer):
    tokens: int
    time_seconds: float
    tokens_per_second: float
    first_token_latency_ms: float
    decode_tokens_per_second: float


class Benchmark(Answer):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "model_id": _QWEN, "timestamp": "2025-01-01T12:30:00.000Z", "tokens_per_second": 45.2,
        "first_token_latency_ms": 180.5, "total_tokens": 1000, "total_time_seconds": 22.1,
        "memory_usage_mb": 4250.1, "gpu_utilization_percent": 87.3,
        "samples": [{"tokens": 100, "time_seconds": 2.21, "tokens_per_second": 45.2,
                     "first_token_latency_ms": 180.5, "decode_tokens_per_second": 48.9}]}]})

    model_id: str
    timestamp: str
    tokens_per_second: float
    first_token_latency_ms: float
    total_tokens: int
    total_time_seconds: float
    memory_usage_mb: float | None
    gpu_utilization_percent: float | None
    samples: list[BenchmarkSample]

    @classmethod
    def from_pb(cls, r: bench_pb.RunBenchmarkResponse) -> Benchmark:
        memory = _opt(r, "memory_usage_bytes")
        return cls(
            model_id=r.engine_id, timestamp=iso(r.timestamp_unix_ms),
            tokens_per_second=r.tokens_per_second, first_token_latency_ms=r.first_token_latency_ms,
            total_tokens=r.total_tokens, total_time_seconds=r.total_time_seconds,
            memory_usage_mb=None if memory is None else memory / DECIMAL_MB,
            gpu_utilization_percent=_opt(r, "gpu_utilization_percent"),
            samples=[BenchmarkSample(tokens=s.tokens, time_seconds=s.time_seconds,
                                     tokens_per_second=s.tokens_per_second,
                                     first_token_latency_ms=s.first_token_latency_ms,
                                     decode_tokens_per_second=s.decode_tokens_per_second)
                     for s in r.samples])
