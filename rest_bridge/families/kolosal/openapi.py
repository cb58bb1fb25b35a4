"""OpenAPI documentation of Kolosal's engine routes (`rest_bridge.families.kolosal.engines`), by example."""

from __future__ import annotations

from rest_bridge.openapi_examples import operation, path_parameter

TAG = "Kolosal engines"
TAGS = [{"name": TAG, "description": "Kolosal Server's engine management. Errors answer "
                                     "`{\"error\": {\"message\", \"type\", \"param\", \"code\"}}`."}]

_ERROR = {"error": {"message": "engine 'x' not found", "type": "not_found_error", "param": None,
                    "code": "model_not_found"}}
_PARAMETERS = {"n_ctx": 4096, "n_gpu_layers": 50, "main_gpu_id": 0}
_ENGINE_ID = path_parameter("engine_id", "The engine id (may contain '/').")

PATHS = {
    "/engines": {
        "post": operation(
            "kolosal_add_engine", TAG, "Add an engine",
            description="`model_path` is a GGUF path on the server, a local model name, a catalog "
                        "name, or an http(s) URL; a URL (or a catalog model not on disk) starts a "
                        "download and answers 202, and the engine is created when it completes.",
            request={"engine_id": "llama-7b", "model_path": "/path/to/model.gguf", **_PARAMETERS,
                     "use_mmap": True, "use_mlock": False, "load_immediately": True},
            required=("engine_id", "model_path"), status="201",
            response={"engine_id": "llama-7b", "status": "loaded",
                      "model_path": "/path/to/model.gguf", "parameters": _PARAMETERS},
            extra_responses={"202": ("Download started", {
                "engine_id": "llama-7b", "status": "downloading",
                "model_path": "https://example.com/model.gguf", "download_id": "llama-7b",
                "message": "Download started; the engine is created when it completes",
                "progress_url": "/download-progress/llama-7b"})},
            errors={"400": "Missing or malformed fields.", "404": "No such model.",
                    "409": "An engine with this id exists.",
                    "507": "Loading would exceed the memory budget."},
            error_example=_ERROR),
        "get": operation(
            "kolosal_list_engines", TAG, "List engines",
            response={"engines": [{"engine_id": "llama-7b", "status": "loaded",
                                   "model_path": "/path/to/model.gguf", "is_default": True}]}),
    },
    "/engines/{engine_id}": {
        "delete": operation(
            "kolosal_remove_engine", TAG, "Remove an engine",
            description="Requests in flight finish, then the engine's memory is freed. The "
                        "default engine cannot be removed (400): switch the default first.",
            parameters=[_ENGINE_ID],
            response={"engine_id": "llama-7b", "status": "removed",
                      "message": "Engine removed successfully"},
            errors={"404": "No such engine.", "400": "It is the default engine."},
            error_example=_ERROR),
    },
    "/engines/{engine_id}/status": {
        "get": operation(
            "kolosal_engine_status", TAG, "Engine status",
            parameters=[_ENGINE_ID],
            response={"engine_id": "llama-7b", "status": "loaded",
                      "model_path": "/path/to/model.gguf", "parameters": _PARAMETERS,
                      "memory_usage": {"model_size_mb": 3584.0, "context_size_mb": 128.0},
                      "performance": {"last_inference_tps": 42.5, "total_requests": 157},
                      "is_default": True, "error": None},
            errors={"404": "No such engine."}, error_example=_ERROR),
    },
}

_PROGRESS = {
    "model_id": "my-model", "status": "downloading", "download_type": "regular",
    "url": "https://huggingface.co/model/file.gguf", "local_path": "/models/file.gguf",
    "progress": {"downloaded_bytes": 1048576, "total_bytes": 10485760, "percentage": 10.0,
                 "download_speed_bps": 524288},
    "timing": {"start_time": 1703097600000, "elapsed_seconds": 10.0,
               "estimated_remaining_seconds": 90.0},
    "download_id": "dl-0123456789abcdef",
    "engine_creation": {"engine_id": "my-model", "load_immediately": True},
}
_MODEL_ID = path_parameter("model_id", "The model id the download was started for.")
_CANCELLED = {"success": True, "message": "Download cancelled successfully", "model_id": "my-model",
              "previous_status": "downloading", "download_type": "startup",
              "timestamp": 1703097620000}
_CANCEL_ERRORS = {"404": "No download for this model.",
                  "409": "The download already ended (download_not_active)."}
_ACTIVE = {"active_downloads": [_PROGRESS], "total_active": 1, "timestamp": 1703097610000}
_BULK = {"success": True, "message": "Bulk download cancellation completed",
         "summary": {"total_downloads": 3, "successful_cancellations": 2, "failed_cancellations": 1,
                     "startup_cancellations": 1, "regular_cancellations": 1},
         "cancelled_downloads": [{"model_id": "model1", "previous_status": "downloading",
                                  "download_type": "startup"}],
         "failed_cancellations": [{"model_id": "model2", "status": "completed",
                                   "reason": "Already completed"}]}


def _progress(operation_id: str) -> dict:
    return {"get": operation(operation_id, TAG, "Download progress of a model",
                             description="The model's latest download; `engine_creation` is "
                                         "present when an engine is created at the end.",
                             parameters=[_MODEL_ID], response=_PROGRESS,
                             errors={"404": "No download for this model."}, error_example=_ERROR)}


PATHS.update({
    "/download-progress/{model_id}": _progress("kolosal_download_progress"),
    "/v1/download-progress/{model_id}": _progress("kolosal_download_progress_v1"),
    "/downloads": {
        "get": operation("kolosal_active_downloads", TAG, "Active downloads", response=_ACTIVE),
        "delete": operation("kolosal_cancel_all_downloads", TAG, "Cancel every download",
                            response=_BULK),
    },
    "/v1/downloads": {"get": operation("kolosal_active_downloads_v1", TAG, "Active downloads",
                                       response=_ACTIVE)},
    "/v1/downloads/cancel": {"post": operation("kolosal_cancel_all_downloads_v1", TAG,
                                               "Cancel every download", response=_BULK)},
    "/downloads/{model_id}": {"delete": operation(
        "kolosal_cancel_download", TAG, "Cancel a download", parameters=[_MODEL_ID],
        response=_CANCELLED, errors=_CANCEL_ERRORS, error_example=_ERROR)},
    "/v1/downloads/{model_id}/cancel": {"post": operation(
        "kolosal_cancel_download_v1", TAG, "Cancel a download", parameters=[_MODEL_ID],
        response=_CANCELLED, errors=_CANCEL_ERRORS, error_example=_ERROR)},
})
