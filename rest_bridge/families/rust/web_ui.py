"""The built-in chat page of reference document 003 ("Web UI"), at `/`.

A static page (`static/chat/` beside this module: HTML, CSS and one script, no build step and no other
origin) that talks only to the session API the bridge already serves. Its Content-Security-Policy
allows nothing but this origin, so the page cannot load or send anything elsewhere.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, abort, send_from_directory

from rest_bridge.rpc_map import calls

blueprint = Blueprint("web_ui", __name__)

STATIC_DIR = Path(__file__).resolve().parent / "static" / "chat"
ASSETS = frozenset({"chat.js", "chat.css"})
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; "
                           "img-src 'self' data:; connect-src 'self'; object-src 'none'; "
                           "base-uri 'self'; form-action 'self'; frame-ancestors 'self'")


def _static(filename: str):
    response = send_from_directory(STATIC_DIR, filename, max_age=0)
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@blueprint.get("/")
@calls()
def chat_page():
    """The chat page (its API calls carry the key the user enters in its settings)."""
    return _static("index.html")


@blueprint.get("/ui/<filename>")
@calls()
def asset(filename: str):
    """The page's script and stylesheet."""
    if filename not in ASSETS:
        abort(404)
    return _static(filename)


# -- documentation of these routes (the family convention of rest_bridge.openapi) ----------------

TAGS = [{"name": "Web UI", "description": "The built-in chat page (reference document 003)."}]
PATHS = {
    "/": {"get": {
        "tags": ["Web UI"], "operationId": "WebUi_ChatPage", "summary": "The chat page",
        "description": "An HTML chat client over the session API: streaming answers, sessions, "
                       "settings, regenerate, edit as a branch, export. `?q=TEXT` starts a chat "
                       "with that message (`system` and `temperature` apply to it).",
        "responses": {"200": {"description": "The HTML page.",
                              "content": {"text/html": {"schema": {"type": "string"}}}}},
    }},
}
