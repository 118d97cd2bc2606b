"""How every mastery process renders its log lines.

The entrypoints (each service's application and the ``mastery`` command)
configure structlog and the standard library's logging with these chains,
so every process of a stack writes lines of the same shape: ``console`` for
people, ``json`` for log collectors. This module only describes the chains;
it configures nothing, because a library leaves that to the application.
"""

from __future__ import annotations

import re
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from mastery_events.settings import LogFormat

# A shared report's path carries its token: ``/shared/<tenant>/<token>``.
SHARE_TOKEN = re.compile(r"(/shared/[^/\s?#]+/)[^/\s?#]+")
HIDDEN = "<token>"


def hide_share_tokens(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Replace the token of every shared report's path a line holds, so a
    server's request or error lines never carry one."""
    for key, value in event_dict.items():
        if isinstance(value, str) and "/shared/" in value:
            event_dict[key] = SHARE_TOKEN.sub(rf"\1{HIDDEN}", value)

    return event_dict


def timestamped() -> list[Processor]:
    """Return the steps every line takes before it is rendered."""
    return [
        structlog.contextvars.merge_contextvars,
        hide_share_tokens,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def renderer(log_format: LogFormat, *, colors: bool) -> list[Processor]:
    """Return the last steps: tracebacks as data and one JSON object per
    line, or an aligned line for a person (coloured on a terminal).

    Tracebacks never show local variables: they hold connection settings,
    request bodies and people's data.
    """
    if log_format == "json":
        return [
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            ),
            structlog.processors.JSONRenderer(),
        ]
    return [
        structlog.dev.ConsoleRenderer(
            colors=colors, exception_formatter=structlog.dev.plain_traceback
        )
    ]


def structlog_processors(log_format: LogFormat, *, colors: bool) -> list[Processor]:
    """Return the chain for lines logged through structlog."""
    return [*timestamped(), *renderer(log_format, colors=colors)]


def stdlib_formatter(log_format: LogFormat, *, colors: bool) -> dict[str, Any]:
    """Return a ``logging.config.dictConfig`` formatter that renders lines
    from standard-library loggers (servers, drivers) like structlog's own."""
    return {
        "()": structlog.stdlib.ProcessorFormatter,
        # Extra record fields are left out: servers put terminal colour
        # codes there.
        "foreign_pre_chain": [*timestamped(), structlog.stdlib.add_logger_name],
        "processors": [
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *renderer(log_format, colors=colors),
        ],
    }
