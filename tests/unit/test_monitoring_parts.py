"""Unit checks of monitoring parts that the integration tests cannot reach on this machine (an
NVIDIA GPU) or that have many cases (secret shapes, performance mode arithmetic)."""

from __future__ import annotations

import logging
import sys
import types

import pytest

from server.monitoring import hardware
from server.monitoring.logbuffer import REDACTED, AccessLogFilter, LogBuffer, RedactingFilter
from server.monitoring.performance import EFFICIENCY_MAX_BATCH, tuning_for

KEY = "sk-abcdef0123456789"


@pytest.mark.parametrize("line", [
    f"Authorization: Bearer {KEY}",
    f"authorization=Basic {KEY}",
    f"(('authorization', 'Bearer {KEY}'),)",
    f"{{'x-api-key': '{KEY}'}}",
    f"X-API-Key: {KEY}",
    f"api_key={KEY}",
    f'"apiKey": "{KEY}"',
    f"Custom-Auth-Header: {KEY}",
    f"the key {KEY} was refused",
])
def test_credentials_are_redacted_in_every_shape(line):
    redacted = RedactingFilter().redact(line)
    assert KEY not in redacted and REDACTED in redacted


def test_registered_secrets_without_a_shape_are_redacted_and_ordinary_text_is_kept():
    f = RedactingFilter(["hunter2hunter2"])
    assert f.redact("password hunter2hunter2 used") == f"password {REDACTED} used"
    assert f.redact("engine default loaded: 4 sequences") == "engine default loaded: 4 sequences"


def test_the_buffer_keeps_the_last_records_redacted_and_numbered():
    buffer = LogBuffer(capacity=3)
    logger = logging.getLogger("test.buffer")
    logger.addHandler(buffer)
    logger.setLevel(logging.DEBUG)
    try:
        for i in range(5):
            logger.info("line %d with Bearer %s", i, KEY)
    finally:
        logger.removeHandler(buffer)
    records = buffer.recent(10)
    assert [r["sequence"] for r in records] == [3, 4, 5]
    assert records[-1]["message"] == f"line 4 with Bearer {REDACTED}"
    assert records[-1]["source"] == "test.buffer" and records[-1]["level"] == "INFO"


def test_access_lines_reach_the_console_only_when_the_access_log_is_on():
    record = logging.LogRecord("tokenwire.access", logging.INFO, "", 0, "rpc x OK", None, None)
    other = logging.LogRecord("server.app", logging.INFO, "", 0, "loaded", None, None)
    assert not AccessLogFilter(False).filter(record) and AccessLogFilter(True).filter(record)
    assert AccessLogFilter(False).filter(other)


def test_performance_modes_map_to_threads_and_batch(monkeypatch):
    monkeypatch.setattr("server.monitoring.performance.physical_cores", lambda: 8)
    assert tuning_for("balanced", 6, 512) == (6, 512)
    assert tuning_for("efficiency", 8, 512) == (4, EFFICIENCY_MAX_BATCH)
    assert tuning_for("efficiency", 1, 64) == (1, 64)
    assert tuning_for("performance", 6, 512) == (8, 512)


def test_no_nvml_means_no_gpus_not_an_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails as if not installed
    nvml = hardware.Nvml()
    assert not nvml.available and nvml.gpus() == []


def test_without_nvidias_library_pynvml_is_not_even_imported(monkeypatch):
    if hardware._nvml_library_loads():
        pytest.skip("this machine has libnvidia-ml")
    monkeypatch.delitem(sys.modules, "pynvml", raising=False)
    nvml = hardware.Nvml()
    assert not nvml.available and nvml.gpus() == []
    assert "pynvml" not in sys.modules


def test_nvml_gpus_are_reported_with_what_each_board_supports(monkeypatch):
    class NVMLError(Exception):
        pass

    memory = types.SimpleNamespace(total=80 * 2**30, used=20 * 2**30)

    def unsupported(_handle):
        raise NVMLError("not supported")

    fake = types.SimpleNamespace(
        NVMLError=NVMLError, NVML_TEMPERATURE_GPU=0,
        nvmlInit=lambda: None, nvmlDeviceGetCount=lambda: 1,
        nvmlDeviceGetHandleByIndex=lambda i: f"gpu{i}",
        nvmlDeviceGetMemoryInfo=lambda h: memory,
        nvmlDeviceGetName=lambda h: b"NVIDIA H100 80GB HBM3",
        nvmlDeviceGetUtilizationRates=lambda h: types.SimpleNamespace(gpu=37),
        nvmlDeviceGetTemperature=lambda h, sensor: 41,
        nvmlDeviceGetPowerUsage=unsupported)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setattr(hardware, "_nvml_library_loads", lambda: True)
    (gpu,) = hardware.Nvml().gpus()
    assert gpu["name"] == "NVIDIA H100 80GB HBM3" and gpu["vendor"] == "NVIDIA"
    assert gpu["memory_utilization_percent"] == 25.0
    assert gpu["utilization_percent"] == 37.0 and gpu["temperature_celsius"] == 41.0
    assert "power_usage_watts" not in gpu  # this board does not report power


def test_a_gpu_in_the_kolosal_and_impetus_shapes():
    from rest_bridge.families.health.bodies import GpuMetrics
    from rest_bridge.families.impetus.bodies import Gpu
    from rest_bridge.model_views import DECIMAL_GB
    from tokenwire.v1 import hardware_service_pb2 as hw_pb

    gpu = hw_pb.GpuStatus(index=0, name="NVIDIA H100 80GB HBM3", vendor="NVIDIA",
                          memory_total_bytes=80 * 10**9, memory_used_bytes=20 * 10**9,
                          utilization_percent=37.0, memory_utilization_percent=25.0,
                          temperature_celsius=41.0)  # no power reading on this board
    assert GpuMetrics.from_pb(gpu).body() == {
        "id": 0, "name": "NVIDIA H100 80GB HBM3", "utilization_percent": 37.0,
        "memory_utilization_percent": 25.0, "temperature_celsius": 41.0,
        "power_usage_watts": None, "memory_total_bytes": 80 * 10**9,
        "memory_used_bytes": 20 * 10**9}
    impetus = Gpu.from_pb(gpu).body()
    assert impetus["name"] == "NVIDIA H100 80GB HBM3" and impetus["vendor"] == "NVIDIA"
    assert impetus["memory_gb"] == pytest.approx(80 * 10**9 / DECIMAL_GB)
    assert impetus["utilization_percent"] == 37.0 and impetus["power_usage_watts"] is None
