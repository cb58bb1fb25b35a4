"""The Rust service's per-key rate limits (doc 003: "Per-key limits can be customized"), end to
end: rate_limit.per_key gives one key a higher limit of its own, the others keep the default,
and X-RateLimit-Limit says each key's own limit."""

from __future__ import annotations

import grpc
import pytest

from rest_bridge import create_app
from rest_bridge.config import BridgeConfig
from tests.helpers import ServerThread, make_settings
from tests.sentinel import KEY_A, KEY_B

DEFAULT_LIMIT, KEY_B_LIMIT, WINDOW_S = 2, 5, 3600  # a window no slow machine outlasts


@pytest.fixture(scope="module")
def per_key_http():
    settings = make_settings(auth={"api_keys": [KEY_A, KEY_B]}, rate_limit={
        "enabled": True, "max_requests": DEFAULT_LIMIT, "window_size": WINDOW_S,
        "per_key": {KEY_B: {"max_requests": KEY_B_LIMIT}}})
    running = ServerThread(settings).start()
    try:
        with grpc.insecure_channel(running.target) as channel:
            yield create_app(BridgeConfig(grpc_target=running.target), channel=channel).test_client()
    finally:
        running.stop()


def _calls(http, key: str, n: int) -> list:
    return [http.get("/sessions", headers={"Authorization": f"Bearer {key}"}) for _ in range(n)]


def test_key_a_is_limited_at_the_default_and_key_b_at_its_own_higher_limit(per_key_http):
    a = _calls(per_key_http, KEY_A, DEFAULT_LIMIT + 1)
    assert [r.status_code for r in a] == [200] * DEFAULT_LIMIT + [429]
    assert {r.headers["X-RateLimit-Limit"] for r in a} == {str(DEFAULT_LIMIT)}
    assert a[-1].headers["X-RateLimit-Remaining"] == "0"

    b = _calls(per_key_http, KEY_B, KEY_B_LIMIT + 1)
    assert [r.status_code for r in b] == [200] * KEY_B_LIMIT + [429], b[-2].get_data(as_text=True)
    assert {r.headers["X-RateLimit-Limit"] for r in b} == {str(KEY_B_LIMIT)}
    assert [r.headers["X-RateLimit-Remaining"] for r in b[:KEY_B_LIMIT]] == [
        str(KEY_B_LIMIT - i) for i in range(1, KEY_B_LIMIT + 1)]
    assert b[-1].get_data(as_text=True) == "Rate limit exceeded"  # the document's 429 body
