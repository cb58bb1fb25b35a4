from google.api import annotations_pb2 as _annotations_pb2
from tokenwire.v1 import access_pb2 as _access_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DownloadStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DOWNLOAD_STATUS_UNSPECIFIED: _ClassVar[DownloadStatus]
    DOWNLOAD_STATUS_DOWNLOADING: _ClassVar[DownloadStatus]
    DOWNLOAD_STATUS_CREATING_ENGINE: _ClassVar[DownloadStatus]
    DOWNLOAD_STATUS_COMPLETED: _ClassVar[DownloadStatus]
    DOWNLOAD_STATUS_FAILED: _ClassVar[DownloadStatus]
    DOWNLOAD_STATUS_CANCELLED: _ClassVar[DownloadStatus]

class DownloadType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DOWNLOAD_TYPE_UNSPECIFIED: _ClassVar[DownloadType]
    DOWNLOAD_TYPE_REGULAR: _ClassVar[DownloadType]
    DOWNLOAD_TYPE_STARTUP: _ClassVar[DownloadType]
DOWNLOAD_STATUS_UNSPECIFIED: DownloadStatus
DOWNLOAD_STATUS_DOWNLOADING: DownloadStatus
DOWNLOAD_STATUS_CREATING_ENGINE: DownloadStatus
DOWNLOAD_STATUS_COMPLETED: DownloadStatus
DOWNLOAD_STATUS_FAILED: DownloadStatus
DOWNLOAD_STATUS_CANCELLED: DownloadStatus
DOWNLOAD_TYPE_UNSPECIFIED: DownloadType
DOWNLOAD_TYPE_REGULAR: DownloadType
DOWNLOAD_TYPE_STARTUP: DownloadType

class Download(_message.Message):
    __slots__ = ("download_id", "model_id", "url", "catalog_name", "filename", "local_path", "status", "download_type", "downloaded_bytes", "total_bytes", "percent", "speed_bytes_per_second", "eta_seconds", "resumed_from_bytes", "expected_sha256", "sha256", "auto_load", "error", "error_reason", "http_status", "start_time_unix_ms", "end_time_unix_ms", "elapsed_seconds")
    DOWNLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    CATALOG_NAME_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    LOCAL_PATH_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DOWNLOAD_TYPE_FIELD_NUMBER: _ClassVar[int]
    DOWNLOADED_BYTES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    SPEED_BYTES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    ETA_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RESUMED_FROM_BYTES_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_SHA256_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    AUTO_LOAD_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ERROR_REASON_FIELD_NUMBER: _ClassVar[int]
    HTTP_STATUS_FIELD_NUMBER: _ClassVar[int]
    START_TIME_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    END_TIME_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    download_id: str
    model_id: str
    url: str
    catalog_name: str
    filename: str
    local_path: str
    status: DownloadStatus
    download_type: DownloadType
    downloaded_bytes: int
    total_bytes: int
    percent: float
    speed_bytes_per_second: float
    eta_seconds: float
    resumed_from_bytes: int
    expected_sha256: str
    sha256: str
    auto_load: bool
    error: str
    error_reason: str
    http_status: int
    start_time_unix_ms: int
    end_time_unix_ms: int
    elapsed_seconds: float
    def __init__(self, download_id: _Optional[str] = ..., model_id: _Optional[str] = ..., url: _Optional[str] = ..., catalog_name: _Optional[str] = ..., filename: _Optional[str] = ..., local_path: _Optional[str] = ..., status: _Optional[_Union[DownloadStatus, str]] = ..., download_type: _Optional[_Union[DownloadType, str]] = ..., downloaded_bytes: _Optional[int] = ..., total_bytes: _Optional[int] = ..., percent: _Optional[float] = ..., speed_bytes_per_second: _Optional[float] = ..., eta_seconds: _Optional[float] = ..., resumed_from_bytes: _Optional[int] = ..., expected_sha256: _Optional[str] = ..., sha256: _Optional[str] = ..., auto_load: _Optional[bool] = ..., error: _Optional[str] = ..., error_reason: _Optional[str] = ..., http_status: _Optional[int] = ..., start_time_unix_ms: _Optional[int] = ..., end_time_unix_ms: _Optional[int] = ..., elapsed_seconds: _Optional[float] = ...) -> None: ...

class StartDownloadRequest(_message.Message):
    __slots__ = ("url", "catalog_name", "model_id", "filename", "expected_sha256", "auto_load", "force")
    URL_FIELD_NUMBER: _ClassVar[int]
    CATALOG_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_SHA256_FIELD_NUMBER: _ClassVar[int]
    AUTO_LOAD_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    url: str
    catalog_name: str
    model_id: str
    filename: str
    expected_sha256: str
    auto_load: bool
    force: bool
    def __init__(self, url: _Optional[str] = ..., catalog_name: _Optional[str] = ..., model_id: _Optional[str] = ..., filename: _Optional[str] = ..., expected_sha256: _Optional[str] = ..., auto_load: _Optional[bool] = ..., force: _Optional[bool] = ...) -> None: ...

class StartDownloadResponse(_message.Message):
    __slots__ = ("download",)
    DOWNLOAD_FIELD_NUMBER: _ClassVar[int]
    download: Download
    def __init__(self, download: _Optional[_Union[Download, _Mapping]] = ...) -> None: ...

class WatchDownloadRequest(_message.Message):
    __slots__ = ("download_id", "model_id")
    DOWNLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    download_id: str
    model_id: str
    def __init__(self, download_id: _Optional[str] = ..., model_id: _Optional[str] = ...) -> None: ...

class WatchDownloadResponse(_message.Message):
    __slots__ = ("download",)
    DOWNLOAD_FIELD_NUMBER: _ClassVar[int]
    download: Download
    def __init__(self, download: _Optional[_Union[Download, _Mapping]] = ...) -> None: ...

class WatchDownloadsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WatchDownloadsResponse(_message.Message):
    __slots__ = ("download",)
    DOWNLOAD_FIELD_NUMBER: _ClassVar[int]
    download: Download
    def __init__(self, download: _Optional[_Union[Download, _Mapping]] = ...) -> None: ...

class ListDownloadsRequest(_message.Message):
    __slots__ = ("model_id", "statuses")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    statuses: _containers.RepeatedScalarFieldContainer[DownloadStatus]
    def __init__(self, model_id: _Optional[str] = ..., statuses: _Optional[_Iterable[_Union[DownloadStatus, str]]] = ...) -> None: ...

class ListDownloadsResponse(_message.Message):
    __slots__ = ("downloads",)
    DOWNLOADS_FIELD_NUMBER: _ClassVar[int]
    downloads: _containers.RepeatedCompositeFieldContainer[Download]
    def __init__(self, downloads: _Optional[_Iterable[_Union[Download, _Mapping]]] = ...) -> None: ...

class GetDownloadRequest(_message.Message):
    __slots__ = ("download_id", "model_id")
    DOWNLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    download_id: str
    model_id: str
    def __init__(self, download_id: _Optional[str] = ..., model_id: _Optional[str] = ...) -> None: ...

class GetDownloadResponse(_message.Message):
    __slots__ = ("download",)
    DOWNLOAD_FIELD_NUMBER: _ClassVar[int]
    download: Download
    def __init__(self, download: _Optional[_Union[Download, _Mapping]] = ...) -> None: ...

class CancelDownloadRequest(_message.Message):
    __slots__ = ("download_id", "model_id")
    DOWNLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    download_id: str
    model_id: str
    def __init__(self, download_id: _Optional[str] = ..., model_id: _Optional[str] = ...) -> None: ...

class CancelDownloadResponse(_message.Message):
    __slots__ = ("cancelled", "previous_status", "download")
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_STATUS_FIELD_NUMBER: _ClassVar[int]
    DOWNLOAD_FIELD_NUMBER: _ClassVar[int]
    cancelled: bool
    previous_status: DownloadStatus
    download: Download
    def __init__(self, cancelled: _Optional[bool] = ..., previous_status: _Optional[_Union[DownloadStatus, str]] = ..., download: _Optional[_Union[Download, _Mapping]] = ...) -> None: ...

class CancelAllDownloadsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CancelledDownload(_message.Message):
    __slots__ = ("download_id", "model_id", "previous_status", "download_type")
    DOWNLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_STATUS_FIELD_NUMBER: _ClassVar[int]
    DOWNLOAD_TYPE_FIELD_NUMBER: _ClassVar[int]
    download_id: str
    model_id: str
    previous_status: DownloadStatus
    download_type: DownloadType
    def __init__(self, download_id: _Optional[str] = ..., model_id: _Optional[str] = ..., previous_status: _Optional[_Union[DownloadStatus, str]] = ..., download_type: _Optional[_Union[DownloadType, str]] = ...) -> None: ...

class UncancelledDownload(_message.Message):
    __slots__ = ("download_id", "model_id", "status", "reason")
    DOWNLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    download_id: str
    model_id: str
    status: DownloadStatus
    reason: str
    def __init__(self, download_id: _Optional[str] = ..., model_id: _Optional[str] = ..., status: _Optional[_Union[DownloadStatus, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class CancelAllDownloadsSummary(_message.Message):
    __slots__ = ("total_downloads", "successful_cancellations", "failed_cancellations", "startup_cancellations", "regular_cancellations")
    TOTAL_DOWNLOADS_FIELD_NUMBER: _ClassVar[int]
    SUCCESSFUL_CANCELLATIONS_FIELD_NUMBER: _ClassVar[int]
    FAILED_CANCELLATIONS_FIELD_NUMBER: _ClassVar[int]
    STARTUP_CANCELLATIONS_FIELD_NUMBER: _ClassVar[int]
    REGULAR_CANCELLATIONS_FIELD_NUMBER: _ClassVar[int]
    total_downloads: int
    successful_cancellations: int
    failed_cancellations: int
    startup_cancellations: int
    regular_cancellations: int
    def __init__(self, total_downloads: _Optional[int] = ..., successful_cancellations: _Optional[int] = ..., failed_cancellations: _Optional[int] = ..., startup_cancellations: _Optional[int] = ..., regular_cancellations: _Optional[int] = ...) -> None: ...

class CancelAllDownloadsResponse(_message.Message):
    __slots__ = ("summary", "cancelled_downloads", "failed_cancellations")
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_DOWNLOADS_FIELD_NUMBER: _ClassVar[int]
    FAILED_CANCELLATIONS_FIELD_NUMBER: _ClassVar[int]
    summary: CancelAllDownloadsSummary
    cancelled_downloads: _containers.RepeatedCompositeFieldContainer[CancelledDownload]
    failed_cancellations: _containers.RepeatedCompositeFieldContainer[UncancelledDownload]
    def __init__(self, summary: _Optional[_Union[CancelAllDownloadsSummary, _Mapping]] = ..., cancelled_downloads: _Optional[_Iterable[_Union[CancelledDownload, _Mapping]]] = ..., failed_cancellations: _Optional[_Iterable[_Union[UncancelledDownload, _Mapping]]] = ...) -> None: ...
