"""The documented download routes of Kolosal, Impetus and Foundry, from a local HTTP server that
serves a real GGUF: one test per route, checking status codes and the documented fields."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import grpc
import pytest
import yaml

from rest_bridge import create_app
from rest_bridge.config import BridgeConfig
from tests.conftest import CAPITAL_QUESTION
from tests.file_server import serving_embedded_gguf
from tests.helpers import ServerThread, make_settings, wait_for

GGUF = "served-smollm2.gguf"
MiB = 1 << 20
F = "/iblink/v1/foundry-local"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    # One file per download that gets cancelled.
    aliases = tuple(f"{name}.gguf" for name in ("cancel-delete", "cancel-post", "bulk-delete",
                                                 "bulk-post"))
    with serving_embedded_gguf(tmp_path_factory.mktemp("served"), GGUF, aliases=aliases) as served:
        yield served


@pytest.fixture(autouse=True)
def _release(files):
    yield
    files.release()


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def server(files, models_dir, tmp_path_factory):
    catalog = tmp_path_factory.mktemp("catalog") / "catalog.yaml"
    entries = [{"name": f"Smol-{tag}-GGUF", "model_id": f"Tests/Smol-{tag}-GGUF",
                "url": files.url(GGUF), "filename": f"smol-{tag.lower()}.gguf",
                "size_bytes": 98 * MiB, "quantization": "Q4_1", "parameters": "135M",
                "categories": ["tiny"]} for tag in ("Impetus", "Foundry", "Stream", "Start")]
    entries.append({**entries[0], "name": "Smol-Broken-GGUF", "model_id": "Tests/Smol-Broken-GGUF",
                    "url": files.url("no-such-file.gguf"), "filename": "smol-broken.gguf"})
    catalog.write_text(yaml.safe_dump({"models": entries}))
    settings = make_settings(
        model_store={"directory": str(models_dir), "catalog_path": str(catalog)},
        downloads={"allow_private_addresses": True, "progress_interval_seconds": 0.05,
                   "max_retries": 1, "retry_backoff_seconds": 0.01})
    running = ServerThread(settings).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def http(server):
    with grpc.insecure_channel(server.target) as channel:
        app = create_app(BridgeConfig(grpc_target=server.target), channel=channel)
        app.testing = True
        yield app.test_client()


def _events(answer) -> list[dict]:
    return [json.loads(line[6:]) for line in answer.get_data(as_text=True).splitlines()
            if line.startswith("data: ")]


def _answers(http, model: str) -> str:
    answer = http.post("/v1/chat/completions", json={"model": model, "messages": CAPITAL_QUESTION,
                                                     "max_tokens": 8, "temperature": 0})
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["choices"][0]["message"]["content"]


# -- Kolosal ------------------------------------------------------------------------------------


def test_kolosal_add_engine_from_a_url_downloads_then_creates_it(http, files):
    files.pause(8 * MiB)  # hold the transfer so that its progress can be read mid-way
    answer = http.post("/engines", json={"engine_id": "from-url", "model_path": files.url(GGUF),
                                         "n_ctx": 1024})
    assert answer.status_code == 202, answer.get_json()
    assert answer.get_json()["status"] == "downloading" and answer.get_json()["download_id"]
    for path in ("/download-progress/from-url", "/v1/download-progress/from-url"):
        progress = wait_for(lambda: (b := http.get(path).get_json())["progress"]["downloaded_bytes"]
                            >= 8 * MiB and b)
        assert progress["status"] == "downloading" and progress["url"] == files.url(GGUF)
        assert set(progress["progress"]) == {"downloaded_bytes", "total_bytes", "percentage",
                                             "download_speed_bps"}
        assert set(progress["timing"]) >= {"start_time", "elapsed_seconds",
                                           "estimated_remaining_seconds"}
        assert progress["engine_creation"]["engine_id"] == "from-url"
    active = http.get("/downloads").get_json()
    assert active["total_active"] == 1 and active["active_downloads"][0]["model_id"] == "from-url"
    assert http.get("/v1/downloads").get_json()["total_active"] == 1
    files.release()
    status = wait_for(lambda: (b := http.get("/engines/from-url/status").get_json()).get("status")
                      == "loaded" and b, timeout=120)
    assert status["parameters"]["n_ctx"] == 1024
    assert "Paris" in _answers(http, "from-url")
    # The same URL again: the file is on disk already, so the engine is created at once.
    again = http.post("/engines", json={"engine_id": "from-url-2", "model_path": files.url(GGUF)})
    assert again.status_code == 201 and again.get_json()["status"] == "loaded"
    assert http.get("/download-progress/from-url").get_json()["status"] == "completed"
    assert http.get("/downloads").get_json()["total_active"] == 0


def test_kolosal_refuses_download_urls_it_will_not_fetch_with_422(http):
    answer = http.post("/engines", json={"engine_id": "bad", "model_path": "http://"})
    assert answer.status_code == 422 and answer.get_json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("model_id, cancel", [
    ("cancel-delete", lambda http, model_id: http.delete(f"/downloads/{model_id}")),
    ("cancel-post", lambda http, model_id: http.post(f"/v1/downloads/{model_id}/cancel")),
])
def test_kolosal_cancel_one_download_both_forms(http, files, model_id, cancel):
    files.pause(4 * MiB)
    assert http.post("/engines", json={"engine_id": model_id,
                                       "model_path": files.url(f"{model_id}.gguf")}).status_code == 202
    wait_for(lambda: http.get(f"/download-progress/{model_id}").get_json()["progress"]
             ["downloaded_bytes"] >= 4 * MiB)
    answer = cancel(http, model_id)
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["success"] and body["model_id"] == model_id
    assert body["previous_status"] == "downloading" and body["download_type"] == "regular"
    assert http.get(f"/download-progress/{model_id}").get_json()["status"] == "cancelled"
    again = cancel(http, model_id)
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "download_not_active"
    assert http.get(f"/engines/{model_id}/status").status_code == 404


@pytest.mark.parametrize("model_id, cancel_all", [
    ("bulk-delete", lambda http: http.delete("/downloads")),
    ("bulk-post", lambda http: http.post("/v1/downloads/cancel")),
])
def test_kolosal_cancel_all_downloads_with_the_documented_summary(http, files, model_id, cancel_all):
    files.pause(2 * MiB)
    http.post("/engines", json={"engine_id": model_id, "model_path": files.url(f"{model_id}.gguf")})
    wait_for(lambda: http.get("/downloads").get_json()["total_active"] == 1)
    body = cancel_all(http).get_json()
    assert body["success"] and body["message"] == "Bulk download cancellation completed"
    assert body["summary"]["successful_cancellations"] == 1
    assert set(body["summary"]) == {"total_downloads", "successful_cancellations",
                                    "failed_cancellations", "startup_cancellations",
                                    "regular_cancellations"}
    assert body["cancelled_downloads"][0] == {"model_id": model_id, "previous_status": "downloading",
                                              "download_type": "regular"}
    assert all(f["reason"] for f in body["failed_cancellations"])


def test_kolosal_progress_of_an_unknown_model_is_404(http):
    assert http.get("/download-progress/never-downloaded").status_code == 404


# -- Impetus ------------------------------------------------------------------------------------


def test_impetus_download_with_auto_load_serves_the_model(http):
    answer = http.post("/api/models/download", json={"model_id": "Tests/Smol-Impetus-GGUF",
                                                     "auto_load": True})
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["success"] and body["message"] == "Model download started"
    assert body["data"]["model_id"] == "Tests/Smol-Impetus-GGUF" and body["data"]["download_id"]
    assert 0.05 < body["data"]["estimated_size_gb"] < 0.2
    loaded = lambda: "Tests/Smol-Impetus-GGUF" in {  # noqa: E731
        m["model_id"] for m in http.get("/api/models/list").get_json()["models"]}
    wait_for(loaded, timeout=120)
    assert "Paris" in _answers(http, "Tests/Smol-Impetus-GGUF")
    discovered = http.get("/api/models/discover?category=tiny").get_json()["models"]
    assert next(m for m in discovered if m["name"] == "Smol-Impetus-GGUF")["is_downloaded"]


def test_impetus_download_errors(http):
    unknown = http.post("/api/models/download", json={"model_id": "no-such-model"})
    assert unknown.status_code == 404 and set(unknown.get_json()) == {"error", "type", "details",
                                                                      "timestamp"}
    again = http.post("/api/models/download", json={"model_id": "Smol-Impetus-GGUF"})
    assert again.status_code == 409  # already on disk; force_download replaces it


# -- Foundry ------------------------------------------------------------------------------------


def test_foundry_download_answers_when_the_file_is_on_disk(http, models_dir):
    answer = http.post(f"{F}/models/Smol-Foundry-GGUF/download")
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["success"] and body["message"] == "Model downloaded successfully"
    assert body["actual_model_id"] == "Tests/Smol-Foundry-GGUF"
    assert body["file_size_bytes"] == (models_dir / "smol-foundry.gguf").stat().st_size
    assert isinstance(body["download_time_seconds"], int)
    again = http.post(f"{F}/models/Smol-Foundry-GGUF/download").get_json()
    assert again["message"] == "Model already downloaded"
    missing = http.post(f"{F}/models/nope/download")
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "model_not_found"


def test_foundry_download_stream_reports_progress_then_success(http):
    answer = http.post(f"{F}/models/Smol-Stream-GGUF/download-stream")
    assert answer.status_code == 200 and answer.mimetype == "text/event-stream"
    events = _events(answer)
    assert events[0] == {"type": "progress", "message": "Starting download: Smol-Stream-GGUF"}
    progress = [e["message"] for e in events if e["type"] == "progress"][1:]
    assert progress and all(m.startswith("Downloaded: ") and "MB/s" in m for m in progress)
    assert progress[-1].startswith("Downloaded: 100.0%")
    assert events[-1] == {"type": "success", "message": "Download completed successfully",
                          "data": {"success": True, "model_name": "Smol-Stream-GGUF"}}


def test_foundry_start_with_auto_download(http):
    assert http.post(f"{F}/stop").status_code == 200
    refused = http.post(f"{F}/start", json={"model_name": "Smol-Start-GGUF",
                                            "options": {"auto_download": False}})
    assert refused.status_code == 400
    assert refused.get_json()["error"]["code"] == "model_not_downloaded"
    answer = http.post(f"{F}/start-stream", json={"model_name": "Smol-Start-GGUF"})
    events = _events(answer)
    messages = [e["message"] for e in events]
    assert "Starting download: Smol-Start-GGUF" in messages and "Download completed" in messages
    assert events[-1]["type"] == "success", events[-1]
    assert events[-1]["data"]["loaded_model_id"] == "Tests/Smol-Start-GGUF"
    assert http.get(f"{F}/status").get_json()["current_model"] == "Smol-Start-GGUF"


# -- the document's own JavaScript, run with Node against the bridge over HTTP ----------------------

SNIPPETS = Path(__file__).resolve().parents[1] / "data" / "reference_snippets"


@pytest.fixture(scope="module")
def bridge_url(server):
    from tests.e2e.cli_process import BridgeProcess

    running = BridgeProcess(server.target, runtime="in-process").start()
    yield running.base_url
    running.stop()


def _run_snippet(name: str, bridge_url: str, tmp_path, example_model: str, model: str):
    """The snippet as the document prints it; only its host and example model are ours."""
    node = shutil.which("node")
    assert node, "Node.js is needed to run the reference documents' JavaScript examples"
    code = (SNIPPETS / name).read_text()
    assert "http://localhost:9500" in code and example_model in code
    script = tmp_path / name
    script.write_text(code.replace("http://localhost:9500", bridge_url).replace(example_model, model))
    return subprocess.run([node, str(script)], capture_output=True, text=True, timeout=300)


def _download_stream(bridge_url, tmp_path, model: str):
    return _run_snippet("foundry_download_stream.mjs", bridge_url, tmp_path,
                        "Qwen2.5-3B-Instruct-Q4_K_M-GGUF", model)


def test_the_documents_download_stream_client_sees_a_failed_download(bridge_url, tmp_path):
    done = _download_stream(bridge_url, tmp_path, "Smol-Broken-GGUF")
    assert done.returncode == 0, done.stderr
    assert "Progress: Starting download: Smol-Broken-GGUF" in done.stdout
    assert "Error: Failed to download model" in done.stderr
    assert "Download complete!" not in done.stdout


def test_the_documents_download_stream_client_sees_success(bridge_url, tmp_path):
    done = _download_stream(bridge_url, tmp_path, "Smol-Impetus-GGUF")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "Download complete!" and not done.stderr


def test_the_documents_start_stream_client_sees_an_unknown_model_fail(http, bridge_url, tmp_path):
    assert http.post(f"{F}/stop").status_code == 200
    done = _run_snippet("foundry_start_stream.mjs", bridge_url, tmp_path,
                        "Qwen2.5-0.5B-Instruct-Q8_0-GGUF", "no-such-model")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "[progress] Checking if model is downloaded..."
    assert "[progress] Model found locally" not in lines  # it is nowhere: not the opposite
    assert lines[-1].startswith("[error] ") and "no-such-model" in lines[-1], lines


def test_a_configured_model_whose_path_is_a_url_is_downloaded_then_served(files, tmp_path):
    """Kolosal's startup preload: `models[].path` may be a URL."""
    os.link(files.root / GGUF, files.root / "preload.gguf")
    settings = make_settings(
        model_store={"directory": str(tmp_path)},
        downloads={"allow_private_addresses": True, "progress_interval_seconds": 0.05},
        models=[{"id": "preloaded", "path": files.url("preload.gguf"),
                 "load_params": {"n_ctx": 512}}],
        engine={"default_model": "preloaded"})
    running = ServerThread(settings).start()
    try:
        with grpc.insecure_channel(running.target) as channel:
            app = create_app(BridgeConfig(grpc_target=running.target), channel=channel)
            client = app.test_client()
            status = wait_for(lambda: (b := client.get("/engines/preloaded/status").get_json())
                              .get("status") == "loaded" and b, timeout=120)
            assert status["parameters"]["n_ctx"] == 512 and status["is_default"]
            progress = client.get("/download-progress/preloaded").get_json()
            assert progress["status"] == "completed" and progress["download_type"] == "startup"
            assert "Paris" in _answers(client, "")
    finally:
        running.stop()
    # The next start finds the file and creates the engine without downloading again.
    again = ServerThread(settings).start()
    try:
        with grpc.insecure_channel(again.target) as channel:
            client = create_app(BridgeConfig(grpc_target=again.target), channel=channel).test_client()
            wait_for(lambda: client.get("/engines/preloaded/status").get_json().get("status")
                     == "loaded", timeout=120)
            assert client.get("/download-progress/preloaded").status_code == 404
    finally:
        again.stop()
