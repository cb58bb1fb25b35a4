"""The documented model-management REST routes of Kolosal, Impetus and Foundry, one test each:
status code and the documented fields, against a real server of their own (they change engines)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import grpc
import pytest
import yaml

from rest_bridge import create_app
from rest_bridge.config import BridgeConfig
from server.config import embedded_model_path
from tests.conftest import CAPITAL_QUESTION
from tests.helpers import ServerThread, make_settings

COPY = "Smol-Local-Q4_1"
CATALOG_NAME = "Smol-Catalog-GGUF"
CATALOG_ID = "Tests/Smol-Catalog-GGUF"
F = "/iblink/v1/foundry-local"


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("models")
    shutil.copyfile(embedded_model_path(), directory / f"{COPY}.gguf")
    return directory


@pytest.fixture(scope="module")
def server(models_dir, tmp_path_factory):
    catalog = tmp_path_factory.mktemp("catalog") / "catalog.yaml"
    catalog.write_text(yaml.safe_dump({"models": [{
        "name": CATALOG_NAME, "model_id": CATALOG_ID, "url": "http://127.0.0.1:9/x.gguf",
        "filename": f"{COPY}.gguf", "size_bytes": 100, "quantization": "Q4_1",
        "parameters": "135M", "categories": ["tiny"]}]}))
    running = ServerThread(make_settings(
        model_store={"directory": str(models_dir), "catalog_path": str(catalog)})).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def http(server):
    with grpc.insecure_channel(server.target) as channel:
        app = create_app(BridgeConfig(grpc_target=server.target), channel=channel)
        app.testing = True
        yield app.test_client()


def _chat(http, model: str) -> dict:
    answer = http.post("/v1/chat/completions", json={"model": model, "messages": CAPITAL_QUESTION,
                                                     "max_tokens": 8, "temperature": 0})
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


# -- Kolosal ------------------------------------------------------------------------------------


def test_kolosal_add_engine_answers_201_with_its_parameters(http):
    answer = http.post("/engines", json={"engine_id": "kolosal-smol", "model_path": COPY,
                                         "n_ctx": 1024, "n_gpu_layers": 0, "main_gpu_id": 0})
    assert answer.status_code == 201
    body = answer.get_json()
    assert body["engine_id"] == "kolosal-smol" and body["status"] == "loaded"
    assert body["model_path"].endswith(f"{COPY}.gguf")
    assert body["parameters"] == {"n_ctx": 1024, "n_gpu_layers": 0, "main_gpu_id": 0}
    assert "Paris" in _chat(http, "kolosal-smol")["choices"][0]["message"]["content"]


def test_kolosal_add_engine_errors_use_the_openai_body(http):
    missing = http.post("/engines", json={"engine_id": "x"})
    assert missing.status_code == 400 and missing.get_json()["error"]["param"] == "model_path"
    duplicate = http.post("/engines", json={"engine_id": "default", "model_path": COPY})
    assert duplicate.status_code == 409 and duplicate.get_json()["error"]["type"] == "conflict_error"
    unknown = http.post("/engines", json={"engine_id": "x", "model_path": "/no/such.gguf"})
    assert unknown.status_code == 404 and unknown.get_json()["error"]["code"] == "model_not_found"
    scheme = http.post("/engines", json={"engine_id": "x", "model_path": "file:///etc/passwd"})
    assert scheme.status_code == 422  # Kolosal: a URL it will not download


def test_kolosal_list_engines(http):
    engines = http.get("/engines").get_json()["engines"]
    assert engines[0] == {"engine_id": "default", "status": "loaded",
                          "model_path": engines[0]["model_path"], "is_default": True}
    assert {"engine_id", "status", "model_path"} <= set(engines[-1])


def test_kolosal_engine_status_has_memory_and_performance(http):
    _chat(http, "default")
    body = http.get("/engines/default/status").get_json()
    assert body["engine_id"] == "default" and body["status"] == "loaded"
    assert set(body["parameters"]) == {"n_ctx", "n_gpu_layers", "main_gpu_id"}
    assert body["memory_usage"]["model_size_mb"] > 50 and body["memory_usage"]["context_size_mb"] > 0
    assert body["performance"]["last_inference_tps"] > 0 and body["performance"]["total_requests"] >= 1
    assert http.get("/engines/nope/status").status_code == 404


def test_kolosal_remove_engine(http):
    http.post("/engines", json={"engine_id": "to-remove", "model_path": COPY})
    answer = http.delete("/engines/to-remove")
    assert answer.status_code == 200 and answer.get_json()["engine_id"] == "to-remove"
    assert http.get("/engines/to-remove/status").status_code == 404
    assert http.delete("/engines/to-remove").status_code == 404
    assert http.delete("/engines/default").status_code == 400  # the default: switch first


# -- Impetus ------------------------------------------------------------------------------------


def test_impetus_discover_filters_by_category_and_size(http):
    body = http.get("/api/models/discover").get_json()
    assert body["total_models"] == len(body["models"]) >= 16
    assert "instruct" in body["categories"]
    model = next(m for m in body["models"] if m["name"] == CATALOG_NAME)
    assert model["is_downloaded"] and model["model_id"] == CATALOG_ID
    assert {"model_id", "name", "description", "size_gb", "parameters", "architecture",
            "quantization", "performance_estimate", "recommended_memory_gb", "tags",
            "is_downloaded"} <= set(model)
    assert set(body["hardware_compatibility"]) >= {"mlx_support", "metal_support"}
    small = http.get("/api/models/discover?category=instruct&size_limit_gb=1").get_json()["models"]
    assert small and all(m["size_gb"] <= 1 and "instruct" in m["categories"] for m in small)
    bad = http.get("/api/models/discover?size_limit_gb=lots")
    assert bad.status_code == 400 and {"error", "type", "details", "timestamp"} == set(bad.get_json())


def test_impetus_load_list_and_unload(http):
    loaded = http.post("/api/models/load", json={"model_id": CATALOG_ID})
    assert loaded.status_code == 200, loaded.get_json()
    assert loaded.get_json()["data"]["model_id"] == CATALOG_ID
    assert "Paris" in _chat(http, CATALOG_ID)["choices"][0]["message"]["content"]
    listing = http.get("/api/models/list").get_json()
    entry = next(m for m in listing["models"] if m["model_id"] == CATALOG_ID)
    assert entry["status"] == "loaded" and entry["format"] == "GGUF"
    assert entry["quantization"] == "Q4_1" and entry["architecture"] == "llama"
    assert entry["memory_usage_mb"] > entry["size_mb"] > 50 and entry["load_time_seconds"] > 0
    assert listing["total_memory_usage_mb"] > 0 and listing["available_memory_mb"] > 0
    assert CATALOG_ID in {m["id"] for m in http.get("/v1/models").get_json()["data"]}
    unloaded = http.post("/api/models/unload", json={"model_id": CATALOG_ID})
    assert unloaded.status_code == 200 and unloaded.get_json()["data"]["status"] == "unloaded"
    assert CATALOG_ID not in {m["id"] for m in http.get("/v1/models").get_json()["data"]}
    assert CATALOG_ID not in {m["model_id"] for m in http.get("/api/models/list").get_json()["models"]}
    again = http.post("/api/models/load", json={"model_id": CATALOG_ID, "force_reload": True})
    assert again.status_code == 200 and again.get_json()["data"]["status"] == "loaded"


def test_impetus_errors_use_the_impetus_body(http):
    missing = http.post("/api/models/load", json={})
    assert missing.status_code == 400 and set(missing.get_json()) == {"error", "type", "details", "timestamp"}
    unknown = http.post("/api/models/unload", json={"model_id": "nope"})
    assert unknown.status_code == 404 and unknown.get_json()["type"] == "not_found"


# -- Foundry ------------------------------------------------------------------------------------


def test_foundry_status_while_running(http):
    body = http.get(f"{F}/status").get_json()
    assert body["is_running"] and body["status"] == "running"
    assert body["loaded_model_id"] == "default" and body["port"] == 80
    assert body["health"]["is_healthy"] and body["health"]["endpoint"] == "http://localhost/v1"
    assert body["health"]["api_key"] is None and body["last_updated"].endswith("Z")


def test_foundry_start_refuses_while_running_and_requires_a_model_name(http):
    missing = http.post(f"{F}/start", json={})
    assert missing.status_code == 400
    assert missing.get_json()["error"]["code"] == "missing_model_name"
    running = http.post(f"{F}/start", json={"model_name": COPY})
    assert running.status_code == 409
    error = running.get_json()["error"]
    assert (error["type"], error["code"]) == ("conflict_error", "server_already_running")
    assert error["details"].startswith("Stop the current server")


def test_foundry_stop_then_start_then_status(http):
    assert http.post(f"{F}/stop").get_json() == {"success": True, "message": "Server stopped successfully"}
    stopped = http.get(f"{F}/status").get_json()
    assert not stopped["is_running"] and stopped["status"] == "stopped"
    assert stopped["current_model"] is None and stopped["health"]["endpoint"] is None
    unknown = http.post(f"{F}/start", json={"model_name": "nonexistent-model"})
    assert unknown.status_code == 404 and unknown.get_json()["error"]["code"] == "model_not_found"
    started = http.post(f"{F}/start", json={"model_name": CATALOG_NAME})
    assert started.status_code == 200, started.get_json()
    body = started.get_json()
    assert body["success"] and body["model"] == CATALOG_NAME and body["loaded_model_id"] == CATALOG_ID
    assert body["endpoint"] == "http://localhost/v1" and body["api_key"] is None
    status = http.get(f"{F}/status").get_json()
    assert status["is_running"] and status["current_model"] == CATALOG_NAME
    # The endpoint serves the started model to requests that name none.
    assert _chat(http, "")["model"] == CATALOG_ID


def test_foundry_start_stream_reports_progress_then_success(http):
    http.post(f"{F}/stop")
    answer = http.post(f"{F}/start-stream", json={"model_name": COPY})
    assert answer.status_code == 200 and answer.mimetype == "text/event-stream"
    events = [json.loads(line[6:]) for line in answer.get_data(as_text=True).splitlines()
              if line.startswith("data: ")]
    assert [e["type"] for e in events[:-1]] == ["progress"] * (len(events) - 1)
    assert events[0]["message"] == "Checking if model is downloaded..."
    assert events[-1]["type"] == "success" and events[-1]["data"]["model"] == COPY


def test_foundry_switch_model(http):
    answer = http.post(f"{F}/switch-model", json={"model_name": CATALOG_NAME})
    assert answer.status_code == 200 and answer.get_json()["loaded_model_id"] == CATALOG_ID
    assert http.get(f"{F}/status").get_json()["loaded_model_id"] == CATALOG_ID


def test_foundry_models_lists_catalog_and_local_models(http):
    body = http.get(f"{F}/models").get_json()
    assert body["total_count"] == len(body["models"])
    ours = next(m for m in body["models"] if m["simple_name"] == CATALOG_NAME)
    assert ours["model_id"] == CATALOG_ID and ours["is_downloaded"]
    assert ours["file_size_formatted"].endswith("MB") and ours["size"] == "135M"
    remote = next(m for m in body["models"] if m["simple_name"] == "Qwen2.5-0.5B-Instruct-Q8_0-GGUF")
    assert not remote["is_downloaded"] and not remote["is_loaded"]


def test_foundry_downloaded_models_have_dates(http):
    models = http.get(f"{F}/models/downloaded").get_json()["models"]
    ours = next(m for m in models if m["simple_name"] == CATALOG_NAME)
    assert ours["download_date"].endswith("Z") and ours["quantization"] == "Q4_1"


def test_foundry_loaded_models(http):
    models = http.get(f"{F}/models/loaded").get_json()["models"]
    assert CATALOG_ID in {m["model_id"] for m in models}
    assert all(m["is_loaded"] and m["loaded_at"] for m in models)


def test_foundry_info_and_config(http, models_dir, tmp_path):
    info = http.get(f"{F}/info").get_json()
    assert info["service"] == "FoundryLocal API" and "model_management" in info["capabilities"]
    assert info["configuration"]["cache_dir"] == str(models_dir)
    assert info["model_registry"]["total_models"] >= 16 and info["model_registry"]["loaded_models"] >= 1
    updated = http.post(f"{F}/config", json={"default_log_level": "DEBUG"}).get_json()
    assert updated["success"] and updated["default_log_level"] == "DEBUG"
    assert updated["cachedir"] == str(models_dir)
    # Another port cannot apply to a running server: reported per key, nothing else asked for.
    port = http.post(f"{F}/config", json={"port": 1235})
    assert port.status_code == 200 and not port.get_json()["success"]
    assert set(port.get_json()["not_applied"]) == {"port"} and port.get_json()["port"] == 80
    level = http.post(f"{F}/config", json={"default_log_level": "LOUD"})
    assert level.status_code == 400
    reset = http.post(f"{F}/config", json={"defaults": True}).get_json()
    assert reset["default_log_level"] == "INFO"


def test_foundry_unload_all_then_delete_a_model(http, models_dir):
    assert http.post(f"{F}/models/unload-all").get_json()["success"]
    assert http.get(f"{F}/models/loaded").get_json()["total_count"] == 0
    size = (models_dir / f"{COPY}.gguf").stat().st_size
    in_use = http.delete(f"{F}/models/{CATALOG_NAME}")
    assert in_use.status_code == 409 and in_use.get_json()["error"]["code"] == "model_in_use"
    deleted = http.delete(f"{F}/models/{CATALOG_NAME}?force=true")
    assert deleted.status_code == 200
    body = deleted.get_json()
    assert body["freed_space_bytes"] == size and body["freed_space_formatted"].endswith("MB")
    assert http.delete(f"{F}/models/{CATALOG_NAME}").status_code == 404
