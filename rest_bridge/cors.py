"""CORS for every route, from the policy the server holds (`rest_bridge.policy`).

Only an allowed origin is ever echoed, one at a time (browsers accept a single origin). `*` in
the allowed origins means any origin only while credentials are off: with credentials on, `*` is
never sent and only origins listed by name are allowed, so a configured wildcard cannot hand
cookies or Authorization to every site. A preflight from a disallowed origin, method or header
gets 403 with an OpenAI error body, and no CORS headers.
"""

from __future__ import annotations

from flask import Flask, Response, g, jsonify, request

from rest_bridge.grpc_client import RATE_LIMIT_HEADERS
from rest_bridge.policy import current_policy

EXPOSED_HEADERS = ", ".join(sorted(set(RATE_LIMIT_HEADERS.values()) | {"X-Request-Id"}))


def init_app(app: Flask) -> None:
    app.before_request(_preflight)
    app.after_request(_decorate)


def allowed_origin(cors, origin: str) -> str | None:
    """What Access-Control-Allow-Origin says for `origin`, or None when it is not allowed."""
    if not cors.enabled or not origin:
        return None
    if origin in cors.allowed_origins:
        return origin
    if "*" in cors.allowed_origins and not cors.allow_credentials:
        return "*"
    return None


def _refuse(message: str) -> Response:
    g.cors_refused = True
    response = jsonify({"error": {"message": message, "type": "permission_error", "param": None,
                                  "code": "cors_not_allowed"}})
    response.status_code = 403
    return response


def _preflight():
    origin = request.headers.get("Origin")
    wanted_method = request.headers.get("Access-Control-Request-Method")
    if request.method != "OPTIONS" or not origin or not wanted_method:
        return None
    cors = current_policy().cors
    allow_origin = allowed_origin(cors, origin)
    if allow_origin is None:
        return _refuse(f"CORS: origin {origin!r} is not allowed")
    methods = {m.upper() for m in cors.allowed_methods}
    if wanted_method.upper() not in methods and "*" not in methods:
        return _refuse(f"CORS: method {wanted_method!r} is not allowed")
    allowed_headers = {h.lower() for h in cors.allowed_headers}
    asked = [h.strip() for h in request.headers.get("Access-Control-Request-Headers", "").split(",")
             if h.strip()]
    wildcard = "*" in allowed_headers and not cors.allow_credentials
    refused = [h for h in asked if h.lower() not in allowed_headers and not wildcard]
    if refused:
        return _refuse(f"CORS: header {refused[0]!r} is not allowed")
    response = Response(status=204)
    headers = response.headers
    headers["Access-Control-Allow-Origin"] = allow_origin
    headers["Access-Control-Allow-Methods"] = ", ".join(cors.allowed_methods)
    headers["Access-Control-Allow-Headers"] = (", ".join(asked) if wildcard and asked
                                               else ", ".join(cors.allowed_headers))
    headers["Access-Control-Max-Age"] = str(cors.max_age_seconds)
    if cors.allow_credentials:
        headers["Access-Control-Allow-Credentials"] = "true"
    headers["Vary"] = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
    return response


def _decorate(response: Response) -> Response:
    origin = request.headers.get("Origin")
    if not origin or "Access-Control-Allow-Origin" in response.headers or g.get("cors_refused"):
        return response
    cors = current_policy().cors
    allow_origin = allowed_origin(cors, origin)
    if cors.enabled:
        response.vary.add("Origin")
    if allow_origin is None:
        return response
    response.headers["Access-Control-Allow-Origin"] = allow_origin
    response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
    if cors.allow_credentials:
        response.headers["Access-Control-Allow-Credentials"] = "true"
    return response
