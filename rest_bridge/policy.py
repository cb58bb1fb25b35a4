"""What the bridge enforces itself, read from the server (state lives there): the CORS policy and
the name of the configurable API key header. Cached for a moment per process; a server that does
not answer (or predates AuthService) means no CORS and only the standard key headers."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import grpc
from flask import current_app

from tokenwire.v1 import auth_service_pb2 as pb
from tokenwire.v1 import auth_service_pb2_grpc

EXTENSION = "tokenwire.policy"
TTL_S = 2.0
FETCH_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class BridgePolicy:
    cors: pb.CorsSettings
    api_key_header: str
    local_clients_only: bool = False


DEFAULT = BridgePolicy(cors=pb.CorsSettings(enabled=False), api_key_header="X-API-Key")


class PolicyCache:
    def __init__(self, channel: grpc.Channel):
        self._stub = auth_service_pb2_grpc.AuthServiceStub(channel)
        self._lock = threading.Lock()
        self._value: BridgePolicy | None = None
        self._expires = 0.0

    def get(self) -> BridgePolicy:
        with self._lock:
            if self._value is None or time.monotonic() >= self._expires:
                try:
                    answer = self._stub.GetBridgePolicy(pb.GetBridgePolicyRequest(),
                                                        timeout=FETCH_TIMEOUT_S)
                    self._value = BridgePolicy(answer.cors, answer.api_key_header or "X-API-Key",
                                               answer.local_clients_only)
                except grpc.RpcError:
                    self._value = self._value or DEFAULT
                self._expires = time.monotonic() + TTL_S
            return self._value

    def invalidate(self) -> None:
        with self._lock:
            self._expires = 0.0


def init_app(app, channel: grpc.Channel) -> None:
    app.extensions[EXTENSION] = PolicyCache(channel)


def current_policy() -> BridgePolicy:
    cache = current_app.extensions.get(EXTENSION)
    return cache.get() if cache is not None else DEFAULT


def invalidate() -> None:
    cache = current_app.extensions.get(EXTENSION)
    if cache is not None:
        cache.invalidate()
