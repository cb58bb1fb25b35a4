"""The Open Inference Protocol (KServe v2, Triton's `inference` package) in the terms of Triton's
vLLM backend: tensors in and out, and the requests they make.

A model is an engine. Its inputs are those of the vLLM backend's model (one element each, shape
[1]): `text_input` (BYTES, the prompt, required), `stream` (BOOL: one response per token delta
on ModelStreamInfer), `sampling_parameters` (BYTES: a JSON object, vLLM's SamplingParams names,
numbers possibly as strings as the backend's examples send them) and `exclude_input_in_output`
(BOOL: false puts the prompt before the generated text; the default is false, or true when
streaming, where false is refused); its output is `text_output` (BYTES). Also as the backend has
them: `return_finish_reason` and `return_num_output_tokens` (BOOL inputs) add the outputs
`finish_reason` (BYTES) and `num_output_tokens` (UINT32).

Tensor data comes from `raw_input_contents` (Triton's wire form: BYTES elements each led by a
4-byte little-endian length, BOOL one byte per element) or from the tensor's typed `contents`;
responses use `raw_output_contents`, as Triton does. Every problem is an InvalidArgument naming
the tensor (or `sampling_parameters.<key>`), which the error table makes INVALID_ARGUMENT.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from typing import Any

from server import convert
from server.core.types import Delta, FinishReason, GenerationRequest
from server.errors import FieldViolation, InvalidArgument, NotFound
from tokenwire.inference import grpc_service_pb2 as pb
from tokenwire.v1 import generation_service_pb2 as svc_pb

TEXT_INPUT = "text_input"
STREAM = "stream"
SAMPLING_PARAMETERS = "sampling_parameters"
EXCLUDE_INPUT = "exclude_input_in_output"
RETURN_FINISH_REASON = "return_finish_reason"
RETURN_NUM_OUTPUT_TOKENS = "return_num_output_tokens"
TEXT_OUTPUT = "text_output"
FINISH_REASON = "finish_reason"
NUM_OUTPUT_TOKENS = "num_output_tokens"

#: name -> (datatype, required), in the order ModelMetadata lists them.
INPUTS: dict[str, tuple[str, bool]] = {
    TEXT_INPUT: ("BYTES", True),
    STREAM: ("BOOL", False),
    SAMPLING_PARAMETERS: ("BYTES", False),
    EXCLUDE_INPUT: ("BOOL", False),
    RETURN_FINISH_REASON: ("BOOL", False),
    RETURN_NUM_OUTPUT_TOKENS: ("BOOL", False),
}
#: name -> (datatype, shape); -1: as many as the request had prompts (always 1 here).
OUTPUTS: dict[str, tuple[str, list[int]]] = {
    TEXT_OUTPUT: ("BYTES", [-1]),
    FINISH_REASON: ("BYTES", [-1]),
    NUM_OUTPUT_TOKENS: ("UINT32", [-1]),
}
#: The one version every model has.
VERSION = "1"
#: Triton's request parameter for decoupled streams: end each request with a response that
#: carries `triton_final_response: true`.
ENABLE_FINAL_RESPONSE = "triton_enable_empty_final_response"
FINAL_RESPONSE = "triton_final_response"
#: vLLM's default max_tokens (SamplingParams), which Triton's backend keeps.
DEFAULT_MAX_TOKENS = 16
MAX_PARAMETERS_BYTES = 64 * 1024

# sampling_parameters key -> (the GenerateRequest field it fills, its kind).
_SAMPLING_KEYS: dict[str, tuple[str, str]] = {
    "temperature": ("sampling.temperature", "float"),
    "top_p": ("sampling.top_p", "float"),
    "top_k": ("sampling.top_k", "int"),
    "min_p": ("sampling.min_p", "float"),
    "repetition_penalty": ("sampling.repeat_penalty", "float"),
    "presence_penalty": ("sampling.presence_penalty", "float"),
    "frequency_penalty": ("sampling.frequency_penalty", "float"),
    "seed": ("sampling.seed", "int"),
    "max_tokens": ("max_tokens", "int"),
    "stop": ("stop", "strings"),
    "n": ("", "int"),
}
_FIELD_TO_KEY = {path: key for key, (path, _) in _SAMPLING_KEYS.items() if path}
_FINISH_NAMES = {FinishReason.STOP: "stop", FinishReason.STOP_SEQUENCE: "stop",
                 FinishReason.LENGTH: "length", FinishReason.TOOL_CALLS: "stop"}


class ModelVersionNotFound(NotFound):
    reason = "MODEL_VERSION_NOT_FOUND"

    def __init__(self, model: str, version: str):
        super().__init__(f"model '{model}' has no version '{version}' (its one version is "
                         f"'{VERSION}')", metadata={"model": model, "version": version})


def check_version(model: str, version: str) -> None:
    if version not in ("", VERSION):
        raise ModelVersionNotFound(model, version)


def require_name(name: str, field: str) -> str:
    if not name:
        raise InvalidArgument.single(field, "name the model (an engine id)")
    return name


# -- tensors in -----------------------------------------------------------------------------------


def _invalid(tensor: str, description: str) -> InvalidArgument:
    return InvalidArgument.single(tensor, description, reason="INVALID_TENSOR")


def _raw_bytes_elements(name: str, raw: bytes) -> list[bytes]:
    out, at = [], 0
    while at < len(raw):
        if at + 4 > len(raw):
            raise _invalid(name, "raw BYTES data is cut short (each element is a 4-byte "
                                 "little-endian length, then that many bytes)")
        (size,) = struct.unpack_from("<I", raw, at)
        at += 4
        if at + size > len(raw):
            raise _invalid(name, f"raw BYTES element of {size} bytes runs past the data "
                                 f"({len(raw) - at} bytes left)")
        out.append(raw[at:at + size])
        at += size
    return out


def _elements(tensor: pb.ModelInferRequest.InferInputTensor, raw: bytes | None) -> list:
    name = tensor.name
    if tensor.datatype == "BYTES":
        return (_raw_bytes_elements(name, raw) if raw is not None
                else list(tensor.contents.bytes_contents))
    if tensor.datatype == "BOOL":
        if raw is not None:
            if any(b not in (0, 1) for b in raw):
                raise _invalid(name, "raw BOOL data must hold bytes 0 or 1")
            return [bool(b) for b in raw]
        return list(tensor.contents.bool_contents)
    raise AssertionError(tensor.datatype)  # datatypes are checked before


def _one_element(tensor: pb.ModelInferRequest.InferInputTensor, raw: bytes | None) -> Any:
    name = tensor.name
    if any(d < 0 for d in tensor.shape):
        raise _invalid(name, f"shape {list(tensor.shape)} has a negative dimension")
    count = math.prod(tensor.shape) if tensor.shape else 0
    if count != 1:
        raise _invalid(name, f"must hold one element (shape [1]); shape {list(tensor.shape)} "
                             f"holds {count}: send one prompt per request")
    values = _elements(tensor, raw)
    if len(values) != 1:
        raise _invalid(name, f"shape {list(tensor.shape)} says one element but the data holds "
                             f"{len(values)}")
    return values[0]


def input_values(request: pb.ModelInferRequest) -> dict[str, Any]:
    """The request's inputs by name (one value each), checked against the model's inputs."""
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise _invalid("raw_input_contents", f"holds {len(raw)} entries for "
                                             f"{len(request.inputs)} inputs: with raw contents, "
                                             "every input has one, in order")
    values: dict[str, Any] = {}
    for i, tensor in enumerate(request.inputs):
        name = tensor.name
        if name not in INPUTS:
            raise _invalid(name or f"inputs[{i}]", f"unknown input tensor {name!r} (inputs: "
                                                   f"{', '.join(INPUTS)})")
        if name in values:
            raise _invalid(name, "sent twice")
        datatype = INPUTS[name][0]
        if tensor.datatype != datatype:
            raise _invalid(name, f"must be {datatype} (got {tensor.datatype or 'no datatype'!r})")
        if raw and tensor.HasField("contents"):
            raise _invalid(name, "has both contents and raw_input_contents")
        values[name] = _one_element(tensor, raw[i] if raw else None)
    for name, (_, required) in INPUTS.items():
        if required and name not in values:
            raise _invalid(name, f"the input tensor {name!r} ({INPUTS[name][0]}, shape [1]) is "
                                 "required")
    return values


def _parameter_value(parameter: pb.InferParameter) -> Any:
    which = parameter.WhichOneof("parameter_choice")
    return None if which is None else getattr(parameter, which)


# -- the request ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class InferCall:
    """One ModelInferRequest, understood: what to generate and how to answer."""

    model: str
    id: str
    generation: GenerationRequest
    stream: bool
    prepend_input: bool
    outputs: tuple[str, ...]
    final_response_flag: bool


def _number(key: str, value: Any, kind: str) -> int | float:
    if isinstance(value, str):  # the backend's own examples send {"temperature": "0.1"}
        try:
            value = int(value) if kind == "int" else float(value)
        except ValueError:
            raise _invalid(f"{SAMPLING_PARAMETERS}.{key}", f"must be a number (got "
                                                           f"{value[:40]!r})") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _invalid(f"{SAMPLING_PARAMETERS}.{key}", f"must be a number (got "
                                                       f"{type(value).__name__})")
    if kind == "int":
        if isinstance(value, float):
            if not value.is_integer():
                raise _invalid(f"{SAMPLING_PARAMETERS}.{key}", f"must be an integer (got {value})")
            value = int(value)
    return value


def _sampling(parameters: dict[str, Any], generate: svc_pb.GenerateRequest) -> None:
    """Fills `generate` from vLLM-named sampling parameters."""
    for key, value in parameters.items():
        if key not in _SAMPLING_KEYS:
            raise _invalid(f"{SAMPLING_PARAMETERS}.{key}", "not supported by this server "
                                                           f"(supported: {', '.join(_SAMPLING_KEYS)})")
        if value is None:
            continue
        path, kind = _SAMPLING_KEYS[key]
        where = f"{SAMPLING_PARAMETERS}.{key}"
        if kind == "strings":
            stops = [value] if isinstance(value, str) else value
            if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
                raise _invalid(where, "must be a string or a list of strings")
            generate.stop.extend(stops)
            continue
        number = _number(key, value, kind)
        if key == "n":
            if number != 1:
                raise _invalid(where, f"only 1 is supported (got {number})")
            continue
        if key == "top_k" and number == -1:
            number = 0  # vLLM's "no top-k"
        if key == "seed" and number < 0:
            raise _invalid(where, f"must be >= 0 (got {number})")
        target = generate.sampling if path.startswith("sampling.") else generate
        try:
            setattr(target, path.rsplit(".", 1)[-1], number)
        except (ValueError, TypeError, OverflowError):
            raise _invalid(where, f"is out of range (got {number})") from None


def _sampling_parameters(values: dict[str, Any], request: pb.ModelInferRequest) -> dict[str, Any]:
    if SAMPLING_PARAMETERS in values:
        data = values[SAMPLING_PARAMETERS]
        if len(data) > MAX_PARAMETERS_BYTES:
            raise _invalid(SAMPLING_PARAMETERS, f"at most {MAX_PARAMETERS_BYTES} bytes")
        try:
            parsed = json.loads(data.decode("utf-8")) if data.strip() else {}
        except (UnicodeDecodeError, ValueError) as exc:
            raise _invalid(SAMPLING_PARAMETERS, f"must be a JSON object text ({exc})") from None
        if not isinstance(parsed, dict):
            raise _invalid(SAMPLING_PARAMETERS, "must be a JSON object text")
        return parsed
    # As the backend does without the tensor: the request's own parameters (Triton's reserved
    # ones, and those tritonclient sets itself, aside).
    return {key: _parameter_value(value) for key, value in request.parameters.items()
            if not key.startswith("triton_") and key not in ("sequence_id", "sequence_start",
                                                              "sequence_end", "priority",
                                                              "timeout", "headers")}


def infer_call(request: pb.ModelInferRequest, *, request_id: str) -> InferCall:
    """Validates a ModelInferRequest into what to generate; InvalidArgument naming the tensor."""
    values = input_values(request)
    try:
        prompt = values[TEXT_INPUT].decode("utf-8")
    except UnicodeDecodeError:
        raise _invalid(TEXT_INPUT, "must be UTF-8 text") from None
    if not prompt:
        raise _invalid(TEXT_INPUT, "must not be empty")
    stream = bool(values.get(STREAM, False))
    if EXCLUDE_INPUT in values:
        prepend = not values[EXCLUDE_INPUT]
        if prepend and stream:
            raise _invalid(EXCLUDE_INPUT, "when streaming, false is not allowed (as in Triton's "
                                          "vLLM backend): deltas never repeat the prompt")
    else:
        prepend = not stream
    generate = svc_pb.GenerateRequest(prompt=prompt, max_tokens=DEFAULT_MAX_TOKENS)
    _sampling(_sampling_parameters(values, request), generate)
    try:
        generation = convert.generation_request_from_pb(generate, request_id=request_id)
    except InvalidArgument as exc:
        raise InvalidArgument([FieldViolation(_tensor_field(v.field), v.description)
                               for v in exc.violations], reason="INVALID_TENSOR") from None
    outputs = _requested_outputs(request, values)
    flag = _parameter_value(request.parameters[ENABLE_FINAL_RESPONSE]) \
        if ENABLE_FINAL_RESPONSE in request.parameters else False
    return InferCall(model=request.model_name, id=request.id, generation=generation,
                     stream=stream, prepend_input=prepend, outputs=outputs,
                     final_response_flag=flag is True)


def _tensor_field(field: str) -> str:
    """A GenerateRequest field path -> the tensor (and key) the client sent it in."""
    key = _FIELD_TO_KEY.get(field)
    if key is not None:
        return f"{SAMPLING_PARAMETERS}.{key}"
    return TEXT_INPUT if field == "prompt" else field


def _requested_outputs(request: pb.ModelInferRequest, values: dict[str, Any]) -> tuple[str, ...]:
    available = [TEXT_OUTPUT]
    if values.get(RETURN_FINISH_REASON):
        available.append(FINISH_REASON)
    if values.get(RETURN_NUM_OUTPUT_TOKENS):
        available.append(NUM_OUTPUT_TOKENS)
    if not request.outputs:
        return tuple(available)
    names: list[str] = []
    for i, output in enumerate(request.outputs):
        if output.name not in available:
            hint = (f" (send the BOOL input 'return_{output.name}' true for it)"
                    if output.name in (FINISH_REASON, NUM_OUTPUT_TOKENS) else "")
            raise _invalid(output.name or f"outputs[{i}]",
                           f"unknown output tensor {output.name!r}{hint}; outputs: "
                           f"{', '.join(available)}")
        if output.name not in names:
            names.append(output.name)
    return tuple(names)


# -- tensors out ----------------------------------------------------------------------------------


def _raw_bytes(*elements: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(e)) + e for e in elements)


def infer_response(call: InferCall, model: str, text: str, *, finish: FinishReason | None,
                   tokens: int, final: bool | None = None) -> pb.ModelInferResponse:
    """One response: `text` and, where asked for, the finish reason and token count. `final`
    (for streams that asked for it) sets the `triton_final_response` parameter."""
    response = pb.ModelInferResponse(model_name=model, model_version=VERSION, id=call.id)
    for name in call.outputs:
        datatype, _ = OUTPUTS[name]
        if name == TEXT_OUTPUT:
            raw = _raw_bytes(text.encode("utf-8"))
        elif name == FINISH_REASON:
            raw = _raw_bytes(_FINISH_NAMES[finish].encode() if finish else b"None")
        else:
            raw = struct.pack("<I", tokens)
        response.outputs.add(name=name, datatype=datatype, shape=[1])
        response.raw_output_contents.append(raw)
    if final is not None:
        response.parameters[FINAL_RESPONSE].bool_param = final
    return response


def final_empty_response(call: InferCall, model: str) -> pb.ModelInferResponse:
    """The empty response that ends a request on a stream that asked for one."""
    response = pb.ModelInferResponse(model_name=model, model_version=VERSION, id=call.id)
    response.parameters[FINAL_RESPONSE].bool_param = True
    return response


def delta_tokens(delta: Delta) -> int:
    return len(delta.token_ids)


def metadata(model: str) -> pb.ModelMetadataResponse:
    tensor = pb.ModelMetadataResponse.TensorMetadata
    return pb.ModelMetadataResponse(
        name=model, versions=[VERSION], platform="tokenwire",
        inputs=[tensor(name=name, datatype=datatype, shape=[1])
                for name, (datatype, _) in INPUTS.items()],
        outputs=[tensor(name=name, datatype=datatype, shape=shape)
                 for name, (datatype, shape) in OUTPUTS.items()])
