"""Kolosal's authentication endpoints: /v1/auth/config (GET, PUT), /v1/auth/stats, /v1/auth/clear.
Admin only (the server decides: AuthService's methods are ACCESS_ADMIN). Key values are
write-only: answers carry counts. Errors use the OpenAI shape, as Kolosal's do."""

from __future__ import annotations

from flask import Blueprint, jsonify

from rest_bridge import errors, policy
from rest_bridge.bodies import parse
from rest_bridge.errors import HttpError
from rest_bridge.families.kolosal import bodies
from rest_bridge.grpc_client import grpc_client
from rest_bridge.rpc_map import calls
from tokenwire.v1 import auth_service_pb2 as pb

blueprint = Blueprint("kolosal_auth", __name__)
errors.register_family(blueprint, errors.openai_body)


@blueprint.get("/v1/auth/config")
@calls("tokenwire.v1.AuthService/GetAuthConfig")
def get_config():
    """The live authentication, rate-limit and CORS settings (key counts, never keys)."""
    answer = grpc_client().auth.GetAuthConfig(pb.GetAuthConfigRequest())
    return jsonify(bodies.AuthConfig.from_pb(answer.config).body())


@blueprint.put("/v1/auth/config")
@calls("tokenwire.v1.AuthService/UpdateAuthConfig")
def put_config():
    """Changes the named settings and leaves the rest; answers with the live settings."""
    answer = grpc_client().auth.UpdateAuthConfig(parse(bodies.AuthConfigUpdate).to_pb())
    policy.invalidate()  # this process applies the new CORS policy and key header at once
    return jsonify(bodies.AuthConfig.from_pb(answer.config).body())


@blueprint.get("/v1/auth/stats")
@calls("tokenwire.v1.AuthService/GetAuthStats")
def stats():
    """Rate-limit counts per client (address, or a key fingerprint; never a key)."""
    answer = grpc_client().auth.GetAuthStats(pb.GetAuthStatsRequest())
    return jsonify(bodies.AuthStats(rate_limit_stats=bodies.RateLimitStats(
        total_clients=answer.total_clients,
        clients={c.client_id: bodies.copy(bodies.ClientStats, c) for c in answer.clients})).body())


@blueprint.post("/v1/auth/clear")
@calls("tokenwire.v1.AuthService/ClearRateLimits")
def clear():
    """Forgets rate-limit counts: `{"client_ip": ...}` for one client, `{"clear_all": true}`."""
    body = parse(bodies.ClearRequest, optional=True)
    if not body.clear_all and body.client_ip is None:
        raise HttpError(400, "send {\"client_ip\": \"...\"} or {\"clear_all\": true}",
                        param="client_ip")
    cleared = grpc_client().auth.ClearRateLimits(body.to_pb()).cleared_clients
    return jsonify(bodies.Cleared(message=f"cleared rate-limit data of {cleared} client(s)",
                                  cleared_clients=cleared).body())
