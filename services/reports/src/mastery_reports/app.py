"""The reports service's HTTP application."""

from __future__ import annotations

import sys
from importlib.metadata import version

import msgspec
import structlog
from litestar import Litestar, get
from litestar.logging.config import LoggingConfig, StructLoggingConfig
from litestar.middleware.logging import LoggingMiddlewareConfig
from litestar.openapi.config import OpenAPIConfig
from litestar.plugins.problem_details import (
    ProblemDetailsConfig,
    ProblemDetailsException,
    ProblemDetailsPlugin,
)
from litestar.plugins.structlog import StructlogConfig, StructlogPlugin

from mastery_events.log_output import stdlib_formatter, structlog_processors
from mastery_events.runtime import Liveness, NotReadyError, Readiness, ServiceRuntime
from mastery_events.settings import Settings
from mastery_reports.service import SERVICE

PROBES = ["/healthz", "/readyz"]
CLIENT_ERRORS = frozenset(range(400, 500))


def create_app(settings: Settings) -> Litestar:
    """Build the reports service's application; its lifespan starts the
    service's engines and stops them when the server stops."""
    runtime = ServiceRuntime(SERVICE, settings)

    @get("/healthz", tags=["probes"], sync_to_thread=False)
    def healthz() -> Liveness:
        """Answer while the process runs, whatever its engines do."""
        return Liveness()

    @get("/readyz", tags=["probes"])
    async def readyz() -> Readiness:
        """Answer 200 when the database and NATS answer, 503 otherwise."""
        return await runtime.require_ready()

    return Litestar(
        route_handlers=[healthz, readyz],
        lifespan=[lambda _: runtime.running()],
        openapi_config=OpenAPIConfig(
            title="Mastery reports", version=version("mastery-reports")
        ),
        plugins=[
            ProblemDetailsPlugin(
                ProblemDetailsConfig(
                    enable_for_all_http_exceptions=True,
                    exception_to_problem_detail_map={NotReadyError: not_ready},
                )
            ),
            StructlogPlugin(log_config(settings)),
        ],
    )


def not_ready(error: NotReadyError) -> ProblemDetailsException:
    """Describe an engine that does not answer as an RFC 9457 problem."""
    return ProblemDetailsException(
        status_code=503,
        title="Service not ready",
        detail=str(error),
        extra={"checks": msgspec.to_builtins(error.readiness)},
    )


def log_config(settings: Settings) -> StructlogConfig:
    """Log structured lines at the configured level, naming no person: only
    the method, path and status of each request, and no probe traffic."""
    colors = sys.stderr.isatty()
    return StructlogConfig(
        structlog_logging_config=StructLoggingConfig(
            processors=structlog_processors(settings.log_format, colors=colors),
            logger_factory=structlog.PrintLoggerFactory(sys.stderr),
            wrapper_class=structlog.make_filtering_bound_logger(settings.log_level),
            standard_lib_logging_config=LoggingConfig(
                formatters={
                    "standard": stdlib_formatter(settings.log_format, colors=colors)
                },
                root={"level": settings.log_level.upper(), "handlers": ["console"]},
            ),
            log_exceptions="always",
            # A caller's mistake or a missing engine is not a server fault.
            disable_stack_trace={NotReadyError, *CLIENT_ERRORS},
        ),
        middleware_logging_config=LoggingMiddlewareConfig(
            exclude=PROBES,
            request_log_message="http.request",
            response_log_message="http.response",
            request_log_fields=["method", "path"],
            response_log_fields=["status_code"],
        ),
    )
