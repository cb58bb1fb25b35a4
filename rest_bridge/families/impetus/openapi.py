"""OpenAPI documentation of Impetus's model routes (`rest_bridge.families.impetus.model_routes`), by example."""

from __future__ import annotations

from rest_bridge.openapi_examples import operation, query_parameter

TAG = "Impetus models"
TAGS = [{"name": TAG, "description": "Impetus LLM Server's model management. Errors answer "
                                     "`{\"error\", \"type\", \"details\", \"timestamp\"}`."}]

_ERROR = {"error": "engine 'x' not found", "type": "not_found_error",
          "details": ["reason: MODEL_NOT_FOUND"], "timestamp": "2025-01-01T12:30:00Z"}
_LOADED = {"model_id": "Qwen/Qwen2.5-0.5B-Instruct-Q8_0-GGUF", "status": "loaded",
           "size_mb": 506.5, "memory_usage_mb": 530.2, "load_time_seconds": 3.2,
           "last_used": "2025-01-01T12:30:00Z", "format": "GGUF", "architecture": "qwen2",
           "parameters": "0.5B", "quantization": "Q8_0", "is_default": False}

PATHS = {
    "/api/models/discover": {
        "get": operation(
            "impetus_discover_models", TAG, "Discover models",
            description="The curated catalog. `performance_estimate` carries the tokens/s measured "
                        "on this machine once the model has run here, else null.",
            parameters=[query_parameter("category", "Only this category (e.g. instruct, small)."),
                        query_parameter("size_limit_gb", "Largest size in GB.", {"type": "number"})],
            response={"models": [{
                "model_id": "Qwen/Qwen2.5-0.5B-Instruct-Q8_0-GGUF",
                "name": "Qwen2.5-0.5B-Instruct-Q8_0-GGUF",
                "description": "Fastest Qwen2.5; multilingual, good for simple tasks.",
                "size_gb": 0.49, "parameters": "0.5B", "architecture": "qwen2",
                "quantization": "Q8_0", "performance_estimate": {"tokens_per_second_measured": 41.3},
                "recommended_memory_gb": 1.0, "tags": ["instruct", "small"],
                "categories": ["instruct", "small"], "is_downloaded": False, "is_loaded": False}],
                "total_models": 1, "categories": ["code", "instruct", "large", "medium", "small"],
                "hardware_compatibility": {"gguf_support": True, "mlx_support": False,
                                           "metal_support": False, "gpu_offload": False}},
            errors={"400": "A bad size_limit_gb."}, error_example=_ERROR),
    },
    "/api/models/list": {
        "get": operation(
            "impetus_list_models", TAG, "List loaded models",
            response={"models": [_LOADED], "total_memory_usage_mb": 530.2,
                      "available_memory_mb": 12288.0}),
    },
    "/api/models/load": {
        "post": operation(
            "impetus_load_model", TAG, "Load a model",
            description="`model_id` names an engine, or a model (catalog id or name, local name) "
                        "to create an engine from, with `model_id` as the engine id.",
            request={"model_id": "Qwen/Qwen2.5-0.5B-Instruct-Q8_0-GGUF", "force_reload": False},
            required=("model_id",),
            response={"success": True, "message": "Model loaded", "data": _LOADED},
            errors={"400": "Missing model_id, or the model is not downloaded.",
                    "404": "No such model.", "507": "Loading would exceed the memory budget."},
            error_example=_ERROR),
    },
    "/api/models/unload": {
        "post": operation(
            "impetus_unload_model", TAG, "Unload a model",
            description="Requests in flight finish first, unless `force`.",
            request={"model_id": "Qwen/Qwen2.5-0.5B-Instruct-Q8_0-GGUF", "force": False},
            required=("model_id",),
            response={"success": True, "message": "Model unloaded",
                      "data": {"model_id": "Qwen/Qwen2.5-0.5B-Instruct-Q8_0-GGUF",
                               "status": "unloaded"}},
            errors={"404": "No such model."}, error_example=_ERROR),
    },
}

PATHS["/api/models/download"] = {"post": operation(
    "impetus_download_model", TAG, "Download a catalog model",
    description="`auto_load` creates an engine (named by the catalog model id) when the download "
                "completes; `force_download` replaces a file already on disk (409 otherwise).",
    request={"model_id": "Qwen/Qwen2.5-0.5B-Instruct-Q8_0-GGUF", "auto_load": True,
             "force_download": False},
    required=("model_id",),
    response={"success": True, "message": "Model download started",
              "data": {"model_id": "Qwen/Qwen2.5-0.5B-Instruct-Q8_0-GGUF",
                       "download_id": "dl-0123456789abcdef", "estimated_size_gb": 0.49}},
    errors={"400": "Missing model_id.", "404": "Not in the catalog.",
            "409": "Already downloaded (use force_download) or downloading.",
            "507": "Not enough disk space."},
    error_example=_ERROR)}
