from google.api import annotations_pb2 as _annotations_pb2
from tokenwire.v1 import access_pb2 as _access_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LogRecord(_message.Message):
    __slots__ = ("timestamp_unix_ms", "level", "message", "source", "sequence")
    TIMESTAMP_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    timestamp_unix_ms: int
    level: str
    message: str
    source: str
    sequence: int
    def __init__(self, timestamp_unix_ms: _Optional[int] = ..., level: _Optional[str] = ..., message: _Optional[str] = ..., source: _Optional[str] = ..., sequence: _Optional[int] = ...) -> None: ...

class ListLogsRequest(_message.Message):
    __slots__ = ("count",)
    COUNT_FIELD_NUMBER: _ClassVar[int]
    count: int
    def __init__(self, count: _Optional[int] = ...) -> None: ...

class ListLogsResponse(_message.Message):
    __slots__ = ("records",)
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[LogRecord]
    def __init__(self, records: _Optional[_Iterable[_Union[LogRecord, _Mapping]]] = ...) -> None: ...

class StreamLogsRequest(_message.Message):
    __slots__ = ("backlog",)
    BACKLOG_FIELD_NUMBER: _ClassVar[int]
    backlog: int
    def __init__(self, backlog: _Optional[int] = ...) -> None: ...

class StreamLogsResponse(_message.Message):
    __slots__ = ("record",)
    RECORD_FIELD_NUMBER: _ClassVar[int]
    record: LogRecord
    def __init__(self, record: _Optional[_Union[LogRecord, _Mapping]] = ...) -> None: ...
