"""OpenAPI documentation of FoundryLocal's management routes (`rest_bridge.families.foundry.routes`),
from the bodies they read and send (`rest_bridge.families.foundry.bodies`)."""

from __future__ import annotations

from rest_bridge.bodies import schemas
from rest_bridge.families.foundry import bodies
from rest_bridge.openapi_parts import SSE, Operations, path_parameter, query_parameter

TAG = "Foundry"
P = "/iblink/v1/foundry-local"
TAGS = [{"name": TAG, "description": "FoundryLocal's API. Its \"server\" is tokenwire's default "
                                     "engine; `endpoint` is this bridge's `/v1`. Errors answer "
                                     "`{\"error\": {\"message\", \"type\", \"code\", \"details\"}}`."}]

NS = bodies.NAMESPACE
_operation = Operations(NS, TAG, bodies.Error)
SCHEMAS = schemas(NS, bodies.Error, bodies.StartRequest, bodies.Started, bodies.ProgressEvent,
                  bodies.StartedEvent, bodies.DownloadedEvent, bodies.ErrorEvent, bodies.Done,
                  bodies.ServerStatus,
                  bodies.ModelList, bodies.DownloadedModelList, bodies.LoadedModelList,
                  bodies.Deleted, bodies.Downloaded, bodies.Info, bodies.ConfigRequest,
                  bodies.ConfigUpdated)

# A model to download first, from a source the server may not fetch from.
_SOURCE_REFUSED = ("The model's download source is refused: it resolves to a private, loopback "
                   "or link-local address (private_address_refused).")
_START_ERRORS = {"400": "model_name missing (missing_model_name) or the model is not downloaded "
                        "and auto_download is off (model_not_downloaded).",
                 "403": _SOURCE_REFUSED,
                 "404": "The model is not in the catalog nor on disk (model_not_found).",
                 "408": "The model did not load within timeout_seconds (server_start_timeout).",
                 "507": "The model does not fit the memory budget."}
_NAME = path_parameter("model_name", "The model's catalog name, catalog id or local name.")


def _stream(events: str, example: str, done: type) -> dict:
    """Progress events, then `done` or an error event; the schema is one event's data."""
    return {"description": "A stream of server-sent events, one JSON object per `data:` line, "
                           "e.g.\n\n```\n" + example + "```",
            "content": {SSE: {"schema": {"description": events, "oneOf": [
                _operation.ref(bodies.ProgressEvent), _operation.ref(done),
                _operation.ref(bodies.ErrorEvent)]}}}}


PATHS = {
    f"{P}/start": {"post": _operation(
        "foundry_start", "Start the server with a model", bodies.Started,
        request=bodies.StartRequest,
        errors={**_START_ERRORS, "409": "Already running (server_already_running)."})},
    f"{P}/start-stream": {"post": _operation(
        "foundry_start_stream", "Start the server, streaming progress",
        _stream("data: lines, each a foundry.ProgressEvent, then a foundry.StartedEvent or an "
                "error event (`type: error`, the error body's members, its own type as "
                "`error_type`).",
                'data: {"type":"progress","message":"Checking if model is downloaded..."}\n\n'
                'data: {"type":"success","message":"Server started successfully","data":{...}}\n\n',
                bodies.StartedEvent),
        description="Events `{\"type\": \"progress\"|\"success\"|\"error\", \"message\", \"data\"?}`; "
                    "an error after the stream began is its last event.",
        request=bodies.StartRequest,
        errors={"400": _START_ERRORS["400"], "403": _SOURCE_REFUSED,
                "409": "Already running (server_already_running)."})},
    f"{P}/stop": {"post": _operation(
        "foundry_stop", "Stop the server (unload the default engine)", bodies.Done)},
    f"{P}/status": {"get": _operation("foundry_status", "Server status", bodies.ServerStatus)},
    f"{P}/switch-model": {"post": _operation(
        "foundry_switch_model", "Switch the running model", bodies.Started,
        description="The new model loads first and then takes over; the old one finishes its "
                    "requests and unloads.",
        request=bodies.StartRequest,
        request_example={"model_name": "Llama-3.2-1B-Instruct-Q8_0-GGUF",
                         "options": {"auto_download": True, "timeout_seconds": 240}},
        errors=_START_ERRORS)},
    f"{P}/models": {"get": _operation(
        "foundry_models", "Every known model (catalog and local)", bodies.ModelList)},
    f"{P}/models/downloaded": {"get": _operation(
        "foundry_models_downloaded", "Downloaded models", bodies.DownloadedModelList)},
    f"{P}/models/loaded": {"get": _operation(
        "foundry_models_loaded", "Loaded models", bodies.LoadedModelList)},
    f"{P}/models/unload-all": {"post": _operation(
        "foundry_unload_all", "Unload every model", bodies.Done)},
    f"{P}/models/{{model_name}}": {"delete": _operation(
        "foundry_delete_model", "Delete a downloaded model", bodies.Deleted,
        parameters=[_NAME, query_parameter("force", "true: unload the engines using it first.",
                                           {"type": "boolean"})],
        errors={"400": "An engine uses it (model_in_use), or it is the embedded model.",
                "404": "No such model (model_not_found)."})},
    f"{P}/models/{{model_name}}/download": {"post": _operation(
        "foundry_download_model", "Download a model (answers when done)", bodies.Downloaded,
        parameters=[_NAME],
        errors={"403": _SOURCE_REFUSED, "404": "Not in the catalog (model_not_found).",
                "500": "The download failed (download_failed)."})},
    f"{P}/models/{{model_name}}/download-stream": {"post": _operation(
        "foundry_download_model_stream", "Download a model, streaming progress",
        _stream("data: lines, each a foundry.ProgressEvent, then a foundry.DownloadedEvent or an "
                "error event (`type: error`, the error body's members, its own type as "
                "`error_type`).",
                'data: {"type":"progress","message":"Starting download: Qwen2.5-3B-Instruct-Q4_K_M-GGUF"}\n\n'
                'data: {"type":"progress","message":"Downloaded: 5.2% (105 MB / 2048 MB) - 12.5 MB/s"}\n\n'
                'data: {"type":"success","message":"Download completed successfully",'
                '"data":{"success":true,"model_name":"Qwen2.5-3B-Instruct-Q4_K_M-GGUF"}}\n\n',
                bodies.DownloadedEvent),
        parameters=[_NAME], errors={"403": _SOURCE_REFUSED,
                                    "404": "Not in the catalog (model_not_found)."})},
    f"{P}/info": {"get": _operation("foundry_info", "Service information", bodies.Info)},
    f"{P}/config": {"post": _operation(
        "foundry_config", "Update the configuration", bodies.ConfigUpdated,
        description="`cache_dir` is the models directory; `port` cannot change while running "
                    "(400 update_failed); `defaults: true` restores the configured values.",
        request=bodies.ConfigRequest, request_required=False,
        errors={"400": "A value cannot be applied (update_failed or invalid_request_error)."})},
}
