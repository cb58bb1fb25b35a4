"""Issue 18, items 4-6, in process: the reference documents' own config files load unchanged
(tests/data/reference_configs/), `server.allow_public_access` says who may call (Kolosal's
meaning), model aliases resolve in the server for every RPC and REST family, and Kolosal's
`features` turn endpoint groups off. Subprocess runs of the same files: tests/e2e/test_reference_configs.py."""

from __future__ import annotations

import json
import os
import pathlib
import socket

import grpc
import pytest

from rest_bridge import create_app
from rest_bridge.config import BridgeConfig
from rest_bridge.families.foundry.routes import PREFIX as FOUNDRY_PREFIX
from server.cli import _overrides, build_parser
from server.config import embedded_model_path, load_settings
from tests.conftest import CAPITAL_QUESTION
from tests.helpers import ServerThread, make_settings
from tokenwire import Client
from tokenwire.v1 import engine_service_pb2 as engine_pb
from tokenwire.v1 import engine_service_pb2_grpc as engine_grpc

CONFIGS = pathlib.Path(__file__).resolve().parent.parent / "data" / "reference_configs"
BRIDGE_SECRET = "reference-configs-bridge-secret"
REMOTE = "203.0.113.7"  # TEST-NET-3: never this machine


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def loopback_overrides(tmp_path: pathlib.Path, **sections) -> dict:
    """What a test changes in a reference config: loopback, free ports, its own directories."""
    overrides = {"server": {"host": "127.0.0.1", "grpc_port": 0, "port": 0},
                 "model_store": {"directory": str(tmp_path / "models-store")},
                 "sessions": {"store_path": str(tmp_path / "sessions.db")},
                 "auth": {"bridge_secret": BRIDGE_SECRET}}
    for name, values in sections.items():
        overrides.setdefault(name, {}).update(values)
    return overrides


def bridge_for(running: ServerThread):
    channel = grpc.insecure_channel(running.target)
    app = create_app(BridgeConfig(grpc_target=running.target, request_timeout_s=600,
                                  bridge_secret=BRIDGE_SECRET), channel=channel)
    app.testing = True
    return app.test_client(), channel


@pytest.fixture(scope="module")
def kolosal_server(tmp_path_factory):
    """Kolosal's complete config as written: its model path ./models/model.gguf is relative to
    the directory the server starts in, where the embedded model stands in for the user's."""
    home = tmp_path_factory.mktemp("kolosal")
    (home / "models").mkdir()
    (home / "models" / "model.gguf").symlink_to(embedded_model_path())
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(home)
        settings = load_settings(str(CONFIGS / "kolosal_config.yaml"), environ={},
                                 overrides=loopback_overrides(home))
        running = ServerThread(settings).start()
    yield running
    running.stop()


def test_kolosal_config_loads_as_written(kolosal_server):
    s = kolosal_server.settings
    assert s.server.allow_public_access is False and s.auth.api_key_header == "X-API-Key"
    assert [m.id for m in s.models] == ["gpt-3.5-turbo"] and s.models[0].load_params.n_gpu_layers == 50
    assert s.rate_limit.enabled and s.cors.allowed_origins == ["*"]
    assert s.features.health_check and s.features.metrics
    with Client(kolosal_server.target, timeout=240) as client:
        answer = client.complete(messages=CAPITAL_QUESTION, model="gpt-3.5-turbo", max_tokens=8,
                                 temperature=0)
    assert "Paris" in answer.text


def test_with_public_access_off_only_this_machine_may_call(kolosal_server):
    http, channel = bridge_for(kolosal_server)
    try:
        assert http.get("/v1/models", environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 200
        for path in ("/v1/models", "/v1/health", "/engines"):
            answer = http.get(path, environ_base={"REMOTE_ADDR": REMOTE})
            assert answer.status_code == 403, (path, answer.data)
            assert "allow_public_access" in json.dumps(answer.get_json())
    finally:
        channel.close()
    # A gRPC caller the bridge vouches for is judged by its own address too.
    with grpc.insecure_channel(kolosal_server.target) as channel:
        stub = engine_grpc.EngineServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.ListEngines(engine_pb.ListEnginesRequest(), timeout=30, metadata=(
                ("x-tokenwire-bridge-secret", BRIDGE_SECRET),
                ("x-tokenwire-client-address", REMOTE)))
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        # Only the bridge's secret makes the forwarded address believed: a direct caller that
        # claims to be elsewhere is judged by its own (loopback) address.
        assert stub.ListEngines(engine_pb.ListEnginesRequest(), timeout=30, metadata=(
            ("x-tokenwire-client-address", REMOTE),)).engines


def test_with_public_access_off_the_bridge_own_pages_refuse_other_machines(kolosal_server):
    """What the bridge answers without calling the server (its pages, the OpenAPI document, CORS
    preflights) follows the same rule, in each family's error shape."""
    http, channel = bridge_for(kolosal_server)
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    try:
        for method, path, headers in (("GET", "/docs", {}), ("GET", "/openapi.json", {}),
                                      ("GET", "/", {}),
                                      ("OPTIONS", "/v1/chat/completions", preflight)):
            local = http.open(path, method=method, headers=headers,
                              environ_base={"REMOTE_ADDR": "127.0.0.1"})
            assert local.status_code in (200, 204), (path, local.status_code)
            remote = http.open(path, method=method, headers=headers,
                               environ_base={"REMOTE_ADDR": REMOTE})
            assert remote.status_code == 403, (path, remote.data)
            assert "allow_public_access" in remote.get_data(as_text=True)
            assert "Access-Control-Allow-Origin" not in remote.headers
        # A family's own error shape, on a path it owns (Foundry's carries a `details` member).
        foundry = http.get(FOUNDRY_PREFIX + "/status", environ_base={"REMOTE_ADDR": REMOTE})
        assert foundry.status_code == 403
        assert set(foundry.get_json()["error"]) == {"message", "type", "code", "details"}
    finally:
        channel.close()


def test_with_public_access_off_socketio_refuses_other_machines(kolosal_server):
    """socket.io's events come from streams the bridge opens itself: its handshake checks the
    client's address (engine.io polling, driven by hand so that the client can be elsewhere)."""
    http, channel = bridge_for(kolosal_server)

    def connect(address: str) -> str:
        environ = {"REMOTE_ADDR": address}
        opened = http.get("/socket.io/?EIO=4&transport=polling", environ_base=environ)
        assert opened.status_code == 200, opened.data
        sid = json.loads(opened.get_data(as_text=True)[1:])["sid"]
        url = f"/socket.io/?EIO=4&transport=polling&sid={sid}"
        assert http.post(url, data="40", environ_base=environ).status_code == 200
        for _ in range(5):  # a poll may carry other packets (separated by \x1e) before the answer
            for packet in http.get(url, environ_base=environ).get_data(as_text=True).split("\x1e"):
                if packet.startswith(("40", "44")):
                    return packet
        raise AssertionError("no answer to the socket.io connect")

    try:
        refused = connect(REMOTE)
        assert refused.startswith("44"), refused
        error = json.loads(refused[2:])
        assert error["data"] == {"type": "permission_error", "status": 403}
        assert "allow_public_access" in error["message"]
        assert connect("127.0.0.1").startswith("40{"), "a local client is admitted"
    finally:
        http.application.extensions["tokenwire.socketio"].stop()  # its streams, before the channel
        channel.close()


def test_with_public_access_on_other_machines_are_admitted(tmp_path):
    settings = make_settings(server={"allow_public_access": True},
                             auth={"bridge_secret": BRIDGE_SECRET})
    running = ServerThread(settings).start()
    http, channel = bridge_for(running)
    try:
        assert http.get("/v1/models", environ_base={"REMOTE_ADDR": REMOTE}).status_code == 200
    finally:
        channel.close()
        running.stop()


def test_kai_config_loads_as_written():
    s = load_settings(str(CONFIGS / "kai_api.yaml"),
                      environ={"OLLAMA_HOST": "ollama.internal:11434"})
    assert (s.server.host, s.server.port) == ("0.0.0.0", 9000)
    assert s.cors.enabled and s.cors.allowed_origins == ["*"]
    specs = {spec.id: spec for spec in s.engine_specs()}
    assert set(specs) == {"granite4:tiny-h", "anthropic/claude-opus"}
    assert {spec.backend for spec in specs.values()} == {"openai_upstream"}
    assert specs["granite4:tiny-h"].upstream.base_url == "http://ollama.internal:11434/v1"
    assert specs["anthropic/claude-opus"].upstream.base_url == "https://openrouter.ai/api/v1"
    assert specs["anthropic/claude-opus"].upstream.api_key_env == "OPENROUTER_API_KEY"
    assert s.alias_table() == {"granite-local": "granite4:tiny-h", "gpt-4": "anthropic/claude-opus"}
    assert s.default_engine_id() == "granite4:tiny-h"


@pytest.mark.parametrize("allow_no_auth, required", [(True, False), (False, True)])
def test_kai_allow_no_auth(tmp_path, allow_no_auth, required):
    path = tmp_path / "api.yaml"
    path.write_text(f"auth:\n  allow_no_auth: {str(allow_no_auth).lower()}\n"
                    "  api_keys: [sk-kai-key-1]\n")
    assert load_settings(str(path), environ={}).auth.keys_required() is required


def test_rust_config_toml_loads(tmp_path):
    s = load_settings(str(CONFIGS / "rust_config.toml"), environ={})
    assert (s.server.host, s.server.port) == ("0.0.0.0", 3000)
    assert s.auth.keys_required() and s.rate_limit.max_requests == 60
    broken = tmp_path / "config.toml"
    broken.write_text("[server\nport = 3000\n")
    with pytest.raises(Exception, match="not valid TOML"):
        load_settings(str(broken), environ={})


def test_an_unreachable_kai_upstream_starts_and_says_so(tmp_path):
    """Kai's Ollama is not running: the server starts, the engine says why it cannot answer, and
    a request by the Kai name gets UNAVAILABLE naming the upstream."""
    port = closed_port()
    kai = tmp_path / "api.yaml"  # the Kai file, minus the external provider (no network in tests)
    kai.write_text("\n".join(line for line in (CONFIGS / "kai_api.yaml").read_text().splitlines()
                             if "gpt-4" not in line and "openrouter" not in line
                             and "claude" not in line))
    settings = load_settings(str(kai), environ={"OLLAMA_HOST": f"127.0.0.1:{port}"},
                             overrides=loopback_overrides(tmp_path))
    running = ServerThread(settings).start()
    try:
        engine = running.server.engines.describe("granite-local")
        assert engine.id == "granite4:tiny-h" and engine.state.value == "loaded"
        health = engine.backend.health()
        assert not health.healthy and "unreachable" in health.detail and str(port) in health.detail
        with Client(running.target, timeout=60) as client:
            with pytest.raises(Exception) as caught:
                client.complete(messages=CAPITAL_QUESTION, model="granite-local", max_tokens=4)
        assert caught.value.code.name == "UNAVAILABLE" and "unreachable" in str(caught.value)
    finally:
        running.stop()


# -- aliases (item 5) ----------------------------------------------------------------------------

CATALOG_NAME = "SmolLM2-135M-Instruct-Q4_1-GGUF"
CATALOG_ID = "HuggingFaceTB/SmolLM2-135M-Instruct-Q4_1-GGUF"


@pytest.fixture(scope="module")
def aliased(tmp_path_factory):
    """The embedded model as a catalog model's engine (its id the entry's model_id, as a download
    of the entry makes it), with a configured alias."""
    catalog = tmp_path_factory.mktemp("catalog") / "catalog.yaml"
    catalog.write_text(f"""models:
  - name: {CATALOG_NAME}
    model_id: {CATALOG_ID}
    url: https://example.invalid/{os.path.basename(embedded_model_path())}
    filename: {os.path.basename(embedded_model_path())}
    size_bytes: 1
""")
    running = ServerThread(make_settings(models=[{"id": CATALOG_ID,
                                                  "path": str(embedded_model_path())}],
                                         aliases={"gpt-4o-mini": CATALOG_ID},
                                         model_store={"catalog_path": str(catalog)},
                                         auth={"bridge_secret": BRIDGE_SECRET})).start()
    http, channel = bridge_for(running)
    yield running, http
    channel.close()
    running.stop()


@pytest.mark.parametrize("name", ["gpt-4o-mini", "GPT-4o-Mini", CATALOG_NAME, CATALOG_ID.lower()])
def test_aliases_and_catalog_names_reach_the_engine_over_grpc(aliased, name):
    running, _ = aliased
    with Client(running.target, timeout=240) as client:
        answer = client.complete(messages=CAPITAL_QUESTION, model=name, max_tokens=8, temperature=0)
    assert "Paris" in answer.text and answer.model == CATALOG_ID
    with grpc.insecure_channel(running.target) as channel:
        engine = engine_grpc.EngineServiceStub(channel).GetEngine(
            engine_pb.GetEngineRequest(engine_id=name), timeout=30).engine
    assert engine.engine_id == CATALOG_ID
    assert list(engine.aliases) == ["gpt-4o-mini", CATALOG_NAME]


def test_an_unknown_name_is_still_not_found(aliased):
    running, http = aliased
    answer = http.post("/v1/chat/completions", json={"model": "gpt-5-nonexistent",
                                                      "messages": CAPITAL_QUESTION})
    assert answer.status_code == 404 and "gpt-5-nonexistent" in answer.get_json()["error"]["message"]


def test_every_rest_family_accepts_an_alias(aliased):
    _, http = aliased
    chat = http.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "max_tokens": 8,
                                                    "temperature": 0, "messages": CAPITAL_QUESTION})
    assert chat.status_code == 200 and "Paris" in chat.get_json()["choices"][0]["message"]["content"]
    completion = http.post("/v1/completions", json={"model": CATALOG_NAME, "max_tokens": 3,
                                                     "prompt": "The capital of France is"})
    assert completion.status_code == 200, completion.data
    rust = http.post("/completions", json={"model": "gpt-4o-mini", "max_tokens": 3,
                                           "prompt": "The capital of France is"})
    assert rust.status_code == 200, rust.data
    status = http.get("/engines/gpt-4o-mini/status")  # Kolosal
    assert status.status_code == 200, status.data
    model = http.get("/v1/models/gpt-4o-mini")
    assert model.status_code == 200 and model.get_json()["id"] == "gpt-4o-mini"
    assert model.get_json()["root"] == CATALOG_ID


def test_v1_models_lists_the_aliases(aliased):
    _, http = aliased
    listed = http.get("/v1/models").get_json()["data"]
    assert [(m["id"], m["root"]) for m in listed] == [
        (CATALOG_ID, CATALOG_ID), ("gpt-4o-mini", CATALOG_ID), (CATALOG_NAME, CATALOG_ID)]


def test_sessions_and_switching_accept_an_alias(aliased):
    running, _ = aliased
    with Client(running.target, timeout=240) as client:
        text = "".join(d.text for d in client.chat("alias-session", "What is the capital of France?",
                                                   create_if_missing=True, model="gpt-4o-mini",
                                                   system_prompt="Answer in one word.",
                                                   max_tokens=8, temperature=0))
    assert "Paris" in text
    with grpc.insecure_channel(running.target) as channel:
        answer = engine_grpc.EngineServiceStub(channel).SwitchDefaultEngine(
            engine_pb.SwitchDefaultEngineRequest(engine_id=CATALOG_NAME), timeout=60)
    assert answer.engine.engine_id == CATALOG_ID and answer.previous_engine_id == CATALOG_ID


@pytest.mark.parametrize("aliases, problem", [
    ({"default": "default"}, "already an engine id"),
    ({"gpt-4": "ghost"}, "not a configured model"),
])
def test_bad_aliases_are_config_errors(aliases, problem):
    from server.config import ConfigError

    with pytest.raises(ConfigError, match=problem):
        make_settings(aliases=aliases)


def test_default_model_may_be_an_alias():
    s = make_settings(aliases={"house": "default"}, engine={"default_model": "house"})
    assert s.default_engine_id() == "default"


# -- features (item 6) ---------------------------------------------------------------------------

def flags(*argv: str) -> dict:
    return _overrides(build_parser().parse_args(["serve", *argv]))


def test_kolosal_feature_flags_override_the_file(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("features:\n  health_check: true\n  metrics: false\n")
    s = load_settings(str(path), environ={}, overrides=flags("--enable-metrics",
                                                             "--disable-health-check"))
    assert s.features.metrics is True and s.features.health_check is False
    assert load_settings(str(path), environ={}).features.metrics is False


def test_features_off_answer_404_and_grpc_health_stays(tmp_path):
    running = ServerThread(make_settings(features={"metrics": False, "health_check": False},
                                         auth={"bridge_secret": BRIDGE_SECRET})).start()
    http, channel = bridge_for(running)
    try:
        for path in ("/metrics", "/v1/metrics/system", "/health", "/v1/health", "/readiness"):
            answer = http.get(path)
            assert answer.status_code == 404, (path, answer.data)
            assert "features." in answer.get_json()["error"]["message"]
        assert http.get("/v1/models").status_code == 200
        with Client(running.target, timeout=30) as client:
            assert client.health() == "SERVING"  # grpc.health.v1: orchestrators' probes
    finally:
        channel.close()
        running.stop()
