"""The REST health family agrees with grpc.health.v1: not ready while the default engine loads
and while the server drains, ready otherwise."""

from __future__ import annotations

import asyncio

import grpc

from rest_bridge import create_app
from rest_bridge.config import BridgeConfig
from tests.conftest import BAN_END_OF_GENERATION
from tests.helpers import ServerThread, make_settings, wait_for
from tests.integration.test_health_and_lifecycle import GatedLoadBackend, _gated_factory
from tokenwire import Client

READINESS_ROUTES = ("/health", "/v1/health", "/readiness", "/api/health", "/api/health/ready")


def _bridge(target: str, channel: grpc.Channel):
    app = create_app(BridgeConfig(grpc_target=target), channel=channel)
    app.testing = True
    return app.test_client()


def _codes(http) -> dict[str, int]:
    return {path: http.get(path).status_code for path in READINESS_ROUTES}


def test_not_ready_while_the_model_loads_then_ready():
    GatedLoadBackend.gate.clear()
    running = ServerThread(make_settings(), backends={"llama_cpp": _gated_factory}).start(wait_loaded=False)
    try:
        with grpc.insecure_channel(running.target) as channel, Client(running.target, timeout=30) as client:
            http = _bridge(running.target, channel)
            wait_for(lambda: client.health() == "NOT_SERVING")
            assert set(_codes(http).values()) == {503}
            body = http.get("/health").get_json()
            assert body["status"] == "unhealthy" and body["ready"] is False
            assert body["engines"]["loading"] == 1
            assert "loading" in body["message"]
            assert http.get("/api/health/ready").get_json()["checks"]["models_loaded"] is False
            assert http.get("/readiness").get_json()["status"] == "not_ready"
            foundry = http.get("/iblink/v1/foundry-local/health").get_json()["foundry_local"]
            assert foundry == {"is_running": False, "status": "starting", "port": None, "model": None}
            live = http.get("/api/health/live")  # alive all along
            assert live.status_code == 200 and live.get_json()["alive"] is True
            detail = http.get("/api/health/status").get_json()
            assert detail["ready"] is False and detail["engines"]["loading"] == 1
            assert detail["components"]["models"]["healthy"] is False

            GatedLoadBackend.gate.set()
            wait_for(lambda: client.health() == "SERVING", timeout=30)
            assert set(_codes(http).values()) == {200}
    finally:
        GatedLoadBackend.gate.set()
        running.stop()


def test_not_ready_while_draining():
    running = ServerThread(make_settings()).start()
    shutdown = None
    try:
        with grpc.insecure_channel(running.target) as channel, Client(running.target, timeout=60) as client:
            http = _bridge(running.target, channel)
            assert set(_codes(http).values()) == {200}
            stream = client.generate(prompt="Tell me a long story.", temperature=0, max_tokens=120,
                                     logit_bias=BAN_END_OF_GENERATION)
            next(stream)
            shutdown = asyncio.run_coroutine_threadsafe(running.server.shutdown(30), running.loop)
            wait_for(lambda: client.health() == "NOT_SERVING")
            assert set(_codes(http).values()) == {503}
            body = http.get("/v1/health").get_json()
            assert body["status"] == "draining" and body["uptime"] == "draining"
            assert body["services"]["draining"]["status"] == "unhealthy"
            assert http.get("/api/health/status").get_json()["draining"] is True
            foundry = http.get("/iblink/v1/foundry-local/health").get_json()["foundry_local"]
            assert foundry["status"] == "stopping"
            list(stream)  # the in-flight stream still finishes
        assert shutdown.result(30) is True
    finally:
        running.stop()
