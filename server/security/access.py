"""Each method's Access level, read from the `(tokenwire.v1.access)` option in the descriptors."""

from __future__ import annotations

import functools
import importlib
import pkgutil

from grpc_health.v1 import health

import tokenwire.v1
from tokenwire.v1 import access_pb2

PUBLIC = access_pb2.ACCESS_PUBLIC
USER = access_pb2.ACCESS_USER
ADMIN = access_pb2.ACCESS_ADMIN

HEALTH_PREFIX = f"/{health.SERVICE_NAME}/"
REFLECTION_PREFIXES = ("/grpc.reflection.v1alpha.ServerReflection/",
                       "/grpc.reflection.v1.ServerReflection/")


@functools.cache
def declared_access() -> dict[str, int]:
    """"/package.Service/Method" -> its declared Access, for every tokenwire.v1 method."""
    table: dict[str, int] = {}
    for module_info in pkgutil.iter_modules(tokenwire.v1.__path__):
        if not module_info.name.endswith("_pb2"):
            continue
        module = importlib.import_module(f"{tokenwire.v1.__name__}.{module_info.name}")
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                level = method.GetOptions().Extensions[access_pb2.access]
                table[f"/{service.full_name}/{method.name}"] = level or USER
    return table


def access_of(method: str, *, public_reflection: bool) -> int:
    """The Access a call to `method` needs: health is always public, reflection when configured,
    anything undeclared is a user method."""
    if method.startswith(HEALTH_PREFIX):
        return PUBLIC
    if method.startswith(REFLECTION_PREFIXES):
        return PUBLIC if public_reflection else USER
    return declared_access().get(method, USER)
