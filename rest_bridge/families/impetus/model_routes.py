"""Impetus's model management routes (`/api/models/…`), with Impetus's error body.

`model_id` names an engine when one has that id; otherwise a model (catalog id or name, local
name) to create an engine from, with the model id as the engine id, which is what Impetus's
clients then send as `model` in their completions.
"""

from __future__ import annotations

import grpc
from flask import Blueprint, jsonify, request

from rest_bridge import errors
from rest_bridge.errors import HttpError
from rest_bridge.grpc_client import grpc_client
from rest_bridge.http_json import boolean_field, json_object, string_field
from rest_bridge.model_views import (LIFECYCLE_TIMEOUT_S, catalog_entry, engine_status, iso_time,
                                     megabytes)
from rest_bridge.rpc_map import calls, check_admin_routes_first
from tokenwire.sizes import GB
from tokenwire.v1 import download_service_pb2 as download_pb
from tokenwire.v1 import engine_service_pb2 as engine_pb
from tokenwire.v1 import model_service_pb2 as model_pb
from tokenwire.v1 import server_service_pb2 as server_pb

blueprint = Blueprint("impetus", __name__)
errors.register_family(blueprint, errors.impetus_body)
check_admin_routes_first(blueprint)

ENGINES = "tokenwire.v1.EngineService/"
MODELS = "tokenwire.v1.ModelService/"
SERVER = "tokenwire.v1.ServerService/"


def _size_limit_bytes() -> int:
    raw = request.args.get("size_limit_gb")
    if raw is None or raw == "":
        return 0
    try:
        limit = float(raw)
    except ValueError:
        raise HttpError(400, "'size_limit_gb' must be a number", param="size_limit_gb") from None
    if limit <= 0:
        raise HttpError(400, "'size_limit_gb' must be > 0", param="size_limit_gb")
    return int(limit * GB)


@blueprint.get("/api/models/discover")
@calls(MODELS + "ListCatalogModels", SERVER + "GetServerInfo", ENGINES + "ListEngines")
def discover():
    """The catalog, filtered by `category` and `size_limit_gb`, with local state."""
    client = grpc_client()
    catalog = client.models.ListCatalogModels(model_pb.ListCatalogModelsRequest(
        category=request.args.get("category", ""), max_size_bytes=_size_limit_bytes()))
    info = client.server.GetServerInfo(server_pb.GetServerInfoRequest())
    speeds = {e.model_path.rsplit("/", 1)[-1]: e.last_tokens_per_second
              for e in client.engines.ListEngines(engine_pb.ListEnginesRequest()).engines
              if e.last_tokens_per_second > 0}
    apple_silicon = info.platform == "darwin" and info.machine == "arm64"
    return jsonify({
        "models": [{
            "model_id": m.model_id, "name": m.name, "description": m.description,
            "size_gb": round(m.size_bytes / GB, 2), "parameters": m.parameters,
            "architecture": m.architecture, "quantization": m.quantization,
            # Measured on this machine when the model has run here; no guessed figures.
            "performance_estimate": ({"tokens_per_second_measured": round(speeds[m.filename], 1)}
                                     if m.filename in speeds else None),
            "recommended_memory_gb": round(m.recommended_memory_bytes / GB, 1),
            "tags": list(m.tags), "categories": list(m.categories),
            "is_downloaded": m.is_downloaded, "is_loaded": m.is_loaded,
        } for m in catalog.models],
        "total_models": len(catalog.models),
        "categories": list(catalog.categories),
        "hardware_compatibility": {"gguf_support": True, "mlx_support": apple_silicon,
                                   "metal_support": apple_silicon and info.gpu_offload_supported,
                                   "gpu_offload": info.gpu_offload_supported},
    })


@blueprint.get("/api/models/list")
@calls(ENGINES + "ListEngines")
def list_loaded():
    """Loaded models (engines) with memory, load time and metadata."""
    answer = grpc_client().engines.ListEngines(engine_pb.ListEnginesRequest())
    loaded = [e for e in answer.engines if e.status == engine_pb.ENGINE_STATUS_LOADED]
    return jsonify({
        "models": [_loaded_model(e) for e in loaded],
        "total_memory_usage_mb": megabytes(answer.memory_committed_bytes),
        "available_memory_mb": megabytes(answer.memory_available_bytes),
    })


def _loaded_model(engine: engine_pb.Engine) -> dict:
    memory = engine.memory.model_bytes + engine.memory.context_bytes
    return {"model_id": engine.engine_id, "status": engine_status(engine),
            "size_mb": megabytes(engine.model_size_bytes), "memory_usage_mb": megabytes(memory),
            "load_time_seconds": round(engine.load_seconds, 2),
            "last_used": iso_time(engine.last_used_unix or engine.loaded_unix), "format": "GGUF",
            "architecture": engine.model.architecture, "parameters": engine.model.size_label,
            "quantization": engine.model.quantization, "is_default": engine.is_default}


@blueprint.post("/api/models/load")
@calls(ENGINES + "GetEngine", ENGINES + "LoadEngine", ENGINES + "AddEngine")
def load():
    """Loads a model: an existing engine by id, else a new engine from the named model."""
    body = json_object()
    model_id = string_field(body, "model_id", required=True)
    force_reload = boolean_field(body, "force_reload")
    client = grpc_client()
    try:
        client.engines.GetEngine(engine_pb.GetEngineRequest(engine_id=model_id))
        exists = True
    except grpc.RpcError as exc:
        if exc.code() != grpc.StatusCode.NOT_FOUND:
            raise
        exists = False
    if exists:
        engine = client.engines.LoadEngine(engine_pb.LoadEngineRequest(
            engine_id=model_id, force_reload=force_reload), timeout=LIFECYCLE_TIMEOUT_S).engine
    else:
        engine = client.engines.AddEngine(engine_pb.AddEngineRequest(
            engine_id=model_id, model=model_id), timeout=LIFECYCLE_TIMEOUT_S).engine
    return jsonify({"success": True, "message": "Model loaded", "data": _loaded_model(engine)})


@blueprint.post("/api/models/unload")
@calls(ENGINES + "UnloadEngine")
def unload():
    """Unloads a model; `force` cancels its requests in flight instead of letting them finish."""
    body = json_object()
    model_id = string_field(body, "model_id", required=True)
    engine = grpc_client().engines.UnloadEngine(engine_pb.UnloadEngineRequest(
        engine_id=model_id, force=boolean_field(body, "force")), timeout=LIFECYCLE_TIMEOUT_S).engine
    return jsonify({"success": True, "message": "Model unloaded",
                    "data": {"model_id": engine.engine_id, "status": engine_status(engine)}})


@blueprint.post("/api/models/download")
@calls("tokenwire.v1.DownloadService/StartDownload", MODELS + "ListCatalogModels")
def download():
    """Starts downloading a catalog model; `auto_load` creates its engine when done."""
    body = json_object()
    model_id = string_field(body, "model_id", required=True)
    client = grpc_client()
    started = client.downloads.StartDownload(download_pb.StartDownloadRequest(
        catalog_name=model_id, auto_load=boolean_field(body, "auto_load"),
        force=boolean_field(body, "force_download"))).download
    if started.HasField("total_bytes"):
        size = started.total_bytes
    else:  # not known until the server answers: the catalog's published size
        entry = catalog_entry(model_id)
        size = entry.size_bytes if entry is not None else 0
    return jsonify({"success": True, "message": "Model download started",
                    "data": {"model_id": model_id, "download_id": started.download_id,
                             "estimated_size_gb": round(size / GB, 2)}})
