"""OpenAPI documentation of Kolosal's authentication routes (`rest_bridge.families.kolosal.auth`).
Schemas are namespaced `kolosal_auth.*`."""

from __future__ import annotations

TAG = "Authentication"
TAGS = [{
    "name": TAG,
    "description": "Kolosal's live security configuration: API keys, rate limiting and CORS. "
                   "Admin only once admin keys are configured; key values are write-only.",
}]


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/kolosal_auth.{name}"}


_bool = {"type": "boolean"}
_int = {"type": "integer"}
_str = {"type": "string"}
_strings = {"type": "array", "items": _str}

ERRORS = {
    "400": "A value has the wrong type or is out of range, or keys would be required with none.",
    "401": "An API key is required and was missing or wrong.",
    "403": "Admin keys are configured and the key sent is a user key.",
    "429": "The caller's rate limit is used up.",
    "503": "The server is at its concurrency limit or draining.",
}


def _errors(*codes: str) -> dict:
    return {code: {"description": ERRORS[code],
                   "content": {"application/json": {"schema": ref("ErrorResponse")}}}
            for code in codes}


SCHEMAS: dict[str, dict] = {f"kolosal_auth.{name}": schema for name, schema in {
    "ErrorResponse": {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["message", "type"], "properties": {
            "message": _str, "type": _str,
            "param": {"type": "string", "nullable": True},
            "code": {"type": "string", "nullable": True}}}}},
    "AuthConfig": {"type": "object", "required": ["rate_limiter", "cors", "api_key"], "properties": {
        "rate_limiter": {"type": "object", "properties": {
            "enabled": _bool, "max_requests": _int,
            "window_seconds": {**_int, "description": "Window length in seconds."},
            "burst": {**_int, "description": "Most requests in one second; 0: no cap."}}},
        "cors": {"type": "object", "properties": {
            "enabled": _bool, "allowed_origins": _strings, "allowed_methods": _strings,
            "allowed_headers": _strings, "allow_credentials": _bool,
            "max_age": {**_int, "description": "Preflight cache duration in seconds."}}},
        "api_key": {"type": "object", "properties": {
            "enabled": _bool, "required": _bool, "header_name": _str,
            "keys_count": _int, "admin_keys_count": _int}},
    }},
    "AuthConfigUpdate": {"type": "object", "additionalProperties": False, "properties": {
        "rate_limiter": {"type": "object", "additionalProperties": False, "properties": {
            "enabled": _bool, "max_requests": {**_int, "minimum": 1},
            "window_size": {**_int, "minimum": 1, "description": "Kolosal's name for the window."},
            "window_seconds": {**_int, "minimum": 1}, "burst": {**_int, "minimum": 0}}},
        "cors": {"type": "object", "additionalProperties": False, "properties": {
            "enabled": _bool, "allowed_origins": _strings, "allowed_methods": _strings,
            "allowed_headers": _strings, "allow_credentials": _bool,
            "max_age": {**_int, "minimum": 0}}},
        "api_key": {"type": "object", "additionalProperties": False, "properties": {
            "enabled": _bool, "required": _bool, "header_name": _str,
            "api_keys": {**_strings, "description": "Replaces the user keys."},
            "admin_api_keys": {**_strings, "description": "Replaces the admin keys."}}},
    }},
    "AuthStats": {"type": "object", "required": ["rate_limit_stats"], "properties": {
        "rate_limit_stats": {"type": "object", "properties": {
            "total_clients": _int,
            "clients": {"type": "object", "description": "By client address, or `key:` and a "
                                                         "key fingerprint.",
                        "additionalProperties": {"type": "object", "properties": {
                            "request_count": _int, "remaining": _int, "reset_seconds": _int}}}}}}},
    "ClearRequest": {"type": "object", "properties": {"client_ip": _str, "clear_all": _bool}},
    "ClearResponse": {"type": "object", "required": ["message", "cleared_clients"],
                      "properties": {"message": _str, "cleared_clients": _int}},
}.items()}


def _ok(description: str, schema: str) -> dict:
    return {"200": {"description": description,
                    "content": {"application/json": {"schema": ref(schema)}}}}


PATHS: dict[str, dict] = {
    "/v1/auth/config": {
        "get": {"tags": [TAG], "operationId": "Kolosal_GetAuthConfig",
                "summary": "Get the authentication configuration",
                "responses": {**_ok("The live settings, with key counts.", "AuthConfig"),
                              **_errors("401", "403", "429", "503")}},
        "put": {"tags": [TAG], "operationId": "Kolosal_UpdateAuthConfig",
                "summary": "Update the authentication configuration",
                "description": "Changes only the fields sent, at once; nothing changes when any "
                               "value is invalid.",
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": ref("AuthConfigUpdate")}}},
                "responses": {**_ok("The settings now live.", "AuthConfig"),
                              **_errors("400", "401", "403", "429", "503")}},
    },
    "/v1/auth/stats": {"get": {
        "tags": [TAG], "operationId": "Kolosal_GetAuthStats",
        "summary": "Get rate limiting statistics",
        "responses": {**_ok("Per-client counts in the current window.", "AuthStats"),
                      **_errors("401", "403", "429", "503")}}},
    "/v1/auth/clear": {"post": {
        "tags": [TAG], "operationId": "Kolosal_ClearRateLimits",
        "summary": "Clear rate limit data",
        "requestBody": {"required": True, "content": {
            "application/json": {"schema": ref("ClearRequest")}}},
        "responses": {**_ok("How many clients were cleared.", "ClearResponse"),
                      **_errors("400", "401", "403", "429", "503")}}},
}
