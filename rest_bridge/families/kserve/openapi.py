"""OpenAPI documentation of the Open Inference Protocol's REST form
(`families.kserve.routes`); schemas from `families.kserve.bodies`, namespaced `kserve.*`."""

from __future__ import annotations

from rest_bridge.bodies import schemas
from rest_bridge.families.kserve import bodies
from rest_bridge.openapi_parts import Operations, answer, path_parameter

TAG = "Open Inference Protocol (KServe v2)"
TAGS = [{
    "name": TAG,
    "description": "The KServe v2 / Triton inference protocol over REST (its gRPC form, "
                   "`inference.GRPCInferenceService`, is served on the gRPC port). Models are "
                   "the engines, with the tensors of Triton's vLLM backend: inputs `text_input` "
                   "(BYTES, the prompt), `stream` (BOOL; streaming needs the gRPC "
                   "ModelStreamInfer), `sampling_parameters` (BYTES: a JSON object text of "
                   "vLLM's names: temperature, top_p, top_k, min_p, repetition_penalty, "
                   "presence_penalty, frequency_penalty, seed, max_tokens (default 16), stop, n "
                   "(1)), `exclude_input_in_output` (BOOL; false, the default, puts the prompt "
                   "before the generated text), `return_finish_reason`, "
                   "`return_num_output_tokens` (BOOL); outputs `text_output` (BYTES), "
                   "`finish_reason` (BYTES), `num_output_tokens` (UINT32), each of shape [1]. "
                   "Each model has the one version `1`. Errors answer `{\"error\": \"...\"}`.",
}]

NS = bodies.NAMESPACE
SCHEMAS = schemas(NS, *bodies.DOCUMENTED)
_op = Operations(NS, TAG, bodies.Error)

_ERRORS = {
    "400": "A tensor is missing, unknown, of the wrong datatype or shape, or holds an invalid "
           "value (the message names it: `text_input: ...`, `sampling_parameters.top_p: ...`); "
           "or the body is not a KServe v2 JSON request.",
    "401": "An API key is required and was missing or wrong.",
    "403": "The key may not call this route.",
    "404": "No model (engine) has this name, or it has no such version (its one version is 1).",
    "413": "The request body is larger than the server's limit.",
    "429": "A rate limit or the engine's queue is full.",
    "500": "The server failed.",
    "503": "The model is loading, failed to load, or the server is draining.",
    "504": "The request's deadline passed before the answer was ready.",
}


def _errors(*codes: str) -> dict:
    return {code: _ERRORS[code] for code in codes}


MODEL = path_parameter("model", "The model's name: an engine id (`default`).")
VERSION = path_parameter("version", "The model version: `1`, each model's only one.")
_READ = ("401", "403", "429", "500", "503", "504")


def _not_ready(what: str) -> dict:
    return {"400": answer(f"{what} is not ready (the protocol's false is a 4xx).",
                          _op.ref(bodies.ModelReady if what == "The model" else bodies.Ready))}


def _model_paths(prefix: str, parameters: list[dict]) -> dict:
    return {
        prefix: {"get": _op(
            "KServe_ModelMetadata" + ("Version" if len(parameters) > 1 else ""),
            "Model metadata", bodies.ModelMetadata, parameters=parameters,
            description="The model's versions and its input and output tensors (name, "
                        "datatype, shape; -1 is a dimension of any size).",
            errors=_errors("400", "404", *_READ))},
        prefix + "/ready": {"get": _op(
            "KServe_ModelReady" + ("Version" if len(parameters) > 1 else ""),
            "Model readiness", bodies.ModelReady, parameters=parameters,
            description="200 when the model can take requests (loaded, or loaded on first "
                        "use), 400 when it cannot (loading, failed, unloaded, draining).",
            responses=_not_ready("The model"), errors=_errors("404", *_READ))},
        prefix + "/infer": {"post": _op(
            "KServe_ModelInfer" + ("Version" if len(parameters) > 1 else ""),
            "Inference (JSON tensors)", bodies.InferResponse, parameters=parameters,
            description="One generation, answered whole: `text_output` holds the prompt (unless "
                        "`exclude_input_in_output` is true) and the generated text. Tensor data "
                        "is JSON (BYTES as strings); the binary tensor extension is not "
                        "supported. `stream` true is a 400 here: use the gRPC ModelStreamInfer "
                        "for one response per token delta.",
            request=bodies.InferRequest,
            request_example={"id": "1", "inputs": [
                {"name": "text_input", "shape": [1], "datatype": "BYTES",
                 "data": ["The capital of France is"]},
                {"name": "sampling_parameters", "shape": [1], "datatype": "BYTES",
                 "data": ["{\"temperature\": 0, \"max_tokens\": 8}"]}]},
            errors=_errors("400", "404", "413", *_READ))},
    }


PATHS: dict[str, dict] = {
    "/v2": {"get": _op(
        "KServe_ServerMetadata", "Server metadata", bodies.ServerMetadata,
        description="The server's name (`tokenwire`), version and protocol extensions.",
        errors=_errors(*_READ))},
    "/v2/health/live": {"get": _op(
        "KServe_ServerLive", "Server liveness", bodies.Live,
        description="200 while the server answers.", errors=_errors(*_READ))},
    "/v2/health/ready": {"get": _op(
        "KServe_ServerReady", "Server readiness", bodies.Ready,
        description="200 once the default engine is loaded; 400 while it loads or when the "
                    "server drains.", responses=_not_ready("The server"),
        errors=_errors(*_READ))},
    **_model_paths("/v2/models/{model}", [MODEL]),
    **_model_paths("/v2/models/{model}/versions/{version}", [MODEL, VERSION]),
}
