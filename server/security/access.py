"""Each method's Access level, read from the `(tokenwire.v1.access)` option in the descriptors."""

from __future__ import annotations

from grpc_health.v1 import health

from tokenwire import methods
from tokenwire.v1 import access_pb2

PUBLIC = access_pb2.ACCESS_PUBLIC
USER = access_pb2.ACCESS_USER
ADMIN = access_pb2.ACCESS_ADMIN

HEALTH_PREFIX = f"/{health.SERVICE_NAME}/"
REFLECTION_PREFIXES = ("/grpc.reflection.v1alpha.ServerReflection/",
                       "/grpc.reflection.v1.ServerReflection/")


def access_of(method: str, *, public_reflection: bool) -> int:
    """The Access a call to `method` needs: health is always public, reflection when configured,
    anything undeclared is a user method."""
    if method.startswith(HEALTH_PREFIX):
        return PUBLIC
    if method.startswith(REFLECTION_PREFIXES):
        return PUBLIC if public_reflection else USER
    found = methods.index().get(method)
    return found.access if found is not None else USER
