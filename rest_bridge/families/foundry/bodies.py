"""FoundryLocalAPI's (doc 004) request and response bodies: what its routes read, convert to
protobuf (`to_pb`) and answer (`.body()`); the same models document them."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import ConfigDict, Field

from rest_bridge.bodies import Answer, Given, NullIsAbsent
from rest_bridge.model_views import iso
from tokenwire.sizes import human_size
from tokenwire.v1 import engine_service_pb2 as engine_pb
from tokenwire.v1 import log_service_pb2 as log_pb
from tokenwire.v1 import model_service_pb2 as model_pb
from tokenwire.v1 import server_service_pb2 as server_pb

NAMESPACE = "foundry"
DEFAULT_START_TIMEOUT_S = 180.0
DEFAULT_HEALTH_CHECK_INTERVAL_S = 1.0
DEFAULT_LOG_COUNT = 100

_QWEN = "Qwen2.5-0.5B-Instruct-Q8_0-GGUF"
_QWEN_ID = "Qwen/Qwen2.5-0.5B-Instruct-Q8_0-GGUF"
_QWEN_3B = "Qwen2.5-3B-Instruct-Q4_K_M-GGUF"


# -- requests -------------------------------------------------------------------------------------


class StartOptions(NullIsAbsent):
    """start's, start-stream's and switch-model's `options`."""

    auto_download: bool = True
    """Download a catalog model that is not on disk first (refused with model_not_downloaded
    otherwise)."""
    timeout_seconds: float | None = Field(None, gt=0, json_schema_extra={
        "default": DEFAULT_START_TIMEOUT_S})
    """How long the model may take to load (server_start_timeout past it)."""
    health_check_interval_seconds: float | None = Field(None, gt=0, json_schema_extra={
        "default": DEFAULT_HEALTH_CHECK_INTERVAL_S})
    """How often the server's readiness is checked while the model loads: start-stream sends a
    progress event each time it finds the server not ready yet."""

    @property
    def timeout(self) -> float:
        return self.timeout_seconds or DEFAULT_START_TIMEOUT_S

    @property
    def health_check_interval(self) -> float:
        return self.health_check_interval_seconds or DEFAULT_HEALTH_CHECK_INTERVAL_S


class StartRequest(NullIsAbsent):
    """For start, start-stream and switch-model."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"model_name": _QWEN, "port": 8080,
         "options": {"auto_download": True, "timeout_seconds": 300,
                     "health_check_interval_seconds": 2}}]})
    ERROR_CODES = {"model_name": "missing_model_name"}
    PROTO = engine_pb.SwitchDefaultEngineRequest
    PROTO_FIELDS = {"port": None}  # compared with this bridge's port, never sent

    model_name: Given
    """A catalog name, catalog id or local name."""
    port: int | None = Field(None, ge=0, le=65535)
    """The port the model server answers on. The model server is this bridge, so only its own
    port (or none) is accepted; another answers 400 port_unavailable naming the port it listens
    on (a running server cannot bind a second port)."""
    options: StartOptions = Field(default_factory=StartOptions)

    def to_pb(self) -> engine_pb.SwitchDefaultEngineRequest:
        return engine_pb.SwitchDefaultEngineRequest(model=self.model_name)


class ConfigRequest(NullIsAbsent):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"port": 8080, "cache_dir": "/data/models", "default_log_level": "DEBUG",
         "defaults": False}]})
    PROTO = server_pb.UpdateServerConfigRequest
    PROTO_FIELDS = {"port": None}

    port: int | None = None
    """Accepted when it is this bridge's port; another is not applied (a running server cannot
    re-bind) and is reported in the answer's `not_applied`."""
    cache_dir: str | None = None
    """The models directory. A path of another OS (a Windows drive path on this POSIX server) is
    not applied and is reported in `not_applied`."""
    default_log_level: str | None = None
    defaults: bool = False
    """Restore the configured values first."""

    def to_pb(self) -> server_pb.UpdateServerConfigRequest:
        # "" leaves a setting as it is, like an absent member.
        return server_pb.UpdateServerConfigRequest(
            reset_to_defaults=self.defaults, models_directory=self.cache_dir or None,
            log_level=self.default_log_level or None)


class LogsQuery(NullIsAbsent):
    """`GET /logs`'s query: strings, read as the types below."""

    model_config = ConfigDict(strict=False)
    ERROR_CODES = {"count": "invalid_count"}
    PROTO = log_pb.ListLogsRequest

    count: int = DEFAULT_LOG_COUNT

    def to_pb(self) -> log_pb.ListLogsRequest:
        return log_pb.ListLogsRequest(count=self.count)


# -- answers --------------------------------------------------------------------------------------


class ErrorDetail(Answer):
    message: str
    type: str
    code: str | None
    details: str | None


class Error(Answer):
    """Foundry's error body, on every route of the family."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"error": {"message": "Model 'nonexistent-model' not found in registry",
                   "type": "not_found_error", "code": "model_not_found", "details": None}}]})

    error: ErrorDetail


_STARTED = {"success": True, "message": "Server started successfully", "port": 8080,
            "model": _QWEN, "loaded_model_id": _QWEN_ID, "endpoint": "http://127.0.0.1:8080/v1",
            "api_key": None}


class Started(Answer):
    model_config = ConfigDict(json_schema_extra={"examples": [_STARTED]})

    success: bool = True
    message: str = "Server started successfully"
    port: int
    model: str
    loaded_model_id: str
    endpoint: str
    """This bridge's OpenAI-compatible `/v1`."""
    api_key: str | None = None
    """Never echoed: clients use the key they already have."""


class Done(Answer):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"success": True, "message": "Server stopped successfully"}]})

    success: bool = True
    message: str


class ProgressEvent(Answer):
    type: Literal["progress"] = "progress"
    message: str


class StartedEvent(Answer):
    type: Literal["success"] = "success"
    message: str = "Server started successfully"
    data: Started


class DownloadOutcome(Answer):
    success: bool = True
    model_name: str


class DownloadedEvent(Answer):
    type: Literal["success"] = "success"
    message: str = "Download completed successfully"
    data: DownloadOutcome


class ErrorEvent(Answer):
    """A progress stream's last event when it fails: the error body's members, with `type`
    "error" (what Foundry's clients test) and the error's own type as `error_type`."""

    type: Literal["error"] = "error"
    message: str
    error_type: str
    code: str | None
    details: str | None


class ServerHealth(Answer):
    is_healthy: bool
    response_time_ms: int
    endpoint: str | None
    last_check: str


class RunningServerHealth(ServerHealth):
    api_key: str | None = None
    """Never echoed: clients use the key they already have."""


class ServerStatus(Answer):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "is_running": True, "status": "running", "current_model": _QWEN,
        "loaded_model_id": _QWEN_ID, "port": 8080,
        "health": {"is_healthy": True, "response_time_ms": 4,
                   "endpoint": "http://127.0.0.1:8080/v1", "last_check": "2025-01-20T10:30:00Z",
                   "api_key": None},
        "last_updated": "2025-01-20T10:30:00Z"}]})

    is_running: bool
    status: str
    current_model: str | None
    loaded_model_id: str | None
    port: int | None
    health: RunningServerHealth | ServerHealth
    """With `api_key` while the server runs."""
    last_updated: str


_MODEL = {"model_id": _QWEN_ID, "simple_name": _QWEN, "size": "0.5B", "quantization": "Q8_0",
          "is_downloaded": True, "is_loaded": False, "file_size_bytes": 524288000,
          "file_size_formatted": "500.0 MB"}


class ModelEntry(Answer):
    model_id: str
    simple_name: str
    size: str
    quantization: str
    is_downloaded: bool
    is_loaded: bool
    file_size_bytes: int
    file_size_formatted: str

    @classmethod
    def from_catalog(cls, m: model_pb.CatalogModel,
                     local: dict[str, model_pb.LocalModel]) -> Self:
        size = local[m.local_name].size_bytes if m.local_name in local else m.size_bytes
        return cls(model_id=m.model_id, simple_name=m.name, size=m.parameters,
                   quantization=m.quantization, is_downloaded=m.is_downloaded,
                   is_loaded=m.is_loaded, file_size_bytes=size, file_size_formatted=human_size(size))

    @classmethod
    def from_local(cls, m: model_pb.LocalModel, **more) -> Self:
        return cls(model_id=m.catalog_model_id or m.name, simple_name=m.catalog_name or m.name,
                   size=m.metadata.size_label, quantization=m.metadata.quantization,
                   is_downloaded=True, is_loaded=m.loaded, file_size_bytes=m.size_bytes,
                   file_size_formatted=human_size(m.size_bytes), **more)


class DownloadedModelEntry(ModelEntry):
    download_date: str | None


class LoadedModelEntry(Answer):
    model_id: str
    simple_name: str
    size: str
    quantization: str
    is_downloaded: bool
    is_loaded: bool
    loaded_at: str | None


class ModelList(Answer):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"models": [_MODEL], "total_count": 1}]})

    models: list[ModelEntry]
    total_count: int


class DownloadedModelList(Answer):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"models": [{**_MODEL, "download_date": "2025-01-15T14:30:00Z"}], "total_count": 1}]})

    models: list[DownloadedModelEntry]
    total_count: int


class LoadedModelList(Answer):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"models": [{"model_id": _QWEN_ID, "simple_name": _QWEN, "size": "0.5B",
                     "quantization": "Q8_0", "is_downloaded": True, "is_loaded": True,
                     "loaded_at": "2025-01-20T10:30:00Z"}], "total_count": 1}]})

    models: list[LoadedModelEntry]
    total_count: int


class Deleted(Answer):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"success": True, "message": "Model deleted successfully", "model_name": _QWEN_3B,
         "freed_space_bytes": 2147483648, "freed_space_formatted": "2.0 GB"}]})

    success: bool = True
    message: str = "Model deleted successfully"
    model_name: str
    freed_space_bytes: int
    freed_space_formatted: str


class Downloaded(Answer):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"success": True, "message": "Model downloaded successfully", "model_name": _QWEN_3B,
         "actual_model_id": f"Qwen/{_QWEN_3B}", "file_size_bytes": 2147483648,
         "download_time_seconds": 125}]})

    success: bool = True
    message: str
    """"Model downloaded successfully", or "Model already downloaded"."""
    model_name: str
    actual_model_id: str
    file_size_bytes: int
    download_time_seconds: int


class Configuration(Answer):
    default_port: int
    cache_dir: str
    default_log_level: str


class ModelRegistry(Answer):
    total_models: int
    downloaded_models: int
    loaded_models: int


class Info(Answer):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "service": "FoundryLocal API", "version": "0.1.0",
        "foundry_local_version": "tokenwire 0.1.0 (llama.cpp via llama-cpp-python 0.3.36)",
        "capabilities": ["model_management", "server_control"],
        "configuration": {"default_port": 8080, "cache_dir": "/home/u/.cache/tokenwire/models",
                          "default_log_level": "INFO"},
        "model_registry": {"total_models": 16, "downloaded_models": 2, "loaded_models": 1}}]})

    service: str
    version: str
    foundry_local_version: str
    capabilities: list[str]
    configuration: Configuration
    model_registry: ModelRegistry


class ConfigUpdated(Answer):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"success": True, "message": "Configuration updated successfully", "port": 8080,
         "cachedir": "/data/models", "default_log_level": "DEBUG", "not_applied": {}},
        {"success": True, "message": "Configuration updated; not applied: port, cache_dir",
         "port": 8080, "cachedir": "/data/models", "default_log_level": "DEBUG",
         "not_applied": {"port": "this server listens on port 8080 and cannot re-bind while "
                                 "running; set server.port and restart",
                         "cache_dir": "'D:\\AI\\Models' is a Windows path; this server runs "
                                      "on posix"}}]})

    success: bool = True
    message: str = "Configuration updated successfully"
    port: int
    """The port this server listens on."""
    cachedir: str
    """The models directory now in use."""
    default_log_level: str
    not_applied: dict[str, str] = Field(default_factory=dict)
    """Each requested key that cannot take the value given at run time, with why; the other keys
    are applied. Empty when every key was applied."""


# -- monitoring answers ---------------------------------------------------------------------------


class FoundryLocal(Answer):
    is_running: bool
    status: str
    port: int | None
    model: str | None


class Health(Answer):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"status": "healthy", "service": "foundry-local-api", "version": "2.0.0",
         "timestamp": "2025-01-20T10:30:00.000Z",
         "foundry_local": {"is_running": True, "status": "running", "port": 1234,
                           "model": "default"}}]})

    status: str
    service: str
    version: str
    timestamp: str
    foundry_local: FoundryLocal
    """The model server behind the API: "running" once the default model is loaded."""


class LogEntry(Answer):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"timestamp": "2025-01-20T10:30:00.000Z", "level": "INFO",
         "message": "Server started successfully", "source": "FoundryLocalApiService"}]})

    timestamp: str
    level: str
    message: str
    """Secrets redacted."""
    source: str

    @classmethod
    def from_pb(cls, r: log_pb.LogRecord) -> LogEntry:
        return cls(timestamp=iso(r.timestamp_unix_ms), level=r.level, message=r.message,
                   source=r.source)
