"""OpenAPI documentation of FoundryLocal's management routes (`rest_bridge.families.foundry.routes`)."""

from __future__ import annotations

from rest_bridge.openapi_examples import operation, path_parameter, query_parameter

TAG = "Foundry"
P = "/iblink/v1/foundry-local"
TAGS = [{"name": TAG, "description": "FoundryLocal's API. Its \"server\" is tokenwire's default "
                                     "engine; `endpoint` is this bridge's `/v1`. Errors answer "
                                     "`{\"error\": {\"message\", \"type\", \"code\", \"details\"}}`."}]

_ERROR = {"error": {"message": "Model 'nonexistent-model' not found in registry",
                    "type": "not_found_error", "code": "model_not_found", "details": None}}
_START_REQUEST = {"model_name": "Qwen2.5-0.5B-Instruct-Q8_0-GGUF", "port": 1234,
                  "options": {"auto_download": True, "timeout_seconds": 300,
                              "health_check_interval_seconds": 2}}
_STARTED = {"success": True, "message": "Server started successfully", "port": 8080,
            "model": "Qwen2.5-0.5B-Instruct-Q8_0-GGUF",
            "loaded_model_id": "Qwen/Qwen2.5-0.5B-Instruct-Q8_0-GGUF",
            "endpoint": "http://127.0.0.1:8080/v1", "api_key": None}
_START_ERRORS = {"400": "model_name missing (missing_model_name) or the model is not downloaded "
                        "and auto_download is off (model_not_downloaded).",
                 "404": "The model is not in the catalog nor on disk (model_not_found).",
                 "408": "The model did not load within timeout_seconds (server_start_timeout).",
                 "507": "The model does not fit the memory budget."}
_MODEL = {"model_id": "Qwen/Qwen2.5-0.5B-Instruct-Q8_0-GGUF",
          "simple_name": "Qwen2.5-0.5B-Instruct-Q8_0-GGUF", "size": "0.5B", "quantization": "Q8_0",
          "is_downloaded": True, "is_loaded": False, "file_size_bytes": 524288000,
          "file_size_formatted": "500.0 MB"}
_SSE_START = ('data: {"type":"progress","message":"Checking if model is downloaded..."}\n\n'
              'data: {"type":"success","message":"Server started successfully","data":{...}}\n\n')
_NAME = path_parameter("model_name", "The model's catalog name, catalog id or local name.")

PATHS = {
    f"{P}/start": {"post": operation(
        "foundry_start", TAG, "Start the server with a model", request=_START_REQUEST,
        required=("model_name",), response=_STARTED,
        errors={**_START_ERRORS, "409": "Already running (server_already_running)."},
        error_example=_ERROR)},
    f"{P}/start-stream": {"post": operation(
        "foundry_start_stream", TAG, "Start the server, streaming progress",
        description="Events `{\"type\": \"progress\"|\"success\"|\"error\", \"message\", \"data\"?}`; "
                    "an error after the stream began is its last event.",
        request=_START_REQUEST, required=("model_name",), sse_example=_SSE_START,
        errors={"400": _START_ERRORS["400"], "409": "Already running (server_already_running)."},
        error_example=_ERROR)},
    f"{P}/stop": {"post": operation(
        "foundry_stop", TAG, "Stop the server (unload the default engine)",
        response={"success": True, "message": "Server stopped successfully"})},
    f"{P}/status": {"get": operation(
        "foundry_status", TAG, "Server status",
        response={"is_running": True, "status": "running",
                  "current_model": "Qwen2.5-0.5B-Instruct-Q8_0-GGUF",
                  "loaded_model_id": "Qwen/Qwen2.5-0.5B-Instruct-Q8_0-GGUF", "port": 8080,
                  "health": {"is_healthy": True, "response_time_ms": 4,
                             "endpoint": "http://127.0.0.1:8080/v1",
                             "last_check": "2025-01-20T10:30:00Z", "api_key": None},
                  "last_updated": "2025-01-20T10:30:00Z"})},
    f"{P}/switch-model": {"post": operation(
        "foundry_switch_model", TAG, "Switch the running model",
        description="The new model loads first and then takes over; the old one finishes its "
                    "requests and unloads.",
        request={"model_name": "Llama-3.2-1B-Instruct-Q8_0-GGUF",
                 "options": {"auto_download": True, "timeout_seconds": 240}},
        required=("model_name",), response=_STARTED, errors=_START_ERRORS, error_example=_ERROR)},
    f"{P}/models": {"get": operation(
        "foundry_models", TAG, "Every known model (catalog and local)",
        response={"models": [_MODEL], "total_count": 1})},
    f"{P}/models/downloaded": {"get": operation(
        "foundry_models_downloaded", TAG, "Downloaded models",
        response={"models": [{**_MODEL, "download_date": "2025-01-15T14:30:00Z"}], "total_count": 1})},
    f"{P}/models/loaded": {"get": operation(
        "foundry_models_loaded", TAG, "Loaded models",
        response={"models": [{"model_id": "Qwen/Qwen2.5-0.5B-Instruct-Q8_0-GGUF",
                              "simple_name": "Qwen2.5-0.5B-Instruct-Q8_0-GGUF", "size": "0.5B",
                              "quantization": "Q8_0", "is_downloaded": True, "is_loaded": True,
                              "loaded_at": "2025-01-20T10:30:00Z"}], "total_count": 1})},
    f"{P}/models/unload-all": {"post": operation(
        "foundry_unload_all", TAG, "Unload every model",
        response={"success": True, "message": "All models unloaded successfully"})},
    f"{P}/models/{{model_name}}": {"delete": operation(
        "foundry_delete_model", TAG, "Delete a downloaded model",
        parameters=[_NAME, query_parameter("force", "true: unload the engines using it first.",
                                           {"type": "boolean"})],
        response={"success": True, "message": "Model deleted successfully",
                  "model_name": "Qwen2.5-3B-Instruct-Q4_K_M-GGUF",
                  "freed_space_bytes": 2147483648, "freed_space_formatted": "2.0 GB"},
        errors={"400": "An engine uses it (model_in_use), or it is the embedded model.",
                "404": "No such model (model_not_found)."}, error_example=_ERROR)},
    f"{P}/info": {"get": operation(
        "foundry_info", TAG, "Service information",
        response={"service": "FoundryLocal API", "version": "0.1.0",
                  "foundry_local_version": "tokenwire 0.1.0 (llama.cpp via llama-cpp-python 0.3.36)",
                  "capabilities": ["model_management", "server_control"],
                  "configuration": {"default_port": 8080, "cache_dir": "/home/u/.cache/tokenwire/models",
                                    "default_log_level": "INFO"},
                  "model_registry": {"total_models": 16, "downloaded_models": 2,
                                     "loaded_models": 1}})},
    f"{P}/config": {"post": operation(
        "foundry_config", TAG, "Update the configuration",
        description="`cache_dir` is the models directory; `port` cannot change while running "
                    "(400 update_failed); `defaults: true` restores the configured values.",
        request={"port": 8080, "cache_dir": "/data/models", "default_log_level": "DEBUG",
                 "defaults": False},
        response={"success": True, "message": "Configuration updated successfully", "port": 8080,
                  "cachedir": "/data/models", "default_log_level": "DEBUG"},
        errors={"400": "A value cannot be applied (update_failed or invalid_request_error)."},
        error_example=_ERROR)},
}

PATHS[f"{P}/models/{{model_name}}/download"] = {"post": operation(
    "foundry_download_model", TAG, "Download a model (answers when done)",
    parameters=[_NAME],
    response={"success": True, "message": "Model downloaded successfully",
              "model_name": "Qwen2.5-3B-Instruct-Q4_K_M-GGUF",
              "actual_model_id": "Qwen/Qwen2.5-3B-Instruct-Q4_K_M-GGUF",
              "file_size_bytes": 2147483648, "download_time_seconds": 125},
    errors={"404": "Not in the catalog (model_not_found).",
            "500": "The download failed (download_failed)."}, error_example=_ERROR)}
PATHS[f"{P}/models/{{model_name}}/download-stream"] = {"post": operation(
    "foundry_download_model_stream", TAG, "Download a model, streaming progress",
    parameters=[_NAME],
    sse_example=('data: {"type":"progress","message":"Starting download: Qwen2.5-3B-Instruct-Q4_K_M-GGUF"}\n\n'
                 'data: {"type":"progress","message":"Downloaded: 5.2% (105 MB / 2048 MB) - 12.5 MB/s"}\n\n'
                 'data: {"type":"success","message":"Download completed successfully",'
                 '"data":{"success":true,"model_name":"Qwen2.5-3B-Instruct-Q4_K_M-GGUF"}}\n\n'),
    errors={"404": "Not in the catalog (model_not_found)."}, error_example=_ERROR)}
