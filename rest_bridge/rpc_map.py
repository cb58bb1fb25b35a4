"""Which gRPC methods each REST route calls.

Every view declares the RPCs it calls with `@calls(...)` (a route that calls none, such as the
docs pages, declares `@calls()`). The declaration is what lets checks reason about routes from the
contract: the auth test expects 403 from a user key exactly on routes that call an ACCESS_ADMIN
method, and a test fails when a route forgets to declare.
"""

from __future__ import annotations

from typing import Callable, TypeVar

from flask import Flask

View = TypeVar("View", bound=Callable)

ATTRIBUTE = "grpc_methods"


def calls(*methods: str) -> Callable[[View], View]:
    """Marks a view as calling these methods, each "package.Service/Method"."""
    for method in methods:
        service, _, name = method.partition("/")
        if not service or not name or "." not in service:
            raise ValueError(f"not a full gRPC method name (package.Service/Method): {method!r}")

    def mark(view: View) -> View:
        setattr(view, ATTRIBUTE, tuple(methods))
        return view

    return mark


def route_methods(app: Flask) -> dict[str, tuple[str, ...] | None]:
    """endpoint -> the methods its view declared, or None when it declared nothing."""
    result: dict[str, tuple[str, ...] | None] = {}
    for endpoint, view in app.view_functions.items():
        target = getattr(view, "func", view)  # functools.partial views (the transcoder's)
        result[endpoint] = getattr(view, ATTRIBUTE, getattr(target, ATTRIBUTE, None))
    return result


def is_admin(method: str) -> bool:
    """Whether a "package.Service/Method" is marked ACCESS_ADMIN in the contract."""
    from tokenwire import methods
    from tokenwire.v1 import access_pb2

    found = methods.find(method)
    return found is not None and found.access == access_pb2.ACCESS_ADMIN


def check_admin_routes_first(blueprint) -> None:
    """For a family whose routes read (user methods) before they change things (admin methods):
    a route that declares an admin method asks the server first whether the caller may call its
    methods, so that a user key gets 403 before any read can answer 404 or 400."""
    from flask import current_app, request

    @blueprint.before_request
    def _check_access():
        view = current_app.view_functions.get(request.endpoint or "")
        methods = getattr(view, ATTRIBUTE, None) or ()
        if not any(is_admin(m) for m in methods):
            return None
        from rest_bridge.grpc_client import grpc_client
        from tokenwire.v1 import auth_service_pb2

        # Raises UNAUTHENTICATED / PERMISSION_DENIED, which the family's handler shapes.
        grpc_client().auth.CheckAccess(auth_service_pb2.CheckAccessRequest(methods=list(methods)))
        return None
