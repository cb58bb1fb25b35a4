"""Every REST route says which gRPC methods it calls, and they exist in the contract."""

import pytest
from google.protobuf import descriptor_pool

import tokenwire.v1  # noqa: F401  (registers the services in the default pool)
from rest_bridge import create_app
from rest_bridge.config import BridgeConfig
from rest_bridge.rpc_map import calls, route_methods


@pytest.fixture(scope="module")
def app():
    return create_app(BridgeConfig(grpc_target="127.0.0.1:1"))


def test_every_route_declares_the_rpcs_it_calls(app):
    undeclared = sorted(endpoint for endpoint, methods in route_methods(app).items()
                        if methods is None and endpoint != "static")
    assert undeclared == []


def test_declared_methods_exist_in_the_contract(app):
    pool = descriptor_pool.Default()
    for endpoint, methods in route_methods(app).items():
        for method in methods or ():
            service, name = method.split("/")
            assert pool.FindServiceByName(service).FindMethodByName(name) is not None, endpoint


def test_transcoded_routes_declare_their_own_rpc(app):
    assert route_methods(app)["transcoder.GenerationService_Complete"] == (
        "tokenwire.v1.GenerationService/Complete",)


@pytest.mark.parametrize("bad", ["Complete", "GenerationService/Complete", "/tokenwire.v1.X/Y"])
def test_a_method_name_must_be_fully_qualified(bad):
    with pytest.raises(ValueError):
        calls(bad)
