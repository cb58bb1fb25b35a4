from google.api import annotations_pb2 as _annotations_pb2
from tokenwire.v1 import access_pb2 as _access_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PerformanceMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PERFORMANCE_MODE_UNSPECIFIED: _ClassVar[PerformanceMode]
    PERFORMANCE_MODE_EFFICIENCY: _ClassVar[PerformanceMode]
    PERFORMANCE_MODE_BALANCED: _ClassVar[PerformanceMode]
    PERFORMANCE_MODE_PERFORMANCE: _ClassVar[PerformanceMode]
PERFORMANCE_MODE_UNSPECIFIED: PerformanceMode
PERFORMANCE_MODE_EFFICIENCY: PerformanceMode
PERFORMANCE_MODE_BALANCED: PerformanceMode
PERFORMANCE_MODE_PERFORMANCE: PerformanceMode

class CpuInfo(_message.Message):
    __slots__ = ("brand", "architecture", "physical_cores", "logical_cores", "base_frequency_ghz", "max_frequency_ghz", "performance_cores", "efficiency_cores")
    BRAND_FIELD_NUMBER: _ClassVar[int]
    ARCHITECTURE_FIELD_NUMBER: _ClassVar[int]
    PHYSICAL_CORES_FIELD_NUMBER: _ClassVar[int]
    LOGICAL_CORES_FIELD_NUMBER: _ClassVar[int]
    BASE_FREQUENCY_GHZ_FIELD_NUMBER: _ClassVar[int]
    MAX_FREQUENCY_GHZ_FIELD_NUMBER: _ClassVar[int]
    PERFORMANCE_CORES_FIELD_NUMBER: _ClassVar[int]
    EFFICIENCY_CORES_FIELD_NUMBER: _ClassVar[int]
    brand: str
    architecture: str
    physical_cores: int
    logical_cores: int
    base_frequency_ghz: float
    max_frequency_ghz: float
    performance_cores: int
    efficiency_cores: int
    def __init__(self, brand: _Optional[str] = ..., architecture: _Optional[str] = ..., physical_cores: _Optional[int] = ..., logical_cores: _Optional[int] = ..., base_frequency_ghz: _Optional[float] = ..., max_frequency_ghz: _Optional[float] = ..., performance_cores: _Optional[int] = ..., efficiency_cores: _Optional[int] = ...) -> None: ...

class MemoryStatus(_message.Message):
    __slots__ = ("total_bytes", "available_bytes", "used_bytes", "usage_percent")
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_BYTES_FIELD_NUMBER: _ClassVar[int]
    USED_BYTES_FIELD_NUMBER: _ClassVar[int]
    USAGE_PERCENT_FIELD_NUMBER: _ClassVar[int]
    total_bytes: int
    available_bytes: int
    used_bytes: int
    usage_percent: float
    def __init__(self, total_bytes: _Optional[int] = ..., available_bytes: _Optional[int] = ..., used_bytes: _Optional[int] = ..., usage_percent: _Optional[float] = ...) -> None: ...

class GpuStatus(_message.Message):
    __slots__ = ("index", "name", "vendor", "memory_total_bytes", "memory_used_bytes", "utilization_percent", "memory_utilization_percent", "temperature_celsius", "power_usage_watts")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VENDOR_FIELD_NUMBER: _ClassVar[int]
    MEMORY_TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_USED_BYTES_FIELD_NUMBER: _ClassVar[int]
    UTILIZATION_PERCENT_FIELD_NUMBER: _ClassVar[int]
    MEMORY_UTILIZATION_PERCENT_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_CELSIUS_FIELD_NUMBER: _ClassVar[int]
    POWER_USAGE_WATTS_FIELD_NUMBER: _ClassVar[int]
    index: int
    name: str
    vendor: str
    memory_total_bytes: int
    memory_used_bytes: int
    utilization_percent: float
    memory_utilization_percent: float
    temperature_celsius: float
    power_usage_watts: float
    def __init__(self, index: _Optional[int] = ..., name: _Optional[str] = ..., vendor: _Optional[str] = ..., memory_total_bytes: _Optional[int] = ..., memory_used_bytes: _Optional[int] = ..., utilization_percent: _Optional[float] = ..., memory_utilization_percent: _Optional[float] = ..., temperature_celsius: _Optional[float] = ..., power_usage_watts: _Optional[float] = ...) -> None: ...

class ThermalStatus(_message.Message):
    __slots__ = ("cpu_temperature_celsius", "thermal_state", "throttling")
    CPU_TEMPERATURE_CELSIUS_FIELD_NUMBER: _ClassVar[int]
    THERMAL_STATE_FIELD_NUMBER: _ClassVar[int]
    THROTTLING_FIELD_NUMBER: _ClassVar[int]
    cpu_temperature_celsius: float
    thermal_state: str
    throttling: bool
    def __init__(self, cpu_temperature_celsius: _Optional[float] = ..., thermal_state: _Optional[str] = ..., throttling: _Optional[bool] = ...) -> None: ...

class GetHardwareInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetHardwareInfoResponse(_message.Message):
    __slots__ = ("cpu", "memory", "gpus", "thermal", "os_version", "python_version", "backend_versions", "chip_type", "chip_variant", "server_version")
    class BackendVersionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CPU_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    THERMAL_FIELD_NUMBER: _ClassVar[int]
    OS_VERSION_FIELD_NUMBER: _ClassVar[int]
    PYTHON_VERSION_FIELD_NUMBER: _ClassVar[int]
    BACKEND_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    CHIP_TYPE_FIELD_NUMBER: _ClassVar[int]
    CHIP_VARIANT_FIELD_NUMBER: _ClassVar[int]
    SERVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    cpu: CpuInfo
    memory: MemoryStatus
    gpus: _containers.RepeatedCompositeFieldContainer[GpuStatus]
    thermal: ThermalStatus
    os_version: str
    python_version: str
    backend_versions: _containers.ScalarMap[str, str]
    chip_type: str
    chip_variant: str
    server_version: str
    def __init__(self, cpu: _Optional[_Union[CpuInfo, _Mapping]] = ..., memory: _Optional[_Union[MemoryStatus, _Mapping]] = ..., gpus: _Optional[_Iterable[_Union[GpuStatus, _Mapping]]] = ..., thermal: _Optional[_Union[ThermalStatus, _Mapping]] = ..., os_version: _Optional[str] = ..., python_version: _Optional[str] = ..., backend_versions: _Optional[_Mapping[str, str]] = ..., chip_type: _Optional[str] = ..., chip_variant: _Optional[str] = ..., server_version: _Optional[str] = ...) -> None: ...

class CpuUsage(_message.Message):
    __slots__ = ("usage_percent", "per_core_usage_percent", "frequency_ghz", "load_average")
    USAGE_PERCENT_FIELD_NUMBER: _ClassVar[int]
    PER_CORE_USAGE_PERCENT_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_GHZ_FIELD_NUMBER: _ClassVar[int]
    LOAD_AVERAGE_FIELD_NUMBER: _ClassVar[int]
    usage_percent: float
    per_core_usage_percent: _containers.RepeatedScalarFieldContainer[float]
    frequency_ghz: _containers.RepeatedScalarFieldContainer[float]
    load_average: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, usage_percent: _Optional[float] = ..., per_core_usage_percent: _Optional[_Iterable[float]] = ..., frequency_ghz: _Optional[_Iterable[float]] = ..., load_average: _Optional[_Iterable[float]] = ...) -> None: ...

class ProcessStatus(_message.Message):
    __slots__ = ("pid", "cpu_percent", "rss_bytes", "memory_percent", "threads", "file_descriptors", "uptime_seconds")
    PID_FIELD_NUMBER: _ClassVar[int]
    CPU_PERCENT_FIELD_NUMBER: _ClassVar[int]
    RSS_BYTES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_PERCENT_FIELD_NUMBER: _ClassVar[int]
    THREADS_FIELD_NUMBER: _ClassVar[int]
    FILE_DESCRIPTORS_FIELD_NUMBER: _ClassVar[int]
    UPTIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    pid: int
    cpu_percent: float
    rss_bytes: int
    memory_percent: float
    threads: int
    file_descriptors: int
    uptime_seconds: float
    def __init__(self, pid: _Optional[int] = ..., cpu_percent: _Optional[float] = ..., rss_bytes: _Optional[int] = ..., memory_percent: _Optional[float] = ..., threads: _Optional[int] = ..., file_descriptors: _Optional[int] = ..., uptime_seconds: _Optional[float] = ...) -> None: ...

class HardwareMetrics(_message.Message):
    __slots__ = ("timestamp_unix_ms", "cpu", "memory", "gpus", "thermal", "process")
    TIMESTAMP_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    CPU_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    THERMAL_FIELD_NUMBER: _ClassVar[int]
    PROCESS_FIELD_NUMBER: _ClassVar[int]
    timestamp_unix_ms: int
    cpu: CpuUsage
    memory: MemoryStatus
    gpus: _containers.RepeatedCompositeFieldContainer[GpuStatus]
    thermal: ThermalStatus
    process: ProcessStatus
    def __init__(self, timestamp_unix_ms: _Optional[int] = ..., cpu: _Optional[_Union[CpuUsage, _Mapping]] = ..., memory: _Optional[_Union[MemoryStatus, _Mapping]] = ..., gpus: _Optional[_Iterable[_Union[GpuStatus, _Mapping]]] = ..., thermal: _Optional[_Union[ThermalStatus, _Mapping]] = ..., process: _Optional[_Union[ProcessStatus, _Mapping]] = ...) -> None: ...

class GetHardwareMetricsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetHardwareMetricsResponse(_message.Message):
    __slots__ = ("metrics",)
    METRICS_FIELD_NUMBER: _ClassVar[int]
    metrics: HardwareMetrics
    def __init__(self, metrics: _Optional[_Union[HardwareMetrics, _Mapping]] = ...) -> None: ...

class WatchHardwareMetricsRequest(_message.Message):
    __slots__ = ("interval_ms",)
    INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    interval_ms: int
    def __init__(self, interval_ms: _Optional[int] = ...) -> None: ...

class WatchHardwareMetricsResponse(_message.Message):
    __slots__ = ("metrics",)
    METRICS_FIELD_NUMBER: _ClassVar[int]
    metrics: HardwareMetrics
    def __init__(self, metrics: _Optional[_Union[HardwareMetrics, _Mapping]] = ...) -> None: ...

class EngineTuning(_message.Message):
    __slots__ = ("engine_id", "n_threads", "n_batch")
    ENGINE_ID_FIELD_NUMBER: _ClassVar[int]
    N_THREADS_FIELD_NUMBER: _ClassVar[int]
    N_BATCH_FIELD_NUMBER: _ClassVar[int]
    engine_id: str
    n_threads: int
    n_batch: int
    def __init__(self, engine_id: _Optional[str] = ..., n_threads: _Optional[int] = ..., n_batch: _Optional[int] = ...) -> None: ...

class GetPerformanceModeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetPerformanceModeResponse(_message.Message):
    __slots__ = ("mode", "engines")
    MODE_FIELD_NUMBER: _ClassVar[int]
    ENGINES_FIELD_NUMBER: _ClassVar[int]
    mode: PerformanceMode
    engines: _containers.RepeatedCompositeFieldContainer[EngineTuning]
    def __init__(self, mode: _Optional[_Union[PerformanceMode, str]] = ..., engines: _Optional[_Iterable[_Union[EngineTuning, _Mapping]]] = ...) -> None: ...

class SetPerformanceModeRequest(_message.Message):
    __slots__ = ("mode",)
    MODE_FIELD_NUMBER: _ClassVar[int]
    mode: PerformanceMode
    def __init__(self, mode: _Optional[_Union[PerformanceMode, str]] = ...) -> None: ...

class SetPerformanceModeResponse(_message.Message):
    __slots__ = ("mode", "engines")
    MODE_FIELD_NUMBER: _ClassVar[int]
    ENGINES_FIELD_NUMBER: _ClassVar[int]
    mode: PerformanceMode
    engines: _containers.RepeatedCompositeFieldContainer[EngineTuning]
    def __init__(self, mode: _Optional[_Union[PerformanceMode, str]] = ..., engines: _Optional[_Iterable[_Union[EngineTuning, _Mapping]]] = ...) -> None: ...
