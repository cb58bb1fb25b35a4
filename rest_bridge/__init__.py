"""The REST bridge: a Flask app that turns HTTP requests into gRPC calls and holds no business logic.

Two halves: a generic transcoder built from the `google.api.http` annotations in the proto (every
annotated RPC is reachable with no bridge code), and hand-written route families for documented
third-party shapes, one folder each under `rest_bridge/families/`. Errors are shaped per family by
rest_bridge.errors.
"""

from __future__ import annotations

import grpc
from flask import Flask
from werkzeug.routing import PathConverter

from rest_bridge import errors, grpc_client
from rest_bridge.config import BridgeConfig


class AnyPathConverter(PathConverter):
    """werkzeug's `path`, also across a newline (`%0A`): its `.` does not match one, so an id
    holding one missed its route and got the app's fallback 404, in another family's error
    shape. The route's own view now refuses it, as it refuses any other unknown id."""

    regex = "[^/](?s:.)*?"


def create_app(config: BridgeConfig | None = None, *, channel: grpc.Channel | None = None) -> Flask:
    """The bridge app. `channel` lets tests share one; otherwise the app opens and owns its own."""
    from rest_bridge import admission, cors, docs, families, tracing, transcoder
    from rest_bridge.families import (foundry, health, impetus, kolosal, kserve, openai,
                                      openai_responses, rust)

    config = config or BridgeConfig()
    app = Flask(__name__)
    app.url_map.converters["path"] = AnyPathConverter  # before any family adds its rules
    app.config["MAX_CONTENT_LENGTH"] = config.max_request_size
    app.config["TOKENWIRE_BRIDGE"] = config
    app.json.sort_keys = False  # keep documented field order (OpenAI's, the proto's)
    app.json.ensure_ascii = False
    grpc_client.init_app(app, config.grpc_target, max_message_bytes=config.max_request_size,
                         channel=channel, request_timeout_s=config.request_timeout_s,
                         bridge_secret=config.bridge_secret)
    tracing.configure_tracing(config.trace_exporter, service_name=config.trace_service_name,
                              otlp_endpoint=config.otlp_endpoint)
    tracing.init_app(app)
    admission.init_app(app)  # before CORS preflights and every family's own checks
    # One line per route family; the order is the order their routes are matched and documented.
    openai.FAMILY.init_app(app)
    openai_responses.FAMILY.init_app(app)
    kolosal.FAMILY.init_app(app)
    impetus.FAMILY.init_app(app)
    foundry.FAMILY.init_app(app)
    rust.FAMILY.init_app(app)
    kserve.FAMILY.init_app(app)
    health.FAMILY.init_app(app)
    app.register_blueprint(transcoder.build_blueprint())
    docs.FAMILY.init_app(app)
    errors.register_app_fallback(app)
    cors.init_app(app)
    assert families.registered(app)
    return app
