"""The shared HTTP shell's choice of which errors are logged as faults."""

from __future__ import annotations

from mastery_events.access import NotAllowedError, NotVisibleError
from mastery_events.service_app import log_config, quiet_errors
from mastery_events.settings import Settings
from mastery_objectives.errors import ObjectivesError, ObjectiveSetNotFoundError


class GradebookError(Exception):
    """Raised when the gradebook refuses something, in this test."""


class StudentNotFoundError(GradebookError):
    """Raised when no such student exists, in this test."""


class DuplicateStudentNotFoundError(StudentNotFoundError):
    """Raised for a finer reason, to reach a grandchild class."""


def test_quiet_errors_reach_every_descendant_of_a_refusal() -> None:
    """Litestar matches exact classes, so grandchildren must be listed too."""
    assert quiet_errors(GradebookError) == {
        GradebookError,
        StudentNotFoundError,
        DuplicateStudentNotFoundError,
    }


def test_a_service_refusal_is_logged_without_a_stack_trace() -> None:
    """A missing objective set is the caller's mistake, not a server fault."""
    config = log_config(Settings(), refusals=[ObjectivesError])
    quiet = config.structlog_logging_config.disable_stack_trace

    assert ObjectiveSetNotFoundError in quiet
    assert NotVisibleError in quiet
    assert NotAllowedError in quiet
    assert KeyError not in quiet
