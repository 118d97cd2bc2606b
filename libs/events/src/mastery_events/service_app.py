"""The HTTP shell every service shares: probes, problem details, logging.

A service brings its name, its routes and its runtime; this module wraps
them in one Litestar application with ``/healthz`` and ``/readyz``, the
OpenAPI document at ``/schema/openapi.json``, RFC 9457 problem details for
every error, and structured request logs that name no person.

Every other route is authenticated with a bearer token (see
``mastery_events.api_security`` for how a route is marked public), and a
handler receives the caller as its ``identity`` parameter.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.metadata import version
from typing import Any

import msgspec
import structlog
import uvicorn
from litestar import Litestar, Request, Router, get
from litestar.di import Provide
from litestar.logging.config import LoggingConfig, StructLoggingConfig
from litestar.middleware.logging import LoggingMiddlewareConfig
from litestar.openapi.config import OpenAPIConfig
from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin
from litestar.plugins.problem_details import (
    ProblemDetailsConfig,
    ProblemDetailsException,
    ProblemDetailsPlugin,
)
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from litestar.plugins.structlog import StructlogConfig, StructlogPlugin
from litestar.template.config import TemplateConfig
from litestar.types import ASGIApp, ControllerRouterHandler, Receive, Scope, Send
from opentelemetry import trace

from mastery_events.access import NotAllowedError, NotVisibleError, identity_of
from mastery_events.api_security import (
    BODY_LIMIT,
    UNLOGGED,
    add_security_headers,
    bearer_auth,
    loaded_keys,
    problem_map,
    rate_limit,
)
from mastery_events.identity import Identity, VerificationKeys
from mastery_events.log_output import stdlib_formatter, structlog_processors
from mastery_events.rate_limits import RATE_LIMIT_STORE, SharedCounts
from mastery_events.runtime import (
    Liveness,
    NotAliveError,
    NotReadyError,
    Readiness,
    ServiceRuntime,
)
from mastery_events.settings import Settings
from mastery_events.tracing import (
    configure_tracing,
    name_request_span,
    request_span_details,
    withhold_request_details,
)

PROBES = ["/healthz", "/readyz"]
METRICS = "/metrics"
CLIENT_ERRORS = frozenset(range(400, 500))


def service_app(
    runtime: ServiceRuntime,
    *,
    distribution: str,
    route_handlers: Sequence[ControllerRouterHandler] = (),
    refusals: Sequence[type[Exception]] = (),
    template_config: TemplateConfig[Any] | None = None,
) -> Litestar:
    """Build a service's application around ``runtime``, whose start and
    stop follow the server's lifespan.

    ``distribution`` is the service's installed package, whose version the
    OpenAPI document states. ``refusals`` are the service's own errors that
    answer a caller's mistake (its domain errors, turned into 4xx problems
    by its handlers): they are logged without a stack trace.
    ``template_config`` is for a service that renders pages on the server.
    """
    name = runtime.service.name
    keys = VerificationKeys.from_settings(runtime.settings)
    auth = bearer_auth(keys)

    @get("/healthz", tags=["probes"], sync_to_thread=False)
    def healthz() -> Liveness:
        """Answer 200 while the process and its background tasks run,
        whatever its engines do; 503 once a task ended by a fault, so the
        orchestrator restarts the process."""
        return runtime.require_alive()

    @get("/readyz", tags=["probes"])
    async def readyz() -> Readiness:
        """Answer 200 when the database and NATS answer, 503 otherwise."""
        return await runtime.require_ready()

    return Litestar(
        route_handlers=[healthz, readyz, metrics_router(runtime), *route_handlers],
        lifespan=[lambda app: loaded_keys(keys, app), lambda _: runtime.running()],
        on_app_init=[auth.on_app_init],
        middleware=[
            named_request_span,
            request_metrics(name).middleware,
            rate_limit(runtime.settings.rate_limit).middleware,
        ],
        before_send=[add_security_headers],
        dependencies={"identity": Provide(caller, sync_to_thread=False)},
        request_max_body_size=BODY_LIMIT,
        stores={RATE_LIMIT_STORE: SharedCounts(runtime.rate_counts)},
        template_config=template_config,
        openapi_config=OpenAPIConfig(
            title=f"Mastery {name}", version=version(distribution)
        ),
        plugins=[
            ProblemDetailsPlugin(
                ProblemDetailsConfig(
                    enable_for_all_http_exceptions=True,
                    exception_to_problem_detail_map={
                        NotAliveError: not_alive,
                        NotReadyError: not_ready,
                        **problem_map(),
                    },
                )
            ),
            StructlogPlugin(log_config(runtime.settings, refusals=refusals)),
            OpenTelemetryPlugin(request_tracing()),
        ],
    )


def metrics_router(runtime: ServiceRuntime) -> Router:
    """Serve Prometheus metrics at ``/metrics``, with the lag gauges measured
    as each scrape arrives; the route stays out of the OpenAPI document,
    since it is for the operator's scraper, not for the API's callers."""

    async def sample(_: Request[Any, Any, Any]) -> None:
        await runtime.sample_metrics()

    return Router(
        path="/",
        route_handlers=[PrometheusController],
        before_request=sample,
        include_in_schema=False,
    )


def request_metrics(service: str) -> PrometheusConfig:
    """Count and time every request but the probes and scrapes, labelled by
    route template (``/objective-sets/{set_id}``), never by the ids in a
    path, so no label names a record."""
    return PrometheusConfig(
        app_name=service,
        prefix="mastery_http",
        group_path=True,
        exclude=[*(f"^{probe}$" for probe in PROBES), f"^{METRICS}$"],
    )


def request_tracing() -> OpenTelemetryConfig:
    """Trace every request but the probes and scrapes, one span each, named
    by route template, with the caller's path, address and browser withheld;
    the store's spans and each event's trace context hang off it."""
    return OpenTelemetryConfig(
        exclude=[*(f"^{probe}$" for probe in PROBES), f"^{METRICS}$"],
        exclude_spans=["receive", "send"],
        scope_span_details_extractor=request_span_details,
        server_request_hook_handler=withhold_request_details,
    )


def named_request_span(app: ASGIApp) -> ASGIApp:
    """Wrap a route so its request's span, opened before routing, is named
    by the route template the router found."""

    async def named(scope: Scope, receive: Receive, send: Send) -> None:
        name_request_span(trace.get_current_span(), scope)
        await app(scope, receive, send)

    return named


def caller(request: Request[Identity, Any, Any]) -> Identity:
    """Provide the authenticated caller to handlers that name ``identity``."""
    return identity_of(request)


def not_alive(error: NotAliveError) -> ProblemDetailsException:
    """Describe a process whose background tasks failed as an RFC 9457
    problem."""
    return ProblemDetailsException(
        status_code=503,
        title="Service not alive",
        detail=str(error),
        extra={"failed": error.failed},
    )


def not_ready(error: NotReadyError) -> ProblemDetailsException:
    """Describe an engine that does not answer as an RFC 9457 problem."""
    return ProblemDetailsException(
        status_code=503,
        title="Service not ready",
        detail=str(error),
        extra={"checks": msgspec.to_builtins(error.readiness)},
    )


def quiet_errors(*roots: type[Exception]) -> set[type[Exception]]:
    """Return ``roots`` and every subclass of them: Litestar matches the
    exact class of an error against its no-stack-trace set."""
    found: set[type[Exception]] = set()
    waiting = list(roots)
    while waiting:
        error = waiting.pop()
        if error not in found:
            found.add(error)
            waiting.extend(error.__subclasses__())

    return found


def log_config(
    settings: Settings, *, refusals: Sequence[type[Exception]] = ()
) -> StructlogConfig:
    """Log structured lines at the configured level, naming no person: only
    the method, path and status of each request, and no probe traffic."""
    colors = sys.stderr.isatty()
    return StructlogConfig(
        structlog_logging_config=StructLoggingConfig(
            processors=structlog_processors(settings.log_format, colors=colors),
            # One write per line: print() writes the line and its newline
            # apart, and a server thread's line can land between them.
            logger_factory=structlog.WriteLoggerFactory(sys.stderr),
            wrapper_class=structlog.make_filtering_bound_logger(settings.log_level),
            # Cached loggers would keep this configuration for good, even
            # after another application, or a test, configures structlog.
            cache_logger_on_first_use=False,
            standard_lib_logging_config=LoggingConfig(
                formatters={
                    "standard": stdlib_formatter(settings.log_format, colors=colors)
                },
                root={"level": settings.log_level.upper(), "handlers": ["console"]},
            ),
            log_exceptions="always",
            # A caller's mistake or a missing engine is not a server fault.
            disable_stack_trace={
                *quiet_errors(
                    NotAliveError, NotReadyError, NotAllowedError, NotVisibleError
                ),
                *quiet_errors(*refusals),
                *CLIENT_ERRORS,
            },
        ),
        middleware_logging_config=LoggingMiddlewareConfig(
            exclude=[*PROBES, METRICS],
            exclude_opt_key=UNLOGGED,
            request_log_message="http.request",
            response_log_message="http.response",
            request_log_fields=["method", "path"],
            response_log_fields=["status_code"],
        ),
    )


def serve(app: Litestar, settings: Settings, *, service: str) -> None:
    """Serve ``app`` with uvicorn on the service's configured port until
    SIGINT or SIGTERM; port 0 lets the system choose a free one. Traces
    are exported as the ``OTEL_*`` variables say, and not at all without
    them."""
    configure_tracing(f"mastery-{service}")
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port_of(service) or 0,
        log_config=None,
        access_log=False,
        lifespan="on",
        # Behind a proxy, the client is the address the proxy forwards, and
        # only a proxy the operator trusts may say who the client is.
        proxy_headers=True,
        forwarded_allow_ips=settings.trusted_proxies,
    )
