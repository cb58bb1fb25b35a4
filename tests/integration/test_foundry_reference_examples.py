"""FoundryLocalAPI (doc 004): the document's own request bodies for start (custom port, options)
and config, copied from its cURL examples, against a real server.

The model server Foundry starts on `port` is this bridge here, so `port` is honoured when it is
the bridge's own and refused (400, naming both ports) otherwise; `health_check_interval_seconds`
is how often start-stream checks the loading server and reports it is not ready yet; `/config`
applies what can change at run time and reports the other keys (`not_applied`) instead of
failing the whole update. Only the model names of start's examples are swapped for a local model
(the document's need a download)."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import grpc
import pytest

from rest_bridge import create_app
from rest_bridge.config import BridgeConfig
from server.config import embedded_model_path
from tests.helpers import ServerThread, make_settings

DOC_004 = (Path(__file__).resolve().parents[1] / "reference_snippets" / "documents"
           / "004_8c4f1ad696d8d757.txt")
F = "/iblink/v1/foundry-local"
LOCAL = "Smol-Foundry-Q4_1"
BRIDGE_PORT = 80  # the test client's


def _curl_body(after: str, path: str) -> dict:
    """The JSON of the first `curl ... {path} ... -d '...'` example after the line `after`."""
    text = DOC_004.read_text()
    start = text.index(after)
    block = text[text.index("```bash\n", start):]
    block = block[:block.index("\n```", 8)]
    assert f"/iblink/v1/foundry-local/{path}" in block, block
    return json.loads(re.search(r"-d '(.*?)'", block, re.DOTALL).group(1))


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("models")
    shutil.copyfile(embedded_model_path(), directory / f"{LOCAL}.gguf")
    return directory


@pytest.fixture(scope="module")
def http(models_dir):
    running = ServerThread(make_settings(model_store={"directory": str(models_dir)})).start()
    try:
        with grpc.insecure_channel(running.target) as channel:
            app = create_app(BridgeConfig(grpc_target=running.target), channel=channel)
            yield app.test_client()
    finally:
        running.stop()


def _events(answer) -> list[dict]:
    assert answer.status_code == 200 and answer.mimetype == "text/event-stream"
    return [json.loads(line[6:]) for line in answer.get_data(as_text=True).splitlines()
            if line.startswith("data: ")]


def test_start_with_the_documents_custom_port_names_the_port_this_server_listens_on(http):
    body = _curl_body("**With Custom Port:**", "start")
    assert body == {"model_name": "Qwen2.5-0.5B-Instruct-Q8_0-GGUF", "port": 1235}
    for route in ("start", "start-stream", "switch-model"):
        refused = http.post(f"{F}/{route}", json=body)
        assert refused.status_code == 400, (route, refused.get_data(as_text=True))
        error = refused.get_json()["error"]
        assert set(error) == {"message", "type", "code", "details"}
        assert (error["type"], error["code"]) == ("invalid_request_error", "port_unavailable")
        assert "port 1235" in error["message"] and f"port {BRIDGE_PORT}" in error["message"]
        assert "server.port" in error["details"]


def test_start_on_the_bridges_own_port_or_none_works(http):
    http.post(f"{F}/stop")
    started = http.post(f"{F}/start", json={"model_name": LOCAL, "port": BRIDGE_PORT})
    assert started.status_code == 200, started.get_json()
    assert started.get_json()["port"] == BRIDGE_PORT and started.get_json()["model"] == LOCAL
    # The document's "With Options" body, its model swapped for the local one.
    options = _curl_body("**With Options:**", "start")
    assert options["options"]["health_check_interval_seconds"] == 2
    switched = http.post(f"{F}/switch-model", json={**options, "model_name": LOCAL})
    assert switched.status_code == 200, switched.get_json()
    assert http.post(f"{F}/stop").get_json()["message"] == "Server stopped successfully"
    again = http.post(f"{F}/start", json={**options, "model_name": LOCAL})
    assert again.status_code == 200, again.get_json()


def test_start_stream_checks_health_at_the_interval_given_until_the_server_is_ready(http):
    options = _curl_body("**With Options:**", "start")
    http.post(f"{F}/stop")
    # An interval far below a model's load time: the stream reports each check that finds the
    # server not ready yet, then the check that passed.
    fast = {**options, "model_name": LOCAL,
            "options": {**options["options"], "health_check_interval_seconds": 0.001}}
    events = _events(http.post(f"{F}/start-stream", json=fast))
    messages = [e["message"] for e in events]
    waiting = [m for m in messages if m.startswith("Health check: server not ready yet")]
    assert waiting and all(m.endswith("next check in 0.001s") for m in waiting), messages
    assert messages.index("Waiting for server to be ready...") < messages.index(waiting[0])
    assert messages[-2:] == ["Server health check passed", "Server started successfully"]
    assert events[-1]["type"] == "success" and events[-1]["data"]["port"] == BRIDGE_PORT
    # The document's interval (2 s): the same stream, ending the same way.
    http.post(f"{F}/stop")
    events = _events(http.post(f"{F}/start-stream", json={**options, "model_name": LOCAL}))
    assert events[-1]["type"] == "success" and events[-1]["data"]["model"] == LOCAL


@pytest.mark.parametrize("interval", [0, -1, "2"])
def test_a_wrong_health_check_interval_is_refused(http, interval):
    refused = http.post(f"{F}/start", json={"model_name": LOCAL, "options": {
        "health_check_interval_seconds": interval}})
    assert refused.status_code == 400
    error = refused.get_json()["error"]
    assert error["type"] == "invalid_request_error"
    assert "'options.health_check_interval_seconds'" in error["message"], error


def test_config_takes_the_documents_first_example_as_written(http, models_dir, tmp_path,
                                                             monkeypatch):
    monkeypatch.chdir(tmp_path)  # a Windows path applied here would become a directory here
    body = _curl_body("### POST /config", "config")
    assert body == {"port": 1235, "cache_dir": "D:\\AI\\Models", "default_log_level": "DEBUG"}
    answer = http.post(f"{F}/config", json=body)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    updated = answer.get_json()
    # The document's answer's members, with the values that now hold.
    assert {"success", "message", "port", "cachedir", "default_log_level"} <= set(updated)
    assert updated["success"] and updated["default_log_level"] == "DEBUG"
    assert updated["port"] == BRIDGE_PORT and updated["cachedir"] == str(models_dir)
    assert set(updated["not_applied"]) == {"port", "cache_dir"}
    assert f"port {BRIDGE_PORT}" in updated["not_applied"]["port"]
    assert "Windows path" in updated["not_applied"]["cache_dir"]
    assert updated["message"] == "Configuration updated; not applied: port, cache_dir"
    assert os.listdir(tmp_path) == []
    info = http.get(f"{F}/info").get_json()["configuration"]
    assert info["cache_dir"] == str(models_dir) and info["default_log_level"] == "DEBUG"

    partial = http.post(f"{F}/config", json=_curl_body("**Partial Update:**", "config")).get_json()
    assert partial["success"] and partial["default_log_level"] == "INFO"
    assert partial["not_applied"] == {} and partial["message"] == "Configuration updated successfully"
    # The port this server listens on is accepted as it is.
    same = http.post(f"{F}/config", json={"port": BRIDGE_PORT, "default_log_level": "WARNING"})
    assert same.get_json()["not_applied"] == {} and same.get_json()["default_log_level"] == "WARNING"
    # Tip 7's cache_dir alone: nothing applies, so success is false; the answer says why.
    tip = http.post(f"{F}/config", json=_curl_body("### 7. Configure Custom Cache Directory",
                                                   "config")).get_json()
    assert not tip["success"] and set(tip["not_applied"]) == {"cache_dir"}
    assert tip["cachedir"] == str(models_dir)
    reset = http.post(f"{F}/config", json=_curl_body("**Reset to Defaults:**", "config")).get_json()
    assert reset["success"] and reset["default_log_level"] == "INFO" and reset["not_applied"] == {}


def test_config_applies_a_cache_dir_of_this_os(http, models_dir, tmp_path):
    other = tmp_path / "models"
    moved = http.post(f"{F}/config", json={"cache_dir": str(other), "port": BRIDGE_PORT}).get_json()
    assert moved["success"] and moved["cachedir"] == str(other) and moved["not_applied"] == {}
    back = http.post(f"{F}/config", json={"cache_dir": str(models_dir)}).get_json()
    assert back["cachedir"] == str(models_dir)
