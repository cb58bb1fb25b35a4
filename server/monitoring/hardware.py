"""The machine as psutil and NVML see it. NVML is optional: without an NVIDIA driver (or without
the nvidia-ml-py package) the GPU list is empty, never an error."""

from __future__ import annotations

import ctypes
import importlib.metadata
import logging
import os
import platform
import subprocess
import sys
import threading
import time

import psutil

log = logging.getLogger(__name__)


def _cpu_brand() -> str:
    if sys.platform == "darwin":
        try:
            return subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True,
                                  text=True, timeout=2).stdout.strip() or platform.processor()
        except (OSError, subprocess.SubprocessError):
            return platform.processor()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Hardware", "Processor") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _apple_cores() -> dict:
    """Performance and efficiency core counts on Apple silicon (hw.perflevel0/1)."""
    if sys.platform != "darwin" or platform.machine() != "arm64":
        return {}
    counts = {}
    for field, level in (("performance_cores", 0), ("efficiency_cores", 1)):
        try:
            out = subprocess.run(["sysctl", "-n", f"hw.perflevel{level}.physicalcpu"],
                                 capture_output=True, text=True, timeout=2).stdout.strip()
            if out.isdigit():
                counts[field] = int(out)
        except (OSError, subprocess.SubprocessError):
            pass
    return counts


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _nvml_library_loads() -> bool:
    """Whether NVIDIA's management library is there, tried the way pynvml loads it on Linux.
    pynvml itself is a large module (about 2 MiB resident), not worth importing without it."""
    if not sys.platform.startswith("linux"):
        return True  # pynvml knows where to look elsewhere
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return False
    return True


class Nvml:
    """NVIDIA GPUs through NVML, initialised once; `available` is False without a driver."""

    def __init__(self):
        self._nvml = None
        if not _nvml_library_loads():
            log.debug("NVML unavailable (no libnvidia-ml): reporting no GPUs")
            return
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml = pynvml
        except Exception as exc:  # ImportError, NVMLError_LibraryNotFound, DriverNotLoaded...
            log.debug("NVML unavailable (%s): reporting no GPUs", exc)

    @property
    def available(self) -> bool:
        return self._nvml is not None

    def gpus(self) -> list[dict]:
        if self._nvml is None:
            return []
        nv = self._nvml
        result = []
        try:
            count = nv.nvmlDeviceGetCount()
        except nv.NVMLError as exc:
            log.warning("NVML: cannot count devices: %s", exc)
            return []
        for index in range(count):
            try:
                handle = nv.nvmlDeviceGetHandleByIndex(index)
                memory = nv.nvmlDeviceGetMemoryInfo(handle)
                name = nv.nvmlDeviceGetName(handle)
            except nv.NVMLError as exc:
                log.warning("NVML: device %d unreadable: %s", index, exc)
                continue
            gpu = {
                "index": index,
                "name": name.decode() if isinstance(name, bytes) else name,
                "vendor": "NVIDIA",
                "memory_total_bytes": int(memory.total),
                "memory_used_bytes": int(memory.used),
                "memory_utilization_percent": 100.0 * memory.used / memory.total if memory.total else 0.0,
            }
            # Each figure on its own: some boards (MIG slices, passive cards) lack one or another.
            for field, read in (
                ("utilization_percent", lambda: float(nv.nvmlDeviceGetUtilizationRates(handle).gpu)),
                ("temperature_celsius", lambda: float(nv.nvmlDeviceGetTemperature(handle, nv.NVML_TEMPERATURE_GPU))),
                ("power_usage_watts", lambda: nv.nvmlDeviceGetPowerUsage(handle) / 1000.0),
            ):
                try:
                    gpu[field] = read()
                except nv.NVMLError:
                    pass
            result.append(gpu)
        return result


class Hardware:
    """Cheap snapshots of the machine and this process. psutil's CPU percentages are measured
    between calls, so the first call primes them here."""

    def __init__(self):
        self._process = psutil.Process()
        self._lock = threading.Lock()
        self.nvml = Nvml()
        psutil.cpu_percent(percpu=True)
        self._process.cpu_percent()

    @staticmethod
    def memory() -> dict:
        vm = psutil.virtual_memory()
        used = vm.total - vm.available
        return {"total_bytes": vm.total, "available_bytes": vm.available, "used_bytes": used,
                "usage_percent": 100.0 * used / vm.total if vm.total else 0.0}

    @staticmethod
    def thermal() -> dict:
        reader = getattr(psutil, "sensors_temperatures", None)
        try:
            sensors = reader() if reader else {}
        except (OSError, RuntimeError):
            sensors = {}
        readings = [t for entries in sensors.values() for t in entries if t.current]
        if not readings:
            return {"thermal_state": "unknown", "throttling": False}
        hottest = max(readings, key=lambda t: t.current)
        high, critical = hottest.high or 0, hottest.critical or 0
        if critical and hottest.current >= critical:
            state = "critical"
        elif high and hottest.current >= high:
            state = "serious"
        elif high and hottest.current >= high - 10:
            state = "fair"
        else:
            state = "nominal"
        return {"cpu_temperature_celsius": float(hottest.current), "thermal_state": state,
                "throttling": bool(high and hottest.current >= high)}

    def info(self, server_version: str) -> dict:
        freq = None
        try:
            freq = psutil.cpu_freq()
        except (OSError, NotImplementedError):
            pass
        cpu = {"brand": _cpu_brand(), "architecture": platform.machine(),
               "physical_cores": psutil.cpu_count(logical=False) or os.cpu_count() or 1,
               "logical_cores": psutil.cpu_count() or 1, **_apple_cores()}
        if freq:
            if freq.min:
                cpu["base_frequency_ghz"] = freq.min / 1000
            if freq.max or freq.current:
                cpu["max_frequency_ghz"] = (freq.max or freq.current) / 1000
        info = {
            "cpu": cpu,
            "memory": self.memory(),
            "gpus": self.nvml.gpus(),
            "thermal": self.thermal(),
            "os_version": f"{platform.system()} {platform.release()}",
            "python_version": platform.python_version(),
            "backend_versions": {name: v for name, v in (
                ("llama_cpp", _version("llama_cpp_python")), ("mlx", _version("mlx")),
                ("nvml", _version("nvidia-ml-py"))) if v},
            "server_version": server_version,
        }
        if sys.platform == "darwin" and platform.machine() == "arm64":
            chip = cpu["brand"].removeprefix("Apple ").strip()
            info["chip_type"] = chip
            variant = chip.split()[-1] if len(chip.split()) > 1 else ""
            info["chip_variant"] = variant
        return info

    def process(self) -> dict:
        p = self._process
        with p.oneshot():
            status = {
                "pid": p.pid,
                "cpu_percent": p.cpu_percent(),
                "rss_bytes": p.memory_info().rss,
                "memory_percent": p.memory_percent(),
                "threads": p.num_threads(),
                "uptime_seconds": max(time.time() - p.create_time(), 0.0),
            }
            if hasattr(p, "num_fds"):
                status["file_descriptors"] = p.num_fds()
        return status

    def metrics(self) -> dict:
        with self._lock:  # cpu_percent(interval=None) measures since the previous caller
            per_core = psutil.cpu_percent(percpu=True)
            process = self.process()
        try:
            freqs = [f.current / 1000 for f in psutil.cpu_freq(percpu=True) or []]
        except (OSError, NotImplementedError):
            freqs = []
        try:
            load = list(psutil.getloadavg())
        except (OSError, AttributeError):
            load = []
        return {
            "timestamp_unix_ms": int(time.time() * 1000),
            "cpu": {"usage_percent": sum(per_core) / len(per_core) if per_core else 0.0,
                    "per_core_usage_percent": per_core, "frequency_ghz": freqs,
                    "load_average": load},
            "memory": self.memory(),
            "gpus": self.nvml.gpus(),
            "thermal": self.thermal(),
            "process": process,
        }
