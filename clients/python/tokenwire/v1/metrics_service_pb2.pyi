from google.api import annotations_pb2 as _annotations_pb2
from tokenwire.v1 import access_pb2 as _access_pb2
from tokenwire.v1 import hardware_service_pb2 as _hardware_service_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExpositionFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXPOSITION_FORMAT_UNSPECIFIED: _ClassVar[ExpositionFormat]
    EXPOSITION_FORMAT_PROMETHEUS_TEXT: _ClassVar[ExpositionFormat]
    EXPOSITION_FORMAT_OPENMETRICS: _ClassVar[ExpositionFormat]
EXPOSITION_FORMAT_UNSPECIFIED: ExpositionFormat
EXPOSITION_FORMAT_PROMETHEUS_TEXT: ExpositionFormat
EXPOSITION_FORMAT_OPENMETRICS: ExpositionFormat

class InferenceStats(_message.Message):
    __slots__ = ("engine_id", "kind", "prompt_tokens", "completion_tokens", "time_to_first_token_ms", "tokens_per_second", "queue_ms", "duration_ms", "finish_reason", "timestamp_unix_ms")
    ENGINE_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TIME_TO_FIRST_TOKEN_MS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    QUEUE_MS_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    engine_id: str
    kind: str
    prompt_tokens: int
    completion_tokens: int
    time_to_first_token_ms: float
    tokens_per_second: float
    queue_ms: float
    duration_ms: float
    finish_reason: str
    timestamp_unix_ms: int
    def __init__(self, engine_id: _Optional[str] = ..., kind: _Optional[str] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., time_to_first_token_ms: _Optional[float] = ..., tokens_per_second: _Optional[float] = ..., queue_ms: _Optional[float] = ..., duration_ms: _Optional[float] = ..., finish_reason: _Optional[str] = ..., timestamp_unix_ms: _Optional[int] = ...) -> None: ...

class WatchInferenceStatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WatchInferenceStatsResponse(_message.Message):
    __slots__ = ("stats",)
    STATS_FIELD_NUMBER: _ClassVar[int]
    stats: InferenceStats
    def __init__(self, stats: _Optional[_Union[InferenceStats, _Mapping]] = ...) -> None: ...

class GetPrometheusMetricsRequest(_message.Message):
    __slots__ = ("format",)
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    format: ExpositionFormat
    def __init__(self, format: _Optional[_Union[ExpositionFormat, str]] = ...) -> None: ...

class GetPrometheusMetricsResponse(_message.Message):
    __slots__ = ("text", "content_type")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    text: str
    content_type: str
    def __init__(self, text: _Optional[str] = ..., content_type: _Optional[str] = ...) -> None: ...

class CompletionMetrics(_message.Message):
    __slots__ = ("total_requests", "successful_requests", "failed_requests", "success_rate_percent", "prompt_tokens_total", "completion_tokens_total", "average_tokens_per_second", "average_time_to_first_token_ms", "average_inter_token_latency_ms", "average_request_duration_ms", "queue_depth", "active_requests")
    TOTAL_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    SUCCESSFUL_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    FAILED_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_RATE_PERCENT_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_TOKENS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_TIME_TO_FIRST_TOKEN_MS_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_INTER_TOKEN_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_REQUEST_DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    QUEUE_DEPTH_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    total_requests: int
    successful_requests: int
    failed_requests: int
    success_rate_percent: float
    prompt_tokens_total: int
    completion_tokens_total: int
    average_tokens_per_second: float
    average_time_to_first_token_ms: float
    average_inter_token_latency_ms: float
    average_request_duration_ms: float
    queue_depth: int
    active_requests: int
    def __init__(self, total_requests: _Optional[int] = ..., successful_requests: _Optional[int] = ..., failed_requests: _Optional[int] = ..., success_rate_percent: _Optional[float] = ..., prompt_tokens_total: _Optional[int] = ..., completion_tokens_total: _Optional[int] = ..., average_tokens_per_second: _Optional[float] = ..., average_time_to_first_token_ms: _Optional[float] = ..., average_inter_token_latency_ms: _Optional[float] = ..., average_request_duration_ms: _Optional[float] = ..., queue_depth: _Optional[int] = ..., active_requests: _Optional[int] = ...) -> None: ...

class EngineMetrics(_message.Message):
    __slots__ = ("engine_id", "completion", "current_tokens_per_second")
    ENGINE_ID_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_FIELD_NUMBER: _ClassVar[int]
    CURRENT_TOKENS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    engine_id: str
    completion: CompletionMetrics
    current_tokens_per_second: float
    def __init__(self, engine_id: _Optional[str] = ..., completion: _Optional[_Union[CompletionMetrics, _Mapping]] = ..., current_tokens_per_second: _Optional[float] = ...) -> None: ...

class RpcMetrics(_message.Message):
    __slots__ = ("method", "requests_total", "errors_total", "average_duration_ms")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    ERRORS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    method: str
    requests_total: int
    errors_total: int
    average_duration_ms: float
    def __init__(self, method: _Optional[str] = ..., requests_total: _Optional[int] = ..., errors_total: _Optional[int] = ..., average_duration_ms: _Optional[float] = ...) -> None: ...

class GetMetricsSnapshotRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetMetricsSnapshotResponse(_message.Message):
    __slots__ = ("timestamp_unix_ms", "completion", "engines", "rpcs", "system")
    TIMESTAMP_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_FIELD_NUMBER: _ClassVar[int]
    ENGINES_FIELD_NUMBER: _ClassVar[int]
    RPCS_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_FIELD_NUMBER: _ClassVar[int]
    timestamp_unix_ms: int
    completion: CompletionMetrics
    engines: _containers.RepeatedCompositeFieldContainer[EngineMetrics]
    rpcs: _containers.RepeatedCompositeFieldContainer[RpcMetrics]
    system: _hardware_service_pb2.HardwareMetrics
    def __init__(self, timestamp_unix_ms: _Optional[int] = ..., completion: _Optional[_Union[CompletionMetrics, _Mapping]] = ..., engines: _Optional[_Iterable[_Union[EngineMetrics, _Mapping]]] = ..., rpcs: _Optional[_Iterable[_Union[RpcMetrics, _Mapping]]] = ..., system: _Optional[_Union[_hardware_service_pb2.HardwareMetrics, _Mapping]] = ...) -> None: ...
