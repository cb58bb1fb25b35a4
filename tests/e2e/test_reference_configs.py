"""Issue 18, items 4-6, as users run them: `tokenwire serve --config <the document's own file>`
(tests/data/reference_configs/, copied verbatim), the OpenAI SDK as Kai's document uses it, and
Kolosal's launch line and flags. Only the address changes: ServeProcess adds --host 127.0.0.1 and
port 0 (flags win over the file), so nothing binds a public address."""

from __future__ import annotations

import http.client
import json
import os
import pathlib
import socket
import subprocess

import openai
import pytest

from server.config import embedded_model_path
from tests.e2e.cli_process import TOKENWIRE, ServeProcess
from tests.conftest import CAPITAL_QUESTION

CONFIGS = pathlib.Path(__file__).resolve().parent.parent / "data" / "reference_configs"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(serve: ServeProcess, path: str, method: str = "GET", headers: dict | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", serve.rest_port, timeout=120)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def stopped(serve: ServeProcess) -> tuple[int, str]:
    status = serve.terminate()
    _, err = serve.output()
    return status, err


def test_kolosal_complete_config(tmp_path, monkeypatch):
    """Doc 000's complete config: host 0.0.0.0 with allow_public_access false, keys configured but
    not required, its model at ./models/model.gguf (the embedded model stands in)."""
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "model.gguf").symlink_to(embedded_model_path())
    monkeypatch.chdir(tmp_path)  # the server starts here, as a user runs it next to ./models
    serve = ServeProcess("--config", str(CONFIGS / "kolosal_config.yaml"),
                         env={"TOKENWIRE_MODEL_STORE_DIRECTORY": str(tmp_path / "store")}).start()
    try:
        status, _, body = get(serve, "/v1/health")
        assert status == 200 and json.loads(body)["status"] == "healthy"
        client = openai.OpenAI(base_url=f"{serve.base_url}/v1", api_key="sk-your-api-key-here")
        assert "gpt-3.5-turbo" in [m.id for m in client.models.list()]
        reply = client.chat.completions.create(model="gpt-3.5-turbo", messages=CAPITAL_QUESTION,
                                               max_tokens=8, temperature=0)
        assert "Paris" in reply.choices[0].message.content
        status, _, body = get(serve, "/metrics", headers={"Accept": "application/json"})
        assert status == 200 and "completion" in json.loads(body)  # features.metrics: true
    finally:
        code, err = stopped(serve)
    assert code == 0, err


def test_kai_config_with_its_upstream_down(tmp_path):
    """Doc 002's config/api.yaml with no Ollama running: the server starts, says the engine's
    upstream is unreachable, lists Kai's names, and answers Kai's SDK example with a 503 that says
    why. HTTPS_PROXY points at a closed port so the OpenRouter entry never leaves the machine."""
    ollama, proxy = closed_port(), closed_port()
    serve = ServeProcess("--config", str(CONFIGS / "kai_api.yaml"), env={
        "OLLAMA_HOST": f"127.0.0.1:{ollama}", "HTTPS_PROXY": f"http://127.0.0.1:{proxy}",
        # gRPC honours https_proxy too: the bridge's own channel to the server stays direct.
        "https_proxy": f"http://127.0.0.1:{proxy}", "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "TOKENWIRE_MODEL_STORE_DIRECTORY": str(tmp_path / "store")}).start()
    try:
        # Kai's "Using with OpenAI SDK", against this server.
        client = openai.OpenAI(base_url=f"{serve.base_url}/v1", api_key="not-needed")
        ids = [m.id for m in client.models.list()]
        assert {"granite-local", "gpt-4", "granite4:tiny-h", "anthropic/claude-opus"} <= set(ids)
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(model="granite-local",
                                           messages=[{"role": "user", "content": "Hello!"}])
        assert caught.value.status_code == 503
        assert "unreachable" in caught.value.message and str(ollama) in caught.value.message
    finally:
        code, err = stopped(serve)
    assert code == 0, err
    assert f"http://127.0.0.1:{ollama}/v1" in err and "unreachable" in err
    assert "openrouter.ai" in err  # tried through the dead proxy, reported, not fatal


def test_rust_config_toml(tmp_path):
    serve = ServeProcess("--config", str(CONFIGS / "rust_config.toml"),
                         env={"TOKENWIRE_MODEL_STORE_DIRECTORY": str(tmp_path / "store")}).start()
    try:
        assert get(serve, "/health")[0] == 200
        assert get(serve, "/models")[0] == 401
        status, headers, _ = get(serve, "/models", headers={"Authorization": "Bearer YOUR_API_KEY"})
        assert status == 200 and headers["X-RateLimit-Limit"] == "60"
    finally:
        code, err = stopped(serve)
    assert code == 0, err


def test_kolosal_launch_line_without_a_subcommand_and_its_flags(tmp_path):
    """`./kolosal-server --port 8080 ...` is `tokenwire --port 8080 ...`; --disable-health-check
    turns /health off; --cors-method/--cors-header add to the default lists."""
    serve = ServeProcess("--disable-health-check", "--enable-metrics", "--cors-origin",
                         "https://app.example", "--cors-method", "PROPFIND", "--cors-header",
                         "X-Custom", env={"TOKENWIRE_MODEL_STORE_DIRECTORY": str(tmp_path / "s")})
    serve.args.remove("serve")
    assert serve.args[1] == "--host"
    serve.start()
    try:
        status, _, body = get(serve, "/health")
        assert status == 404 and "health_check" in json.loads(body)["error"]["message"]
        assert get(serve, "/metrics", headers={"Accept": "application/json"})[0] == 200
        for method, header in (("PROPFIND", "X-Custom"), ("DELETE", "Authorization")):
            status, headers, _ = get(serve, "/v1/models", method="OPTIONS", headers={
                "Origin": "https://app.example", "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": header})
            assert status == 204, (method, header)
            assert method in headers["Access-Control-Allow-Methods"]
    finally:
        code, err = stopped(serve)
    assert code == 0, err


@pytest.mark.parametrize("argv", [["serve", "--version"], ["--version"], ["serve", "-v"]])
def test_version(argv):
    from server import __version__

    result = subprocess.run([TOKENWIRE, *argv], capture_output=True, text=True, timeout=60,
                            env={**os.environ})
    assert result.returncode == 0 and result.stdout.strip() == f"tokenwire {__version__}"
