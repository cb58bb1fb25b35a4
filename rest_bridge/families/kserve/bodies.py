"""The bodies of the Open Inference Protocol's REST form (KServe v2 JSON tensors), and their
conversion to and from `inference.ModelInferRequest` / `ModelInferResponse`.

Only the JSON encoding lives here (a tensor's `data` as a flat or nested array, row-major, into the
typed `contents` field of its datatype; raw output bytes back into JSON values). Which tensors a
model takes, their datatypes and shapes, are the server's to check.
"""

from __future__ import annotations

import struct
from typing import Any, Union


from rest_bridge.bodies import Answer, Body
from rest_bridge.errors import HttpError
from tokenwire.inference import grpc_service_pb2 as pb

NAMESPACE = "kserve"

ParameterValue = Union[bool, int, float, str]
INT64 = (-2**63, 2**63 - 1)

# datatype -> (the InferTensorContents field its JSON data fills, the JSON kind it takes).
CONTENTS: dict[str, tuple[str, str]] = {
    "BOOL": ("bool_contents", "bool"), "BYTES": ("bytes_contents", "string"),
    "INT8": ("int_contents", "int"), "INT16": ("int_contents", "int"),
    "INT32": ("int_contents", "int"), "INT64": ("int64_contents", "int"),
    "UINT8": ("uint_contents", "int"), "UINT16": ("uint_contents", "int"),
    "UINT32": ("uint_contents", "int"), "UINT64": ("uint64_contents", "int"),
    "FP32": ("fp32_contents", "number"), "FP64": ("fp64_contents", "number"),
}
# datatype -> struct format of one element of raw output data (BYTES is length-prefixed).
RAW_FORMATS = {"BOOL": "?", "INT8": "b", "INT16": "h", "INT32": "i", "INT64": "q", "UINT8": "B",
               "UINT16": "H", "UINT32": "I", "UINT64": "Q", "FP32": "f", "FP64": "d"}


class Error(Answer):
    """The KServe v2 error body."""

    error: str


class Live(Answer):
    live: bool


class Ready(Answer):
    ready: bool


class ModelReady(Answer):
    name: str
    ready: bool


class ServerMetadata(Answer):
    name: str
    version: str
    extensions: list[str]


class TensorMetadata(Answer):
    name: str
    datatype: str
    shape: list[int]
    """-1: a dimension of any size."""


class ModelMetadata(Answer):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]

    @classmethod
    def from_pb(cls, answer: pb.ModelMetadataResponse) -> "ModelMetadata":
        tensors = lambda items: [TensorMetadata(name=t.name, datatype=t.datatype,  # noqa: E731
                                                shape=list(t.shape)) for t in items]
        return cls(name=answer.name, versions=list(answer.versions), platform=answer.platform,
                   inputs=tensors(answer.inputs), outputs=tensors(answer.outputs))


class InferInput(Body):
    PROTO = pb.ModelInferRequest.InferInputTensor
    # `data` goes into the typed `contents` field of its datatype and `parameters` into
    # InferParameter values, each range-checked as it is converted (_fill, _parameters).
    PROTO_FIELDS = {"data": None, "parameters": None}

    name: str
    """The input tensor's name (`text_input`, `stream`, `sampling_parameters`,
    `exclude_input_in_output`)."""
    shape: list[int]
    """Its shape (`[1]` for each input of these models)."""
    datatype: str
    """`BYTES` (strings), `BOOL`, `INT8`..`INT64`, `UINT8`..`UINT64`, `FP32` or `FP64`."""
    parameters: dict[str, ParameterValue] | None = None
    data: list[Any]
    """The elements, row-major: a flat array or nested arrays (BYTES as strings)."""


class RequestedOutput(Body):
    PROTO = pb.ModelInferRequest.InferRequestedOutputTensor
    PROTO_FIELDS = {"parameters": None}

    name: str
    """An output tensor's name (`text_output`; `finish_reason` and `num_output_tokens` when the
    request sets `return_finish_reason` / `return_num_output_tokens`)."""
    parameters: dict[str, ParameterValue] | None = None


class InferRequest(Body):
    """A KServe v2 inference request with JSON tensor data."""

    PROTO = pb.ModelInferRequest
    PROTO_FIELDS = {"parameters": None}

    id: str | None = None
    """Returned as the response's `id`."""
    parameters: dict[str, ParameterValue] | None = None
    inputs: list[InferInput]
    outputs: list[RequestedOutput] | None = None
    """The outputs to return; all of them when absent."""

    def to_pb(self, model: str, version: str = "") -> pb.ModelInferRequest:
        request = pb.ModelInferRequest(model_name=model, model_version=version, id=self.id or "")
        _parameters(request.parameters, self.parameters, "parameters")
        for i, given in enumerate(self.inputs):
            tensor = request.inputs.add(name=given.name, datatype=given.datatype,
                                        shape=given.shape)
            _parameters(tensor.parameters, given.parameters, f"inputs[{i}].parameters")
            _fill(tensor, _flat(given.data), f"inputs[{i}].data")
        for i, wanted in enumerate(self.outputs or ()):
            output = request.outputs.add(name=wanted.name)
            _parameters(output.parameters, wanted.parameters, f"outputs[{i}].parameters")
        return request


class OutputTensor(Answer):
    name: str
    datatype: str
    shape: list[int]
    data: list[Union[bool, int, float, str]]


class InferResponse(Answer):
    model_name: str
    model_version: str
    id: str
    parameters: dict[str, ParameterValue]
    outputs: list[OutputTensor]

    @classmethod
    def from_pb(cls, answer: pb.ModelInferResponse) -> "InferResponse":
        raw = list(answer.raw_output_contents)
        outputs = [OutputTensor(name=t.name, datatype=t.datatype, shape=list(t.shape),
                                data=_values(t, raw[i] if i < len(raw) else None))
                   for i, t in enumerate(answer.outputs)]
        parameters = {k: getattr(v, v.WhichOneof("parameter_choice"))
                      for k, v in answer.parameters.items() if v.WhichOneof("parameter_choice")}
        return cls(model_name=answer.model_name, model_version=answer.model_version,
                   id=answer.id, parameters=parameters, outputs=outputs)


# -- JSON data <-> tensors ------------------------------------------------------------------------


def _parameters(target, given: dict[str, Any] | None, where: str) -> None:
    for key, value in (given or {}).items():
        if isinstance(value, bool):
            target[key].bool_param = value
        elif isinstance(value, int):
            if not INT64[0] <= value <= INT64[1]:
                raise HttpError(400, f"'{where}.{key}' is out of range for an int64 parameter",
                                param=f"{where}.{key}")
            target[key].int64_param = value
        elif isinstance(value, float):
            target[key].double_param = value
        else:
            target[key].string_param = value


def _flat(data: list) -> list:
    out: list = []
    stack = [iter(data)]
    while stack:
        item = next(stack[-1], _END)
        if item is _END:
            stack.pop()
        elif isinstance(item, list):
            stack.append(iter(item))
        else:
            out.append(item)
    return out


_END = object()


def _fill(tensor, values: list, where: str) -> None:
    if tensor.datatype not in CONTENTS:
        raise HttpError(400, f"datatype {tensor.datatype!r} cannot be sent as JSON data here "
                             f"(JSON datatypes: {', '.join(CONTENTS)})",
                        param=where.rsplit(".", 1)[0] + ".datatype")
    field, kind = CONTENTS[tensor.datatype]
    ok = {"bool": lambda v: isinstance(v, bool),
          "string": lambda v: isinstance(v, str),
          "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
          "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)}[kind]
    for j, value in enumerate(values):
        if not ok(value):
            raise HttpError(400, f"'{where}' must hold {kind} elements for datatype "
                                 f"{tensor.datatype} (element {j} is {type(value).__name__})",
                            param=where)
    if kind == "string":
        values = [v.encode("utf-8", "surrogatepass") for v in values]
    try:
        getattr(tensor.contents, field).extend(values)
    except (ValueError, TypeError, OverflowError):
        raise HttpError(400, f"'{where}' holds a value out of range for datatype "
                             f"{tensor.datatype}", param=where) from None


def _values(tensor, raw: bytes | None) -> list:
    if raw is None:
        field = CONTENTS.get(tensor.datatype, (None,))[0]
        values = list(getattr(tensor.contents, field)) if field else []
    elif tensor.datatype == "BYTES":
        values, at = [], 0
        while at + 4 <= len(raw):
            (size,) = struct.unpack_from("<I", raw, at)
            values.append(raw[at + 4:at + 4 + size])
            at += 4 + size
    elif tensor.datatype in RAW_FORMATS:
        fmt = "<" + RAW_FORMATS[tensor.datatype]
        values = [v for (v,) in struct.iter_unpack(fmt, raw[:len(raw) - len(raw) %
                                                            struct.calcsize(fmt)])]
    else:
        values = []
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in values]


DOCUMENTED = (Error, Live, Ready, ModelReady, ServerMetadata, ModelMetadata, InferRequest,
              InferResponse)
