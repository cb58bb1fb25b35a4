from google.api import annotations_pb2 as _annotations_pb2
from tokenwire.v1 import access_pb2 as _access_pb2
from tokenwire.v1 import engine_service_pb2 as _engine_service_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EngineState(_message.Message):
    __slots__ = ("engine_id", "status", "error", "is_default")
    ENGINE_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    engine_id: str
    status: _engine_service_pb2.EngineStatus
    error: str
    is_default: bool
    def __init__(self, engine_id: _Optional[str] = ..., status: _Optional[_Union[_engine_service_pb2.EngineStatus, str]] = ..., error: _Optional[str] = ..., is_default: _Optional[bool] = ...) -> None: ...

class WatchStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WatchStatusResponse(_message.Message):
    __slots__ = ("status",)
    STATUS_FIELD_NUMBER: _ClassVar[int]
    status: GetStatusResponse
    def __init__(self, status: _Optional[_Union[GetStatusResponse, _Mapping]] = ...) -> None: ...

class ComponentCheck(_message.Message):
    __slots__ = ("key", "name", "healthy", "message")
    KEY_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    HEALTHY_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    key: str
    name: str
    healthy: bool
    message: str
    def __init__(self, key: _Optional[str] = ..., name: _Optional[str] = ..., healthy: _Optional[bool] = ..., message: _Optional[str] = ...) -> None: ...

class EngineCounts(_message.Message):
    __slots__ = ("loaded", "loading", "unloaded", "failed", "total")
    LOADED_FIELD_NUMBER: _ClassVar[int]
    LOADING_FIELD_NUMBER: _ClassVar[int]
    UNLOADED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    loaded: int
    loading: int
    unloaded: int
    failed: int
    total: int
    def __init__(self, loaded: _Optional[int] = ..., loading: _Optional[int] = ..., unloaded: _Optional[int] = ..., failed: _Optional[int] = ..., total: _Optional[int] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetStatusResponse(_message.Message):
    __slots__ = ("live", "ready", "draining", "message", "version", "uptime_seconds", "started_unix_ms", "engines", "default_engine_id", "checks", "process_rss_bytes", "cpu_usage_percent", "grpc_port", "requests_in_flight", "engine_states")
    LIVE_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    UPTIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    STARTED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    ENGINES_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_ENGINE_ID_FIELD_NUMBER: _ClassVar[int]
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    PROCESS_RSS_BYTES_FIELD_NUMBER: _ClassVar[int]
    CPU_USAGE_PERCENT_FIELD_NUMBER: _ClassVar[int]
    GRPC_PORT_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    ENGINE_STATES_FIELD_NUMBER: _ClassVar[int]
    live: bool
    ready: bool
    draining: bool
    message: str
    version: str
    uptime_seconds: float
    started_unix_ms: int
    engines: EngineCounts
    default_engine_id: str
    checks: _containers.RepeatedCompositeFieldContainer[ComponentCheck]
    process_rss_bytes: int
    cpu_usage_percent: float
    grpc_port: int
    requests_in_flight: int
    engine_states: _containers.RepeatedCompositeFieldContainer[EngineState]
    def __init__(self, live: _Optional[bool] = ..., ready: _Optional[bool] = ..., draining: _Optional[bool] = ..., message: _Optional[str] = ..., version: _Optional[str] = ..., uptime_seconds: _Optional[float] = ..., started_unix_ms: _Optional[int] = ..., engines: _Optional[_Union[EngineCounts, _Mapping]] = ..., default_engine_id: _Optional[str] = ..., checks: _Optional[_Iterable[_Union[ComponentCheck, _Mapping]]] = ..., process_rss_bytes: _Optional[int] = ..., cpu_usage_percent: _Optional[float] = ..., grpc_port: _Optional[int] = ..., requests_in_flight: _Optional[int] = ..., engine_states: _Optional[_Iterable[_Union[EngineState, _Mapping]]] = ...) -> None: ...
