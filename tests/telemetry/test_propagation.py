"""W3C trace context through gRPC metadata."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.context import Context

from gateway.telemetry import extract_context, inject_metadata
from gateway.telemetry.sdk import Telemetry


def test_injected_traceparent_extracts_to_the_same_trace(in_memory: Telemetry) -> None:
    with in_memory.tracer.start_as_current_span("client") as span:
        metadata = inject_metadata()
    sent = span.get_span_context()

    received = trace.get_current_span(extract_context(metadata)).get_span_context()

    assert [key for key, _ in metadata] == ["traceparent"]
    assert received.is_remote
    assert (received.trace_id, received.span_id) == (sent.trace_id, sent.span_id)


def test_server_span_joins_the_callers_trace(in_memory: Telemetry) -> None:
    with in_memory.tracer.start_as_current_span("client") as client:
        metadata = [("authorization", "Bearer k"), *inject_metadata()]

    parent = extract_context([(key.upper(), value.encode()) for key, value in metadata])
    with in_memory.tracer.start_as_current_span("Generate", context=parent) as server:
        pass

    assert server.get_span_context().trace_id == client.get_span_context().trace_id


def test_empty_metadata_gives_an_empty_context(in_memory: Telemetry) -> None:
    with in_memory.tracer.start_as_current_span("ambient"):
        assert extract_context([]) == Context()
        assert extract_context(None) == Context()
        assert extract_context([("traceparent", "garbage")]) == Context()


def test_nothing_to_inject_outside_a_span() -> None:
    assert inject_metadata() == []
