"""The Open Inference Protocol's REST form (KServe v2): /v2, /v2/health/live, /v2/health/ready,
/v2/models/{m}[/versions/{v}], .../ready and .../infer, each one call of the server's
`inference.GRPCInferenceService` (server/servicers/kserve.py), answered in KServe's shapes.

Readiness answers 200 when ready and 400 when not, as the protocol defines a false answer (a 4xx).
Errors answer `{"error": "<message>"}` with the HTTP status of the gRPC code (NOT_FOUND 404,
INVALID_ARGUMENT 400, ...).
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from rest_bridge import errors
from rest_bridge.bodies import parse
from rest_bridge.families.kserve import bodies
from rest_bridge.grpc_client import grpc_client
from rest_bridge.rpc_map import calls
from tokenwire.inference import grpc_service_pb2 as pb
from tokenwire.inference import grpc_service_pb2_grpc as pb_grpc

blueprint = Blueprint("kserve", __name__)

SERVICE = "inference.GRPCInferenceService"
SERVER_LIVE = f"{SERVICE}/ServerLive"
SERVER_READY = f"{SERVICE}/ServerReady"
SERVER_METADATA = f"{SERVICE}/ServerMetadata"
MODEL_READY = f"{SERVICE}/ModelReady"
MODEL_METADATA = f"{SERVICE}/ModelMetadata"
MODEL_INFER = f"{SERVICE}/ModelInfer"
EXTENSION = "tokenwire.kserve"


def _error_body(failure: errors.Failure) -> dict:
    return bodies.Error(error=failure.message).body()


errors.register_family(blueprint, _error_body)


def _stub() -> pb_grpc.GRPCInferenceServiceStub:
    """A stub on the bridge's channel (its metadata forwarding, deadlines and disconnects)."""
    stub = current_app.extensions.get(EXTENSION)
    if stub is None or stub[0] is not grpc_client().channel:
        stub = current_app.extensions[EXTENSION] = (
            grpc_client().channel, pb_grpc.GRPCInferenceServiceStub(grpc_client().channel))
    return stub[1]


def _answer(body: dict, ok: bool):
    response = jsonify(body)
    response.status_code = 200 if ok else 400
    return response


@blueprint.get("/v2")
@calls(SERVER_METADATA)
def server_metadata():
    """The server's name, version and protocol extensions."""
    answer = _stub().ServerMetadata(pb.ServerMetadataRequest())
    return jsonify(bodies.ServerMetadata(name=answer.name, version=answer.version,
                                         extensions=list(answer.extensions)).body())


@blueprint.get("/v2/health/live")
@calls(SERVER_LIVE)
def server_live():
    """Liveness: 200 while the server answers."""
    live = _stub().ServerLive(pb.ServerLiveRequest()).live
    return _answer(bodies.Live(live=live).body(), live)


@blueprint.get("/v2/health/ready")
@calls(SERVER_READY)
def server_ready():
    """Readiness: 200 once the default engine is loaded, 400 while it loads or the server drains."""
    ready = _stub().ServerReady(pb.ServerReadyRequest()).ready
    return _answer(bodies.Ready(ready=ready).body(), ready)


@blueprint.get("/v2/models/<path:model>")
@blueprint.get("/v2/models/<path:model>/versions/<version>")
@calls(MODEL_METADATA)
def model_metadata(model: str, version: str = ""):
    """A model's (engine's) metadata: its versions and its input and output tensors."""
    answer = _stub().ModelMetadata(pb.ModelMetadataRequest(name=model, version=version))
    return jsonify(bodies.ModelMetadata.from_pb(answer).body())


@blueprint.get("/v2/models/<path:model>/ready")
@blueprint.get("/v2/models/<path:model>/versions/<version>/ready")
@calls(MODEL_READY)
def model_ready(model: str, version: str = ""):
    """Whether a model can take requests: 200 when it can, 400 when not (404: no such model)."""
    ready = _stub().ModelReady(pb.ModelReadyRequest(name=model, version=version)).ready
    return _answer(bodies.ModelReady(name=model, ready=ready).body(), ready)


@blueprint.post("/v2/models/<path:model>/infer")
@blueprint.post("/v2/models/<path:model>/versions/<version>/infer")
@calls(MODEL_INFER)
def model_infer(model: str, version: str = ""):
    """One inference with JSON tensors: the whole generated text in `text_output`."""
    request = parse(bodies.InferRequest).to_pb(model, version)
    return jsonify(bodies.InferResponse.from_pb(_stub().ModelInfer(request)).body())
