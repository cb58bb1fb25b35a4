from google.api import annotations_pb2 as _annotations_pb2
from tokenwire.v1 import access_pb2 as _access_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ServerConfig(_message.Message):
    __slots__ = ("models_directory", "log_level")
    MODELS_DIRECTORY_FIELD_NUMBER: _ClassVar[int]
    LOG_LEVEL_FIELD_NUMBER: _ClassVar[int]
    models_directory: str
    log_level: str
    def __init__(self, models_directory: _Optional[str] = ..., log_level: _Optional[str] = ...) -> None: ...

class GetServerInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetServerInfoResponse(_message.Message):
    __slots__ = ("version", "llama_cpp_version", "backends", "config", "grpc_port", "catalog_models", "local_models", "loaded_engines", "default_engine_id", "platform", "machine", "gpu_offload_supported")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LLAMA_CPP_VERSION_FIELD_NUMBER: _ClassVar[int]
    BACKENDS_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    GRPC_PORT_FIELD_NUMBER: _ClassVar[int]
    CATALOG_MODELS_FIELD_NUMBER: _ClassVar[int]
    LOCAL_MODELS_FIELD_NUMBER: _ClassVar[int]
    LOADED_ENGINES_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_ENGINE_ID_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    MACHINE_FIELD_NUMBER: _ClassVar[int]
    GPU_OFFLOAD_SUPPORTED_FIELD_NUMBER: _ClassVar[int]
    version: str
    llama_cpp_version: str
    backends: _containers.RepeatedScalarFieldContainer[str]
    config: ServerConfig
    grpc_port: int
    catalog_models: int
    local_models: int
    loaded_engines: int
    default_engine_id: str
    platform: str
    machine: str
    gpu_offload_supported: bool
    def __init__(self, version: _Optional[str] = ..., llama_cpp_version: _Optional[str] = ..., backends: _Optional[_Iterable[str]] = ..., config: _Optional[_Union[ServerConfig, _Mapping]] = ..., grpc_port: _Optional[int] = ..., catalog_models: _Optional[int] = ..., local_models: _Optional[int] = ..., loaded_engines: _Optional[int] = ..., default_engine_id: _Optional[str] = ..., platform: _Optional[str] = ..., machine: _Optional[str] = ..., gpu_offload_supported: _Optional[bool] = ...) -> None: ...

class UpdateServerConfigRequest(_message.Message):
    __slots__ = ("models_directory", "log_level", "reset_to_defaults")
    MODELS_DIRECTORY_FIELD_NUMBER: _ClassVar[int]
    LOG_LEVEL_FIELD_NUMBER: _ClassVar[int]
    RESET_TO_DEFAULTS_FIELD_NUMBER: _ClassVar[int]
    models_directory: str
    log_level: str
    reset_to_defaults: bool
    def __init__(self, models_directory: _Optional[str] = ..., log_level: _Optional[str] = ..., reset_to_defaults: _Optional[bool] = ...) -> None: ...

class UpdateServerConfigResponse(_message.Message):
    __slots__ = ("config",)
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    config: ServerConfig
    def __init__(self, config: _Optional[_Union[ServerConfig, _Mapping]] = ...) -> None: ...
