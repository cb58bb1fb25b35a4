"""Impetus's model management routes (`/api/models/…`), with Impetus's error body.

`model_id` names an engine when one has that id; otherwise a model (catalog id or name, local
name) to create an engine from, with the model id as the engine id, which is what Impetus's
clients then send as `model` in their completions.
"""

from __future__ import annotations

import grpc
from flask import Blueprint, jsonify, request

from rest_bridge import errors
from rest_bridge.bodies import parse, validate
from rest_bridge.families.impetus import bodies
from rest_bridge.grpc_client import grpc_client
from rest_bridge.model_views import LIFECYCLE_TIMEOUT_S, catalog_entry, engine_status
from rest_bridge.rpc_map import calls, check_admin_routes_first
from tokenwire.sizes import GB
from tokenwire.v1 import engine_service_pb2 as engine_pb
from tokenwire.v1 import server_service_pb2 as server_pb

blueprint = Blueprint("impetus", __name__)
errors.register_family(blueprint, errors.impetus_body)
check_admin_routes_first(blueprint)

ENGINES = "tokenwire.v1.EngineService/"
MODELS = "tokenwire.v1.ModelService/"
SERVER = "tokenwire.v1.ServerService/"


@blueprint.get("/api/models/discover")
@calls(MODELS + "ListCatalogModels", SERVER + "GetServerInfo", ENGINES + "ListEngines")
def discover():
    """The catalog, filtered by `category` and `size_limit_gb`, with local state."""
    query = validate(bodies.DiscoverQuery, request.args.to_dict())
    client = grpc_client()
    catalog = client.models.ListCatalogModels(query.to_pb())
    info = client.server.GetServerInfo(server_pb.GetServerInfoRequest())
    speeds = {e.model_path.rsplit("/", 1)[-1]: e.last_tokens_per_second
              for e in client.engines.ListEngines(engine_pb.ListEnginesRequest()).engines
              if e.last_tokens_per_second > 0}
    apple_silicon = info.platform == "darwin" and info.machine == "arm64"
    return jsonify(bodies.Discovery(
        # Measured on this machine when the model has run here; no guessed figures.
        models=[bodies.DiscoveredModel.from_pb(m, speeds.get(m.filename)) for m in catalog.models],
        total_models=len(catalog.models), categories=list(catalog.categories),
        hardware_compatibility=bodies.HardwareCompatibility(
            gguf_support=True, mlx_support=apple_silicon,
            metal_support=apple_silicon and info.gpu_offload_supported,
            gpu_offload=info.gpu_offload_supported)).body())


@blueprint.get("/api/models/list")
@calls(ENGINES + "ListEngines")
def list_loaded():
    """Loaded models (engines) with memory, load time and metadata."""
    answer = grpc_client().engines.ListEngines(engine_pb.ListEnginesRequest())
    return jsonify(bodies.LoadedModels.from_pb(answer).body())


@blueprint.post("/api/models/load")
@calls(ENGINES + "GetEngine", ENGINES + "LoadEngine", ENGINES + "AddEngine")
def load():
    """Loads a model: an existing engine by id, else a new engine from the named model."""
    body = parse(bodies.LoadRequest)
    client = grpc_client()
    try:
        client.engines.GetEngine(engine_pb.GetEngineRequest(engine_id=body.model_id))
        exists = True
    except grpc.RpcError as exc:
        if exc.code() != grpc.StatusCode.NOT_FOUND:
            raise
        exists = False
    if exists:
        engine = client.engines.LoadEngine(body.to_pb(), timeout=LIFECYCLE_TIMEOUT_S).engine
    else:
        engine = client.engines.AddEngine(body.to_add_pb(), timeout=LIFECYCLE_TIMEOUT_S).engine
    return jsonify(bodies.LoadAnswer(data=bodies.LoadedModel.from_pb(engine)).body())


@blueprint.post("/api/models/unload")
@calls(ENGINES + "UnloadEngine")
def unload():
    """Unloads a model; `force` cancels its requests in flight instead of letting them finish."""
    body = parse(bodies.UnloadRequest)
    engine = grpc_client().engines.UnloadEngine(body.to_pb(), timeout=LIFECYCLE_TIMEOUT_S).engine
    return jsonify(bodies.UnloadAnswer(data=bodies.UnloadedModel(
        model_id=engine.engine_id, status=engine_status(engine))).body())


@blueprint.post("/api/models/download")
@calls("tokenwire.v1.DownloadService/StartDownload", MODELS + "ListCatalogModels")
def download():
    """Starts downloading a catalog model; `auto_load` creates its engine when done."""
    body = parse(bodies.DownloadRequest)
    started = grpc_client().downloads.StartDownload(body.to_pb()).download
    if started.HasField("total_bytes"):
        size = started.total_bytes
    else:  # not known until the server answers: the catalog's published size
        entry = catalog_entry(body.model_id)
        size = entry.size_bytes if entry is not None else 0
    return jsonify(bodies.DownloadAnswer(data=bodies.StartedDownload(
        model_id=body.model_id, download_id=started.download_id,
        estimated_size_gb=round(size / GB, 2))).body())
