"""Rate limits, the live auth configuration, CORS, and the size, time and concurrency limits, as
REST and gRPC clients meet them (real server with the embedded model, bridge in process)."""

from __future__ import annotations


import grpc
import pytest

from rest_bridge import create_app
from rest_bridge.config import BridgeConfig
from server.security.keys import fingerprint
from tests.conftest import BAN_END_OF_GENERATION
from tests.helpers import ServerThread, make_settings, wait_for
from tests.helpers import serve_with_bridge as running
from tests.sentinel import ADMIN_KEY, BRIDGE_SECRET, KEY_A, KEY_B, SENTINEL
from tokenwire.v1 import engine_service_pb2, engine_service_pb2_grpc
from tokenwire.v1 import generation_service_pb2 as gen_pb
from tokenwire.v1 import generation_service_pb2_grpc

RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset",
                "X-Rate-Limit-Limit", "X-Rate-Limit-Remaining", "X-Rate-Limit-Reset")


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# -- rate limits ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def limited():
    settings = make_settings(auth={"api_keys": [KEY_A, KEY_B], "admin_api_keys": [ADMIN_KEY],
                                   "bridge_secret": BRIDGE_SECRET},
                             rate_limit={"max_requests": 3, "window_size": 60})
    with running(settings, wait_loaded=False) as pair:
        yield pair


def test_key_over_budget_gets_429_with_headers_and_another_key_is_untouched(limited):
    server, http = limited
    http.post("/v1/auth/clear", json={"clear_all": True}, headers=bearer(ADMIN_KEY))
    for remaining in (2, 1, 0):
        a = http.get("/v1/models", headers=bearer(KEY_A))
        assert a.status_code == 200
        assert a.headers["X-RateLimit-Limit"] == a.headers["X-Rate-Limit-Limit"] == "3"
        assert a.headers["X-RateLimit-Remaining"] == str(remaining)
        assert int(a.headers["X-Rate-Limit-Reset"]) > 0
    refused = http.get("/v1/models", headers=bearer(KEY_A))
    assert refused.status_code == 429
    assert refused.get_json()["error"]["type"] == "rate_limit_error"
    assert refused.get_json()["error"]["code"] == "rate_limit_exceeded"
    assert refused.headers["X-RateLimit-Remaining"] == refused.headers["X-Rate-Limit-Remaining"] == "0"
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert all(h in refused.headers for h in RATE_HEADERS)

    # Same run, key B: under budget, never refused, its own counts.
    b = http.get("/v1/models", headers={"X-API-Key": KEY_B})
    assert b.status_code == 200 and b.headers["X-RateLimit-Remaining"] == "2"

    # Every route family gets the same headers: the native REST route of the transcoder too.
    native = http.get("/v1/engines", headers=bearer(KEY_A))
    assert native.status_code == 429 and native.get_json()["code"] == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    assert native.headers["Retry-After"] == refused.headers["Retry-After"]
    assert all(h in native.headers for h in RATE_HEADERS)

    # gRPC: RESOURCE_EXHAUSTED with the same values in the trailing metadata.
    with grpc.insecure_channel(server.target) as channel:
        engines = engine_service_pb2_grpc.EngineServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            engines.ListEngines(engine_service_pb2.ListEnginesRequest(),
                                metadata=(("authorization", f"Bearer {KEY_A}"),))
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        trailers = dict(caught.value.trailing_metadata())
        assert trailers["x-ratelimit-remaining"] == trailers["x-rate-limit-remaining"] == "0"
        assert trailers["x-ratelimit-limit"] == refused.headers["X-RateLimit-Limit"] == "3"
        # The window moves on by the second between the two answers: equal, give or take one.
        assert abs(int(trailers["retry-after"]) - int(refused.headers["Retry-After"])) <= 1
        assert abs(int(trailers["x-ratelimit-reset"])
                   - int(refused.headers["X-RateLimit-Reset"])) <= 1
        _, call = engines.ListEngines.with_call(engine_service_pb2.ListEnginesRequest(),
                                                metadata=(("x-api-key", KEY_B),))
        assert dict(call.trailing_metadata())["x-ratelimit-remaining"] == "1"

    # An answer that fails for another reason still says where the client stands.
    missing = http.get("/v1/models/no-such-model", headers={"X-API-Key": KEY_B})
    assert missing.status_code == 404
    assert missing.headers["X-RateLimit-Remaining"] == missing.headers["X-Rate-Limit-Remaining"] == "0"

    # The admin sees fingerprints, never keys, and can clear the client.
    stats = http.get("/v1/auth/stats", headers=bearer(ADMIN_KEY))
    assert stats.status_code == 200 and SENTINEL not in stats.get_data(as_text=True)
    clients = stats.get_json()["rate_limit_stats"]["clients"]
    assert set(clients) == {fingerprint(KEY_A), fingerprint(KEY_B)}
    assert all(c.startswith("key:") for c in clients)
    cleared = http.post("/v1/auth/clear", json={"client_ip": fingerprint(KEY_A)},
                        headers=bearer(ADMIN_KEY))
    assert cleared.status_code == 200 and cleared.get_json()["cleared_clients"] == 1
    assert http.get("/v1/models", headers=bearer(KEY_A)).status_code == 200

    # clear_all gives every client its whole budget back.
    assert http.get("/v1/models", headers={"X-API-Key": KEY_B}).headers["X-RateLimit-Remaining"] == "0"
    everyone = http.post("/v1/auth/clear", json={"clear_all": True}, headers=bearer(ADMIN_KEY))
    assert everyone.status_code == 200 and everyone.get_json()["cleared_clients"] == 2
    for key in (KEY_A, KEY_B):
        assert http.get("/v1/models", headers={"X-API-Key": key}).headers["X-RateLimit-Remaining"] == "2"


def test_keyless_clients_are_limited_by_their_own_address_through_the_bridge():
    settings = make_settings(auth={"bridge_secret": BRIDGE_SECRET},
                             rate_limit={"enabled": True, "max_requests": 2},
                             server={"allow_public_access": True})  # clients of other machines
    with running(settings, wait_loaded=False) as (_, http):
        first = {"REMOTE_ADDR": "192.0.2.1"}
        second = {"REMOTE_ADDR": "192.0.2.2"}
        assert [http.get("/v1/models", environ_base=first).status_code for _ in range(3)] == [200, 200, 429]
        assert http.get("/v1/models", environ_base=second).status_code == 200
        clients = http.get("/v1/auth/stats").get_json()["rate_limit_stats"]["clients"]
        assert clients["192.0.2.1"]["request_count"] == 2
        assert clients["192.0.2.2"]["request_count"] == 1


def test_no_rate_limit_headers_when_limiting_is_off(http):
    response = http.get("/v1/models")
    assert response.status_code == 200
    assert not any(h in response.headers for h in RATE_HEADERS)


# -- the live auth configuration ----------------------------------------------------------------


def test_auth_config_is_admin_only_counts_keys_and_never_echoes_them(limited):
    _, http = limited
    assert http.get("/v1/auth/config", headers=bearer(KEY_A)).status_code == 403
    assert http.get("/v1/auth/config").status_code == 401
    response = http.get("/v1/auth/config", headers=bearer(ADMIN_KEY))
    assert response.status_code == 200 and SENTINEL not in response.get_data(as_text=True)
    body = response.get_json()
    assert body["api_key"] == {"enabled": True, "required": True, "header_name": "X-API-Key",
                               "keys_count": 2, "admin_keys_count": 1}
    assert body["rate_limiter"]["max_requests"] == 3 and body["rate_limiter"]["window_seconds"] == 60
    assert set(body["cors"]) >= {"enabled", "allowed_origins", "allowed_methods", "allow_credentials"}


@pytest.mark.parametrize("change,param", [
    ({"rate_limiter": {"max_requests": 0}}, "rate_limiter.max_requests"),
    ({"rate_limiter": {"window_size": "60"}}, "rate_limiter.window_size"),
    ({"cors": {"allowed_origins": "https://a.example"}}, "cors.allowed_origins"),
    ({"api_key": {"header_name": "bad header"}}, "api_key.header_name"),
    ({"api_key": {"api_keys": ["short"]}}, "api_key.api_keys"),
    ({"api_key": {"api_keys": [], "admin_api_keys": []}}, "api_key.required"),
    ({"limits": {}}, "limits"),
])
def test_invalid_auth_config_is_refused_and_changes_nothing(limited, change, param):
    _, http = limited
    before = http.get("/v1/auth/config", headers=bearer(ADMIN_KEY)).get_json()
    response = http.put("/v1/auth/config", json=change, headers=bearer(ADMIN_KEY))
    assert response.status_code == 400
    assert response.get_json()["error"]["param"] == param
    assert "short" not in response.get_data(as_text=True)
    assert http.get("/v1/auth/config", headers=bearer(ADMIN_KEY)).get_json() == before


def test_auth_config_changes_apply_to_the_next_request():
    new_key = SENTINEL + "-rotated"
    settings = make_settings(auth={"api_keys": [KEY_A], "admin_api_keys": [ADMIN_KEY],
                                   "bridge_secret": BRIDGE_SECRET},
                             rate_limit={"enabled": False})
    with running(settings, wait_loaded=False) as (_, http):
        changed = http.put("/v1/auth/config", headers=bearer(ADMIN_KEY), json={
            "rate_limiter": {"enabled": True, "max_requests": 50, "window_size": 30},
            "api_key": {"header_name": "X-Team-Key", "api_keys": [new_key]}})
        assert changed.status_code == 200 and SENTINEL not in changed.get_data(as_text=True)
        assert changed.get_json()["api_key"]["keys_count"] == 1
        assert changed.get_json()["rate_limiter"]["window_seconds"] == 30
        assert http.get("/v1/models", headers=bearer(KEY_A)).status_code == 401  # rotated out
        ok = http.get("/v1/models", headers={"X-Team-Key": new_key})  # the new header, live
        assert ok.status_code == 200 and ok.headers["X-RateLimit-Limit"] == "50"
        assert http.post("/v1/auth/clear", json={}, headers=bearer(ADMIN_KEY)).status_code == 400
        # Turning auth off opens the server again.
        assert http.put("/v1/auth/config", headers=bearer(ADMIN_KEY),
                        json={"api_key": {"enabled": False}}).status_code == 200
        assert http.get("/v1/models").status_code == 200


# -- CORS ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cors_http():
    settings = make_settings(cors={"allowed_origins": ["https://a.example", "https://b.example"],
                                   "allow_credentials": True, "max_age": 600})
    with running(settings, wait_loaded=False) as (_, http):
        yield http


def test_cors_echoes_each_allowed_origin_and_nothing_else(cors_http):
    for origin in ("https://a.example", "https://b.example"):
        response = cors_http.get("/v1/models", headers={"Origin": origin})
        assert response.headers["Access-Control-Allow-Origin"] == origin
        assert response.headers["Access-Control-Allow-Credentials"] == "true"
        assert "Origin" in response.headers["Vary"]
        assert "X-RateLimit-Remaining" in response.headers["Access-Control-Expose-Headers"]
    stranger = cors_http.get("/v1/models", headers={"Origin": "https://evil.example"})
    assert stranger.status_code == 200  # not a browser: the answer is not the point, the header is
    assert "Access-Control-Allow-Origin" not in stranger.headers


def test_cors_preflight(cors_http):
    ok = cors_http.options("/v1/chat/completions", headers={
        "Origin": "https://a.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, authorization"})
    assert ok.status_code == 204
    assert ok.headers["Access-Control-Allow-Origin"] == "https://a.example"
    assert "POST" in ok.headers["Access-Control-Allow-Methods"]
    assert "Authorization" in ok.headers["Access-Control-Allow-Headers"]
    assert ok.headers["Access-Control-Max-Age"] == "600"
    for headers in ({"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
                    {"Origin": "https://a.example", "Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "x-not-allowed"}):
        refused = cors_http.options("/v1/chat/completions", headers=headers)
        assert refused.status_code == 403
        assert "Access-Control-Allow-Origin" not in refused.headers
        assert refused.get_json()["error"]["code"] == "cors_not_allowed"


def test_cors_wildcard_is_never_sent_with_credentials():
    settings = make_settings(cors={"allowed_origins": ["*"], "allow_credentials": True})
    with running(settings, wait_loaded=False) as (_, http):
        assert "Access-Control-Allow-Origin" not in http.get(
            "/v1/models", headers={"Origin": "https://any.example"}).headers
        assert http.put("/v1/auth/config",
                        json={"cors": {"allow_credentials": False}}).status_code == 200
        response = http.get("/v1/models", headers={"Origin": "https://any.example"})
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert "Access-Control-Allow-Credentials" not in response.headers


def test_an_origin_added_through_the_auth_config_is_allowed_at_once():
    settings = make_settings(cors={"allowed_origins": ["https://a.example"]})
    with running(settings, wait_loaded=False) as (_, http):
        newcomer = {"Origin": "https://new.example"}
        assert "Access-Control-Allow-Origin" not in http.get("/v1/models", headers=newcomer).headers
        changed = http.put("/v1/auth/config", json={"cors": {
            "allowed_origins": ["https://a.example", "https://new.example"]}})
        assert changed.status_code == 200
        assert http.get("/v1/models", headers=newcomer).headers[
            "Access-Control-Allow-Origin"] == "https://new.example"
        assert http.get("/v1/auth/config").get_json()["cors"]["allowed_origins"] == [
            "https://a.example", "https://new.example"]


# -- size, time and concurrency limits ----------------------------------------------------------


def test_a_20_mb_body_gets_413_and_the_server_stays_up(server):
    with grpc.insecure_channel(server.target) as channel:
        app = create_app(BridgeConfig(grpc_target=server.target), channel=channel)  # 16 MB limit
        http = app.test_client()
        body = b'{"messages": [{"role": "user", "content": "' + b"x" * (20 * 1024 * 1024) + b'"}]}'
        response = http.post("/v1/chat/completions", data=body, content_type="application/json")
        assert response.status_code == 413
        assert response.get_json()["error"]["type"] == "invalid_request_error"
        assert http.get("/v1/models").status_code == 200
        # Direct gRPC callers meet the same limit in the server.
        stub = generation_service_pb2_grpc.GenerationServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.Complete(gen_pb.CompleteRequest(prompt="x" * (20 * 1024 * 1024)), timeout=60)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def _long_request(max_tokens: int = 900) -> gen_pb.GenerateRequest:
    request = gen_pb.GenerateRequest(prompt="Once upon a time", max_tokens=max_tokens)
    request.sampling.temperature = 0
    for token, bias in BAN_END_OF_GENERATION.items():
        request.sampling.logit_bias[token] = bias
    return request


def _active(server: ServerThread) -> int:
    with grpc.insecure_channel(server.target) as channel:
        engine = engine_service_pb2_grpc.EngineServiceStub(channel).GetEngine(
            engine_service_pb2.GetEngineRequest(engine_id="default"), timeout=30).engine
    return engine.scheduler.active_sequences + engine.scheduler.queued_requests


def test_too_many_concurrent_streams_are_refused_at_once_and_the_server_recovers():
    with running(make_settings(server={"max_connections": 2})) as (server, http):
        with grpc.insecure_channel(server.target) as channel:
            stub = generation_service_pb2_grpc.GenerationServiceStub(channel)
            streams = [stub.Generate(_long_request(), timeout=240) for _ in range(2)]
            for stream in streams:
                next(stream)  # both are running
            with pytest.raises(grpc.RpcError) as caught:
                next(stub.Generate(_long_request(), timeout=240))
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "concurrent requests" in caught.value.details()
            busy = http.post("/v1/completions", json={"prompt": "Hi", "max_tokens": 1})
            assert busy.status_code == 503 and busy.headers["Retry-After"] == "1"
            # Refused at once, not queued behind the running streams: both still hold their
            # sequences (900 tokens each) after the two refusals came back. (Read in process: a
            # gRPC call to ask would be refused too.)
            assert server.backend().stats().active == 2
            for stream in streams:
                stream.cancel()
            wait_for(lambda: server.server.security.in_flight == 0, timeout=30)
            wait_for(lambda: _active(server) == 0, timeout=30)
        done = http.post("/v1/completions", json={"prompt": "Hi", "max_tokens": 2})
        assert done.status_code == 200


def test_request_timeout_stops_the_work_with_deadline_exceeded_and_504():
    with running(make_settings(server={"request_timeout": 0.5})) as (server, http):
        with grpc.insecure_channel(server.target) as channel:
            stub = generation_service_pb2_grpc.GenerationServiceStub(channel)
            request = gen_pb.CompleteRequest(prompt="Once upon a time", max_tokens=900)
            request.sampling.CopyFrom(_long_request().sampling)
            with pytest.raises(grpc.RpcError) as caught:
                stub.Complete(request, timeout=240)
            assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert "request_timeout" in caught.value.details()
        wait_for(lambda: _active(server) == 0, timeout=30)  # the engine stopped
        response = http.post("/v1/completions", json={
            "prompt": "Once upon a time", "max_tokens": 900, "temperature": 0,
            "logit_bias": {str(k): v for k, v in BAN_END_OF_GENERATION.items()}})
        assert response.status_code == 504
        assert response.get_json()["error"]["type"] == "timeout_error"


def test_the_bridge_puts_a_deadline_on_unary_calls(server):
    with grpc.insecure_channel(server.target) as channel:
        app = create_app(BridgeConfig(grpc_target=server.target, request_timeout_s=0.3),
                         channel=channel)
        response = app.test_client().post("/v1/completions", json={
            "prompt": "Once upon a time", "max_tokens": 900, "temperature": 0,
            "logit_bias": {str(k): v for k, v in BAN_END_OF_GENERATION.items()}})
    assert response.status_code == 504
    wait_for(lambda: _active(server) == 0, timeout=30)
