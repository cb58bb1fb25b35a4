"""FoundryLocal's management API under /iblink/v1/foundry-local (server control, models, config).

Foundry manages one "server" running one model. Here that server is tokenwire's default engine:
"running" means the default engine is loaded, `start` loads a model as the default engine,
`stop` unloads it, `switch-model` swaps it atomically, and the `endpoint` handed back is this
bridge's own OpenAI-compatible `/v1`. API keys are never echoed (`api_key` is null): clients use
the key they already have. Health and logs of this family live in `foundry_monitoring`.
"""

from __future__ import annotations

import os
import re
import time
from typing import Iterator
from urllib.parse import urlsplit

import grpc
from flask import Blueprint, jsonify, request

from rest_bridge import errors
from rest_bridge.bodies import parse
from rest_bridge.errors import HttpError
from rest_bridge.families.foundry import bodies
from rest_bridge.grpc_client import grpc_client
from rest_bridge.model_views import (DOWNLOAD_STATUS, LIFECYCLE_TIMEOUT_S, catalog_entry,
                                     engine_status, iso_time, now_iso)
from rest_bridge.rpc_map import calls, check_admin_routes_first
from rest_bridge.streaming import sse_event, sse_response
from tokenwire.sizes import MB, human_size
from tokenwire.v1 import download_service_pb2 as download_pb
from tokenwire.v1 import engine_service_pb2 as engine_pb
from tokenwire.v1 import model_service_pb2 as model_pb
from tokenwire.v1 import server_service_pb2 as server_pb

PREFIX = "/iblink/v1/foundry-local"
blueprint = Blueprint("foundry", __name__, url_prefix=PREFIX)
# Foundry answers 409 for conflicts with what is running.
errors.register_family(blueprint, errors.foundry_body, statuses={
    "MODEL_IN_USE": 409, "ENGINE_EXISTS": 409, "DOWNLOAD_IN_PROGRESS": 409})
check_admin_routes_first(blueprint)

ENGINES = "tokenwire.v1.EngineService/"
MODELS = "tokenwire.v1.ModelService/"
SERVER = "tokenwire.v1.ServerService/"
DOWNLOADS = "tokenwire.v1.DownloadService/"
SERVICE_NAME = "FoundryLocal API"
CAPABILITIES = ["model_management", "server_control", "streaming_download", "health_monitoring",
                "log_streaming"]


# -- helpers ---------------------------------------------------------------------------------------


def _bridge_port() -> int:
    parts = urlsplit(request.host_url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def _endpoint() -> str:
    return request.host_url.rstrip("/") + "/v1"


def _default_engine() -> engine_pb.Engine | None:
    engines = grpc_client().engines.ListEngines(engine_pb.ListEnginesRequest()).engines
    return next((e for e in engines if e.is_default), None)


def _local_models() -> list[model_pb.LocalModel]:
    return list(grpc_client().models.ListLocalModels(model_pb.ListLocalModelsRequest()).models)


def _simple_name(engine: engine_pb.Engine, local: list[model_pb.LocalModel]) -> str:
    """The name Foundry users know a running model by: its catalog name, else its file's."""
    model = next((m for m in local if m.path == engine.model_path), None)
    if model is None:
        return engine.engine_id
    return model.catalog_name or model.name


def _started(engine: engine_pb.Engine, model_name: str) -> bodies.Started:
    return bodies.Started(port=_bridge_port(), model=model_name, loaded_model_id=engine.engine_id,
                          endpoint=_endpoint())


def _progress_text(d: download_pb.Download) -> str:
    total = d.total_bytes if d.HasField("total_bytes") else 0
    return (f"Downloaded: {d.percent:.1f}% ({d.downloaded_bytes / MB:.0f} MB / {total / MB:.0f} MB)"
            f" - {d.speed_bytes_per_second / MB:.1f} MB/s")


def _download(entry: model_pb.CatalogModel) -> Iterator[str | download_pb.Download]:
    """Downloads a catalog model, yielding progress lines, then the finished download; a failed
    or cancelled download raises Foundry's download_failed."""
    client = grpc_client()
    started = client.downloads.StartDownload(download_pb.StartDownloadRequest(
        catalog_name=entry.name)).download
    yield f"Starting download: {entry.name}"
    final = started
    last_percent = -1.0
    watch = client.downloads.WatchDownload(
        download_pb.WatchDownloadRequest(download_id=started.download_id))
    try:
        for event in watch:
            final = event.download
            # One line per whole percent at most: a progress bar, not a flood.
            if final.status == download_pb.DOWNLOAD_STATUS_DOWNLOADING and final.percent - last_percent >= 1:
                last_percent = final.percent
                yield _progress_text(final)
    finally:
        watch.cancel()  # a client that left stops watching; the download itself goes on
    if final.status != download_pb.DOWNLOAD_STATUS_COMPLETED:
        raise HttpError(500, "Failed to download model", code="download_failed",
                        details=final.error or f"the download ended {DOWNLOAD_STATUS.get(final.status)}")
    yield _progress_text(final)
    yield final


def _ensure_downloaded(model_name: str, options: bodies.StartOptions) -> Iterator[str]:
    """Foundry's `auto_download`: a catalog model not on disk is refused or downloaded first.
    Yields progress lines."""
    entry = catalog_entry(model_name)
    if entry is None or entry.is_downloaded:
        if entry is not None or any(model_name in (m.name, m.catalog_name, m.path)
                                    for m in _local_models()):
            yield "Model found locally"
        return  # a local model or file, or unknown: then the switch says model_not_found
    if not options.auto_download:
        raise HttpError(400, "Model must be downloaded before starting server",
                        code="model_not_downloaded",
                        details="Use auto_download option or download manually first")
    for step in _download(entry):
        if isinstance(step, str):
            yield step
    yield "Download completed"


def _start_timed_out(exc: grpc.RpcError, timeout: float) -> None:
    if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
        raise HttpError(408, "Server failed to start within timeout period",
                        code="server_start_timeout",
                        details=f"Timeout: {timeout:g} seconds. Try increasing "
                                "timeout_seconds option.") from None


def _switch(body: bodies.StartRequest) -> engine_pb.Engine:
    timeout = body.options.timeout
    try:
        return grpc_client().engines.SwitchDefaultEngine(body.to_pb(), timeout=timeout).engine
    except grpc.RpcError as exc:
        _start_timed_out(exc, timeout)
        raise


def _switch_watched(body: bodies.StartRequest) -> Iterator[str | engine_pb.Engine]:
    """Like _switch, checking every `health_check_interval_seconds` whether the server is ready
    yet: yields a progress line each time it is not, then the engine. A client that leaves (the
    generator closed) cancels the start, as _switch does."""
    timeout, interval = body.options.timeout, body.options.health_check_interval
    future = grpc_client().engines.SwitchDefaultEngine.future(body.to_pb(), timeout=timeout)
    waited = 0.0
    try:
        while True:
            try:
                engine = future.result(timeout=interval).engine
                break
            except grpc.FutureTimeoutError:
                waited += interval
                yield (f"Health check: server not ready yet (model loading, {waited:g}s); "
                       f"next check in {interval:g}s")
            except grpc.RpcError as exc:
                _start_timed_out(exc, timeout)
                raise
    finally:
        if not future.done():
            future.cancel()
    yield engine


def _check_port(body: bodies.StartRequest) -> None:
    """Foundry starts its model server on `port`; here the model server is this bridge, which
    cannot bind a second port: its own port (or none) is accepted, another is refused."""
    own = _bridge_port()
    if body.port is not None and body.port != own:
        raise HttpError(400, f"Cannot start the server on port {body.port}: this server listens "
                             f"on port {own} and cannot re-bind while running",
                        param="port", code="port_unavailable",
                        details=f"Omit port or send {own}; to change it, set server.port (the "
                                "bridge's port) and restart")


def _refuse_if_running() -> None:
    engine = _default_engine()
    if engine is not None and engine.status == engine_pb.ENGINE_STATUS_LOADED:
        name = _simple_name(engine, _local_models())
        raise HttpError(409, f"FoundryLocal server is already running with model '{name}'",
                        code="server_already_running",
                        details="Stop the current server first or use switch-model endpoint")


def _error_event(exc: Exception) -> bytes:
    """The stream's last event: `type` stays "error" (what the document's clients test), the
    error's own type is `error_type`."""
    error = errors.foundry_body(errors.failure_of(exc))["error"]
    return sse_event(bodies.ErrorEvent(message=error["message"], error_type=error["type"],
                                       code=error["code"], details=error["details"]).body())


def _progress(message: str) -> bytes:
    return sse_event(bodies.ProgressEvent(message=message).body())


# -- server control ------------------------------------------------------------------------------


@blueprint.post("/start")
@calls(ENGINES + "ListEngines", MODELS + "ListLocalModels", MODELS + "ListCatalogModels",
       DOWNLOADS + "StartDownload", DOWNLOADS + "WatchDownload", ENGINES + "SwitchDefaultEngine")
def start():
    """Starts the server (loads the default engine) with a model."""
    body = parse(bodies.StartRequest, optional=True)
    _check_port(body)
    _refuse_if_running()
    for _ in _ensure_downloaded(body.model_name, body.options):
        pass
    return jsonify(_started(_switch(body), body.model_name).body())


@blueprint.post("/start-stream")
@calls(ENGINES + "ListEngines", MODELS + "ListLocalModels", MODELS + "ListCatalogModels",
       DOWNLOADS + "StartDownload", DOWNLOADS + "WatchDownload", ENGINES + "SwitchDefaultEngine")
def start_stream():
    """Starts the server like /start, reporting each step as server-sent events; while the model
    loads, a progress event each `options.health_check_interval_seconds` it is not ready yet."""
    body = parse(bodies.StartRequest, optional=True)
    _check_port(body)
    _refuse_if_running()

    def events() -> Iterator[bytes]:
        try:
            yield _progress("Checking if model is downloaded...")
            for step in _ensure_downloaded(body.model_name, body.options):
                yield _progress(step)
            yield _progress("Starting FoundryLocal server...")
            yield _progress("Waiting for server to be ready...")
            for step in _switch_watched(body):
                if isinstance(step, str):
                    yield _progress(step)
                else:
                    engine = step
            yield _progress("Server health check passed")
            yield sse_event(bodies.StartedEvent(data=_started(engine, body.model_name)).body())
        except Exception as exc:  # the stream has begun: errors become its last event
            yield _error_event(exc)

    return sse_response(events())


@blueprint.post("/stop")
@calls(ENGINES + "ListEngines", ENGINES + "UnloadEngine")
def stop():
    """Stops the server: unloads the default engine (requests in flight finish first)."""
    engine = _default_engine()
    if engine is None or engine.status != engine_pb.ENGINE_STATUS_LOADED:
        return jsonify(bodies.Done(message="Server is not running").body())
    grpc_client().engines.UnloadEngine(engine_pb.UnloadEngineRequest(engine_id=engine.engine_id),
                                       timeout=LIFECYCLE_TIMEOUT_S)
    return jsonify(bodies.Done(message="Server stopped successfully").body())


_STATUS_WORDS = {"loaded": "running", "loading": "starting", "unloading": "stopping",
                 "unloaded": "stopped", "failed": "failed"}


@blueprint.get("/status")
@calls(ENGINES + "ListEngines", MODELS + "ListLocalModels")
def status():
    """Whether the server runs, with which model, and a health check of it."""
    started = time.perf_counter()
    engine = _default_engine()
    response_ms = round((time.perf_counter() - started) * 1000)
    running = engine is not None and engine.status == engine_pb.ENGINE_STATUS_LOADED
    checked = now_iso()
    health = (bodies.RunningServerHealth(is_healthy=True, response_time_ms=response_ms,
                                         endpoint=_endpoint(), last_check=checked) if running else
              bodies.ServerHealth(is_healthy=False, response_time_ms=0, endpoint=None,
                                  last_check=checked))
    return jsonify(bodies.ServerStatus(
        is_running=running,
        status=_STATUS_WORDS.get(engine_status(engine), "stopped") if engine else "stopped",
        current_model=_simple_name(engine, _local_models()) if running else None,
        loaded_model_id=engine.engine_id if running else None,
        port=_bridge_port() if running else None,
        health=health,
        last_updated=checked,
    ).body())


@blueprint.post("/switch-model")
@calls(MODELS + "ListCatalogModels", DOWNLOADS + "StartDownload", DOWNLOADS + "WatchDownload",
       ENGINES + "SwitchDefaultEngine")
def switch_model():
    """Replaces the running model: the new one loads, then takes over; the old one unloads."""
    body = parse(bodies.StartRequest, optional=True)
    _check_port(body)
    for _ in _ensure_downloaded(body.model_name, body.options):
        pass
    return jsonify(_started(_switch(body), body.model_name).body())


# -- models ------------------------------------------------------------------------------------


@blueprint.get("/models")
@calls(MODELS + "ListCatalogModels", MODELS + "ListLocalModels")
def models():
    """Every model this server knows: the catalog, plus local models that are not in it."""
    local = {m.name: m for m in _local_models()}
    catalog = grpc_client().models.ListCatalogModels(model_pb.ListCatalogModelsRequest()).models
    items = [bodies.ModelEntry.from_catalog(m, local) for m in catalog]
    items += [bodies.ModelEntry.from_local(m) for m in local.values() if not m.catalog_name]
    return jsonify(bodies.ModelList(models=items, total_count=len(items)).body())


@blueprint.get("/models/downloaded")
@calls(MODELS + "ListLocalModels")
def downloaded_models():
    """The models on disk, with their download dates."""
    items = [bodies.DownloadedModelEntry.from_local(m, download_date=iso_time(m.downloaded_unix))
             for m in _local_models()]
    return jsonify(bodies.DownloadedModelList(models=items, total_count=len(items)).body())


@blueprint.get("/models/loaded")
@calls(ENGINES + "ListEngines", MODELS + "ListLocalModels")
def loaded_models():
    """The models loaded now (one per loaded engine)."""
    local = _local_models()
    engines = grpc_client().engines.ListEngines(engine_pb.ListEnginesRequest()).engines
    items = [bodies.LoadedModelEntry(
        model_id=e.engine_id, simple_name=_simple_name(e, local), size=e.model.size_label,
        quantization=e.model.quantization, is_downloaded=True, is_loaded=True,
        loaded_at=iso_time(e.loaded_unix))
        for e in engines if e.status == engine_pb.ENGINE_STATUS_LOADED]
    return jsonify(bodies.LoadedModelList(models=items, total_count=len(items)).body())


@blueprint.post("/models/unload-all")
@calls(ENGINES + "UnloadAllEngines")
def unload_all():
    """Unloads every model (requests in flight finish first)."""
    grpc_client().engines.UnloadAllEngines(engine_pb.UnloadAllEnginesRequest(),
                                           timeout=LIFECYCLE_TIMEOUT_S)
    return jsonify(bodies.Done(message="All models unloaded successfully").body())


@blueprint.delete("/models/<path:model_name>")
@calls(MODELS + "DeleteLocalModel")
def delete_model(model_name: str):
    """Deletes a downloaded model; `?force=true` first unloads the engines that use it."""
    force = request.args.get("force", "false").lower() in ("1", "true", "yes")
    deleted = grpc_client().models.DeleteLocalModel(
        model_pb.DeleteLocalModelRequest(name=model_name, force=force), timeout=LIFECYCLE_TIMEOUT_S)
    return jsonify(bodies.Deleted(model_name=model_name, freed_space_bytes=deleted.freed_bytes,
                                  freed_space_formatted=human_size(deleted.freed_bytes)).body())


@blueprint.post("/models/<path:model_name>/download")
@calls(MODELS + "ListCatalogModels", MODELS + "ListLocalModels", DOWNLOADS + "StartDownload",
       DOWNLOADS + "WatchDownload")
def download_model(model_name: str):
    """Downloads a catalog model and answers when it is on disk."""
    entry = catalog_entry(model_name)
    if entry is None:
        raise HttpError(404, f"Model '{model_name}' not found in registry", code="model_not_found")
    started = time.monotonic()
    done = None
    if not entry.is_downloaded:
        for step in _download(entry):
            if not isinstance(step, str):
                done = step
    size = done.downloaded_bytes if done is not None else next(
        (m.size_bytes for m in _local_models() if m.name == entry.local_name), entry.size_bytes)
    return jsonify(bodies.Downloaded(
        message="Model downloaded successfully" if done is not None else "Model already downloaded",
        model_name=model_name, actual_model_id=entry.model_id, file_size_bytes=size,
        download_time_seconds=round(time.monotonic() - started)).body())


@blueprint.post("/models/<path:model_name>/download-stream")
@calls(MODELS + "ListCatalogModels", DOWNLOADS + "StartDownload", DOWNLOADS + "WatchDownload")
def download_model_stream(model_name: str):
    """Downloads a catalog model, reporting progress as server-sent events."""
    entry = catalog_entry(model_name)
    if entry is None:
        raise HttpError(404, f"Model '{model_name}' not found in registry", code="model_not_found")

    def events() -> Iterator[bytes]:
        try:
            if not entry.is_downloaded:
                for step in _download(entry):
                    if isinstance(step, str):
                        yield _progress(step)
            yield sse_event(bodies.DownloadedEvent(
                data=bodies.DownloadOutcome(model_name=model_name)).body())
        except Exception as exc:  # the stream has begun: errors become its last event
            yield _error_event(exc)

    return sse_response(events())


# -- configuration -----------------------------------------------------------------------------


@blueprint.get("/info")
@calls(SERVER + "GetServerInfo")
def info():
    """The service, its capabilities, configuration and model counts."""
    answer = grpc_client().server.GetServerInfo(server_pb.GetServerInfoRequest())
    return jsonify(bodies.Info(
        service=SERVICE_NAME, version=answer.version,
        foundry_local_version=f"tokenwire {answer.version} (llama.cpp via llama-cpp-python "
                              f"{answer.llama_cpp_version})",
        capabilities=CAPABILITIES,
        configuration=bodies.Configuration(default_port=_bridge_port(),
                                           cache_dir=answer.config.models_directory,
                                           default_log_level=answer.config.log_level),
        model_registry=bodies.ModelRegistry(total_models=answer.catalog_models,
                                            downloaded_models=answer.local_models,
                                            loaded_models=answer.loaded_engines),
    ).body())


@blueprint.post("/config")
@calls(SERVER + "UpdateServerConfig")
def config():
    """Updates the live configuration: cache_dir (the models directory), default_log_level;
    `{"defaults": true}` restores the configured values first. A key that cannot take its value
    at run time (another port, a Windows cache_dir here) is not applied and is named with why in
    `not_applied`; the others are applied. `success` is false when nothing asked for applied."""
    body = parse(bodies.ConfigRequest, optional=True)
    requested = {k for k in body.model_fields_set if getattr(body, k) not in (None, False, "")}
    not_applied = _not_applicable(body)
    applied = requested - set(not_applied)
    if "cache_dir" in not_applied:
        body = body.model_copy(update={"cache_dir": None})
    answer = grpc_client().server.UpdateServerConfig(body.to_pb())
    message = ("Configuration updated successfully" if not not_applied else
               f"Configuration {'updated' if applied else 'not updated'}; not applied: "
               f"{', '.join(not_applied)}")
    return jsonify(bodies.ConfigUpdated(
        success=bool(applied) or not not_applied, message=message, port=_bridge_port(),
        cachedir=answer.config.models_directory, default_log_level=answer.config.log_level,
        not_applied=not_applied).body())


_WINDOWS_PATH = re.compile(r"^(?:[A-Za-z]:[\\/]|\\\\)")  # D:\... D:/... \\server\share


def _not_applicable(body: bodies.ConfigRequest) -> dict[str, str]:
    """The keys of a Foundry config that cannot take their value at run time, with why: the
    port unless it is this bridge's, and a models directory written for another OS."""
    reasons = {}
    own = _bridge_port()
    if body.port is not None and body.port != own:
        reasons["port"] = (f"this server listens on port {own} and cannot re-bind while "
                           "running; set server.port and restart")
    if body.cache_dir and os.name != "nt" and (_WINDOWS_PATH.match(body.cache_dir)
                                               or "\\" in body.cache_dir):
        reasons["cache_dir"] = (f"{body.cache_dir!r} is a Windows path; this server runs on "
                                f"{os.name}")
    return reasons
