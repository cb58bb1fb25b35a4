"""OpenAPI documentation of Kolosal's engine and authentication routes (`engines`, `auth`), from
the bodies they read and send (`rest_bridge.families.kolosal.bodies`)."""

from __future__ import annotations

from rest_bridge.bodies import ref, schemas
from rest_bridge.families.kolosal import bodies as b

TAG, AUTH = "Kolosal engines", "Authentication"
TAGS = [{"name": TAG, "description": "Kolosal Server's engine management. Errors answer `{\"error"
                                     "\": {\"message\", \"type\", \"param\", \"code\"}}`."},
        {"name": AUTH, "description": "Kolosal's live security configuration: API keys, rate "
                                      "limiting and CORS. Admin only once admin keys are "
                                      "configured; key values are write-only."}]
NS, JSON = b.NAMESPACE, "application/json"
SCHEMAS = schemas(NS, b.Error, b.AddEngine, b.EngineAdded, b.DownloadStarted, b.EngineList,
                  b.EngineRemoved, b.EngineStatus, b.DownloadProgress, b.ActiveDownloads,
                  b.DownloadCancelled, b.BulkCancellation, b.AuthConfig, b.AuthConfigUpdate,
                  b.AuthStats, b.ClearRequest, b.Cleared)


def response(description: str, model) -> dict:
    return {"description": description, "content": {JSON: {"schema": ref(NS, model)}}}


def operation(operation_id: str, summary: str, answer, *, tag: str = TAG, status: str = "200",
              request=None, errors: dict[str, str] | None = None, **more) -> dict:
    """`more`: the operation's other members (description, parameters, responses)."""
    op: dict = {"operationId": operation_id, "tags": [tag], "summary": summary, **more}
    if request is not None:
        op["requestBody"] = {"required": True, "content": {JSON: {"schema": ref(NS, request)}}}
    op["responses"] = {status: response(summary, answer), **more.get("responses", {}),
                       **{code: response(text, b.Error) for code, text in (errors or {}).items()}}
    return op


_ENGINE_ID = [{"name": "engine_id", "in": "path", "required": True, "schema": {"type": "string"},
               "description": "The engine id (may contain '/')."}]
_MODEL_ID = [{"name": "model_id", "in": "path", "required": True, "schema": {"type": "string"},
              "description": "The model id the download was started for."}]
_NO_DOWNLOAD = {"404": "No download for this model."}
_CANCEL = {"parameters": _MODEL_ID, "errors": {
    **_NO_DOWNLOAD, "409": "The download already ended (download_not_active)."}}
_PROGRESS = {"parameters": _MODEL_ID, "errors": _NO_DOWNLOAD, "description": "The model's latest "
             "download; `engine_creation` is present when an engine is created at the end."}

PATHS = {
    "/engines": {
        "post": operation(
            "kolosal_add_engine", "Add an engine", b.EngineAdded, request=b.AddEngine,
            status="201", responses={"202": response("Download started", b.DownloadStarted)},
            description="`model_path` is a GGUF path on the server, a local model name, a catalog "
                        "name, or an http(s) URL; a URL (or a catalog model not on disk) starts a "
                        "download and answers 202, and the engine is created when it completes.",
            errors={"400": "Missing or malformed fields.", "404": "No such model.",
                    "409": "An engine with this id exists.",
                    "507": "Loading would exceed the memory budget."}),
        "get": operation("kolosal_list_engines", "List engines", b.EngineList),
    },
    "/engines/{engine_id}": {"delete": operation(
        "kolosal_remove_engine", "Remove an engine", b.EngineRemoved, parameters=_ENGINE_ID,
        description="Requests in flight finish, then the engine's memory is freed. The default "
                    "engine cannot be removed (400): switch the default first.",
        errors={"404": "No such engine.", "400": "It is the default engine."})},
    "/engines/{engine_id}/status": {"get": operation(
        "kolosal_engine_status", "Engine status", b.EngineStatus, parameters=_ENGINE_ID,
        errors={"404": "No such engine."})},
    "/download-progress/{model_id}": {"get": operation(
        "kolosal_download_progress", "Download progress of a model", b.DownloadProgress,
        **_PROGRESS)},
    "/v1/download-progress/{model_id}": {"get": operation(
        "kolosal_download_progress_v1", "Download progress of a model", b.DownloadProgress,
        **_PROGRESS)},
    "/downloads": {
        "get": operation("kolosal_active_downloads", "Active downloads", b.ActiveDownloads),
        "delete": operation("kolosal_cancel_all_downloads", "Cancel every download",
                            b.BulkCancellation),
    },
    "/v1/downloads": {"get": operation("kolosal_active_downloads_v1", "Active downloads",
                                       b.ActiveDownloads)},
    "/v1/downloads/cancel": {"post": operation("kolosal_cancel_all_downloads_v1",
                                               "Cancel every download", b.BulkCancellation)},
    "/downloads/{model_id}": {"delete": operation(
        "kolosal_cancel_download", "Cancel a download", b.DownloadCancelled, **_CANCEL)},
    "/v1/downloads/{model_id}/cancel": {"post": operation(
        "kolosal_cancel_download_v1", "Cancel a download", b.DownloadCancelled, **_CANCEL)},
}

ERRORS = {
    "400": "A value has the wrong type or is out of range, or keys would be required with none.",
    "401": "An API key is required and was missing or wrong.",
    "403": "Admin keys are configured and the key sent is a user key.",
    "429": "The caller's rate limit is used up.",
    "503": "The server is at its concurrency limit or draining.",
}
_READ = {code: text for code, text in ERRORS.items() if code != "400"}

PATHS.update({
    "/v1/auth/config": {
        "get": operation("Kolosal_GetAuthConfig", "Get the authentication configuration",
                         b.AuthConfig, tag=AUTH, errors=_READ),
        "put": operation("Kolosal_UpdateAuthConfig", "Update the authentication configuration",
                         b.AuthConfig, tag=AUTH, request=b.AuthConfigUpdate, errors=ERRORS,
                         description="Changes only the fields sent, at once; nothing changes "
                                     "when any value is invalid."),
    },
    "/v1/auth/stats": {"get": operation("Kolosal_GetAuthStats", "Get rate limiting statistics",
                                        b.AuthStats, tag=AUTH, errors=_READ)},
    "/v1/auth/clear": {"post": operation("Kolosal_ClearRateLimits", "Clear rate limit data",
                                         b.Cleared, tag=AUTH, request=b.ClearRequest,
                                         errors=ERRORS)},
})
