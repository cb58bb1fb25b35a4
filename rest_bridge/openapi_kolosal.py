"""OpenAPI documentation of Kolosal's engine routes (`rest_bridge.routes.kolosal`), by example."""

from __future__ import annotations

from rest_bridge.openapi_examples import operation, path_parameter

BLUEPRINT = "kolosal"
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
