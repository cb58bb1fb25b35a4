"""What the bridge needs to know; passed to gunicorn workers through one environment variable."""

from __future__ import annotations

import dataclasses
import json
import os

ENV_VAR = "TOKENWIRE_BRIDGE_CONFIG"


@dataclasses.dataclass(frozen=True)
class BridgeConfig:
    #: The gRPC server the bridge forwards to.
    grpc_target: str = "127.0.0.1:50051"
    #: Largest request body in bytes; larger ones get 413.
    max_request_size: int = 16 * 1024 * 1024
    #: OpenTelemetry exporter for the bridge's spans: "none", "console" or "otlp".
    trace_exporter: str = "none"
    #: OTLP/HTTP traces endpoint when trace_exporter is "otlp" (empty: the OTEL_* defaults).
    otlp_endpoint: str = ""
    #: service.name of the bridge's spans.
    trace_service_name: str = "tokenwire-bridge"
    #: Deadline of every unary gRPC call, in seconds (the server's request_timeout); 504 past it.
    request_timeout_s: float = 30.0
    #: Shared with the server, so that it believes the client address the bridge forwards. Empty:
    #: the server sees the bridge's own address and rate-limits keyless clients together.
    bridge_secret: str = dataclasses.field(default="", repr=False)

    def to_env(self) -> dict[str, str]:
        return {ENV_VAR: json.dumps(dataclasses.asdict(self))}

    @classmethod
    def from_env(cls) -> "BridgeConfig":
        raw = os.environ.get(ENV_VAR)
        return cls(**json.loads(raw)) if raw else cls()
