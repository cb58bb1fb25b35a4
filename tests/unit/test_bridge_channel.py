"""What the bridge's channel adds to a call made outside any HTTP request: only the socket.io
relay's calls are vouched for with the bridge secret; any other such call goes out as it is."""

from __future__ import annotations

import grpc
import pytest

from rest_bridge.grpc_client import BRIDGE_RELAY_KEY, BRIDGE_SECRET_KEY, BridgeChannel

SECRET = "bridge-secret-for-tests"


@pytest.fixture
def channel():
    inner = grpc.insecure_channel("127.0.0.1:9")  # never connected: metadata() is all we call
    yield BridgeChannel(inner, request_timeout_s=None, bridge_secret=SECRET)
    inner.close()


def test_a_call_outside_a_request_is_not_vouched_for(channel):
    assert channel.metadata([("authorization", "Bearer k1")]) == (("authorization", "Bearer k1"),)


def test_the_relay_s_calls_carry_the_secret_and_the_relay_marker(channel):
    assert dict(channel.as_relay().metadata(())) == {BRIDGE_SECRET_KEY: SECRET,
                                                     BRIDGE_RELAY_KEY: "socket.io"}


def test_nobody_passes_the_bridge_s_own_names_through_it(channel):
    forged = [(BRIDGE_SECRET_KEY, "guess"), (BRIDGE_RELAY_KEY, "socket.io"), ("x-api-key", "k2")]
    assert channel.metadata(forged) == (("x-api-key", "k2"),)
    assert dict(channel.as_relay().metadata(forged))[BRIDGE_SECRET_KEY] == SECRET


@pytest.mark.parametrize("target, loopback", [
    ("127.0.0.1:50051", True), ("localhost:50051", True), ("[::1]:50051", True),
    ("dns:///localhost:50051", True), ("unix:/tmp/tokenwire.sock", True),
    ("10.0.0.7:50051", False), ("tokenwire.internal:50051", False)])
def test_the_bridge_bypasses_http_proxies_only_for_its_own_machine(target, loopback):
    from rest_bridge.grpc_client import _is_loopback_target

    assert _is_loopback_target(target) is loopback
