from google.api import annotations_pb2 as _annotations_pb2
from tokenwire.v1 import access_pb2 as _access_pb2
from tokenwire.v1 import model_pb2 as _model_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LocalModel(_message.Message):
    __slots__ = ("name", "path", "size_bytes", "downloaded_unix", "metadata", "problem", "embedded", "engine_ids", "loaded", "catalog_name", "catalog_model_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    DOWNLOADED_UNIX_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_FIELD_NUMBER: _ClassVar[int]
    EMBEDDED_FIELD_NUMBER: _ClassVar[int]
    ENGINE_IDS_FIELD_NUMBER: _ClassVar[int]
    LOADED_FIELD_NUMBER: _ClassVar[int]
    CATALOG_NAME_FIELD_NUMBER: _ClassVar[int]
    CATALOG_MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    path: str
    size_bytes: int
    downloaded_unix: int
    metadata: _model_pb2.ModelMetadata
    problem: str
    embedded: bool
    engine_ids: _containers.RepeatedScalarFieldContainer[str]
    loaded: bool
    catalog_name: str
    catalog_model_id: str
    def __init__(self, name: _Optional[str] = ..., path: _Optional[str] = ..., size_bytes: _Optional[int] = ..., downloaded_unix: _Optional[int] = ..., metadata: _Optional[_Union[_model_pb2.ModelMetadata, _Mapping]] = ..., problem: _Optional[str] = ..., embedded: _Optional[bool] = ..., engine_ids: _Optional[_Iterable[str]] = ..., loaded: _Optional[bool] = ..., catalog_name: _Optional[str] = ..., catalog_model_id: _Optional[str] = ...) -> None: ...

class ListLocalModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListLocalModelsResponse(_message.Message):
    __slots__ = ("models", "directory")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    DIRECTORY_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[LocalModel]
    directory: str
    def __init__(self, models: _Optional[_Iterable[_Union[LocalModel, _Mapping]]] = ..., directory: _Optional[str] = ...) -> None: ...

class DeleteLocalModelRequest(_message.Message):
    __slots__ = ("name", "force")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    force: bool
    def __init__(self, name: _Optional[str] = ..., force: _Optional[bool] = ...) -> None: ...

class DeleteLocalModelResponse(_message.Message):
    __slots__ = ("name", "freed_bytes", "removed_engine_ids")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FREED_BYTES_FIELD_NUMBER: _ClassVar[int]
    REMOVED_ENGINE_IDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    freed_bytes: int
    removed_engine_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., freed_bytes: _Optional[int] = ..., removed_engine_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class CatalogModel(_message.Message):
    __slots__ = ("name", "model_id", "description", "url", "filename", "size_bytes", "quantization", "parameters", "architecture", "sha256", "recommended_memory_bytes", "tags", "categories", "is_downloaded", "is_loaded", "local_name")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    QUANTIZATION_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    ARCHITECTURE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    RECOMMENDED_MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    IS_DOWNLOADED_FIELD_NUMBER: _ClassVar[int]
    IS_LOADED_FIELD_NUMBER: _ClassVar[int]
    LOCAL_NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    model_id: str
    description: str
    url: str
    filename: str
    size_bytes: int
    quantization: str
    parameters: str
    architecture: str
    sha256: str
    recommended_memory_bytes: int
    tags: _containers.RepeatedScalarFieldContainer[str]
    categories: _containers.RepeatedScalarFieldContainer[str]
    is_downloaded: bool
    is_loaded: bool
    local_name: str
    def __init__(self, name: _Optional[str] = ..., model_id: _Optional[str] = ..., description: _Optional[str] = ..., url: _Optional[str] = ..., filename: _Optional[str] = ..., size_bytes: _Optional[int] = ..., quantization: _Optional[str] = ..., parameters: _Optional[str] = ..., architecture: _Optional[str] = ..., sha256: _Optional[str] = ..., recommended_memory_bytes: _Optional[int] = ..., tags: _Optional[_Iterable[str]] = ..., categories: _Optional[_Iterable[str]] = ..., is_downloaded: _Optional[bool] = ..., is_loaded: _Optional[bool] = ..., local_name: _Optional[str] = ...) -> None: ...

class ListCatalogModelsRequest(_message.Message):
    __slots__ = ("category", "max_size_bytes")
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    MAX_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    category: str
    max_size_bytes: int
    def __init__(self, category: _Optional[str] = ..., max_size_bytes: _Optional[int] = ...) -> None: ...

class ListCatalogModelsResponse(_message.Message):
    __slots__ = ("models", "categories")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[CatalogModel]
    categories: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, models: _Optional[_Iterable[_Union[CatalogModel, _Mapping]]] = ..., categories: _Optional[_Iterable[str]] = ...) -> None: ...
