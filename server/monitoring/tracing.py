"""OpenTelemetry tracing: configuration, the W3C trace context carried in gRPC metadata, and
engine spans (queue wait, prefill, decode) derived from the timings the backend reports.

Off by default: without a configured exporter no SDK provider is installed and the API's no-op
tracer makes every span call nearly free. The same code then records real spans when a provider
is installed (by `configure_tracing`, or by a test with an in-memory exporter).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Iterable

from opentelemetry import propagate, trace

if TYPE_CHECKING:
    from server.core.types import Finish

log = logging.getLogger(__name__)

TRACER_NAME = "tokenwire.server"
_configured = False


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


def configure_tracing(exporter: str, *, service_name: str, otlp_endpoint: str = "") -> None:
    """Installs the SDK provider with a batch exporter, once per process; "none" installs nothing."""
    global _configured
    if exporter == "none" or _configured:
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
    trace.set_tracer_provider(provider)
    _configured = True
    log.info("tracing: exporting spans to %s", otlp_endpoint or exporter)


def extract_context(metadata: Iterable[tuple[str, str]] | None):
    """The caller's trace context from gRPC metadata (traceparent / tracestate keys)."""
    carrier = {key: value for key, value in (metadata or ()) if isinstance(value, str)}
    return propagate.extract(carrier)


def record_engine_spans(engine_id: str, finish: "Finish", end_ns: int | None = None) -> None:
    """Children of the current span for the phases the engine timed, placed back from `end_ns`
    (the moment the last token was delivered): queue wait, prefill, decode."""
    span = trace.get_current_span()
    if not span.is_recording():
        return
    t = finish.timings
    end = end_ns or time.time_ns()
    decode_start = end - int(t.decode_ms * 1e6)
    first_token = decode_start
    prefill_start = first_token - int(t.prompt_ms * 1e6)
    queue_start = prefill_start - int(max(t.queue_ms, 0.0) * 1e6)
    attributes = {"tokenwire.engine": engine_id}
    tr = tracer()
    for name, start, stop, extra in (
        ("engine.queue", queue_start, prefill_start, {}),
        ("engine.prefill", prefill_start, first_token,
         {"gen_ai.usage.input_tokens": finish.usage.prompt_tokens}),
        ("engine.decode", decode_start, end,
         {"gen_ai.usage.output_tokens": finish.usage.completion_tokens,
          "tokenwire.tokens_per_second": t.tokens_per_second}),
    ):
        child = tr.start_span(name, start_time=start, attributes={**attributes, **extra})
        child.end(end_time=max(stop, start))
