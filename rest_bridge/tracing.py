"""Bridge spans: one SERVER span per HTTP request, continuing the W3C trace context of the
incoming headers, and made current so `forwarded_metadata()` carries it to the gRPC server.

With no tracer provider installed (the default) the spans are no-ops and nothing is injected.
"""

from __future__ import annotations

from flask import Flask, g, request
from opentelemetry import context, propagate, trace

TRACER_NAME = "tokenwire.bridge"


def trace_metadata() -> tuple[tuple[str, str], ...]:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return tuple((key.lower(), value) for key, value in carrier.items())


def _start() -> None:
    parent = propagate.extract({key.lower(): value for key, value in request.headers.items()})
    name = f"{request.method} {request.url_rule.rule if request.url_rule else request.path}"
    span = trace.get_tracer(TRACER_NAME, tracer_provider=_provider).start_span(
        name, context=parent, kind=trace.SpanKind.SERVER,
        attributes={"http.request.method": request.method, "url.path": request.path})
    g.tokenwire_span = span
    g.tokenwire_span_token = context.attach(trace.set_span_in_context(span, parent))


def _status(response):
    span = g.get("tokenwire_span")
    if span is not None:
        span.set_attribute("http.response.status_code", response.status_code)
    return response


def _end(_error=None) -> None:
    span = g.pop("tokenwire_span", None)
    token = g.pop("tokenwire_span_token", None)
    if span is not None:
        span.end()
    if token is not None:
        try:
            context.detach(token)
        except ValueError:  # a streamed response ends in another context; the span is what counts
            pass


def init_app(app: Flask) -> None:
    app.before_request(_start)
    app.after_request(_status)
    app.teardown_request(_end)


# The bridge's own provider, not OpenTelemetry's global one: when the bridge runs inside the server
# process, the server has installed the global provider under its own service name.
_provider = None


def configure_tracing(exporter: str, *, service_name: str, otlp_endpoint: str = "") -> None:
    """Sets up the bridge's tracer provider; "none" (the default) sets up nothing, and the spans are
    no-ops unless a global provider exists. (The server configures its own in
    server.monitoring.tracing.)"""
    global _provider
    if exporter == "none" or _provider is not None:
        return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    if exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        span_exporter = OTLPSpanExporter(endpoint=otlp_endpoint or None)
    else:
        span_exporter = ConsoleSpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(span_exporter))
    _provider = provider
