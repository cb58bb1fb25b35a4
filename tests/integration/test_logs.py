"""Logs: Foundry's live SSE log stream shows a line when a request is served, and no secret ever
reaches a log line (the ring buffer, the console or a log file)."""

from __future__ import annotations

import json
import logging
import threading

import requests

from server.config import LoggingSettings
from server.log_config import configure_logging
from server.monitoring.logbuffer import REDACTOR
from tests.conftest import CAPITAL_QUESTION
from tests.helpers import wait_for

SENTINEL = "sk-sentinel-7f3a9c2e41d8b6"
PLAIN_SENTINEL = "sentinel0secret0value"  # a key with no recognisable shape, registered as a secret


def test_a_served_request_appears_on_the_live_log_stream(bridge):
    url = bridge.base_url + "/iblink/v1/foundry-local/logs/stream"
    received: list[dict] = []
    with requests.get(url, stream=True, timeout=(5, 120)) as stream:
        assert stream.status_code == 200
        assert stream.headers["Content-Type"].startswith("text/event-stream")

        def read() -> None:
            try:
                for line in stream.iter_lines(decode_unicode=True):
                    if line.startswith("data: "):
                        received.append(json.loads(line[len("data: "):]))
            except (requests.RequestException, AttributeError):
                pass  # the test closed the stream under this reader

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        answer = requests.post(bridge.base_url + "/v1/chat/completions", timeout=120,
                               json={"messages": CAPITAL_QUESTION, "max_tokens": 4},
                               headers={"Authorization": f"Bearer {SENTINEL}"})
        assert answer.status_code == 200
        entry = wait_for(lambda: next((e for e in received
                                       if "GenerationService/Complete" in e["message"]), None),
                         timeout=60)
    assert entry["level"] == "INFO" and entry["source"] == "tokenwire.access"
    assert entry["timestamp"].endswith("Z")
    assert all(SENTINEL not in json.dumps(e) for e in received)


def test_secrets_never_reach_a_log_line(http, tmp_path):
    REDACTOR.add_secret(PLAIN_SENTINEL)
    log_file = tmp_path / "server.log"
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        configure_logging(LoggingSettings(level="DEBUG", file=str(log_file), access_log=True))
        root.handlers.extend(saved_handlers)  # the server's ring buffer stays attached
        http.post("/v1/chat/completions", json={"messages": CAPITAL_QUESTION, "max_tokens": 2},
                  headers={"Authorization": f"Bearer {SENTINEL}", "X-API-Key": PLAIN_SENTINEL})
        log = logging.getLogger("server.test_logs")
        log.warning("client sent Authorization: Bearer %s", SENTINEL)
        log.warning("headers: %s", {"x-api-key": SENTINEL, "Authorization": f"Basic {SENTINEL}"})
        log.info("metadata (('authorization', 'Bearer %s'), ('x-api-key', '%s'))", SENTINEL, PLAIN_SENTINEL)
        log.error("config echo api_key=%s custom-auth-header: %s", SENTINEL, PLAIN_SENTINEL)
        try:
            raise ValueError(f"bad key {SENTINEL}")
        except ValueError:
            log.exception("failure while checking the key")
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    written = log_file.read_text()
    assert "client sent Authorization: Bearer [REDACTED]" in written
    assert "failure while checking the key" in written and "rpc /tokenwire.v1" in written
    buffered = json.dumps(http.get("/iblink/v1/foundry-local/logs?count=1000").get_json())
    assert "[REDACTED]" in buffered
    for secret in (SENTINEL, PLAIN_SENTINEL):
        assert secret not in written
        assert secret not in buffered
