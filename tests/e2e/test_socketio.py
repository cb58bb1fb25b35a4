"""A python-socketio client connected to the bridge (gunicorn) receives Impetus's events."""

from __future__ import annotations

import threading

import requests
import socketio

from tests.conftest import CAPITAL_QUESTION
from tests.helpers import wait_for
from rest_bridge.socketio_events import EVENT_SOURCES

EVENTS = ("model_status", "hardware_metrics", "inference_stats")


def test_a_socketio_client_receives_each_event_type(bridge):
    received: dict[str, list[dict]] = {event: [] for event in EVENTS}
    lock = threading.Lock()
    client = socketio.Client(reconnection=False)
    for event in EVENTS:
        def handler(data, event=event):
            with lock:
                received[event].append(data)
        client.on(event, handler)
    client.connect(bridge.base_url, socketio_path="socket.io", transports=["polling"],
                   wait_timeout=30)
    try:
        status = wait_for(lambda: received["model_status"], timeout=30)[0]
        assert status["model_id"] == "default" and status["status"] == "loaded"
        assert status["is_default"] is True and status["server_ready"] is True

        metrics = wait_for(lambda: received["hardware_metrics"], timeout=30)[0]
        assert 0 <= metrics["cpu"]["usage_percent"] <= 100
        assert metrics["memory"]["total_gb"] > 0 and metrics["process"]["pid"] > 0

        answer = requests.post(bridge.base_url + "/v1/chat/completions", timeout=120,
                               json={"messages": CAPITAL_QUESTION, "max_tokens": 4})
        assert answer.status_code == 200
        stats = wait_for(lambda: received["inference_stats"], timeout=30)[0]
        assert stats["model_id"] == "default" and stats["kind"] == "chat"
        assert stats["completion_tokens"] == answer.json()["usage"]["completion_tokens"]
        assert stats["time_to_first_token_ms"] > 0 and stats["duration_ms"] > 0
    finally:
        client.disconnect()


def test_download_progress_is_declared_for_the_download_service():
    # The event exists in the table; its source is the DownloadService's watch stream.
    assert "download_progress" in EVENT_SOURCES
