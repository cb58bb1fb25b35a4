"""Every RPC of the contract, indexed once from the generated descriptors.

The server's access control, the bridge's transcoder, its admin map and its OpenAPI document all
ask this index instead of walking `tokenwire.v1`'s modules themselves.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from dataclasses import dataclass

from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor

import tokenwire.v1
from tokenwire.v1 import access_pb2


@dataclass(frozen=True)
class Method:
    """One RPC: `path` is the gRPC path "/package.Service/Method"; `access` the declared level
    (`ACCESS_USER` where the contract declares none)."""

    path: str
    descriptor: MethodDescriptor
    access: int

    @property
    def service(self) -> ServiceDescriptor:
        return self.descriptor.containing_service

    @property
    def name(self) -> str:
        """"package.Service/Method", the form route declarations use."""
        return self.path[1:]


@functools.cache
def index() -> dict[str, Method]:
    """"/package.Service/Method" -> Method, for every method of every tokenwire.v1 service, in
    module-name order (so what is built from it is stable)."""
    table: dict[str, Method] = {}
    for module_info in sorted(pkgutil.iter_modules(tokenwire.v1.__path__), key=lambda m: m.name):
        if not module_info.name.endswith("_pb2"):
            continue
        module = importlib.import_module(f"{tokenwire.v1.__name__}.{module_info.name}")
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                level = method.GetOptions().Extensions[access_pb2.access]
                path = f"/{service.full_name}/{method.name}"
                table[path] = Method(path, method, level or access_pb2.ACCESS_USER)
    return table


def find(method: str) -> Method | None:
    """The method named "package.Service/Method" (with or without the leading slash)."""
    return index().get("/" + method.lstrip("/"))


def service(full_name: str) -> ServiceDescriptor | None:
    """A tokenwire.v1 service's descriptor by its full name."""
    for method in index().values():
        if method.service.full_name == full_name:
            return method.service
    return None
