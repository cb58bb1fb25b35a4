"""Every documented monitoring route, against the real server: status code and documented fields
with real values. (Health during load and drain: test_health_follows_lifecycle.py.)"""

from __future__ import annotations

import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from server.monitoring import hardware

from tests.conftest import CAPITAL_QUESTION

PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0;q=0.9,"
                     "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")


def _chat(http, max_tokens: int = 6):
    answer = http.post("/v1/chat/completions", json={"messages": CAPITAL_QUESTION,
                                                     "max_tokens": max_tokens, "temperature": 0})
    assert answer.status_code == 200
    return answer.get_json()


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _value(samples: dict, name: str, **labels) -> float:
    return sum(v for (n, l), v in samples.items()
               if n == name and all(dict(l).get(k) == val for k, val in labels.items()))


def test_prometheus_text_parses_and_counters_rise_after_requests(http):
    before = _samples(http.get("/api/health/metrics").get_data(as_text=True))
    _chat(http)
    http.post("/v1/completions", json={"prompt": "Hello", "max_tokens": 4})
    http.get("/health")
    answer = http.get("/api/health/metrics")
    assert answer.status_code == 200
    assert answer.content_type.startswith("text/plain")
    after = _samples(answer.get_data(as_text=True))

    def rose(name, by=1.0, **labels):
        assert _value(after, name, **labels) >= _value(before, name, **labels) + by, name

    rose("tokenwire_generation_requests_total", engine="default", kind="chat")
    rose("tokenwire_generation_requests_total", engine="default", kind="completion")
    rose("tokenwire_rpc_requests_total", method="/tokenwire.v1.GenerationService/Complete", code="OK", by=2)
    rose("tokenwire_completion_tokens_total", engine="default", by=2)
    rose("tokenwire_time_to_first_token_seconds_count", engine="default", by=2)
    rose("tokenwire_inter_token_latency_seconds_count", engine="default")
    # The names the reference documents use (doc 003, doc 001).
    rose("chat_completions_requests_total")
    rose("completions_requests_total")
    rose("completions_tokens_total", by=2)
    rose("completions_duration_seconds_count", by=2)
    rose("health_check_requests_total")
    rose("impetus_requests_total", by=3)
    rose("impetus_tokens_generated_total", by=2)
    for name in ("completions_errors_total", "impetus_cpu_usage_percent", "tokenwire_queue_depth",
                 "tokenwire_active_requests", "tokenwire_engine_tokens_per_second"):
        assert any(n == name for n, _ in after), name


def test_metrics_is_prometheus_for_prometheus_and_json_otherwise(http):
    scraped = http.get("/metrics", headers={"Accept": PROMETHEUS_ACCEPT})
    assert scraped.status_code == 200
    assert scraped.content_type.startswith("application/openmetrics-text")
    assert _samples(scraped.get_data(as_text=True))
    plain = http.get("/v1/metrics", headers={"Accept": "text/plain"})
    assert plain.content_type.startswith("text/plain") and "# TYPE" in plain.get_data(as_text=True)
    for path in ("/metrics", "/v1/metrics"):
        # axios's default Accept (Kolosal's Node.js getMetrics() example) prefers neither: JSON.
        for accept in ("*/*", "application/json", "application/json, text/plain, */*"):
            answer = http.get(path, headers={"Accept": accept})
            assert answer.status_code == 200 and answer.is_json, (path, accept)


def test_kolosal_json_metrics_carry_documented_fields_with_real_values(http):
    _chat(http, max_tokens=8)
    body = http.get("/metrics").get_json()
    assert body["timestamp"].endswith("Z")
    system = body["system"]
    assert 0 <= system["cpu"]["usage_percent"] <= 100
    assert system["memory"]["total_bytes"] == psutil.virtual_memory().total
    assert 0 < system["memory"]["used_bytes"] < system["memory"]["total_bytes"]
    assert 0 < system["memory"]["utilization_percent"] < 100
    assert isinstance(system["gpus"], list)  # empty here: no NVIDIA driver on this machine
    completion = body["completion"]
    assert completion["total_requests"] >= completion["successful_requests"] >= 1
    assert 0 < completion["success_rate_percent"] <= 100
    assert completion["average_tokens_per_second"] > 0
    assert completion["average_time_to_first_token_ms"] > 0
    assert completion["engines"]["default"]["total_completion_tokens"] >= 8
    for path in ("/metrics/system", "/v1/metrics/system"):
        answer = http.get(path)
        assert answer.status_code == 200 and set(answer.get_json()) == {"timestamp", "system"}
    for path in ("/metrics/completion", "/v1/metrics/completion"):
        answer = http.get(path)
        assert answer.status_code == 200 and set(answer.get_json()) == {"timestamp", "completion"}
        assert answer.get_json()["completion"]["average_tokens_per_second"] > 0


@pytest.mark.parametrize("path", ["/health", "/v1/health"])
def test_health_is_one_superset_body(http, path):
    answer = http.get(path)
    assert answer.status_code == 200
    body = answer.get_json()
    # Kolosal
    assert body["status"] == "healthy" and isinstance(body["timestamp"], int)
    assert body["version"] and body["engines"] == {"loaded": 1, "unloaded": 0, "loading": 0,
                                                   "failed": 0, "total": 1}
    assert body["system"]["uptime_seconds"] > 0 and body["system"]["memory_usage_mb"] > 10
    assert "cpu_usage_percent" in body["system"]
    # Kai: per-service status
    assert body["services"]["config"]["status"] == "healthy"
    assert body["services"]["models"] == {"name": "model_mapping", "status": "healthy",
                                          "message": "1 models configured, 1 loaded"}
    # The Rust service
    assert body["uptime"] == "running"


def test_readiness(http):
    answer = http.get("/readiness")
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["status"] == "ready" and body["models_available"] == 1
    assert body["timestamp"].endswith("Z")


def test_hardware_info_shows_this_machine(http):
    answer = http.get("/api/hardware/info")
    assert answer.status_code == 200
    info = answer.get_json()
    cpu = info["cpu"]
    assert cpu["total_cores"] == psutil.cpu_count()
    assert cpu["physical_cores"] == psutil.cpu_count(logical=False)
    assert cpu["brand"] and cpu["architecture"]
    assert {"performance_cores", "efficiency_cores", "base_frequency_ghz", "max_frequency_ghz"} <= set(cpu)
    assert info["memory"]["total_gb"] == pytest.approx(psutil.virtual_memory().total / 1e9)
    expected = hardware.Nvml().gpus()  # [] without NVML or a GPU: no GPU, and no error
    assert [g["name"] for g in info["gpus"]] == [g["name"] for g in expected]
    assert (info["gpu"] is None) == (not expected)
    assert set(info["thermal"]) == {"cpu_temperature_c", "thermal_state", "throttling"}
    assert info["python_version"].count(".") == 2 and info["os_version"]
    assert "mlx_version" in info and "chip_type" in info and "chip_variant" in info
    assert info["backend_versions"]["llama_cpp"]


def test_hardware_metrics_show_this_process(http):
    import os

    answer = http.get("/api/hardware/metrics")
    assert answer.status_code == 200
    metrics = answer.get_json()
    assert len(metrics["cpu"]["performance_core_usage"]) == psutil.cpu_count()
    assert len(metrics["cpu"]["load_average"]) == 3
    # Impetus's accelerator block: the first GPU, when there is one.
    assert (metrics["metal"] is None) == (not hardware.Nvml().gpus())
    process = metrics["process"]
    assert process["pid"] == os.getpid()  # the test process hosts the server
    assert process["threads"] > 1 and process["memory_mb"] > 10 and process["file_descriptors"] > 3
    assert process["uptime_seconds"] > 0
    assert set(metrics["memory"]) == {"total_gb", "available_gb", "used_gb", "usage_percent"}


def test_performance_mode_changes_engine_settings_and_reports_them(http, server):
    try:
        answer = http.post("/api/hardware/performance-mode", json={"mode": "efficiency"})
        assert answer.status_code == 200
        body = answer.get_json()
        assert body["success"] is True and body["mode"] == "efficiency"
        (engine,) = body["engines"]
        assert engine["n_batch"] == 128
        assert engine["n_threads"] == max(1, psutil.cpu_count(logical=False) // 2)
        assert server.backend().tuning() == (engine["n_threads"], engine["n_batch"])
        assert http.get("/api/hardware/performance-mode").get_json()["mode"] == "efficiency"
        _chat(http)  # the engine still generates with the new settings
    finally:
        restored = http.post("/api/hardware/performance-mode", json={"mode": "balanced"}).get_json()
    assert restored["engines"][0]["n_batch"] == 512


def test_performance_mode_rejects_unknown_modes_in_the_impetus_shape(http):
    answer = http.post("/api/hardware/performance-mode", json={"mode": "turbo"})
    assert answer.status_code == 400
    body = answer.get_json()
    assert set(body) == {"error", "type", "details", "timestamp"}
    assert "efficiency" in body["error"]


def test_impetus_health_family(http):
    health = http.get("/api/health")
    assert health.status_code == 200
    assert health.get_json()["status"] == "healthy"
    assert set(health.get_json()) == {"status", "timestamp", "version", "uptime_seconds"}
    ready = http.get("/api/health/ready")
    assert ready.status_code == 200
    body = ready.get_json()
    assert body["ready"] is True and body["message"] == "Ready"
    assert body["checks"]["models_loaded"] is True and body["checks"]["memory_available"] is True
    assert "mlx_available" in body["checks"]
    live = http.get("/api/health/live").get_json()
    assert live["alive"] is True and live["uptime_seconds"] > 0 and live["last_heartbeat"]
    status = http.get("/api/health/status")
    assert status.status_code == 200
    detail = status.get_json()
    assert detail["components"]["models"]["healthy"] is True
    assert detail["engines"]["loaded"] == 1 and detail["ready"] is True
    prometheus = http.get("/api/health/metrics", headers={"Accept": "application/json"})
    assert prometheus.content_type.startswith("text/plain")  # always Prometheus
    assert _samples(prometheus.get_data(as_text=True))


def test_benchmark_returns_real_measurements(http):
    answer = http.post("/api/models/benchmark/default",
                       json={"num_samples": 2, "max_tokens": 8, "temperature": 0.7,
                             "include_warmup": True, "include_memory_test": True})
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["model_id"] == "default" and body["timestamp"].endswith("Z")
    assert len(body["samples"]) == 2
    for sample in body["samples"]:
        assert 1 <= sample["tokens"] <= 8 and sample["time_seconds"] > 0
        assert sample["tokens_per_second"] == pytest.approx(sample["tokens"] / sample["time_seconds"])
    assert body["total_tokens"] == sum(s["tokens"] for s in body["samples"])
    assert body["tokens_per_second"] > 0 and body["first_token_latency_ms"] > 0
    assert body["total_time_seconds"] == pytest.approx(sum(s["time_seconds"] for s in body["samples"]))
    assert body["memory_usage_mb"] > 10
    if not hardware.Nvml().gpus():
        assert body["gpu_utilization_percent"] is None


@pytest.mark.parametrize("path, payload, status", [
    ("/api/models/benchmark/no-such-model", {"num_samples": 1}, 404),
    ("/api/models/benchmark/default", {"num_samples": 0}, 400),
    ("/api/models/benchmark/default", {"max_tokens": "many"}, 400),
])
def test_benchmark_errors_use_the_impetus_shape(http, path, payload, status):
    answer = http.post(path, json=payload)
    assert answer.status_code == status
    assert set(answer.get_json()) == {"error", "type", "details", "timestamp"}


def test_foundry_health(http):
    answer = http.get("/iblink/v1/foundry-local/health")
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["status"] == "healthy" and body["service"] == "foundry-local-api"
    assert body["foundry_local"]["is_running"] is True
    assert body["foundry_local"]["status"] == "running"
    assert body["foundry_local"]["model"] == "default"
    assert set(body) == {"status", "service", "version", "timestamp", "foundry_local"}


def test_foundry_logs_return_recent_entries(http):
    _chat(http)
    answer = http.get("/iblink/v1/foundry-local/logs?count=5")
    assert answer.status_code == 200
    entries = answer.get_json()
    assert 1 <= len(entries) <= 5
    assert set(entries[0]) == {"timestamp", "level", "message", "source"}
    assert any("GenerationService" in e["message"] for e in http.get(
        "/iblink/v1/foundry-local/logs").get_json())
    for bad in ("0", "abc", "10000000"):
        error = http.get(f"/iblink/v1/foundry-local/logs?count={bad}")
        assert error.status_code == 400
        assert set(error.get_json()["error"]) >= {"message", "type", "code"}


def test_the_python_client_reads_status_metrics_and_hardware(client):
    status = client.status()
    assert status.ready and status.live and status.engines.loaded == 1
    assert status.engine_states[0].engine_id == "default" and status.engine_states[0].is_default
    assert _samples(client.prometheus_metrics())
    assert client.prometheus_metrics(openmetrics=True).rstrip().endswith("# EOF")
    snapshot = client.hardware_metrics()
    assert snapshot.memory.total_bytes == psutil.virtual_memory().total
    assert snapshot.process.threads > 1


def test_a_session_turn_is_counted_like_any_chat(http):
    """Session turns generate through the same engine path as the generation RPCs, so they
    reach the generation metrics too (and the inference stats built from them)."""
    before = _samples(http.get("/api/health/metrics").get_data(as_text=True))
    answer = http.post("/chat/completions", json={"model-name": "default", "prompt": "Hi",
                                                  "max-token": 3, "temperature": 0})
    assert answer.status_code == 200 and answer.get_data()  # the whole turn, streamed
    after = _samples(http.get("/api/health/metrics").get_data(as_text=True))
    for name in ("tokenwire_generation_requests_total", "tokenwire_completion_tokens_total"):
        assert _value(after, name, engine="default") > _value(before, name, engine="default")
