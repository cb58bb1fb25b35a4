"""The hand-written route families, one folder each: the documented third-party API shapes.

A family folder holds its routes (blueprints), its request and response bodies, its OpenAPI
documentation and anything else that only it serves (socket.io events, a web page). Its
`__init__.py` exposes `FAMILY`, a `Family`; the app factory registers each family with one line,
and the OpenAPI document (`rest_bridge.openapi`) reads the docs of the families the app registered.
The machinery every family shares (the gRPC client, the transcoder, streaming, the error table,
typed-body parsing) stays in `rest_bridge/` above this folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Callable

from flask import Blueprint, Flask

#: app.extensions key: the families registered on the app, in registration order.
EXTENSION = "tokenwire.families"


@dataclass(frozen=True)
class Family:
    """One API family. `docs` are modules in the convention of `rest_bridge.openapi` (PATHS,
    SCHEMAS, TAGS); `setup` runs after the blueprints are registered (socket.io, for one)."""

    name: str
    blueprints: tuple[Blueprint, ...]
    docs: tuple[ModuleType, ...] = ()
    setup: Callable[[Flask], None] | None = None

    def init_app(self, app: Flask) -> None:
        for blueprint in self.blueprints:
            app.register_blueprint(blueprint)
        if self.setup is not None:
            self.setup(app)
        app.extensions.setdefault(EXTENSION, []).append(self)


def registered(app: Flask) -> list[Family]:
    return list(app.extensions.get(EXTENSION, ()))
