"""OpenTelemetry traces from an HTTP request through the store and NATS.

The HTTP span comes from Litestar's OpenTelemetry plugin. The store opens a
span around each append and keeps the W3C ``traceparent`` of that span with
every event it writes; the relay sends it on as the CloudEvents
distributed-tracing extension (the ``ce-traceparent`` header), and a
consumer's span continues from it. The relay runs after the request has
ended, so its publish span is linked to the traces of the events it sends
rather than being a child of one of them.

Nothing here needs a tracer provider. Without one the API's no-op tracer
answers, no ``traceparent`` is stored, and the relay has no links to make.
``configure_tracing`` installs the SDK when the standard ``OTEL_*``
variables ask for an exporter.

Spans carry no tenant, person or record id: attribute values are schema,
consumer, stream and event type names, counts, and route templates.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import (
    TraceContextTextMapPropagator,
)

from mastery_events.errors import EventsError

TRACEPARENT = "traceparent"
# An optional dependency (the ``otlp`` extra), so it is looked up by name.
OTLP_EXPORTER_MODULE = "opentelemetry.exporter.otlp.proto.http.trace_exporter"
TRACER = trace.get_tracer("mastery_events")

# Request attributes the ASGI instrumentation records that could name a
# record (paths with ids, share-link tokens) or a person (address, browser).
_PATH_ATTRIBUTES = ("http.target", "http.url", "url.path", "url.full")
_WITHHELD_ATTRIBUTES = (
    "url.query",
    "net.peer.ip",
    "client.address",
    "http.client_ip",
    "http.user_agent",
    "user_agent.original",
)
_WITHHELD = "withheld"
_propagator = TraceContextTextMapPropagator()


def current_traceparent() -> str | None:
    """Return the ``traceparent`` of the current span, or ``None`` when no
    trace is being recorded or propagated."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)

    return carrier.get(TRACEPARENT)


def context_of(traceparent: str | None) -> Context | None:
    """Return the context a ``traceparent`` names, to start a child span in;
    ``None`` (a new trace) when there is none."""
    if traceparent is None:
        return None
    return _propagator.extract({TRACEPARENT: traceparent})


def links_to(traceparents: Sequence[str | None]) -> list[Link]:
    """Return a link to each distinct trace context among ``traceparents``."""
    links = []
    for traceparent in dict.fromkeys(traceparents):
        context = context_of(traceparent)
        if context is None:
            continue
        span_context = trace.get_current_span(context).get_span_context()
        if span_context.is_valid:
            links.append(Link(span_context))

    return links


@contextmanager
def traced(
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, str | int] | None = None,
    parent: Context | None = None,
    links: Sequence[Link] = (),
) -> Iterator[Span]:
    """Run the body in a span made current, marked as failed by the type of
    an error that escapes; the error's message stays out, since it may
    carry ids."""
    with TRACER.start_as_current_span(
        name,
        context=parent,
        kind=kind,
        attributes=attributes,
        links=links,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except BaseException as error:
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))
            span.set_attribute("error.type", type(error).__name__)
            raise


def request_span_details(scope: Any) -> tuple[str, dict[str, str]]:
    """Name an HTTP span by its method alone until routing has found the
    route template: the path a caller sent may hold ids or a share link's
    token."""
    return str(scope.get("method") or "HTTP"), {}


def withhold_request_details(span: Span, scope: Any) -> None:
    """Replace what the ASGI instrumentation recorded about the request's
    path, client and browser with a placeholder."""
    _overwrite(span, _PATH_ATTRIBUTES + _WITHHELD_ATTRIBUTES, _WITHHELD)


def name_request_span(span: Span, scope: Any) -> None:
    """Name the request's span by method and route template once routing
    has found them, and record the template where the path was withheld."""
    template = scope.get("path_template")
    if not span.is_recording() or not template:
        return
    span.update_name(f"{scope.get('method') or 'HTTP'} {template}")
    span.set_attribute("http.route", str(template))
    _overwrite(span, _PATH_ATTRIBUTES, str(template))


def _overwrite(span: Span, keys: Sequence[str], value: str) -> None:
    # Only what the instrumentation set: the semantic conventions it
    # follows decide which of these names exist.
    recorded = getattr(span, "attributes", None) or {}
    for key in keys:
        if key in recorded:
            span.set_attribute(key, value)


def configure_tracing(service: str) -> bool:
    """Install the SDK's tracer provider when the ``OTEL_*`` variables ask
    for an exporter; return whether traces are now exported.

    ``OTEL_TRACES_EXPORTER`` names the exporters (``otlp``, ``console``,
    ``none``); unset, OTLP is chosen when an OTLP endpoint is set and
    nothing otherwise. ``OTEL_SDK_DISABLED=true`` turns tracing off. The
    SDK itself reads the rest: service name and resource, sampler, batch
    sizes, and the OTLP endpoint, headers and timeout.
    """
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    names = exporter_names(os.environ)
    if not names:
        return False

    # Imported here so a process that never exports does not load the SDK.
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    given = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service}
    provider = TracerProvider(resource=Resource.create(given))
    for name in names:
        provider.add_span_processor(BatchSpanProcessor(_exporter(name)))
    trace.set_tracer_provider(provider)

    return True


class TracingSetupError(EventsError):
    """Raised when ``OTEL_TRACES_EXPORTER`` names an exporter this
    installation cannot build."""


def exporter_names(environ: Mapping[str, str]) -> list[str]:
    """Return the exporters the ``OTEL_*`` variables in ``environ`` ask for,
    none when they name no exporter and no OTLP endpoint."""
    listed = environ.get("OTEL_TRACES_EXPORTER")
    if listed is None:
        endpoints = (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        )
        return ["otlp"] if any(environ.get(name) for name in endpoints) else []
    names = [name.strip().lower() for name in listed.split(",")]

    return [name for name in names if name and name != "none"]


def _exporter(name: str) -> Any:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if name != "otlp":
        message = f"OTEL_TRACES_EXPORTER names {name!r}; use otlp, console or none"
        raise TracingSetupError(message)
    try:
        otlp = importlib.import_module(OTLP_EXPORTER_MODULE)
    except ImportError as error:
        message = (
            "the OTLP exporter is not installed: install mastery-events[otlp] "
            "or set OTEL_TRACES_EXPORTER=console"
        )
        raise TracingSetupError(message) from error

    return otlp.OTLPSpanExporter()
