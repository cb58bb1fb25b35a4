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
