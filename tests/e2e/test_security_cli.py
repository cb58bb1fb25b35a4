"""`tokenwire serve` secured from the environment and flags, met over real HTTP (gunicorn bridge).
Its whole output is checked for the keys at the end."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess

import grpc
import pytest

from tests import sentinel
from tests.conftest import BAN_END_OF_GENERATION
from tests.e2e.cli_process import TOKENWIRE, ServeProcess
from tests.helpers import wait_for
from tests.sentinel import ADMIN_KEY, SENTINEL, USER_KEY, WRONG_KEY
from tokenwire.v1 import engine_service_pb2, engine_service_pb2_grpc

MAX_TOKENS = 3000  # far more than the engine can produce before the test stops it


@pytest.fixture(scope="module")
def secured_serve():
    process = ServeProcess("--admin-api-key", ADMIN_KEY, "--rate-limit", "1000", "--parallel", "1",
                           "--cors-origin", "https://a.example", "--cors-origin", "https://b.example",
                           env={"KOLOSAL_API_KEY": USER_KEY, "KOLOSAL_REQUIRE_API_KEY": "true"})
    process.start(wait_serving=True)
    try:
        yield process
    finally:
        process.terminate()
        out, err = process.output(timeout=60)
        sentinel.captured_output.extend([out, err])
        assert SENTINEL not in out + err


def request(serve: ServeProcess, method: str, path: str, body: bytes | None = None,
            headers: dict | None = None) -> tuple[int, dict, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", serve.rest_port, timeout=120)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    except (ConnectionResetError, BrokenPipeError):
        return -1, {}, b""
    finally:
        connection.close()


def test_keys_from_environment_and_flags(secured_serve):
    status, _, body = request(secured_serve, "GET", "/v1/models")
    assert status == 401 and json.loads(body)["error"]["type"] == "authentication_error"
    status, _, body = request(secured_serve, "GET", "/v1/models", headers={"X-API-Key": WRONG_KEY})
    assert status == 401 and SENTINEL not in body.decode()
    status, headers, _ = request(secured_serve, "GET", "/v1/models",
                                 headers={"Authorization": f"bearer {USER_KEY}",
                                          "Origin": "https://b.example"})
    assert status == 200
    assert headers["X-RateLimit-Limit"] == headers["X-Rate-Limit-Limit"] == "1000"
    assert headers["Access-Control-Allow-Origin"] == "https://b.example"
    assert request(secured_serve, "GET", "/v1/auth/config",
                   headers={"X-API-Key": USER_KEY})[0] == 403
    status, _, body = request(secured_serve, "GET", "/v1/auth/config",
                              headers={"X-API-Key": ADMIN_KEY})
    assert status == 200 and json.loads(body)["api_key"]["keys_count"] == 1


def test_a_20_mb_body_gets_413_over_http_and_the_server_stays_up(secured_serve):
    body = b'{"prompt": "' + b"x" * (20 * 1024 * 1024) + b'"}'
    status, _, answer = request(secured_serve, "POST", "/v1/completions", body=body, headers={
        "Content-Type": "application/json", "X-API-Key": USER_KEY})
    assert status == 413, answer[:200]
    assert request(secured_serve, "GET", "/v1/models", headers={"X-API-Key": USER_KEY})[0] == 200


def _scheduler(serve: ServeProcess):
    with grpc.insecure_channel(serve.target) as channel:
        return engine_service_pb2_grpc.EngineServiceStub(channel).GetEngine(
            engine_service_pb2.GetEngineRequest(engine_id="default"), timeout=30,
            metadata=(("x-api-key", USER_KEY),)).engine.scheduler


def test_a_client_that_disconnects_from_a_unary_request_stops_the_engine(secured_serve):
    before = _scheduler(secured_serve).tokens_generated_total
    body = json.dumps({"prompt": "Once upon a time", "max_tokens": MAX_TOKENS, "temperature": 0,
                       "logit_bias": {str(k): v for k, v in BAN_END_OF_GENERATION.items()}})
    raw = socket.create_connection(("127.0.0.1", secured_serve.rest_port))
    raw.sendall((f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 f"X-API-Key: {USER_KEY}\r\nContent-Length: {len(body)}\r\n\r\n{body}").encode())
    wait_for(lambda: _scheduler(secured_serve).active_sequences == 1, timeout=60, interval=0.05)
    raw.close()
    wait_for(lambda: _scheduler(secured_serve).active_sequences == 0, timeout=120, interval=0.1)
    generated = _scheduler(secured_serve).tokens_generated_total - before
    assert generated < MAX_TOKENS  # stopped, not finished


def test_a_public_address_starts_with_a_loud_warning_and_no_exit_2():
    """Kolosal's `--host 0.0.0.0`: allowed (issue 18), with allow_public_access false admitting
    only this machine's clients (tests/integration/test_reference_configs.py). A missing model
    file then stops it before anything listens (exit 2), so the test never binds a public
    address."""
    result = subprocess.run([TOKENWIRE, "serve", "--host", "0.0.0.0", "--grpc-port", "0",
                             "--port", "0", "--models-dir", "/nonexistent/models",
                             "--model-path", "/nonexistent/model.gguf"],
                            capture_output=True, text=True, timeout=60)
    assert "allow_public_access" not in result.stderr  # the host is not what stops it
    assert result.returncode == 2 and "/nonexistent/model.gguf" in result.stderr
    assert "does not exist" in result.stderr
