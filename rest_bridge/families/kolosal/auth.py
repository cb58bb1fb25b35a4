"""Kolosal's authentication endpoints: /v1/auth/config (GET, PUT), /v1/auth/stats, /v1/auth/clear.

Admin only (the server decides: AuthService's methods are ACCESS_ADMIN). Key values are
write-only: answers carry counts. Errors use the OpenAI shape, as Kolosal's do.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from rest_bridge import errors, policy
from rest_bridge.errors import HttpError
from rest_bridge.grpc_client import grpc_client
from rest_bridge.http_json import NO_BODY, json_kind, read_json
from rest_bridge.rpc_map import calls
from tokenwire.v1 import auth_service_pb2 as pb

blueprint = Blueprint("kolosal_auth", __name__)
errors.register_family(blueprint, errors.openai_body)

# The sections a PUT may change.
_SECTIONS = ("rate_limiter", "cors", "api_key")


def config_json(config: pb.AuthConfig) -> dict:
    rl, cors, keys = config.rate_limiter, config.cors, config.api_key
    return {
        "rate_limiter": {"enabled": rl.enabled, "max_requests": rl.max_requests,
                         "window_seconds": rl.window_seconds, "burst": rl.burst_per_second},
        "cors": {"enabled": cors.enabled, "allowed_origins": list(cors.allowed_origins),
                 "allowed_methods": list(cors.allowed_methods),
                 "allowed_headers": list(cors.allowed_headers),
                 "allow_credentials": cors.allow_credentials, "max_age": cors.max_age_seconds},
        "api_key": {"enabled": keys.enabled, "required": keys.required,
                    "header_name": keys.header_name, "keys_count": keys.keys_count,
                    "admin_keys_count": keys.admin_keys_count},
    }


@blueprint.get("/v1/auth/config")
@calls("tokenwire.v1.AuthService/GetAuthConfig")
def get_config():
    """The live authentication, rate-limit and CORS settings (key counts, never keys)."""
    answer = grpc_client().auth.GetAuthConfig(pb.GetAuthConfigRequest())
    return jsonify(config_json(answer.config))


# Kolosal JSON name -> (proto field, kind). Kolosal's PUT says window_size, its GET window_seconds.
_FIELDS: dict[str, dict[str, tuple[str, str]]] = {
    "rate_limiter": {"enabled": ("enabled", "bool"), "max_requests": ("max_requests", "int"),
                     "window_size": ("window_seconds", "int"),
                     "window_seconds": ("window_seconds", "int"),
                     "burst": ("burst_per_second", "int")},
    "cors": {"enabled": ("enabled", "bool"), "allowed_origins": ("allowed_origins", "list"),
             "allowed_methods": ("allowed_methods", "list"),
             "allowed_headers": ("allowed_headers", "list"),
             "allow_credentials": ("allow_credentials", "bool"), "max_age": ("max_age_seconds", "int")},
    "api_key": {"enabled": ("enabled", "bool"), "required": ("required", "bool"),
                "header_name": ("header_name", "str"), "api_keys": ("api_keys", "list"),
                "admin_api_keys": ("admin_api_keys", "list")},
}
_KINDS = {"bool": (bool, "true or false"), "int": (int, "an integer"), "str": (str, "a string")}


def _set(message, section: str, name: str, value: Any) -> None:
    field, kind = _FIELDS[section][name]
    param = f"{section}.{name}"
    if kind == "list":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise HttpError(400, f"'{param}' must be an array of strings", param=param)
        getattr(message, field).values[:] = value
        return
    expected, words = _KINDS[kind]
    if isinstance(value, bool) is not (expected is bool) or not isinstance(value, expected):
        raise HttpError(400, f"'{param}' must be {words}", param=param)
    if kind == "int" and not -2**31 <= value < 2**31:
        raise HttpError(400, f"'{param}' is out of range", param=param)
    setattr(message, field, value)


@blueprint.put("/v1/auth/config")
@calls("tokenwire.v1.AuthService/UpdateAuthConfig")
def put_config():
    """Changes the named settings and leaves the rest; answers with the live settings."""
    body = read_json()
    if body is NO_BODY or not isinstance(body, dict):
        raise HttpError(400, "the request body must be a JSON object"
                        + ("" if body is NO_BODY else f", not {json_kind(body)}"))
    request = pb.UpdateAuthConfigRequest()
    for section, values in body.items():
        if section not in _FIELDS:
            raise HttpError(400, f"unknown section '{section}' (expected one of "
                                 f"{', '.join(_SECTIONS)})", param=section)
        if not isinstance(values, dict):
            raise HttpError(400, f"'{section}' must be an object", param=section)
        target = getattr(request, section)
        target.SetInParent()
        for name, value in values.items():
            if name not in _FIELDS[section]:
                raise HttpError(400, f"unknown field '{section}.{name}'", param=f"{section}.{name}")
            _set(target, section, name, value)
    answer = grpc_client().auth.UpdateAuthConfig(request)
    policy.invalidate()  # this process applies the new CORS policy and key header at once
    return jsonify(config_json(answer.config))


@blueprint.get("/v1/auth/stats")
@calls("tokenwire.v1.AuthService/GetAuthStats")
def stats():
    """Rate-limit counts per client (address, or a key fingerprint; never a key)."""
    answer = grpc_client().auth.GetAuthStats(pb.GetAuthStatsRequest())
    return jsonify({"rate_limit_stats": {
        "total_clients": answer.total_clients,
        "clients": {c.client_id: {"request_count": c.request_count, "remaining": c.remaining,
                                  "reset_seconds": c.reset_seconds} for c in answer.clients},
    }})


@blueprint.post("/v1/auth/clear")
@calls("tokenwire.v1.AuthService/ClearRateLimits")
def clear():
    """Forgets rate-limit counts: `{"client_ip": ...}` for one client, `{"clear_all": true}`."""
    body = read_json()
    if body is NO_BODY or not isinstance(body, dict):
        raise HttpError(400, "send {\"client_ip\": \"...\"} or {\"clear_all\": true}")
    request = pb.ClearRateLimitsRequest()
    clear_all = body.get("clear_all", False)
    if not isinstance(clear_all, bool):
        raise HttpError(400, "'clear_all' must be true or false", param="clear_all")
    client = body.get("client_ip")
    if client is not None and (not isinstance(client, str) or not client):
        raise HttpError(400, "'client_ip' must be a non-empty string", param="client_ip")
    if not clear_all and client is None:
        raise HttpError(400, "send {\"client_ip\": \"...\"} or {\"clear_all\": true}",
                        param="client_ip")
    request.clear_all = clear_all
    if client is not None:
        request.client_id = client
    answer = grpc_client().auth.ClearRateLimits(request)
    cleared = answer.cleared_clients
    return jsonify({"message": f"cleared rate-limit data of {cleared} client(s)",
                    "cleared_clients": cleared})
