"""Who is calling, for the per-client fairness of cheap calls (server/core/side_work.py).

The security interceptor names the caller as its rate limiter does (the API key's id, else the
client's address, the bridge's forwarded one when the bridge vouches for it) and sets CALLER
for the handler's task; without it (no interceptor in a test) the peer address stands in."""

from __future__ import annotations

import contextvars

CALLER: contextvars.ContextVar[str] = contextvars.ContextVar("tokenwire_caller", default="")


def caller_of(context) -> str:
    from server.security.interceptor import peer_address

    return CALLER.get() or peer_address(context.peer() or "")
