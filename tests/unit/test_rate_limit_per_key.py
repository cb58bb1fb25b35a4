"""rate_limit.per_key (the Rust service's "Per-key limits can be customized", doc 003): limits of
their own for some API keys, held and matched by key id, never by the key."""

from __future__ import annotations

import json
import logging

import pytest

from server.config import ConfigError, load_settings
from server.core.key_ids import KEY_ID, fingerprint
from server.security.keys import KeyRing
from server.security.rate_limit import KeyLimits, RateLimiter
from server.security.state import SecurityState

KEY = "sk-per-key-secret-123"
OTHER = "sk-default-secret-456"


def test_a_key_with_its_own_limits_keeps_them_and_others_keep_the_defaults():
    now = [1000.0]
    limiter = RateLimiter(2, 60, clock=lambda: now[0],
                          per_client={fingerprint(KEY): KeyLimits(max_requests=5)})
    own = [limiter.check(fingerprint(KEY)) for _ in range(6)]
    default = [limiter.check(fingerprint(OTHER)) for _ in range(3)]
    assert [v.allowed for v in own] == [True] * 5 + [False]
    assert {v.limit for v in own} == {5} and own[4].remaining == 0
    assert [v.allowed for v in default] == [True, True, False]
    assert {v.limit for v in default} == {2}


def test_what_an_entry_leaves_out_is_the_default_and_a_live_change_of_it_applies():
    now = [1000.0]
    limiter = RateLimiter(2, 60, burst_per_second=1, clock=lambda: now[0],
                          per_client={"key:0123456789ab": KeyLimits(window_seconds=10)})
    first = limiter.check("key:0123456789ab")
    assert first.limit == 2 and first.reset_seconds == 10  # its own window, the default limit
    assert not limiter.check("key:0123456789ab").allowed  # the default burst of 1 applies
    now[0] += 10
    assert limiter.check("key:0123456789ab").allowed  # a new 10 s window
    limiter.configure(7, 60, 0)
    assert limiter.check("key:0123456789ab").limit == 7
    assert limiter.check("somebody").reset_seconds == 60
    stats = {client: rest for client, *rest in limiter.stats()}
    assert stats["key:0123456789ab"][1] == 7 - 2 and stats["key:0123456789ab"][2] <= 10


def test_an_own_burst_of_zero_lifts_the_default_burst_cap():
    limiter = RateLimiter(10, 60, burst_per_second=1, clock=lambda: 5.0,
                          per_client={"k": KeyLimits(burst_per_second=0)})
    assert all(limiter.check("k").allowed for _ in range(5))
    assert limiter.check("x").allowed and not limiter.check("x").allowed


def test_settings_hold_key_ids_only_and_the_server_matches_the_keys_identity():
    settings = load_settings(environ={}, overrides={
        "auth": {"api_keys": [KEY, OTHER]},
        "rate_limit": {"enabled": True, "max_requests": 60, "window_size": 60,
                       "per_key": {KEY: {"max_requests": 1000}}}})
    per_key = settings.rate_limit.per_key
    assert list(per_key) == [fingerprint(KEY)] and all(KEY_ID.fullmatch(k) for k in per_key)
    assert KEY not in settings.model_dump_json() and KEY not in repr(settings)
    identity = KeyRing([KEY]).match([KEY])
    limiter = SecurityState(settings).limiter
    assert limiter.check(identity.key_id).limit == 1000
    assert limiter.check(KeyRing([OTHER]).match([OTHER]).key_id).limit == 60


def test_per_key_may_name_a_key_id_and_comes_from_the_environment_as_json():
    by_id = load_settings(environ={}, overrides={"rate_limit": {"per_key": {
        fingerprint(KEY): {"max_requests": 9}}}})
    assert by_id.rate_limit.per_key[fingerprint(KEY)].max_requests == 9
    env = load_settings(environ={"TOKENWIRE_RATE_LIMIT_PER_KEY": json.dumps(
        {KEY: {"max_requests": 3, "burst": 1}})})
    own = env.rate_limit.per_key[fingerprint(KEY)]
    assert (own.max_requests, own.window_size, own.burst) == (3, None, 1)


@pytest.mark.parametrize("per_key", [
    {KEY: {"max_requests": 0}},  # below 1
    {KEY: {"max_requsts": 5}},  # a misspelt member
    {KEY: 1000},  # not a mapping
    [KEY],
    "{" + KEY,  # broken JSON (as from the environment)
    {KEY: {"max_requests": 5}, fingerprint(KEY): {"max_requests": 6}},  # the same key twice
])
def test_a_wrong_per_key_entry_is_refused_without_showing_the_key(per_key, caplog):
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={}, overrides={"rate_limit": {"per_key": per_key}})
    assert "per_key" in str(caught.value)
    assert KEY not in str(caught.value) and KEY not in caplog.text
