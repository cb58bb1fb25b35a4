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
# The Open Inference Protocol (Triton's `inference` package, vendored: it carries no access
# options). What changes the server (repository loads, shared memory, trace and log settings; all
# UNIMPLEMENTED here) is admin; the rest, its liveness and readiness included, are user methods:
# the public probes stay grpc.health.v1 and /health (the public list is pinned by
# tests/integration/test_auth_matrix.py).
KSERVE_PREFIX = "/inference.GRPCInferenceService/"
KSERVE_ACCESS = dict.fromkeys(("RepositoryModelLoad", "RepositoryModelUnload",
                               "SystemSharedMemoryRegister", "SystemSharedMemoryUnregister",
                               "CudaSharedMemoryRegister", "CudaSharedMemoryUnregister",
                               "TraceSetting", "LogSettings"), ADMIN)


def access_of(method: str, *, public_reflection: bool) -> int:
    """The Access a call to `method` needs: health is always public, reflection when configured,
    anything undeclared is a user method."""
    if method.startswith(HEALTH_PREFIX):
        return PUBLIC
    if method.startswith(REFLECTION_PREFIXES):
        return PUBLIC if public_reflection else USER
    if method.startswith(KSERVE_PREFIX):
        return KSERVE_ACCESS.get(method[len(KSERVE_PREFIX):], USER)
    found = methods.index().get(method)
    return found.access if found is not None else USER
