"""OpenAPI documentation of Impetus's model routes (`rest_bridge.families.impetus.model_routes`),
from the bodies they read and send (`rest_bridge.families.impetus.bodies`)."""

from __future__ import annotations

from rest_bridge.bodies import schemas
from rest_bridge.families.impetus import bodies
from rest_bridge.openapi_parts import Operations, query_parameter

TAG = "Impetus models"
TAGS = [{"name": TAG, "description": "Impetus LLM Server's model management. Errors answer "
                                     "`{\"error\", \"type\", \"details\", \"timestamp\"}`."}]

NS = bodies.NAMESPACE
_operation = Operations(NS, TAG, bodies.Error)
SCHEMAS = schemas(NS, bodies.Error, bodies.Discovery, bodies.LoadedModels, bodies.LoadRequest,
                  bodies.LoadAnswer, bodies.UnloadRequest, bodies.UnloadAnswer,
                  bodies.DownloadRequest, bodies.DownloadAnswer)

# A model that must be downloaded first, from a source the server may not fetch from.
_SOURCE_REFUSED = ("The model's download source is refused: it resolves to a private, loopback "
                   "or link-local address (downloads.allow_private_addresses is off).")

PATHS = {
    "/api/models/discover": {"get": _operation(
        "impetus_discover_models", "Discover models", bodies.Discovery,
        description="The curated catalog. `performance_estimate` carries the tokens/s measured "
                    "on this machine once the model has run here, else null.",
        parameters=[query_parameter("category", "Only this category (e.g. instruct, small)."),
                    query_parameter("size_limit_gb", "Largest size in GB.", {"type": "number"})],
        errors={"400": "A bad size_limit_gb."})},
    "/api/models/list": {"get": _operation(
        "impetus_list_models", "List loaded models", bodies.LoadedModels)},
    "/api/models/load": {"post": _operation(
        "impetus_load_model", "Load a model", bodies.LoadAnswer, request=bodies.LoadRequest,
        description="`model_id` names an engine, or a model (catalog id or name, local name) "
                    "to create an engine from, with `model_id` as the engine id.",
        errors={"400": "Missing model_id, or the model is not downloaded.",
                "403": _SOURCE_REFUSED, "404": "No such model.",
                "507": "Loading would exceed the memory budget."})},
    "/api/models/unload": {"post": _operation(
        "impetus_unload_model", "Unload a model", bodies.UnloadAnswer, request=bodies.UnloadRequest,
        description="Requests in flight finish first, unless `force`.",
        errors={"400": "Missing model_id, or the body is not a JSON object.",
                "404": "No such model."})},
    "/api/models/download": {"post": _operation(
        "impetus_download_model", "Download a catalog model", bodies.DownloadAnswer,
        request=bodies.DownloadRequest,
        description="`auto_load` creates an engine (named by the catalog model id) when the "
                    "download completes; `force_download` replaces a file already on disk (409 "
                    "otherwise).",
        errors={"400": "Missing model_id.", "403": _SOURCE_REFUSED, "404": "Not in the catalog.",
                "409": "Already downloaded (use force_download) or downloading.",
                "507": "Not enough disk space."})},
}
