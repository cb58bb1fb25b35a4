from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RunBenchmarkRequest(_message.Message):
    __slots__ = ("engine_id", "num_samples", "max_tokens", "temperature", "include_warmup", "include_memory_test")
    ENGINE_ID_FIELD_NUMBER: _ClassVar[int]
    NUM_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_WARMUP_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_MEMORY_TEST_FIELD_NUMBER: _ClassVar[int]
    engine_id: str
    num_samples: int
    max_tokens: int
    temperature: float
    include_warmup: bool
    include_memory_test: bool
    def __init__(self, engine_id: _Optional[str] = ..., num_samples: _Optional[int] = ..., max_tokens: _Optional[int] = ..., temperature: _Optional[float] = ..., include_warmup: _Optional[bool] = ..., include_memory_test: _Optional[bool] = ...) -> None: ...

class BenchmarkSample(_message.Message):
    __slots__ = ("tokens", "time_seconds", "tokens_per_second", "first_token_latency_ms", "decode_tokens_per_second")
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    TIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    FIRST_TOKEN_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    DECODE_TOKENS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    tokens: int
    time_seconds: float
    tokens_per_second: float
    first_token_latency_ms: float
    decode_tokens_per_second: float
    def __init__(self, tokens: _Optional[int] = ..., time_seconds: _Optional[float] = ..., tokens_per_second: _Optional[float] = ..., first_token_latency_ms: _Optional[float] = ..., decode_tokens_per_second: _Optional[float] = ...) -> None: ...

class RunBenchmarkResponse(_message.Message):
    __slots__ = ("engine_id", "timestamp_unix_ms", "tokens_per_second", "first_token_latency_ms", "total_tokens", "total_time_seconds", "memory_usage_bytes", "gpu_utilization_percent", "samples")
    ENGINE_ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    FIRST_TOKEN_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_USAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    GPU_UTILIZATION_PERCENT_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    engine_id: str
    timestamp_unix_ms: int
    tokens_per_second: float
    first_token_latency_ms: float
    total_tokens: int
    total_time_seconds: float
    memory_usage_bytes: int
    gpu_utilization_percent: float
    samples: _containers.RepeatedCompositeFieldContainer[BenchmarkSample]
    def __init__(self, engine_id: _Optional[str] = ..., timestamp_unix_ms: _Optional[int] = ..., tokens_per_second: _Optional[float] = ..., first_token_latency_ms: _Optional[float] = ..., total_tokens: _Optional[int] = ..., total_time_seconds: _Optional[float] = ..., memory_usage_bytes: _Optional[int] = ..., gpu_utilization_percent: _Optional[float] = ..., samples: _Optional[_Iterable[_Union[BenchmarkSample, _Mapping]]] = ...) -> None: ...
