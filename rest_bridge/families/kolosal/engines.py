"""Kolosal's engine management routes (`/engines…`), in Kolosal's shapes with OpenAI-style errors.
A loaded engine answers 201, a download that will create it 202 (a `model_path` URL). Engine ids
may contain "/" (catalog ids such as "Qwen/Qwen2.5-0.5B-Instruct-Q8_0-GGUF"): `path` converters."""

from __future__ import annotations

import time

from flask import Blueprint, jsonify

from rest_bridge import errors
from rest_bridge.bodies import parse
from rest_bridge.errors import HttpError
from rest_bridge.families.kolosal import bodies
from rest_bridge.grpc_client import grpc_client
from rest_bridge.model_views import ACTIVE_DOWNLOADS, LIFECYCLE_TIMEOUT_S, engine_status
from rest_bridge.rpc_map import calls, check_admin_routes_first
from tokenwire.v1 import download_service_pb2 as download_pb
from tokenwire.v1 import engine_service_pb2 as engine_pb

blueprint = Blueprint("kolosal", __name__)
# Kolosal documents 422 for a download URL it will not fetch.
errors.register_family(blueprint, errors.openai_body, statuses=dict.fromkeys(
    ("INVALID_URL", "UNSUPPORTED_URL", "PRIVATE_ADDRESS_REFUSED", "UNRESOLVABLE_HOST"), 422))
check_admin_routes_first(blueprint)

ENGINES = "tokenwire.v1.EngineService/"
DOWNLOADS = "tokenwire.v1.DownloadService/"


@blueprint.post("/engines")
@calls(ENGINES + "AddEngine")
def add_engine():
    """Adds an engine from a model path, a local or catalog model name, or a URL to download."""
    request = parse(bodies.AddEngine).to_pb()
    answer = grpc_client().engines.AddEngine(request, timeout=LIFECYCLE_TIMEOUT_S)
    if answer.download_id:
        return jsonify(bodies.DownloadStarted(
            engine_id=request.engine_id, model_path=request.model, download_id=answer.download_id,
            progress_url=f"/download-progress/{request.engine_id}").body()), 202
    return jsonify(bodies.EngineAdded.from_pb(answer.engine).body()), 201


@blueprint.get("/engines")
@calls(ENGINES + "ListEngines")
def list_engines():
    """Every engine, the default first."""
    answer = grpc_client().engines.ListEngines(engine_pb.ListEnginesRequest())
    return jsonify(bodies.EngineList(engines=[bodies.copy(
        bodies.EngineSummary, e, status=engine_status(e)) for e in answer.engines]).body())


@blueprint.delete("/engines/<path:engine_id>")
@calls(ENGINES + "RemoveEngine")
def remove_engine(engine_id: str):
    """Removes an engine: requests in flight finish, then its memory is freed."""
    engine = grpc_client().engines.RemoveEngine(engine_pb.RemoveEngineRequest(engine_id=engine_id),
                                                timeout=LIFECYCLE_TIMEOUT_S).engine
    return jsonify(bodies.EngineRemoved(engine_id=engine.engine_id).body())


@blueprint.get("/engines/<path:engine_id>/status")
@calls(ENGINES + "GetEngine")
def engine_status_route(engine_id: str):
    """One engine's status, parameters, memory and performance."""
    engine = grpc_client().engines.GetEngine(engine_pb.GetEngineRequest(engine_id=engine_id)).engine
    return jsonify(bodies.EngineStatus.from_pb(engine).body())


@blueprint.get("/download-progress/<path:model_id>")
@blueprint.get("/v1/download-progress/<path:model_id>")
@calls(DOWNLOADS + "GetDownload")
def download_progress(model_id: str):
    """The latest download of a model: progress, speed, timing and engine creation."""
    download = grpc_client().downloads.GetDownload(
        download_pb.GetDownloadRequest(model_id=model_id)).download
    return jsonify(bodies.DownloadProgress.from_pb(download).body())


@blueprint.get("/downloads")
@blueprint.get("/v1/downloads")
@calls(DOWNLOADS + "ListDownloads")
def active_downloads():
    """Downloads still running (downloading or creating their engine)."""
    downloads = grpc_client().downloads.ListDownloads(
        download_pb.ListDownloadsRequest(statuses=ACTIVE_DOWNLOADS)).downloads
    return jsonify(bodies.ActiveDownloads(
        active_downloads=[bodies.DownloadProgress.from_pb(d) for d in downloads],
        total_active=len(downloads), timestamp=int(time.time() * 1000)).body())


@blueprint.delete("/downloads/<path:model_id>")
@blueprint.post("/v1/downloads/<path:model_id>/cancel")
@calls(DOWNLOADS + "CancelDownload")
def cancel_download(model_id: str):
    """Cancels a model's running download; its partial file is deleted."""
    answer = grpc_client().downloads.CancelDownload(
        download_pb.CancelDownloadRequest(model_id=model_id))
    previous = bodies.STATUS[answer.previous_status]
    if not answer.cancelled:
        raise HttpError(409, f"the download of '{model_id}' is already {previous}; nothing to "
                             "cancel", param="model_id", code="download_not_active")
    return jsonify(bodies.DownloadCancelled(
        model_id=model_id, previous_status=previous, timestamp=int(time.time() * 1000),
        download_type=bodies.TYPE[answer.download.download_type]).body())


@blueprint.delete("/downloads")
@blueprint.post("/v1/downloads/cancel")
@calls(DOWNLOADS + "CancelAllDownloads")
def cancel_all_downloads():
    """Cancels every running download, with Kolosal's summary of what was and was not cancelled."""
    answer = grpc_client().downloads.CancelAllDownloads(download_pb.CancelAllDownloadsRequest())
    return jsonify(bodies.BulkCancellation.from_pb(answer).body())
