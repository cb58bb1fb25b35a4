"""Tracing: one trace from the HTTP request through the gRPC call into the engine's phases,
continuing the W3C trace context the HTTP client sent."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.conftest import CAPITAL_QUESTION
from tests.helpers import wait_for

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN_ID = "00f067aa0ba902b7"


@pytest.fixture(scope="module")
def spans():
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)  # once per process; later tests reuse it
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


def test_bridge_server_and_engine_spans_share_the_callers_trace(http, spans):
    spans.clear()
    answer = http.post("/v1/chat/completions",
                       json={"messages": CAPITAL_QUESTION, "max_tokens": 4, "temperature": 0},
                       headers={"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN_ID}-01"})
    assert answer.status_code == 200

    def finished():
        names = {s.name for s in spans.get_finished_spans()}
        return {"POST /v1/chat/completions", "tokenwire.v1.GenerationService/Complete",
                "engine.queue", "engine.prefill", "engine.decode"} <= names

    wait_for(finished)
    by_name = {s.name: s for s in spans.get_finished_spans()
               if format(s.context.trace_id, "032x") == TRACE_ID}
    bridge = by_name["POST /v1/chat/completions"]
    server = by_name["tokenwire.v1.GenerationService/Complete"]
    assert bridge.kind is trace.SpanKind.SERVER
    assert format(bridge.parent.span_id, "016x") == CALLER_SPAN_ID
    assert server.parent.span_id == bridge.context.span_id  # traceparent travelled in gRPC metadata
    assert server.attributes["rpc.grpc.status_code"] == "OK"
    for phase in ("engine.queue", "engine.prefill", "engine.decode"):
        span = by_name[phase]
        assert span.parent.span_id == server.context.span_id
        assert span.attributes["tokenwire.engine"] == "default"
        assert server.start_time <= span.start_time <= span.end_time <= server.end_time
    assert by_name["engine.decode"].attributes["gen_ai.usage.output_tokens"] >= 1
    assert by_name["engine.prefill"].end_time <= by_name["engine.decode"].start_time


def test_a_request_without_trace_context_starts_its_own_trace(http, spans):
    spans.clear()
    assert http.post("/v1/completions", json={"prompt": "Hi", "max_tokens": 2}).status_code == 200
    wait_for(lambda: any(s.name == "engine.decode" for s in spans.get_finished_spans()))
    trace_ids = {s.context.trace_id for s in spans.get_finished_spans()
                 if s.name in ("POST /v1/completions", "tokenwire.v1.GenerationService/Complete",
                               "engine.decode")}
    assert len(trace_ids) == 1
