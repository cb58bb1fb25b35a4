"""Kolosal's engine management routes (`/engines…`), in Kolosal's shapes with OpenAI-style errors.

Kolosal documents 201 when an engine is loaded and 202 when a download that will create it has
started (a `model_path` that is a URL). Engine ids may contain "/" (catalog ids such as
"Qwen/Qwen2.5-0.5B-Instruct-Q8_0-GGUF"), hence the `path` converters.
"""

from __future__ import annotations

import time

from flask import Blueprint, jsonify

from rest_bridge import errors
from rest_bridge.errors import HttpError
from rest_bridge.grpc_client import grpc_client
from rest_bridge.http_json import boolean_field, json_object, string_field
from rest_bridge.model_views import (ACTIVE_DOWNLOADS, DOWNLOAD_STATUS, DOWNLOAD_TYPE,
                                     LIFECYCLE_TIMEOUT_S, engine_status, load_params, megabytes)
from rest_bridge.rpc_map import calls, check_admin_routes_first
from tokenwire.v1 import download_service_pb2 as download_pb
from tokenwire.v1 import engine_service_pb2 as engine_pb

blueprint = Blueprint("kolosal", __name__)
# Kolosal documents 422 for a download URL it will not fetch.
errors.register_family(blueprint, errors.openai_body, statuses={
    "INVALID_URL": 422, "UNSUPPORTED_URL": 422, "PRIVATE_ADDRESS_REFUSED": 422,
    "UNRESOLVABLE_HOST": 422})
check_admin_routes_first(blueprint)

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
    answer = grpc_client().engines.AddEngine(request, timeout=LIFECYCLE_TIMEOUT_S)
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
    answer = grpc_client().engines.ListEngines(engine_pb.ListEnginesRequest())
    return jsonify({"engines": [_summary(e) for e in answer.engines]})


@blueprint.delete("/engines/<path:engine_id>")
@calls(ENGINES + "RemoveEngine")
def remove_engine(engine_id: str):
    """Removes an engine: requests in flight finish, then its memory is freed."""
    engine = grpc_client().engines.RemoveEngine(engine_pb.RemoveEngineRequest(engine_id=engine_id),
                                                timeout=LIFECYCLE_TIMEOUT_S).engine
    return jsonify({"engine_id": engine.engine_id, "status": "removed",
                    "message": "Engine removed successfully"})


@blueprint.get("/engines/<path:engine_id>/status")
@calls(ENGINES + "GetEngine")
def engine_status_route(engine_id: str):
    """One engine's status, parameters, memory and performance."""
    engine = grpc_client().engines.GetEngine(engine_pb.GetEngineRequest(engine_id=engine_id)).engine
    return jsonify({
        "engine_id": engine.engine_id, "status": engine_status(engine),
        "model_path": engine.model_path, "parameters": _parameters(engine),
        "memory_usage": {"model_size_mb": megabytes(engine.memory.model_bytes),
                         "context_size_mb": megabytes(engine.memory.context_bytes)},
        "performance": {"last_inference_tps": round(engine.last_tokens_per_second, 2),
                        "total_requests": engine.requests_total},
        "is_default": engine.is_default, "error": engine.error or None,
    })


# -- downloads -----------------------------------------------------------------------------------

DOWNLOADS = "tokenwire.v1.DownloadService/"


def _download_progress(d: download_pb.Download) -> dict:
    body = {
        "model_id": d.model_id, "status": DOWNLOAD_STATUS.get(d.status, "unknown"),
        "download_type": DOWNLOAD_TYPE.get(d.download_type, "regular"), "url": d.url,
        "local_path": d.local_path,
        "progress": {"downloaded_bytes": d.downloaded_bytes,
                     "total_bytes": d.total_bytes if d.HasField("total_bytes") else None,
                     "percentage": round(d.percent, 2),
                     "download_speed_bps": round(d.speed_bytes_per_second)},
        "timing": {"start_time": d.start_time_unix_ms, "elapsed_seconds": round(d.elapsed_seconds, 1),
                   "estimated_remaining_seconds": (round(d.eta_seconds, 1)
                                                   if d.HasField("eta_seconds") else None)},
        "download_id": d.download_id,
    }
    if d.auto_load:
        body["engine_creation"] = {"engine_id": d.model_id, "load_immediately": True}
    if d.error:
        body["error"] = {"message": d.error, "reason": d.error_reason}
    return body


@blueprint.get("/download-progress/<path:model_id>")
@blueprint.get("/v1/download-progress/<path:model_id>")
@calls(DOWNLOADS + "GetDownload")
def download_progress(model_id: str):
    """The latest download of a model: progress, speed, timing and engine creation."""
    download = grpc_client().downloads.GetDownload(download_pb.GetDownloadRequest(model_id=model_id)).download
    return jsonify(_download_progress(download))


@blueprint.get("/downloads")
@blueprint.get("/v1/downloads")
@calls(DOWNLOADS + "ListDownloads")
def active_downloads():
    """Downloads still running (downloading or creating their engine)."""
    downloads = grpc_client().downloads.ListDownloads(
        download_pb.ListDownloadsRequest(statuses=ACTIVE_DOWNLOADS)).downloads
    return jsonify({"active_downloads": [_download_progress(d) for d in downloads],
                    "total_active": len(downloads), "timestamp": int(time.time() * 1000)})


@blueprint.delete("/downloads/<path:model_id>")
@blueprint.post("/v1/downloads/<path:model_id>/cancel")
@calls(DOWNLOADS + "CancelDownload")
def cancel_download(model_id: str):
    """Cancels a model's running download; its partial file is deleted."""
    answer = grpc_client().downloads.CancelDownload(
        download_pb.CancelDownloadRequest(model_id=model_id))
    previous = DOWNLOAD_STATUS.get(answer.previous_status, "unknown")
    if not answer.cancelled:
        raise HttpError(409, f"the download of '{model_id}' is already {previous}; nothing to cancel",
                        param="model_id", code="download_not_active")
    return jsonify({"success": True, "message": "Download cancelled successfully",
                    "model_id": model_id, "previous_status": previous,
                    "download_type": DOWNLOAD_TYPE.get(answer.download.download_type, "regular"),
                    "timestamp": int(time.time() * 1000)})


@blueprint.delete("/downloads")
@blueprint.post("/v1/downloads/cancel")
@calls(DOWNLOADS + "CancelAllDownloads")
def cancel_all_downloads():
    """Cancels every running download, with Kolosal's summary of what was and was not cancelled."""
    answer = grpc_client().downloads.CancelAllDownloads(download_pb.CancelAllDownloadsRequest())
    s = answer.summary
    return jsonify({
        "success": True, "message": "Bulk download cancellation completed",
        "summary": {"total_downloads": s.total_downloads,
                    "successful_cancellations": s.successful_cancellations,
                    "failed_cancellations": s.failed_cancellations,
                    "startup_cancellations": s.startup_cancellations,
                    "regular_cancellations": s.regular_cancellations},
        "cancelled_downloads": [{"model_id": c.model_id,
                                 "previous_status": DOWNLOAD_STATUS.get(c.previous_status, "unknown"),
                                 "download_type": DOWNLOAD_TYPE.get(c.download_type, "regular")}
                                for c in answer.cancelled_downloads],
        "failed_cancellations": [{"model_id": f.model_id,
                                  "status": DOWNLOAD_STATUS.get(f.status, "unknown"),
                                  "reason": f.reason} for f in answer.failed_cancellations],
    })
