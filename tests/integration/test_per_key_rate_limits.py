"""The Rust service's per-key rate limits (doc 003: "Per-key limits can be customized"), end to
end: rate_limit.per_key gives one key a higher limit of its own, the others keep the default,
and X-RateLimit-Limit says each key's own limit; an admin changes the table live through
PUT /v1/auth/config."""

from __future__ import annotations

import pytest

from server.core.key_ids import fingerprint
from tests.helpers import make_settings, serve_with_bridge
from tests.sentinel import ADMIN_KEY, KEY_A, KEY_B, SENTINEL

DEFAULT_LIMIT, KEY_B_LIMIT, WINDOW_S = 2, 5, 3600  # a window no slow machine outlasts


@pytest.fixture(scope="module")
def per_key_http():
    settings = make_settings(auth={"api_keys": [KEY_A, KEY_B]}, rate_limit={
        "enabled": True, "max_requests": DEFAULT_LIMIT, "window_size": WINDOW_S,
        "per_key": {KEY_B: {"max_requests": KEY_B_LIMIT}}})
    with serve_with_bridge(settings) as (_, http):
        yield http


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


@pytest.fixture()
def admin_http():
    """A server whose admin changes the per-key table live (PUT /v1/auth/config)."""
    settings = make_settings(auth={"api_keys": [KEY_A, KEY_B], "admin_api_keys": [ADMIN_KEY]},
                             rate_limit={"enabled": True, "max_requests": DEFAULT_LIMIT,
                                         "window_size": WINDOW_S,
                                         "per_key": {ADMIN_KEY: {"max_requests": 100}}})
    with serve_with_bridge(settings) as (_, http):
        yield http


def _put(http, rate_limiter: dict):
    return http.put("/v1/auth/config", json={"rate_limiter": rate_limiter},
                    headers={"Authorization": f"Bearer {ADMIN_KEY}"})


def test_an_admin_gives_a_key_its_own_limit_live_and_sees_it_by_key_id_only(admin_http):
    response = _put(admin_http, {"per_key": {KEY_A: {"max_requests": 4}, ADMIN_KEY: {
        "max_requests": 100}}})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert SENTINEL not in response.get_data(as_text=True)  # the keys are held as key ids
    per_key = response.get_json()["rate_limiter"]["per_key"]
    assert per_key == {fingerprint(KEY_A): {"max_requests": 4, "window_seconds": None,
                                            "burst": None},
                       fingerprint(ADMIN_KEY): {"max_requests": 100, "window_seconds": None,
                                                "burst": None}}

    a = _calls(admin_http, KEY_A, 5)
    assert [r.status_code for r in a] == [200] * 4 + [429]
    assert {r.headers["X-RateLimit-Limit"] for r in a} == {"4"}
    b = _calls(admin_http, KEY_B, DEFAULT_LIMIT + 1)  # not in the table: the default
    assert [r.status_code for r in b] == [200] * DEFAULT_LIMIT + [429]

    # An empty table removes every key's own limits; the admin's key falls back to the default too.
    cleared = _put(admin_http, {"per_key": {}})
    assert cleared.status_code == 200 and cleared.get_json()["rate_limiter"][
        "per_key"] == {}


def test_an_invalid_per_key_entry_changes_nothing_and_names_the_key_id_not_the_key(admin_http):
    before = admin_http.get("/v1/auth/config",
                            headers={"Authorization": f"Bearer {ADMIN_KEY}"}).get_json()
    response = _put(admin_http, {"max_requests": 50,
                                 "per_key": {KEY_A: {"max_requests": 3, "window_size": 0}}})
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert SENTINEL not in text and "window" in text
    after = admin_http.get("/v1/auth/config",
                           headers={"Authorization": f"Bearer {ADMIN_KEY}"}).get_json()
    assert after == before  # neither the default nor the table changed

    # A key and its own key id in one table: refused, by key id.
    twice = _put(admin_http, {"per_key": {KEY_A: {"max_requests": 3},
                                          fingerprint(KEY_A): {"max_requests": 4}}})
    assert twice.status_code == 400 and fingerprint(KEY_A) in twice.get_data(as_text=True)
    assert SENTINEL not in twice.get_data(as_text=True)
