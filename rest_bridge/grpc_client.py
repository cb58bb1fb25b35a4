"""The bridge's gRPC channel, owned by the Flask app (`init_app`) and closed when the process exits."""

from __future__ import annotations

import atexit

import grpc
from flask import Flask, current_app, request

from tokenwire.v1 import (benchmark_service_pb2_grpc, download_service_pb2_grpc,
                          engine_service_pb2_grpc, generation_service_pb2_grpc,
                          hardware_service_pb2_grpc, log_service_pb2_grpc, metrics_service_pb2_grpc,
                          model_service_pb2_grpc, server_service_pb2_grpc, session_service_pb2_grpc,
                          status_service_pb2_grpc)

EXTENSION = "tokenwire.grpc"


class GrpcClient:
    def __init__(self, channel: grpc.Channel, *, owns_channel: bool):
        self.channel = channel
        self._owns_channel = owns_channel
        self.generation = generation_service_pb2_grpc.GenerationServiceStub(channel)
        self.engines = engine_service_pb2_grpc.EngineServiceStub(channel)
        self.models = model_service_pb2_grpc.ModelServiceStub(channel)
        self.server = server_service_pb2_grpc.ServerServiceStub(channel)
        self.downloads = download_service_pb2_grpc.DownloadServiceStub(channel)
        self.sessions = session_service_pb2_grpc.SessionServiceStub(channel)
        self.hardware = hardware_service_pb2_grpc.HardwareServiceStub(channel)
        self.metrics = metrics_service_pb2_grpc.MetricsServiceStub(channel)
        self.status = status_service_pb2_grpc.StatusServiceStub(channel)
        self.logs = log_service_pb2_grpc.LogServiceStub(channel)
        self.benchmark = benchmark_service_pb2_grpc.BenchmarkServiceStub(channel)

    def close(self) -> None:
        if self._owns_channel:
            self._owns_channel = False
            self.channel.close()


def init_app(app: Flask, target: str, *, max_message_bytes: int,
             channel: grpc.Channel | None = None) -> GrpcClient:
    if channel is None:
        channel = grpc.insecure_channel(target, options=[
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
        ])
        client = GrpcClient(channel, owns_channel=True)
        atexit.register(client.close)
    else:
        client = GrpcClient(channel, owns_channel=False)
    app.extensions[EXTENSION] = client
    return client


def grpc_client() -> GrpcClient:
    return current_app.extensions[EXTENSION]


# Headers the server needs to see (auth comes with the security issue, request ids now).
FORWARDED_HEADERS = ("x-request-id", "authorization", "x-api-key")


def forwarded_metadata() -> tuple[tuple[str, str], ...]:
    """The incoming request's headers that travel to the gRPC server as call metadata, and the
    current trace context (W3C traceparent/tracestate of the bridge's request span)."""
    from rest_bridge.tracing import trace_metadata

    forwarded = tuple((name, request.headers[name]) for name in FORWARDED_HEADERS
                      if name in request.headers)
    return forwarded + trace_metadata()
