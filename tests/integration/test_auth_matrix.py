"""Every REST route and every gRPC method, with every way of (not) sending a key.

Generated from the tables, so a route or RPC added later is covered without touching this file:
the bridge's route table (`rpc_map.route_methods`: which gRPC methods each view calls) and the
gRPC service descriptors (each method's `(tokenwire.v1.access)` option). A route is public when
every method it calls is public; it needs an admin key when any method it calls is ACCESS_ADMIN.
"""

from __future__ import annotations

import importlib
import pkgutil

import grpc
import pytest
from grpc_health.v1 import health

import tokenwire.v1
from rest_bridge import create_app
from rest_bridge.config import BridgeConfig
from rest_bridge.rpc_map import route_methods
from server.security.access import ADMIN, PUBLIC, access_of
from tests.helpers import ServerThread, make_settings
from tests.sentinel import ADMIN_KEY, BRIDGE_SECRET, USER_KEY, WRONG_KEY

CUSTOM_HEADER = "X-Custom-Auth"

# name -> (HTTP headers, gRPC metadata, role the credentials carry: None, "wrong", "user", "admin")
CREDENTIALS = {
    "no key": ({}, (), None),
    "wrong key": ({"Authorization": f"Bearer {WRONG_KEY}"},
                  (("authorization", f"Bearer {WRONG_KEY}"),), "wrong"),
    "lowercase bearer": ({"Authorization": f"bearer {USER_KEY}"},
                         (("authorization", f"bearer {USER_KEY}"),), "user"),
    "X-API-Key": ({"X-API-Key": USER_KEY}, (("x-api-key", USER_KEY),), "user"),
    "custom header": ({CUSTOM_HEADER: USER_KEY}, ((CUSTOM_HEADER.lower(), USER_KEY),), "user"),
    "valid key": ({"Authorization": f"Bearer {USER_KEY}"},
                  (("authorization", f"Bearer {USER_KEY}"),), "user"),
    "admin key": ({"Authorization": f"Bearer {ADMIN_KEY}"},
                  (("authorization", f"Bearer {ADMIN_KEY}"),), "admin"),
}


def _level(methods: tuple[str, ...]) -> int:
    """The strictest Access among the methods a route calls (PUBLIC when it calls none)."""
    levels = [access_of("/" + m, public_reflection=True) for m in methods]
    if any(level == ADMIN for level in levels):
        return ADMIN
    return PUBLIC if all(level == PUBLIC for level in levels) else levels[0]


def _routes() -> list[tuple[str, str, str, int]]:
    """(HTTP method, URL, endpoint, access level) for every route the bridge serves."""
    app = create_app(BridgeConfig(grpc_target="127.0.0.1:9"))  # never called: only the table
    declared = route_methods(app)
    routes = []
    for rule in app.url_map.iter_rules():
        methods = declared.get(rule.endpoint)
        if methods is None:  # static files (test_rpc_map checks that API views declare)
            continue
        # From the rule itself: a view served at several paths (/health, /v1/health) is tried
        # at each of them.
        url = rule.build({name: "x" for name in rule.arguments})[1]
        if rule.websocket:  # addressed as WebSocket clients do; plain HTTP is refused at routing
            url = "ws://localhost" + url
        for verb in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            routes.append((verb, url, rule.endpoint, _level(methods)))
    return routes


def _grpc_methods() -> list[tuple[str, bool, bool, int]]:
    """(path, client streaming, server streaming, access level) for every method served."""
    found = []
    for info in sorted(pkgutil.iter_modules(tokenwire.v1.__path__), key=lambda m: m.name):
        if not info.name.endswith("_pb2"):
            continue
        module = importlib.import_module(f"tokenwire.v1.{info.name}")
        for service in module.DESCRIPTOR.services_by_name.values():
            for m in service.methods:
                found.append((f"/{service.full_name}/{m.name}", m.client_streaming,
                              m.server_streaming))
    found += [(f"/{health.SERVICE_NAME}/Check", False, False),
              (f"/{health.SERVICE_NAME}/Watch", False, True),
              ("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", True, True)]
    return [(path, cs, ss, access_of(path, public_reflection=True)) for path, cs, ss in found]


ROUTES = _routes()
GRPC_METHODS = _grpc_methods()

# What anyone may call without a key, written out: the matrix derives "public" from the same
# Access options the server enforces, so a method marked public by mistake would pass it.
EXPECTED_PUBLIC_METHODS = {
    "/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",  # public_reflection on here
    "/tokenwire.v1.AuthService/CheckAccess", "/tokenwire.v1.AuthService/GetBridgePolicy",
    "/tokenwire.v1.MetricsService/GetMetricsSnapshot",
    "/tokenwire.v1.MetricsService/GetPrometheusMetrics",
    "/tokenwire.v1.StatusService/GetStatus", "/tokenwire.v1.StatusService/WatchStatus",
}
EXPECTED_PUBLIC_ROUTE_PREFIXES = ("/health", "/v1/health", "/readiness", "/api/health",
                                  "/iblink/v1/foundry-local/health", "/metrics", "/v1/metrics",
                                  "/v1/status", "/v1/auth/bridge-policy", "/docs", "/api/docs",
                                  "/openapi.json", "/ui/")
EXPECTED_PUBLIC_PAGES = {"/"}  # the chat page: its own API calls carry the user's key


def test_the_public_list_is_exactly_health_metrics_status_and_docs():
    assert {path for path, _, _, level in GRPC_METHODS if level == PUBLIC} == EXPECTED_PUBLIC_METHODS
    public_routes = {url for _, url, _, level in ROUTES if level == PUBLIC}
    unexpected = sorted(url for url in public_routes - EXPECTED_PUBLIC_PAGES
                        if not url.startswith(EXPECTED_PUBLIC_ROUTE_PREFIXES))
    assert not unexpected
    assert {"/health", "/v1/health", "/readiness"} <= public_routes  # Impetus keys /api/health/*


@pytest.fixture(scope="module")
def secured():
    settings = make_settings(
        auth={"api_keys": [USER_KEY], "admin_api_keys": [ADMIN_KEY],
              "api_key_header": CUSTOM_HEADER, "bridge_secret": BRIDGE_SECRET},
        rate_limit={"enabled": False},
        server={"allow_public_access": True})  # its clients come from other machines
    running = ServerThread(settings).start(wait_loaded=False)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def secured_http(secured):
    with grpc.insecure_channel(secured.target) as channel:
        app = create_app(BridgeConfig(grpc_target=secured.target, bridge_secret=BRIDGE_SECRET,
                                      request_timeout_s=60), channel=channel)
        app.testing = True
        yield app.test_client()


def _is_authentication_error(response) -> bool:
    body = response.get_json(silent=True) or {}
    error = body.get("error")
    if isinstance(error, dict):  # OpenAI / Kolosal / Foundry shape
        return error.get("type") == "authentication_error"
    if isinstance(error, str):  # Impetus {"error", "type", …}; the session API's bare {"error"}
        return body.get("type", "authentication_error") == "authentication_error"
    return body.get("code") == grpc.StatusCode.UNAUTHENTICATED.value[0]  # google.rpc.Status


def test_the_tables_are_not_empty():
    assert any(level == ADMIN for *_, level in ROUTES), "no admin route: the 403 rows test nothing"
    assert any(level == PUBLIC for *_, level in ROUTES)
    assert any(level == ADMIN for *_, level in GRPC_METHODS)


def _text(response) -> str:
    """The body, or only its first chunk for a stream (log and download event streams never end)."""
    if response.mimetype in ("text/event-stream", "application/x-ndjson"):
        first = next(iter(response.response), b"")
        response.close()
        return first.decode() if isinstance(first, bytes) else str(first)
    return response.get_data(as_text=True)


@pytest.mark.parametrize("case", CREDENTIALS)
@pytest.mark.parametrize("verb,url,endpoint,level", ROUTES,
                         ids=[f"{v} {u}" for v, u, _, _ in ROUTES])
def test_rest_route(secured_http, verb, url, endpoint, level, case):
    headers, _, role = CREDENTIALS[case]
    response = secured_http.open(url, method=verb, headers=headers)
    body = _text(response)
    if level == PUBLIC:
        assert response.status_code not in (401, 403), endpoint
    elif role in (None, "wrong"):
        assert response.status_code == 401, (endpoint, body[:300])
        assert _is_authentication_error(response), body[:300]
    elif level == ADMIN and role == "user":
        assert response.status_code == 403, (endpoint, body[:300])
    else:
        assert response.status_code not in (401, 403), (endpoint, body[:300])
    assert USER_KEY not in body


def _call(channel, path, client_streaming, server_streaming, metadata):
    """Calls a method with an empty request; returns its status code."""
    kwargs = dict(metadata=metadata, timeout=30)
    try:
        if client_streaming:
            call = channel.stream_stream(path)(iter([b""]), **kwargs)
            next(call, None)
            call.cancel()
        elif server_streaming:
            call = channel.unary_stream(path)(b"", **kwargs)
            next(call, None)
            call.cancel()
        else:
            channel.unary_unary(path)(b"", **kwargs)
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


@pytest.mark.parametrize("case", CREDENTIALS)
@pytest.mark.parametrize("path,client_streaming,server_streaming,level", GRPC_METHODS,
                         ids=[m[0] for m in GRPC_METHODS])
def test_grpc_method(secured, path, client_streaming, server_streaming, level, case):
    _, metadata, role = CREDENTIALS[case]
    with grpc.insecure_channel(secured.target) as channel:
        code = _call(channel, path, client_streaming, server_streaming, metadata)
    assert code != grpc.StatusCode.UNIMPLEMENTED, f"{path} is described but not served"
    if level == PUBLIC:
        assert code not in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)
    elif role in (None, "wrong"):
        assert code == grpc.StatusCode.UNAUTHENTICATED
    elif level == ADMIN and role == "user":
        assert code == grpc.StatusCode.PERMISSION_DENIED
    else:
        assert code not in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)


def test_a_direct_grpc_caller_cannot_claim_another_address(secured):
    """Only the bridge, holding the secret, may say who its client is; anyone else is counted
    under the address the connection really comes from."""
    from tokenwire.v1 import auth_service_pb2 as pb
    from tokenwire.v1 import auth_service_pb2_grpc, engine_service_pb2, engine_service_pb2_grpc

    secured.call(_set_rate_limit(secured, True))
    try:
        admin = (("authorization", f"Bearer {ADMIN_KEY}"),)
        with grpc.insecure_channel(secured.target) as channel:
            auth = auth_service_pb2_grpc.AuthServiceStub(channel)
            auth.UpdateAuthConfig(pb.UpdateAuthConfigRequest(
                api_key=pb.ApiKeyUpdate(required=False)), metadata=admin)
            engines = engine_service_pb2_grpc.EngineServiceStub(channel)
            engines.ListEngines(engine_service_pb2.ListEnginesRequest(), metadata=(
                ("x-tokenwire-client-address", "203.0.113.7"),
                ("x-tokenwire-bridge-secret", "not-the-secret")))
            engines.ListEngines(engine_service_pb2.ListEnginesRequest(), metadata=(
                ("x-tokenwire-client-address", "198.51.100.9"),
                ("x-tokenwire-bridge-secret", BRIDGE_SECRET)))
            clients = {c.client_id for c in auth.GetAuthStats(pb.GetAuthStatsRequest(),
                                                               metadata=admin).clients}
            auth.UpdateAuthConfig(pb.UpdateAuthConfigRequest(
                api_key=pb.ApiKeyUpdate(required=True)), metadata=admin)
    finally:
        secured.call(_set_rate_limit(secured, False))
    assert "203.0.113.7" not in clients and "127.0.0.1" in clients
    assert "198.51.100.9" in clients  # the secret holder is believed


async def _set_rate_limit(running: ServerThread, enabled: bool) -> None:
    running.server.security.rate_limit_enabled = enabled
    running.server.security.limiter.clear()


def test_reflection_can_be_made_private():
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    settings = make_settings(auth={"api_keys": [USER_KEY], "public_reflection": False})
    running = ServerThread(settings).start(wait_loaded=False)
    try:
        with grpc.insecure_channel(running.target) as channel:
            stub = reflection_pb2_grpc.ServerReflectionStub(channel)
            ask = reflection_pb2.ServerReflectionRequest(list_services="")
            with pytest.raises(grpc.RpcError) as caught:
                next(stub.ServerReflectionInfo(iter([ask]), timeout=30))
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
            answer = next(stub.ServerReflectionInfo(
                iter([ask]), timeout=30, metadata=(("x-api-key", USER_KEY),)))
            assert any(s.name == "tokenwire.v1.AuthService"
                       for s in answer.list_services_response.service)
    finally:
        running.stop()


def test_only_the_bridge_s_own_relay_streams_skip_the_key_and_never_for_admin_methods(secured):
    """The socket.io relay's streams carry the bridge secret and the relay marker instead of a
    key. The marker alone (or with a wrong secret) opens nothing; with the secret it opens
    user-level methods only."""
    from tokenwire.v1 import engine_service_pb2, engine_service_pb2_grpc

    relay = ("x-tokenwire-bridge-relay", "socket.io")
    with grpc.insecure_channel(secured.target) as channel:
        engines = engine_service_pb2_grpc.EngineServiceStub(channel)
        for secret in ("", "not-the-secret"):
            with pytest.raises(grpc.RpcError) as refused:
                engines.ListEngines(engine_service_pb2.ListEnginesRequest(), metadata=(
                    relay, ("x-tokenwire-bridge-secret", secret)))
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        vouched = (relay, ("x-tokenwire-bridge-secret", BRIDGE_SECRET))
        assert engines.ListEngines(engine_service_pb2.ListEnginesRequest(), metadata=vouched).engines
        with pytest.raises(grpc.RpcError) as admin:
            engines.UnloadAllEngines(engine_service_pb2.UnloadAllEnginesRequest(), metadata=vouched)
        assert admin.value.code() == grpc.StatusCode.UNAUTHENTICATED
