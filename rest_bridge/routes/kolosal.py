"""Kolosal's engine management routes (`/engines…`), in Kolosal's shapes with OpenAI-style errors.

Kolosal documents 201 when an engine is loaded and 202 when a download that will create it has
started (a `model_path` that is a URL). Engine ids may contain "/" (catalog ids such as
"Qwen/Qwen2.5-0.5B-Instruct-Q8_0-GGUF"), hence the `path` converters.
"""

from __future__ import annotations

from flask import Blueprint, jsonify

from rest_bridge import errors
from rest_bridge.grpc_client import forwarded_metadata, grpc_client
from rest_bridge.http_json import boolean_field, json_object, string_field
from rest_bridge.model_views import engine_status, load_params, megabytes
from rest_bridge.rpc_map import calls
from tokenwire.v1 import engine_service_pb2 as engine_pb

blueprint = Blueprint("kolosal", __name__)
errors.register_family(blueprint, errors.openai_body)

ENGINES = "tokenwire.v1.EngineService/"


def _parameters(engine: engine_pb.Engine) -> dict:
    return {"n_ctx": engine.params.n_ctx, "n_gpu_layers": engine.params.n_gpu_layers,
            "main_gpu_id": engine.params.main_gpu_id}


def _summary(engine: engine_pb.Engine) -> dict:
    return {"engine_id": engine.engine_id, "status": engine_status(engine),
            "model_path": engine.model_path, "is_default": engine.is_default}


@blueprint.post("/engines")
@calls(ENGINES + "AddEngine")
def add_engine():
    """Adds an engine from a model path, a local or catalog model name, or a URL to download."""
    body = json_object()
    request = engine_pb.AddEngineRequest(
        engine_id=string_field(body, "engine_id", required=True),
        model=string_field(body, "model_path", required=True),
        params=load_params(body))
    load = boolean_field(body, "load_immediately", default=None)
    if load is not None:
        request.load_immediately = load
    answer = grpc_client().engines.AddEngine(request, metadata=forwarded_metadata())
    if answer.download_id:
        return jsonify({"engine_id": request.engine_id, "status": "downloading",
                        "model_path": request.model, "download_id": answer.download_id,
                        "message": "Download started; the engine is created when it completes",
                        "progress_url": f"/download-progress/{request.engine_id}"}), 202
    engine = answer.engine
    return jsonify({"engine_id": engine.engine_id, "status": engine_status(engine),
                    "model_path": engine.model_path, "parameters": _parameters(engine)}), 201


@blueprint.get("/engines")
@calls(ENGINES + "ListEngines")
def list_engines():
    """Every engine, the default first."""
    answer = grpc_client().engines.ListEngines(engine_pb.ListEnginesRequest(),
                                               metadata=forwarded_metadata())
    return jsonify({"engines": [_summary(e) for e in answer.engines]})


@blueprint.delete("/engines/<path:engine_id>")
@calls(ENGINES + "RemoveEngine")
def remove_engine(engine_id: str):
    """Removes an engine: requests in flight finish, then its memory is freed."""
    engine = grpc_client().engines.RemoveEngine(engine_pb.RemoveEngineRequest(engine_id=engine_id),
                                                metadata=forwarded_metadata()).engine
    return jsonify({"engine_id": engine.engine_id, "status": "removed",
                    "message": "Engine removed successfully"})


@blueprint.get("/engines/<path:engine_id>/status")
@calls(ENGINES + "GetEngine")
def engine_status_route(engine_id: str):
    """One engine's status, parameters, memory and performance."""
    engine = grpc_client().engines.GetEngine(engine_pb.GetEngineRequest(engine_id=engine_id),
                                             metadata=forwarded_metadata()).engine
    return jsonify({
        "engine_id": engine.engine_id, "status": engine_status(engine),
        "model_path": engine.model_path, "parameters": _parameters(engine),
        "memory_usage": {"model_size_mb": megabytes(engine.memory.model_bytes),
                         "context_size_mb": megabytes(engine.memory.context_bytes)},
        "performance": {"last_inference_tps": round(engine.last_tokens_per_second, 2),
                        "total_requests": engine.requests_total},
        "is_default": engine.is_default, "error": engine.error or None,
    })
