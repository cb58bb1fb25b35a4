"""pb -> the JSON shapes the reference documents give their monitoring routes (shaping only:
every figure comes from the server)."""

from __future__ import annotations

import datetime as dt

from tokenwire.v1 import hardware_service_pb2 as hw_pb
from tokenwire.v1 import metrics_service_pb2 as metrics_pb
from tokenwire.v1 import status_service_pb2 as status_pb

GB = 1e9
MB = 1e6


def iso(unix_ms: int | None = None) -> str:
    """RFC 3339 UTC with milliseconds, e.g. 2025-06-17T06:22:02.238Z."""
    moment = (dt.datetime.fromtimestamp(unix_ms / 1000, dt.timezone.utc) if unix_ms
              else dt.datetime.now(dt.timezone.utc))
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _opt(message, name: str):
    return getattr(message, name) if message.HasField(name) else None


# -- Kolosal (doc 000) ---------------------------------------------------------------------------


def kolosal_gpu(gpu: hw_pb.GpuStatus) -> dict:
    return {"id": gpu.index, "name": gpu.name,
            "utilization_percent": _opt(gpu, "utilization_percent"),
            "memory_utilization_percent": gpu.memory_utilization_percent,
            "temperature_celsius": _opt(gpu, "temperature_celsius"),
            "power_usage_watts": _opt(gpu, "power_usage_watts"),
            "memory_total_bytes": gpu.memory_total_bytes, "memory_used_bytes": gpu.memory_used_bytes}


def kolosal_system(m: hw_pb.HardwareMetrics) -> dict:
    return {
        "cpu": {"usage_percent": m.cpu.usage_percent, "per_core_usage_percent": list(m.cpu.per_core_usage_percent),
                "load_average": list(m.cpu.load_average)},
        "memory": {"total_bytes": m.memory.total_bytes, "used_bytes": m.memory.used_bytes,
                   "free_bytes": m.memory.available_bytes,
                   "utilization_percent": m.memory.usage_percent},
        "gpus": [kolosal_gpu(g) for g in m.gpus],
    }


def kolosal_completion_fields(c: metrics_pb.CompletionMetrics) -> dict:
    return {
        "total_requests": c.total_requests, "successful_requests": c.successful_requests,
        "failed_requests": c.failed_requests, "success_rate_percent": c.success_rate_percent,
        "average_tokens_per_second": c.average_tokens_per_second,
        "average_time_to_first_token_ms": c.average_time_to_first_token_ms,
        "average_inter_token_latency_ms": c.average_inter_token_latency_ms,
        "average_request_duration_ms": c.average_request_duration_ms,
        "total_prompt_tokens": c.prompt_tokens_total,
        "total_completion_tokens": c.completion_tokens_total,
        "queue_depth": c.queue_depth, "active_requests": c.active_requests,
    }


def kolosal_completion(s: metrics_pb.GetMetricsSnapshotResponse) -> dict:
    return {**kolosal_completion_fields(s.completion),
            "engines": {e.engine_id: {**kolosal_completion_fields(e.completion),
                                      "current_tokens_per_second": e.current_tokens_per_second}
                        for e in s.engines}}


# -- health (docs 000, 002, 003 in one body) -----------------------------------------------------


def health_status_word(s: status_pb.GetStatusResponse) -> str:
    if s.ready:
        return "healthy"
    return "draining" if s.draining else "unhealthy"


def superset_health(s: status_pb.GetStatusResponse) -> dict:
    """Kolosal's fields, Kai's per-service status and doc 003's `uptime`, in one body."""
    return {
        "status": health_status_word(s),
        "timestamp": int(dt.datetime.now(dt.timezone.utc).timestamp()),
        "version": s.version,
        "ready": s.ready,
        "message": s.message,
        "uptime": "running" if not s.draining else "draining",
        "engines": {"loaded": s.engines.loaded, "unloaded": s.engines.unloaded,
                    "loading": s.engines.loading, "failed": s.engines.failed,
                    "total": s.engines.total},
        "system": {"uptime_seconds": s.uptime_seconds,
                   "memory_usage_mb": s.process_rss_bytes / MB,
                   "cpu_usage_percent": s.cpu_usage_percent},
        "services": {c.key: {"name": c.name, "status": "healthy" if c.healthy else "unhealthy",
                             "message": c.message} for c in s.checks},
    }


# -- Impetus (doc 001) ---------------------------------------------------------------------------


def impetus_memory(m: hw_pb.MemoryStatus) -> dict:
    return {"total_gb": m.total_bytes / GB, "available_gb": m.available_bytes / GB,
            "used_gb": m.used_bytes / GB, "usage_percent": m.usage_percent}


def impetus_thermal(t: hw_pb.ThermalStatus) -> dict:
    return {"cpu_temperature_c": _opt(t, "cpu_temperature_celsius"),
            "thermal_state": t.thermal_state, "throttling": t.throttling}


def impetus_gpu(gpu: hw_pb.GpuStatus) -> dict:
    return {"name": gpu.name, "vendor": gpu.vendor, "memory_gb": gpu.memory_total_bytes / GB,
            "compute_units": None, "metal_support": False, "unified_memory": False,
            "utilization_percent": _opt(gpu, "utilization_percent"),
            "temperature_celsius": _opt(gpu, "temperature_celsius"),
            "power_usage_watts": _opt(gpu, "power_usage_watts")}


def impetus_info(i: hw_pb.GetHardwareInfoResponse) -> dict:
    cpu = i.cpu
    gpus = [impetus_gpu(g) for g in i.gpus]
    return {
        "chip_type": _opt(i, "chip_type") or cpu.brand,
        "chip_variant": _opt(i, "chip_variant"),
        "cpu": {"brand": cpu.brand, "architecture": cpu.architecture,
                "performance_cores": _opt(cpu, "performance_cores") or cpu.physical_cores,
                "efficiency_cores": _opt(cpu, "efficiency_cores") or 0,
                "total_cores": cpu.logical_cores, "physical_cores": cpu.physical_cores,
                "logical_cores": cpu.logical_cores,
                "base_frequency_ghz": _opt(cpu, "base_frequency_ghz"),
                "max_frequency_ghz": _opt(cpu, "max_frequency_ghz")},
        "memory": impetus_memory(i.memory),
        "gpu": gpus[0] if gpus else None,
        "gpus": gpus,
        "thermal": impetus_thermal(i.thermal),
        "os_version": i.os_version,
        "mlx_version": i.backend_versions.get("mlx"),
        "python_version": i.python_version,
        "backend_versions": dict(i.backend_versions),
        "server_version": i.server_version,
    }


def impetus_metrics(m: hw_pb.HardwareMetrics) -> dict:
    gpus = list(m.gpus)
    first = gpus[0] if gpus else None
    accelerator = None if first is None else {
        "gpu_utilization_percent": _opt(first, "utilization_percent"),
        "memory_used_mb": first.memory_used_bytes / MB,
        "memory_total_mb": first.memory_total_bytes / MB,
        "memory_usage_percent": first.memory_utilization_percent,
        "compute_units_active": None,
    }
    p = m.process
    return {
        "timestamp": iso(m.timestamp_unix_ms),
        "cpu": {"usage_percent": m.cpu.usage_percent,
                # Apple splits cores by kind; elsewhere every core counts as a performance core.
                "performance_core_usage": list(m.cpu.per_core_usage_percent),
                "efficiency_core_usage": [],
                "frequency_ghz": list(m.cpu.frequency_ghz),
                "load_average": list(m.cpu.load_average)},
        "memory": impetus_memory(m.memory),
        "thermal": impetus_thermal(m.thermal),
        "metal": accelerator,
        "gpus": [kolosal_gpu(g) for g in gpus],
        "process": {"pid": p.pid, "cpu_percent": p.cpu_percent, "memory_mb": p.rss_bytes / MB,
                    "memory_percent": p.memory_percent, "threads": p.threads,
                    "file_descriptors": _opt(p, "file_descriptors"),
                    "uptime_seconds": p.uptime_seconds},
    }


def mode_name(mode: int) -> str:
    return hw_pb.PerformanceMode.Name(mode).removeprefix("PERFORMANCE_MODE_").lower()


def performance_mode(report) -> dict:
    return {"mode": mode_name(report.mode),
            "engines": [{"engine_id": e.engine_id, "n_threads": e.n_threads, "n_batch": e.n_batch}
                        for e in report.engines]}
