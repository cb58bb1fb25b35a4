from google.api import annotations_pb2 as _annotations_pb2
from tokenwire.v1 import access_pb2 as _access_pb2
from tokenwire.v1 import model_pb2 as _model_pb2
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
    ENGINE_STATUS_UNLOADING: _ClassVar[EngineStatus]
ENGINE_STATUS_UNSPECIFIED: EngineStatus
ENGINE_STATUS_LOADING: EngineStatus
ENGINE_STATUS_LOADED: EngineStatus
ENGINE_STATUS_FAILED: EngineStatus
ENGINE_STATUS_UNLOADED: EngineStatus
ENGINE_STATUS_UNLOADING: EngineStatus

class Engine(_message.Message):
    __slots__ = ("engine_id", "status", "is_default", "backend", "model_path", "n_ctx", "created_unix", "error", "requests_total", "requests_in_flight", "scheduler", "params", "memory", "last_tokens_per_second", "loaded_unix", "load_seconds", "last_used_unix", "model", "model_size_bytes", "context", "aliases")
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
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    LAST_TOKENS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    LOADED_UNIX_FIELD_NUMBER: _ClassVar[int]
    LOAD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LAST_USED_UNIX_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MODEL_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
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
    params: LoadParams
    memory: EngineMemory
    last_tokens_per_second: float
    loaded_unix: int
    load_seconds: float
    last_used_unix: int
    model: _model_pb2.ModelMetadata
    model_size_bytes: int
    context: ContextSizing
    aliases: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, engine_id: _Optional[str] = ..., status: _Optional[_Union[EngineStatus, str]] = ..., is_default: _Optional[bool] = ..., backend: _Optional[str] = ..., model_path: _Optional[str] = ..., n_ctx: _Optional[int] = ..., created_unix: _Optional[int] = ..., error: _Optional[str] = ..., requests_total: _Optional[int] = ..., requests_in_flight: _Optional[int] = ..., scheduler: _Optional[_Union[SchedulerStatus, _Mapping]] = ..., params: _Optional[_Union[LoadParams, _Mapping]] = ..., memory: _Optional[_Union[EngineMemory, _Mapping]] = ..., last_tokens_per_second: _Optional[float] = ..., loaded_unix: _Optional[int] = ..., load_seconds: _Optional[float] = ..., last_used_unix: _Optional[int] = ..., model: _Optional[_Union[_model_pb2.ModelMetadata, _Mapping]] = ..., model_size_bytes: _Optional[int] = ..., context: _Optional[_Union[ContextSizing, _Mapping]] = ..., aliases: _Optional[_Iterable[str]] = ...) -> None: ...

class ContextSizing(_message.Message):
    __slots__ = ("kv_cells", "n_ctx_per_sequence", "trained_context_length", "memory_cap_tokens", "source", "cache_type_k", "cache_type_v")
    KV_CELLS_FIELD_NUMBER: _ClassVar[int]
    N_CTX_PER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TRAINED_CONTEXT_LENGTH_FIELD_NUMBER: _ClassVar[int]
    MEMORY_CAP_TOKENS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CACHE_TYPE_K_FIELD_NUMBER: _ClassVar[int]
    CACHE_TYPE_V_FIELD_NUMBER: _ClassVar[int]
    kv_cells: int
    n_ctx_per_sequence: int
    trained_context_length: int
    memory_cap_tokens: int
    source: str
    cache_type_k: str
    cache_type_v: str
    def __init__(self, kv_cells: _Optional[int] = ..., n_ctx_per_sequence: _Optional[int] = ..., trained_context_length: _Optional[int] = ..., memory_cap_tokens: _Optional[int] = ..., source: _Optional[str] = ..., cache_type_k: _Optional[str] = ..., cache_type_v: _Optional[str] = ...) -> None: ...

class LoadParams(_message.Message):
    __slots__ = ("n_ctx", "n_gpu_layers", "main_gpu_id", "use_mmap", "use_mlock", "n_parallel", "n_threads", "n_batch", "cache_type_k", "cache_type_v")
    N_CTX_FIELD_NUMBER: _ClassVar[int]
    N_GPU_LAYERS_FIELD_NUMBER: _ClassVar[int]
    MAIN_GPU_ID_FIELD_NUMBER: _ClassVar[int]
    USE_MMAP_FIELD_NUMBER: _ClassVar[int]
    USE_MLOCK_FIELD_NUMBER: _ClassVar[int]
    N_PARALLEL_FIELD_NUMBER: _ClassVar[int]
    N_THREADS_FIELD_NUMBER: _ClassVar[int]
    N_BATCH_FIELD_NUMBER: _ClassVar[int]
    CACHE_TYPE_K_FIELD_NUMBER: _ClassVar[int]
    CACHE_TYPE_V_FIELD_NUMBER: _ClassVar[int]
    n_ctx: int
    n_gpu_layers: int
    main_gpu_id: int
    use_mmap: bool
    use_mlock: bool
    n_parallel: int
    n_threads: int
    n_batch: int
    cache_type_k: str
    cache_type_v: str
    def __init__(self, n_ctx: _Optional[int] = ..., n_gpu_layers: _Optional[int] = ..., main_gpu_id: _Optional[int] = ..., use_mmap: _Optional[bool] = ..., use_mlock: _Optional[bool] = ..., n_parallel: _Optional[int] = ..., n_threads: _Optional[int] = ..., n_batch: _Optional[int] = ..., cache_type_k: _Optional[str] = ..., cache_type_v: _Optional[str] = ...) -> None: ...

class EngineMemory(_message.Message):
    __slots__ = ("model_bytes", "context_bytes")
    MODEL_BYTES_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_BYTES_FIELD_NUMBER: _ClassVar[int]
    model_bytes: int
    context_bytes: int
    def __init__(self, model_bytes: _Optional[int] = ..., context_bytes: _Optional[int] = ...) -> None: ...

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
    __slots__ = ("engines", "memory_budget_bytes", "memory_committed_bytes", "memory_available_bytes")
    ENGINES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BUDGET_BYTES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_COMMITTED_BYTES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_AVAILABLE_BYTES_FIELD_NUMBER: _ClassVar[int]
    engines: _containers.RepeatedCompositeFieldContainer[Engine]
    memory_budget_bytes: int
    memory_committed_bytes: int
    memory_available_bytes: int
    def __init__(self, engines: _Optional[_Iterable[_Union[Engine, _Mapping]]] = ..., memory_budget_bytes: _Optional[int] = ..., memory_committed_bytes: _Optional[int] = ..., memory_available_bytes: _Optional[int] = ...) -> None: ...

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

class AddEngineRequest(_message.Message):
    __slots__ = ("engine_id", "model", "params", "backend", "load_immediately", "sha256")
    ENGINE_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    LOAD_IMMEDIATELY_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    engine_id: str
    model: str
    params: LoadParams
    backend: str
    load_immediately: bool
    sha256: str
    def __init__(self, engine_id: _Optional[str] = ..., model: _Optional[str] = ..., params: _Optional[_Union[LoadParams, _Mapping]] = ..., backend: _Optional[str] = ..., load_immediately: _Optional[bool] = ..., sha256: _Optional[str] = ...) -> None: ...

class AddEngineResponse(_message.Message):
    __slots__ = ("engine", "download_id")
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    DOWNLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    engine: Engine
    download_id: str
    def __init__(self, engine: _Optional[_Union[Engine, _Mapping]] = ..., download_id: _Optional[str] = ...) -> None: ...

class LoadEngineRequest(_message.Message):
    __slots__ = ("engine_id", "force_reload")
    ENGINE_ID_FIELD_NUMBER: _ClassVar[int]
    FORCE_RELOAD_FIELD_NUMBER: _ClassVar[int]
    engine_id: str
    force_reload: bool
    def __init__(self, engine_id: _Optional[str] = ..., force_reload: _Optional[bool] = ...) -> None: ...

class LoadEngineResponse(_message.Message):
    __slots__ = ("engine",)
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    engine: Engine
    def __init__(self, engine: _Optional[_Union[Engine, _Mapping]] = ...) -> None: ...

class UnloadEngineRequest(_message.Message):
    __slots__ = ("engine_id", "force")
    ENGINE_ID_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    engine_id: str
    force: bool
    def __init__(self, engine_id: _Optional[str] = ..., force: _Optional[bool] = ...) -> None: ...

class UnloadEngineResponse(_message.Message):
    __slots__ = ("engine",)
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    engine: Engine
    def __init__(self, engine: _Optional[_Union[Engine, _Mapping]] = ...) -> None: ...

class RemoveEngineRequest(_message.Message):
    __slots__ = ("engine_id", "force")
    ENGINE_ID_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    engine_id: str
    force: bool
    def __init__(self, engine_id: _Optional[str] = ..., force: _Optional[bool] = ...) -> None: ...

class RemoveEngineResponse(_message.Message):
    __slots__ = ("engine",)
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    engine: Engine
    def __init__(self, engine: _Optional[_Union[Engine, _Mapping]] = ...) -> None: ...

class UnloadAllEnginesRequest(_message.Message):
    __slots__ = ("force",)
    FORCE_FIELD_NUMBER: _ClassVar[int]
    force: bool
    def __init__(self, force: _Optional[bool] = ...) -> None: ...

class UnloadAllEnginesResponse(_message.Message):
    __slots__ = ("unloaded_engine_ids",)
    UNLOADED_ENGINE_IDS_FIELD_NUMBER: _ClassVar[int]
    unloaded_engine_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, unloaded_engine_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class SwitchDefaultEngineRequest(_message.Message):
    __slots__ = ("engine_id", "model", "params")
    ENGINE_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    engine_id: str
    model: str
    params: LoadParams
    def __init__(self, engine_id: _Optional[str] = ..., model: _Optional[str] = ..., params: _Optional[_Union[LoadParams, _Mapping]] = ...) -> None: ...

class SwitchDefaultEngineResponse(_message.Message):
    __slots__ = ("engine", "previous_engine_id")
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_ENGINE_ID_FIELD_NUMBER: _ClassVar[int]
    engine: Engine
    previous_engine_id: str
    def __init__(self, engine: _Optional[_Union[Engine, _Mapping]] = ..., previous_engine_id: _Optional[str] = ...) -> None: ...
