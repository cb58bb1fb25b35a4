"""The bridge's long-lived channels when API keys are required: socket.io and the /chat/ws
WebSocket check the key at the handshake (a refused client never gets a socket), events still
flow to an admitted client, and socket.io's origins follow the same CORS policy as every route."""

from __future__ import annotations

import json
import logging
import threading

import pytest
import requests
import socketio
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.e2e.cli_process import BridgeProcess
from tests.helpers import ServerThread, make_settings, wait_for
from tests.sentinel import ADMIN_KEY, BRIDGE_SECRET, KEY_A, WRONG_KEY

ALLOWED_ORIGIN = "https://app.example"


@pytest.fixture(autouse=True)
def quiet_websocket_client():
    """The websockets client logs its own handshake headers at DEBUG, keys included: that is this
    test's client talking about itself, not the server leaking (the sentinel check is about the
    server's logs), so its logger stays at INFO here."""
    logger = logging.getLogger("websockets")
    level = logger.level
    logger.setLevel(logging.INFO)
    yield
    logger.setLevel(level)


@pytest.fixture(scope="module")
def keyed_bridge():
    settings = make_settings(auth={"api_keys": [KEY_A], "admin_api_keys": [ADMIN_KEY],
                                   "bridge_secret": BRIDGE_SECRET},
                             cors={"allowed_origins": [ALLOWED_ORIGIN], "allow_credentials": True})
    server = ServerThread(settings).start()
    bridge = BridgeProcess(server.target, env={"TOKENWIRE_AUTH_BRIDGE_SECRET": BRIDGE_SECRET}).start()
    yield bridge
    bridge.stop()
    server.stop()


def _socketio_client(received: dict[str, list]) -> socketio.Client:
    client = socketio.Client(reconnection=False)
    lock = threading.Lock()
    for event in received:
        def handler(data, event=event):
            with lock:
                received[event].append(data)
        client.on(event, handler)
    return client


@pytest.mark.parametrize("how", ["no key", "wrong key"])
def test_socketio_refuses_a_client_without_a_valid_key(keyed_bridge, how):
    received = {"model_status": [], "connect_error": []}
    client = _socketio_client(received)
    headers = {"Authorization": f"Bearer {WRONG_KEY}"} if how == "wrong key" else {}
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(keyed_bridge.base_url, headers=headers, transports=["polling"],
                       wait_timeout=30)
    refusal = received["connect_error"][0]
    assert refusal["data"] == {"type": "authentication_error", "status": 401}
    assert "API key" in refusal["message"]
    assert not received["model_status"]


@pytest.mark.parametrize("credentials", ["header", "auth payload", "auth payload and a request id"])
def test_socketio_admits_a_valid_key_and_its_events_flow(keyed_bridge, credentials):
    received = {"model_status": [], "hardware_metrics": []}
    client = _socketio_client(received)
    kwargs = {"header": {"headers": {"X-API-Key": KEY_A}},
              "auth payload": {"auth": {"token": KEY_A}},
              # A request id travels too, and is no key: the payload's key still counts.
              "auth payload and a request id": {"auth": {"token": KEY_A},
                                                "headers": {"X-Request-Id": "sio-42"}}}[credentials]
    client.connect(keyed_bridge.base_url, transports=["polling"], wait_timeout=30, **kwargs)
    try:
        assert wait_for(lambda: received["model_status"], timeout=30)[0]["model_id"] == "default"
        # Relayed from a user-level stream the bridge opens on its own, vouched for by its secret.
        assert wait_for(lambda: received["hardware_metrics"], timeout=30)[0]["memory"]["total_gb"] > 0
    finally:
        client.disconnect()


def test_socketio_origins_follow_the_cors_policy(keyed_bridge):
    handshake = keyed_bridge.base_url + "/socket.io/?EIO=4&transport=polling"
    allowed = requests.get(handshake, headers={"Origin": ALLOWED_ORIGIN, "X-API-Key": KEY_A},
                           timeout=30)
    assert allowed.status_code == 200
    assert allowed.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert allowed.headers["Access-Control-Allow-Credentials"] == "true"
    stranger = requests.get(handshake, headers={"Origin": "https://evil.example",
                                                "X-API-Key": KEY_A}, timeout=30)
    assert stranger.status_code == 400
    assert "Access-Control-Allow-Origin" not in stranger.headers


def test_chat_ws_refuses_the_handshake_without_a_key(keyed_bridge):
    url = keyed_bridge.base_url.replace("http://", "ws://") + "/chat/ws"
    for headers in ({}, {"Authorization": f"Bearer {WRONG_KEY}"}):
        with pytest.raises(InvalidStatus) as refused:
            connect(url, additional_headers=headers, open_timeout=30)
        assert refused.value.response.status_code == 401
    with connect(url, additional_headers={"Authorization": f"Bearer {KEY_A}"},
                 open_timeout=30) as ws:
        ws.send(json.dumps({"model-name": "default", "prompt": "Say hi", "max-token": 4,
                            "temperature": 0}))
        frames = []
        try:
            while True:
                frames.append(ws.recv(timeout=60))
        except Exception:  # the server closes the socket when the answer is complete
            pass
    assert frames and not any(f.startswith("__ERROR__:") for f in frames)


def test_socketio_refuses_a_client_whose_key_cannot_be_checked():
    """With the server gone, the key check cannot run: the client is refused (503), not let in to
    receive events once the server is back."""
    settings = make_settings(auth={"api_keys": [KEY_A], "bridge_secret": BRIDGE_SECRET})
    server = ServerThread(settings).start()
    bridge = BridgeProcess(server.target, runtime="in-process",
                           env={"TOKENWIRE_AUTH_BRIDGE_SECRET": BRIDGE_SECRET}).start()
    try:
        server.stop()
        received = {"model_status": [], "connect_error": []}
        client = _socketio_client(received)
        with pytest.raises(socketio.exceptions.ConnectionError):
            client.connect(bridge.base_url, headers={"Authorization": f"Bearer {KEY_A}"},
                           transports=["polling"], wait_timeout=30)
        assert received["connect_error"][0]["data"] == {"type": "server_error", "status": 503}
    finally:
        bridge.stop()
