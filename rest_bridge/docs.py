"""API documentation: the OpenAPI document and Swagger UI, served from local assets only.

`/openapi.json` and `/api/docs/openapi.json` answer the document `rest_bridge.openapi` builds
(once per app). `/docs` and `/api/docs` (with or without a trailing slash) render Swagger UI from
the `swagger-ui-bundle` package's files, served under `/docs/assets/`; the page names no other
origin, and its Content-Security-Policy keeps the browser from loading anything from elsewhere
(the validator badge is off). The page's script is a file too, so `script-src 'self'` holds.

This module also documents its own routes (`PATHS`, `TAGS`), as every route family does; see
`rest_bridge.openapi`.
"""

from __future__ import annotations

import sys

import swagger_ui_bundle
from flask import Blueprint, Response, abort, current_app, jsonify, send_from_directory, url_for
from markupsafe import escape

from rest_bridge import openapi
from rest_bridge.families import Family
from rest_bridge.rpc_map import calls

blueprint = Blueprint("docs", __name__)

ASSETS_DIR = swagger_ui_bundle.swagger_ui_path
#: The Swagger UI files the page may load; nothing else under the package's folder is served.
ASSETS = frozenset({
    "swagger-ui-bundle.js", "swagger-ui-bundle.js.map",
    "swagger-ui-standalone-preset.js", "swagger-ui-standalone-preset.js.map",
    "swagger-ui.css", "swagger-ui.css.map",
    "favicon-16x16.png", "favicon-32x32.png",
})
INIT_SCRIPT_NAME = "tokenwire-swagger-init.js"
# Reads the document's URL from the page, so one static script serves both pages.
INIT_SCRIPT = """\
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-openapi-url"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "StandaloneLayout"
  });
});
"""
# Swagger UI sets inline styles and uses data: images; everything else comes from this origin.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; "
                           "style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                           "object-src 'none'; base-uri 'self'; frame-ancestors 'self'")

PAGE = """\
<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>tokenwire API</title>
  <link rel="stylesheet" type="text/css" href="{css}">
  <link rel="icon" type="image/png" href="{icon32}" sizes="32x32">
  <link rel="icon" type="image/png" href="{icon16}" sizes="16x16">
  <style>
    html {{ box-sizing: border-box; overflow-y: scroll; }}
    *, *:before, *:after {{ box-sizing: inherit; }}
    body {{ margin: 0; background: #fafafa; }}
  </style>
</head>
<body>
  <div id="swagger-ui" data-openapi-url="{spec}"></div>
  <script src="{bundle}" charset="utf-8"></script>
  <script src="{preset}" charset="utf-8"></script>
  <script src="{init}" charset="utf-8"></script>
</body>
</html>
"""


def _page(spec_endpoint: str) -> Response:
    def asset(name: str) -> str:
        return escape(url_for("docs.asset", filename=name))

    html = PAGE.format(
        css=asset("swagger-ui.css"), icon32=asset("favicon-32x32.png"),
        icon16=asset("favicon-16x16.png"), bundle=asset("swagger-ui-bundle.js"),
        preset=asset("swagger-ui-standalone-preset.js"), init=asset(INIT_SCRIPT_NAME),
        spec=escape(url_for(spec_endpoint)))
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response


@blueprint.get("/openapi.json")
@calls()
def openapi_json():
    """The OpenAPI 3 document of every REST route."""
    return jsonify(openapi.document_for(current_app))


@blueprint.get("/api/docs/openapi.json")
@calls()
def api_docs_openapi_json():
    """The OpenAPI 3 document of every REST route (same as /openapi.json)."""
    return jsonify(openapi.document_for(current_app))


@blueprint.get("/docs", strict_slashes=False)
@calls()
def swagger_ui():
    """Swagger UI for /openapi.json, from local assets."""
    return _page("docs.openapi_json")


@blueprint.get("/api/docs", strict_slashes=False)
@calls()
def api_swagger_ui():
    """Swagger UI for /api/docs/openapi.json, from local assets."""
    return _page("docs.api_docs_openapi_json")


@blueprint.get("/docs/assets/<path:filename>")
@calls()
def asset(filename: str):
    """Swagger UI's JavaScript, CSS and icons (allow-listed files of swagger-ui-bundle)."""
    if filename == INIT_SCRIPT_NAME:
        return Response(INIT_SCRIPT, mimetype="text/javascript")
    if filename not in ASSETS:
        abort(404)
    return send_from_directory(ASSETS_DIR, filename)


# -- documentation of these routes (the family convention of rest_bridge.openapi) ----------------

TAGS = [{"name": "Docs", "description": "This document and Swagger UI."}]


def _document_operation(operation_id: str, summary: str) -> dict:
    return {
        "tags": ["Docs"], "operationId": operation_id, "summary": summary,
        "responses": {"200": {
            "description": "An OpenAPI 3.0 document.",
            "content": {"application/json": {"schema": {"type": "object",
                                                        "additionalProperties": True}}},
        }},
    }


def _page_operation(operation_id: str, summary: str) -> dict:
    return {
        "tags": ["Docs"], "operationId": operation_id, "summary": summary,
        "description": "An HTML page that loads Swagger UI from this server only (no CDN). "
                       "A trailing slash is accepted.",
        "responses": {"200": {"description": "The HTML page.",
                              "content": {"text/html": {"schema": {"type": "string"}}}}},
    }


PATHS = {
    "/openapi.json": {"get": _document_operation("Docs_OpenApi", "This OpenAPI document")},
    "/api/docs/openapi.json": {
        "get": _document_operation("Docs_ApiDocsOpenApi", "This OpenAPI document (alias)")},
    "/docs": {"get": _page_operation("Docs_SwaggerUi", "Swagger UI")},
    "/api/docs": {"get": _page_operation("Docs_ApiDocsSwaggerUi", "Swagger UI (alias)")},
}


# The document and its pages form a family of their own, documented by this module.
FAMILY = Family("docs", (blueprint,), (sys.modules[__name__],))
