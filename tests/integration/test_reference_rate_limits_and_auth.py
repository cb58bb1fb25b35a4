"""Rate limits and keys as two reference documents define them.

- Rust LLM Inference Service (003): limits per API key; `X-RateLimit-Reset: 1609459200` (the Unix
  time the window resets); a 429 answers `Rate limit exceeded` as plain text on its routes. Run
  with the document's own cURL example ("With API Key"), only its host, model and key ours.
- Impetus (001): "All API endpoints require Bearer token authentication", health and Prometheus
  metrics included, once keys are required.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import grpc
import pytest

from rest_bridge import create_app
from rest_bridge.config import BridgeConfig
from tests.helpers import ServerThread, make_settings
from tests.sentinel import KEY_A, KEY_B, USER_KEY, WRONG_KEY

DOC_003 = (Path(__file__).resolve().parents[1] / "reference_snippets" / "documents"
           / "003_1f434176664ca0b5.txt")
LIMIT, WINDOW_S = 2, 3600  # a window no slow machine outlasts within the test


@pytest.fixture(scope="module")
def keyed():
    settings = make_settings(auth={"api_keys": [USER_KEY, KEY_A, KEY_B]},
                             rate_limit={"enabled": True, "max_requests": LIMIT,
                                         "window_size": WINDOW_S})
    running = ServerThread(settings).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def keyed_http(keyed):
    with grpc.insecure_channel(keyed.target) as channel:
        app = create_app(BridgeConfig(grpc_target=keyed.target), channel=channel)
        yield app.test_client()


@pytest.fixture(scope="module")
def keyed_bridge(keyed):
    from tests.e2e.cli_process import BridgeProcess

    running = BridgeProcess(keyed.target, runtime="in-process").start()
    yield running
    running.stop()


def _curl_with_api_key(base_url: str, key: str) -> tuple[int, dict[str, str], str]:
    """The document's "With API Key" cURL example, run by curl (`-i` added to see the status and
    headers); host, model and key substituted."""
    text = DOC_003.read_text()
    start = text.index("**With API Key**:\n```bash\n") + len("**With API Key**:\n```bash\n")
    command = text[start:text.index("```", start)]
    assert "YOUR_API_KEY" in command and "http://localhost:3000" in command
    command = (command.replace("curl -X POST", "curl -sS -i -X POST", 1)
               .replace("http://localhost:3000", base_url).replace("YOUR_API_KEY", key)
               .replace("Qwen/Qwen2.5-0.5B-Instruct", "default"))
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    head, _, body = done.stdout.replace("\r\n", "\n").partition("\n\n")
    status_line, *lines = head.splitlines()
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


@pytest.mark.skipif(shutil.which("curl") is None, reason="the document's example is a curl command")
def test_the_documents_curl_example_is_rate_limited_per_key_as_the_document_defines(keyed_bridge):
    base = keyed_bridge.base_url
    before = int(time.time())
    answers = [_curl_with_api_key(base, KEY_A) for _ in range(LIMIT + 1)]
    for status, headers, body in answers[:LIMIT]:
        assert status == 200 and '"text"' in body, body
        assert headers["x-ratelimit-limit"] == str(LIMIT)
    status, headers, body = answers[-1]
    assert status == 429
    assert headers["content-type"].startswith("text/plain")
    assert body == "Rate limit exceeded"
    assert headers["x-ratelimit-remaining"] == "0"
    # X-RateLimit-Reset: the Unix time the window resets (the document's 1609459200);
    # Kolosal's X-Rate-Limit-Reset keeps its seconds-until-reset.
    reset_at = int(headers["x-ratelimit-reset"])
    assert before < reset_at <= int(time.time()) + WINDOW_S + 1
    assert 0 < int(headers["x-rate-limit-reset"]) <= WINDOW_S
    assert int(headers["retry-after"]) >= 1
    # Limits are per key: another key has its own window.
    status, headers, _ = _curl_with_api_key(base, KEY_B)
    assert status == 200 and headers["x-ratelimit-remaining"] == str(LIMIT - 1)


def test_the_rust_routes_answer_429_as_plain_text_and_keep_json_for_other_errors(keyed_http):
    key = {"Authorization": f"Bearer {USER_KEY}"}
    for _ in range(LIMIT):
        assert keyed_http.get("/sessions", headers=key).status_code == 200
    refused = keyed_http.get("/models", headers=key)
    assert refused.status_code == 429 and refused.mimetype == "text/plain"
    assert refused.get_data(as_text=True) == "Rate limit exceeded"
    assert refused.headers["Retry-After"] and refused.headers["X-RateLimit-Reset"]
    # Not rate-limited errors keep the document's {"error": "..."}.
    wrong = keyed_http.get("/models", headers={"Authorization": f"Bearer {WRONG_KEY}"})
    assert wrong.status_code == 401 and set(wrong.get_json()) == {"error"}


IMPETUS_HEALTH = ("/api/health", "/api/health/ready", "/api/health/live", "/api/health/status",
                  "/api/health/metrics")


@pytest.mark.parametrize("path", IMPETUS_HEALTH)
def test_impetus_health_and_metrics_need_the_key_when_keys_are_required(keyed_http, path):
    missing = keyed_http.get(path)
    assert missing.status_code == 401
    assert missing.get_json()["type"] and "API key" in missing.get_json()["error"]
    wrong = keyed_http.get(path, headers={"Authorization": f"Bearer {WRONG_KEY}"})
    assert wrong.status_code == 401
    # The document's header (a fresh key: this one has its own rate-limit window).
    answered = keyed_http.get(path, headers={"Authorization": f"Bearer {KEY_B}"})
    assert answered.status_code in (200, 503), answered.get_data(as_text=True)  # 503: not ready


def test_impetus_health_stays_open_without_keys(http):
    for path in IMPETUS_HEALTH:
        assert http.get(path).status_code == 200, path


def test_the_probes_of_the_other_documents_stay_public_with_keys(keyed_http):
    for path in ("/health", "/readiness", "/iblink/v1/foundry-local/health"):
        assert keyed_http.get(path).status_code == 200, path
