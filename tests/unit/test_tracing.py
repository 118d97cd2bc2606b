"""Trace context as the store keeps it and the standard variables that
choose an exporter, without any engine or tracer provider."""

from __future__ import annotations

import pytest
from opentelemetry import trace

from mastery_events.tracing import (
    context_of,
    current_traceparent,
    exporter_names,
    links_to,
)

FIRST = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
SECOND = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_a_stored_traceparent_gives_back_its_trace_and_span() -> None:
    """The context rebuilt from a traceparent names that trace and span, as
    a remote parent."""
    context = context_of(FIRST)

    assert context is not None
    span_context = trace.get_current_span(context).get_span_context()
    assert f"{span_context.trace_id:032x}" == "0af7651916cd43dd8448eb211c80319c"
    assert f"{span_context.span_id:016x}" == "b7ad6b7169203331"
    assert span_context.is_remote


def test_an_event_without_a_traceparent_starts_no_context() -> None:
    """An event stored while tracing was off has no parent to continue."""
    assert context_of(None) is None


def test_links_name_each_trace_context_once_and_skip_the_missing() -> None:
    """A batch of events from two requests, some untraced, some garbled,
    gives one link per request."""
    links = links_to([FIRST, None, SECOND, FIRST, "00-not-a-traceparent"])

    assert [f"{link.context.span_id:016x}" for link in links] == [
        "b7ad6b7169203331",
        "00f067aa0ba902b7",
    ]


def test_the_current_traceparent_is_that_of_the_current_span() -> None:
    """Inside a span whose context is valid, the traceparent written is
    that span's, and outside any span there is none."""
    parent = trace.get_current_span(context_of(FIRST)).get_span_context()

    with trace.use_span(trace.NonRecordingSpan(parent)):
        inside = current_traceparent()

    assert inside == FIRST
    assert current_traceparent() is None


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, []),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, ["otlp"]),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, ["otlp"]),
        ({"OTEL_TRACES_EXPORTER": "console"}, ["console"]),
        ({"OTEL_TRACES_EXPORTER": "otlp, Console"}, ["otlp", "console"]),
        (
            {
                "OTEL_TRACES_EXPORTER": "none",
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
            },
            [],
        ),
    ],
)
def test_exporters_follow_the_standard_variables(
    environ: dict[str, str], expected: list[str]
) -> None:
    """Nothing is exported unless an exporter or an OTLP endpoint is named,
    and ``none`` turns exporting off even with an endpoint set."""
    assert exporter_names(environ) == expected
