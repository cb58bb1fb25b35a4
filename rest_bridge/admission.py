"""Kolosal's `allow_public_access: false` for what the bridge answers without the server: its own
pages (/docs, the chat page, /openapi.json), CORS preflights and the socket.io handshake. Every
other route is judged by the gRPC server too (server/security/admission.py), from the address
the bridge forwards; this check answers the same 403 earlier, in the route family's error shape.
"""

from __future__ import annotations

import ipaddress

import grpc
from flask import Flask, g, request

from rest_bridge.policy import BridgePolicy, current_policy
from tokenwire.errors import PermissionDeniedError

REASON = "PUBLIC_ACCESS_DISABLED"


def is_local(address: str | None) -> bool:
    """Whether a client address is this machine's: loopback, or a Unix socket (no address)."""
    if not address or address in ("unix", "localhost"):
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def refusal(address: str | None, policy: BridgePolicy | None = None) -> PermissionDeniedError | None:
    """The error for a client at `address` while only local clients are admitted, else None
    (`policy`: the current one, where there is no Flask app context to read it from)."""
    if is_local(address) or not (policy or current_policy()).local_clients_only:
        return None
    return PermissionDeniedError(
        grpc.StatusCode.PERMISSION_DENIED,
        f"this server admits only clients on its own machine; {address} is not one "
        "(server.allow_public_access is false; --allow-public-access lets other machines call)",
        reason=REASON)


def _admit():
    error = refusal(request.remote_addr)
    if error is not None:
        g.cors_refused = True  # no CORS headers either: nothing here is for another machine's page
        raise error  # answered by the matched family's error handler


def init_app(app: Flask) -> None:
    """Before every other check (CORS preflights included): registered first."""
    app.before_request(_admit)
