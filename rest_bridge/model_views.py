"""Small shapes shared by the route families (Kolosal, Impetus, Foundry, health).

They all talk about the same engines, files and figures; these helpers keep "status", sizes and
times spelled the same way in every family.
"""

from __future__ import annotations

import datetime

from rest_bridge.grpc_client import grpc_client
from tokenwire.sizes import MB
from tokenwire.v1 import download_service_pb2 as download_pb
from tokenwire.v1 import engine_service_pb2 as engine_pb
from tokenwire.v1 import model_service_pb2 as model_pb
from tokenwire.v1 import status_service_pb2 as status_pb

ENGINE_STATUS = {
    engine_pb.ENGINE_STATUS_LOADING: "loading",
    engine_pb.ENGINE_STATUS_LOADED: "loaded",
    engine_pb.ENGINE_STATUS_FAILED: "failed",
    engine_pb.ENGINE_STATUS_UNLOADED: "unloaded",
    engine_pb.ENGINE_STATUS_UNLOADING: "unloading",
}

DOWNLOAD_STATUS = {
    download_pb.DOWNLOAD_STATUS_DOWNLOADING: "downloading",
    download_pb.DOWNLOAD_STATUS_CREATING_ENGINE: "creating_engine",
    download_pb.DOWNLOAD_STATUS_COMPLETED: "completed",
    download_pb.DOWNLOAD_STATUS_FAILED: "failed",
    download_pb.DOWNLOAD_STATUS_CANCELLED: "cancelled",
}
DOWNLOAD_TYPE = {download_pb.DOWNLOAD_TYPE_REGULAR: "regular",
                 download_pb.DOWNLOAD_TYPE_STARTUP: "startup"}
ACTIVE_DOWNLOADS = (download_pb.DOWNLOAD_STATUS_DOWNLOADING,
                    download_pb.DOWNLOAD_STATUS_CREATING_ENGINE)

#: Deadline of calls that load or unload models: a large model takes minutes to load, and an
#: unload waits for requests in flight (engine.unload_grace_seconds); the bridge's default unary
#: deadline (server.request_timeout) is meant for requests, not for these.
LIFECYCLE_TIMEOUT_S = 900.0

#: Decimal units, as the monitoring documents (Impetus, Kolosal's health) report sizes.
DECIMAL_GB = 1e9
DECIMAL_MB = 1e6


def optional(message, name: str):
    """A proto3 `optional` field's value, or None when it is unset."""
    return getattr(message, name) if message.HasField(name) else None


def health_status_word(s: status_pb.GetStatusResponse) -> str:
    if s.ready:
        return "healthy"
    return "draining" if s.draining else "unhealthy"


def iso(unix_ms: int | None = None) -> str:
    """RFC 3339 UTC with milliseconds (2025-06-17T06:22:02.238Z); now when `unix_ms` is None."""
    moment = (datetime.datetime.fromtimestamp(unix_ms / 1000, datetime.timezone.utc) if unix_ms
              else datetime.datetime.now(datetime.timezone.utc))
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def engine_status(engine: engine_pb.Engine) -> str:
    return ENGINE_STATUS.get(engine.status, "unknown")


def iso_time(unix: float | int) -> str | None:
    """RFC 3339 UTC ("2025-01-20T10:30:00Z"), as the documents write times; None for 0."""
    if not unix:
        return None
    return datetime.datetime.fromtimestamp(unix, tz=datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_iso() -> str:
    return iso_time(datetime.datetime.now(tz=datetime.timezone.utc).timestamp())


def megabytes(size_bytes: int) -> float:
    return round(size_bytes / MB, 1)


def catalog_entry(name: str) -> model_pb.CatalogModel | None:
    """The catalog model whose name or model id is `name` (case-insensitive), or None."""
    catalog = grpc_client().models.ListCatalogModels(model_pb.ListCatalogModelsRequest()).models
    key = name.lower()
    return next((m for m in catalog if key in (m.name.lower(), m.model_id.lower())), None)
