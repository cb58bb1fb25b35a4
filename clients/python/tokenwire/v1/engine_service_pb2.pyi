from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EngineStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENGINE_STATUS_UNSPECIFIED: _ClassVar[EngineStatus]
    ENGINE_STATUS_LOADING: _ClassVar[EngineStatus]
    ENGINE_STATUS_LOADED: _ClassVar[EngineStatus]
    ENGINE_STATUS_FAILED: _ClassVar[EngineStatus]
    ENGINE_STATUS_UNLOADED: _ClassVar[EngineStatus]
ENGINE_STATUS_UNSPECIFIED: EngineStatus
ENGINE_STATUS_LOADING: EngineStatus
ENGINE_STATUS_LOADED: EngineStatus
ENGINE_STATUS_FAILED: EngineStatus
ENGINE_STATUS_UNLOADED: EngineStatus

class Engine(_message.Message):
    __slots__ = ("engine_id", "status", "is_default", "backend", "model_path", "n_ctx", "created_unix", "error", "requests_total", "requests_in_flight", "scheduler")
    ENGINE_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    MODEL_PATH_FIELD_NUMBER: _ClassVar[int]
    N_CTX_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    SCHEDULER_FIELD_NUMBER: _ClassVar[int]
    engine_id: str
    status: EngineStatus
    is_default: bool
    backend: str
    model_path: str
    n_ctx: int
    created_unix: int
    error: str
    requests_total: int
    requests_in_flight: int
    scheduler: SchedulerStatus
    def __init__(self, engine_id: _Optional[str] = ..., status: _Optional[_Union[EngineStatus, str]] = ..., is_default: _Optional[bool] = ..., backend: _Optional[str] = ..., model_path: _Optional[str] = ..., n_ctx: _Optional[int] = ..., created_unix: _Optional[int] = ..., error: _Optional[str] = ..., requests_total: _Optional[int] = ..., requests_in_flight: _Optional[int] = ..., scheduler: _Optional[_Union[SchedulerStatus, _Mapping]] = ...) -> None: ...

class SchedulerStatus(_message.Message):
    __slots__ = ("parallel_sequences", "active_sequences", "queued_requests", "max_queued_requests", "tokens_per_second", "kv_cells_used", "kv_cells_total", "tokens_generated_total", "prompt_tokens_reused_total")
    PARALLEL_SEQUENCES_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_SEQUENCES_FIELD_NUMBER: _ClassVar[int]
    QUEUED_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    MAX_QUEUED_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    KV_CELLS_USED_FIELD_NUMBER: _ClassVar[int]
    KV_CELLS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    TOKENS_GENERATED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_REUSED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    parallel_sequences: int
    active_sequences: int
    queued_requests: int
    max_queued_requests: int
    tokens_per_second: float
    kv_cells_used: int
    kv_cells_total: int
    tokens_generated_total: int
    prompt_tokens_reused_total: int
    def __init__(self, parallel_sequences: _Optional[int] = ..., active_sequences: _Optional[int] = ..., queued_requests: _Optional[int] = ..., max_queued_requests: _Optional[int] = ..., tokens_per_second: _Optional[float] = ..., kv_cells_used: _Optional[int] = ..., kv_cells_total: _Optional[int] = ..., tokens_generated_total: _Optional[int] = ..., prompt_tokens_reused_total: _Optional[int] = ...) -> None: ...

class ListEnginesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListEnginesResponse(_message.Message):
    __slots__ = ("engines",)
    ENGINES_FIELD_NUMBER: _ClassVar[int]
    engines: _containers.RepeatedCompositeFieldContainer[Engine]
    def __init__(self, engines: _Optional[_Iterable[_Union[Engine, _Mapping]]] = ...) -> None: ...

class GetEngineRequest(_message.Message):
    __slots__ = ("engine_id",)
    ENGINE_ID_FIELD_NUMBER: _ClassVar[int]
    engine_id: str
    def __init__(self, engine_id: _Optional[str] = ...) -> None: ...

class GetEngineResponse(_message.Message):
    __slots__ = ("engine",)
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    engine: Engine
    def __init__(self, engine: _Optional[_Union[Engine, _Mapping]] = ...) -> None: ...
