"""The live security configuration: built from Settings at start, changed by AuthService.

One object, owned by the server's event loop, read by the interceptor on every call; an update is
validated in full before anything changes, so a bad PUT leaves the old configuration in force.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field, replace

from server.config import Settings
from server.core.key_ids import key_id_of
from server.errors import FieldViolation, InvalidArgument
from server.security.keys import ADMIN_ROLE, USER_ROLE, KeyRing
from server.security.rate_limit import KeyLimits, RateLimiter
from tokenwire.v1 import auth_service_pb2 as pb

HEADER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")
# Metadata the REST bridge adds; only believed with the bridge's secret.
BRIDGE_SECRET_KEY = "x-tokenwire-bridge-secret"
CLIENT_ADDRESS_KEY = "x-tokenwire-client-address"
# Sent with the bridge secret by the bridge's own streams (the socket.io relay), which serve
# clients the bridge has already checked: user-level methods only, never admin ones.
BRIDGE_RELAY_KEY = "x-tokenwire-bridge-relay"


@dataclass(frozen=True)
class Cors:
    enabled: bool
    allowed_origins: tuple[str, ...]
    allowed_methods: tuple[str, ...]
    allowed_headers: tuple[str, ...]
    allow_credentials: bool
    max_age_seconds: int

    def to_pb(self) -> pb.CorsSettings:
        return pb.CorsSettings(enabled=self.enabled, allowed_origins=self.allowed_origins,
                               allowed_methods=self.allowed_methods,
                               allowed_headers=self.allowed_headers,
                               allow_credentials=self.allow_credentials,
                               max_age_seconds=self.max_age_seconds)


@dataclass
class _Keys:
    enabled: bool
    required: bool | None  # None: required exactly when keys are configured
    header_name: str
    ring: KeyRing = field(default_factory=KeyRing)

    @property
    def keys_required(self) -> bool:
        if not self.enabled:
            return False
        return self.required if self.required is not None else len(self.ring) > 0


class SecurityState:
    def __init__(self, settings: Settings):
        auth = settings.auth
        self.keys = _Keys(auth.enabled, auth.require_api_key, auth.api_key_header,
                          KeyRing([k.get_secret_value() for k in auth.api_keys],
                                  [k.get_secret_value() for k in auth.admin_api_keys]))
        self.public_reflection = auth.public_reflection
        # Kolosal's allow_public_access: false admits only this machine's clients (admission.py
        # over gRPC, rest_bridge/admission.py for what the bridge answers itself).
        self.local_clients_only = not settings.server.allow_public_access
        secret = auth.bridge_secret.get_secret_value() if auth.bridge_secret else None
        self._bridge_secret = hashlib.sha256(secret.encode()).digest() if secret else None
        rl = settings.rate_limit
        self.rate_limit_enabled = settings.rate_limit_enabled()
        # Held by key id (the settings never hold the key itself): windows are keyed the same way.
        self.limiter = RateLimiter(rl.max_requests, rl.window_size, rl.burst, per_client={
            key_id: KeyLimits(own.max_requests, own.window_size, own.burst)
            for key_id, own in rl.per_key.items()})
        c = settings.cors
        self.cors = Cors(c.enabled, tuple(c.allowed_origins), tuple(c.allowed_methods),
                         tuple(c.allowed_headers), c.allow_credentials, c.max_age)
        self.max_concurrent = settings.server.max_connections
        self.request_timeout_s = settings.server.request_timeout
        self.in_flight = 0

    def is_bridge(self, presented: str | None) -> bool:
        if self._bridge_secret is None or not presented:
            return False
        return hmac.compare_digest(hashlib.sha256(presented.encode()).digest(), self._bridge_secret)

    def to_pb(self) -> pb.AuthConfig:
        k = self.keys
        return pb.AuthConfig(
            rate_limiter=pb.RateLimitSettings(
                enabled=self.rate_limit_enabled, max_requests=self.limiter.max_requests,
                window_seconds=self.limiter.window_seconds,
                burst_per_second=self.limiter.burst_per_second,
                per_key={key_id: pb.KeyRateLimit(max_requests=own.max_requests,
                                                 window_seconds=own.window_seconds,
                                                 burst_per_second=own.burst_per_second)
                         for key_id, own in self.limiter.per_client.items()}),
            cors=self.cors.to_pb(),
            api_key=pb.ApiKeySettings(enabled=k.enabled, required=k.keys_required,
                                      header_name=k.header_name, keys_count=k.ring.user_count,
                                      admin_keys_count=k.ring.admin_count))

    def update(self, request: pb.UpdateAuthConfigRequest) -> None:
        """Applies every change in `request`, or none when any value is invalid."""
        problems: list[FieldViolation] = []
        rl, cu, ku = request.rate_limiter, request.cors, request.api_key

        def check(ok: bool, path: str, description: str) -> None:
            if not ok:
                problems.append(FieldViolation(path, description))

        if rl.HasField("max_requests"):
            check(rl.max_requests >= 1, "rate_limiter.max_requests", "must be at least 1")
        if rl.HasField("window_seconds"):
            check(rl.window_seconds >= 1, "rate_limiter.window_seconds", "must be at least 1")
        if rl.HasField("burst_per_second"):
            check(rl.burst_per_second >= 0, "rate_limiter.burst_per_second", "must be 0 or more")
        per_key = _per_key(rl.per_key, check) if rl.HasField("per_key") else None
        if cu.HasField("max_age_seconds"):
            check(cu.max_age_seconds >= 0, "cors.max_age_seconds", "must be 0 or more")
        for name in ("allowed_origins", "allowed_methods", "allowed_headers"):
            if cu.HasField(name):
                values = getattr(cu, name).values
                check(all(v and v.strip() == v and "," not in v for v in values), f"cors.{name}",
                      "values must be non-empty, without spaces around them or commas")
        if ku.HasField("header_name"):
            check(bool(HEADER_NAME.match(ku.header_name)), "api_key.header_name",
                  "must be an HTTP header name (letters, digits and '-')")
        for name in ("api_keys", "admin_api_keys"):
            if ku.HasField(name):
                # Never echo a key: the description names only the rule.
                check(all(len(v) >= 8 and v.strip() == v for v in getattr(ku, name).values),
                      f"api_key.{name}", "every key must be at least 8 characters, no spaces "
                      "around it")

        ring = self.keys.ring
        if ku.HasField("api_keys") or ku.HasField("admin_api_keys"):
            ring = _merged_ring(ring, ku)
        keys = replace(self.keys, ring=ring)
        if ku.HasField("enabled"):
            keys.enabled = ku.enabled
        if ku.HasField("required"):
            keys.required = ku.required
        if ku.HasField("header_name"):
            keys.header_name = ku.header_name
        if (len(ring) == 0 and len(self.keys.ring) and keys.enabled and keys.required is None):
            problems.append(FieldViolation(
                "api_key.required", "removing every key would open the server to anyone; send "
                "\"required\": false or \"enabled\": false as well to mean it"))
        elif keys.keys_required and len(ring) == 0:
            problems.append(FieldViolation("api_key.required",
                                           "keys would be required but none is configured"))
        if problems:
            raise InvalidArgument(problems)

        self.keys = keys
        if rl.HasField("enabled"):
            self.rate_limit_enabled = rl.enabled
        self.limiter.configure(
            rl.max_requests if rl.HasField("max_requests") else self.limiter.max_requests,
            rl.window_seconds if rl.HasField("window_seconds") else self.limiter.window_seconds,
            rl.burst_per_second if rl.HasField("burst_per_second") else self.limiter.burst_per_second)
        if per_key is not None:
            self.limiter.per_client = per_key
        c = self.cors
        self.cors = Cors(
            cu.enabled if cu.HasField("enabled") else c.enabled,
            tuple(cu.allowed_origins.values) if cu.HasField("allowed_origins") else c.allowed_origins,
            tuple(cu.allowed_methods.values) if cu.HasField("allowed_methods") else c.allowed_methods,
            tuple(cu.allowed_headers.values) if cu.HasField("allowed_headers") else c.allowed_headers,
            cu.allow_credentials if cu.HasField("allow_credentials") else c.allow_credentials,
            cu.max_age_seconds if cu.HasField("max_age_seconds") else c.max_age_seconds)



def _per_key(update: pb.PerKeyRateLimits, check) -> dict[str, KeyLimits]:
    """The new per-key table, by key id. Field paths name key ids, never the keys sent."""
    table: dict[str, KeyLimits] = {}
    for key, own in update.limits.items():
        key_id = key_id_of(key)
        path = f"rate_limiter.per_key[{key_id}]"
        check(bool(key) and key.strip() == key, path, "must be an API key or a key id")
        check(key_id not in table, path, "named twice (as a key and as its key id)")
        limits = KeyLimits(*(getattr(own, n) if own.HasField(n) else None
                             for n in ("max_requests", "window_seconds", "burst_per_second")))
        if limits.max_requests is not None:
            check(limits.max_requests >= 1, f"{path}.max_requests", "must be at least 1")
        if limits.window_seconds is not None:
            check(limits.window_seconds >= 1, f"{path}.window_seconds", "must be at least 1")
        if limits.burst_per_second is not None:
            check(limits.burst_per_second >= 0, f"{path}.burst_per_second", "must be 0 or more")
        table[key_id] = limits
    return table


def _merged_ring(ring: KeyRing, update: pb.ApiKeyUpdate) -> KeyRing:
    for role, name in ((USER_ROLE, "api_keys"), (ADMIN_ROLE, "admin_api_keys")):
        if update.HasField(name):
            ring = ring.replacing(role, getattr(update, name).values)
    return ring
