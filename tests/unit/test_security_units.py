"""API key matching, credentials in metadata, the rate limiter, and the security settings."""

from __future__ import annotations

import hmac

import pytest

from server.cli import _overrides, build_parser
from server.config import ConfigError, CorsSettings, load_settings
from server.security import keys as keys_module
from server.security.keys import KeyRing, credentials
from server.security.rate_limit import RateLimiter


def test_every_candidate_is_compared_with_every_key_whatever_matches(monkeypatch):
    ring = KeyRing(["user-one-key", "user-two-key"], ["admin-one-key"])
    compared = []
    real = hmac.compare_digest

    def counting(a, b):
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(keys_module.hmac, "compare_digest", counting)
    assert ring.match(["user-one-key"]).role == "user"  # matches the first key...
    assert len(compared) == 3  # ...and is still compared with the others
    compared.clear()
    assert ring.match(["nope-nope", "admin-one-key"]).role == "admin"
    assert len(compared) == 6
    assert all(len(a) == len(b) == 32 for a, b in compared)  # digests: equal lengths


def test_credentials_come_from_bearer_x_api_key_and_the_configured_header():
    metadata = [("authorization", "BEARER k1"), ("x-api-key", "k2"), ("x-team", "k3"),
                ("x-other", "k4"), ("authorization", "Basic dXNlcjpwYXNz")]
    assert credentials(metadata, "X-Team") == ["k1", "k2", "k3"]
    assert credentials([("x-team", "Bearer k5")], "X-Team") == ["k5"]


def test_rate_limiter_window_burst_and_reset():
    now = [1000.0]
    limiter = RateLimiter(3, 60, burst_per_second=2, clock=lambda: now[0])
    assert [limiter.check("a").allowed for _ in range(3)] == [True, True, False]  # burst of 2
    now[0] += 1
    third = limiter.check("a")
    assert third.allowed and third.remaining == 0
    refused = limiter.check("a")
    assert not refused.allowed and refused.retry_after_seconds == 59 == refused.reset_seconds
    assert limiter.check("b").allowed  # another client has its own window
    now[0] += 60
    assert limiter.check("a").allowed  # a new window
    assert ("retry-after", "59") in refused.headers() and ("x-rate-limit-remaining", "0") in refused.headers()


def flags(*argv: str) -> dict:
    return _overrides(build_parser().parse_args(["serve", *argv]))


def test_kolosal_security_flags():
    layer = flags("--api-key", "k-one-111", "--api-key", "k-two-222", "--require-api-key",
                  "--api-key-header", "X-Team", "--disable-auth", "--rate-limit", "10",
                  "--rate-window", "30", "--disable-rate-limit", "--cors-origin", "https://a",
                  "--cors-origin", "https://b", "--cors-method", "GET", "--cors-method", "PROPFIND",
                  "--cors-header", "X-A",
                  "--enable-cors-credentials", "--cors-max-age", "60")
    s = load_settings(environ={}, overrides=layer)
    assert [k.get_secret_value() for k in s.auth.api_keys] == ["k-one-111", "k-two-222"]
    assert s.auth.enabled is False and s.auth.require_api_key is True
    assert s.auth.api_key_header == "X-Team"
    assert (s.rate_limit.enabled, s.rate_limit.max_requests, s.rate_limit.window_size) == (False, 10, 30)
    assert s.cors.allowed_origins == ["https://a", "https://b"]
    # Kolosal: "--cors-method METHOD  Add allowed CORS method": added to the defaults, once each.
    defaults = CorsSettings()
    assert s.cors.allowed_methods == defaults.allowed_methods + ["PROPFIND"]
    assert s.cors.allowed_headers == defaults.allowed_headers + ["X-A"]
    assert s.cors.allow_credentials and s.cors.max_age == 60
    assert load_settings(environ={}, overrides=flags("--enable-auth")).auth.enabled is True


def test_kolosal_environment_and_file(tmp_path):
    s = load_settings(environ={"KOLOSAL_API_KEY": "env-key-1", "KOLOSAL_REQUIRE_API_KEY": "true"})
    assert s.auth.keys_required() and s.rate_limit_enabled()
    path = tmp_path / "config.yaml"
    path.write_text("auth:\n  enabled: true\n  api_keys: [file-key-1]\n"
                    "  rate_limit: {enabled: true, max_requests: 5, window_size: 10}\n"
                    "  cors: {allowed_origins: ['https://x'], allow_credentials: true}\n")
    s = load_settings(str(path), environ={})
    assert s.rate_limit.max_requests == 5 and s.cors.allowed_origins == ["https://x"]
    assert s.auth.keys_required()


def test_loopback_dev_defaults_have_auth_and_rate_limits_off():
    s = load_settings(environ={})
    assert not s.auth.keys_required() and not s.rate_limit_enabled()


def test_security_config_errors_never_show_a_key():
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={}, overrides={"auth": {"api_keys": [{"secret": "sk-hidden-1"}]}})
    assert "sk-hidden-1" not in str(caught.value)
    # Kolosal's meaning: binding all interfaces is allowed; allow_public_access says who may call
    # (tests/integration/test_reference_configs.py), and the operator is warned loudly.
    bound = load_settings(environ={}, overrides={"server": {"host": "0.0.0.0"}})
    assert any("allow_public_access is false" in w for w in bound.exposure_warnings())
    public = load_settings(environ={}, overrides={"server": {"host": "0.0.0.0",
                                                             "allow_public_access": True}})
    assert any("NO API KEY" in w for w in public.exposure_warnings())
    keyed = load_settings(environ={}, overrides={"server": {"host": "0.0.0.0",
                                                            "allow_public_access": True},
                                                 "auth": {"api_keys": ["sk-a-key-123"]}})
    assert keyed.exposure_warnings() == []
    assert load_settings(environ={}).exposure_warnings() == []
    with pytest.raises(ConfigError, match="none is configured"):
        load_settings(environ={"KOLOSAL_REQUIRE_API_KEY": "true"})
