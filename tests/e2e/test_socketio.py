"""A python-socketio client connected to the bridge (gunicorn) receives Impetus's events."""

from __future__ import annotations

import threading

import requests
import socketio

from tests.conftest import CAPITAL_QUESTION
from tests.e2e.cli_process import BridgeProcess
from tests.file_server import FileServer, copy_embedded_gguf
from tests.helpers import ServerThread, make_settings, wait_for
from tokenwire import Client

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


def test_a_socketio_client_receives_download_progress(tmp_path):
    """download_progress relays DownloadService/WatchDownloads: a download from a local file
    server shows up as progress events ending in completed."""
    served = tmp_path / "served"
    served.mkdir()
    copy_embedded_gguf(served, "socketio.gguf")
    files = FileServer(served).start()
    server = ServerThread(make_settings(downloads={"allow_private_addresses": True,
                                                   "progress_interval_seconds": 0.05})).start()
    bridge = BridgeProcess(server.target).start()
    events: list[dict] = []
    client = socketio.Client(reconnection=False)
    client.on("download_progress", events.append)
    try:
        client.connect(bridge.base_url, socketio_path="socket.io", transports=["polling"],
                       wait_timeout=30)
        files.pause(16 << 20)  # hold the transfer until the relay is surely listening
        with Client(server.target, timeout=60) as grpc_client:
            started = grpc_client.start_download(files.url("socketio.gguf"), model_id="sio")
            wait_for(lambda: any(e["downloaded_bytes"] >= 16 << 20 for e in events), timeout=60)
            files.release()
        done = wait_for(lambda: next((e for e in events if e["status"] == "completed"), None),
                        timeout=120)
        assert done["download_id"] == started.download_id and done["model_id"] == "sio"
        assert done["progress_percent"] == 100 and done["total_bytes"] == done["downloaded_bytes"]
        progress = [e["downloaded_bytes"] for e in events if e["download_id"] == started.download_id]
        assert progress == sorted(progress)
    finally:
        client.disconnect()
        bridge.stop()
        server.stop()
        files.stop()
