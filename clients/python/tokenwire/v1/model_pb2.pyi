from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class ModelMetadata(_message.Message):
    __slots__ = ("architecture", "name", "quantization", "parameters", "size_label", "context_length", "has_chat_template")
    ARCHITECTURE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    QUANTIZATION_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    SIZE_LABEL_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_LENGTH_FIELD_NUMBER: _ClassVar[int]
    HAS_CHAT_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    architecture: str
    name: str
    quantization: str
    parameters: int
    size_label: str
    context_length: int
    has_chat_template: bool
    def __init__(self, architecture: _Optional[str] = ..., name: _Optional[str] = ..., quantization: _Optional[str] = ..., parameters: _Optional[int] = ..., size_label: _Optional[str] = ..., context_length: _Optional[int] = ..., has_chat_template: _Optional[bool] = ...) -> None: ...
