"""What can go wrong in the grading service, as one family of errors."""

from __future__ import annotations

from uuid import UUID

import msgspec


class GradingError(Exception):
    """Raised when the grading service refuses something; the root of its
    errors, so an entrypoint can translate them all in one place."""


class InvalidParameterError(GradingError):
    """Raised when a policy, scale or preview parameter is out of its range.

    ``field`` names the parameter as the caller spelled it, so an HTTP or
    command-line caller can point at it.
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class NoScoresError(GradingError):
    """Raised when a mastery method is asked to summarise no scores at all."""

    def __init__(self, method: str) -> None:
        self.method = method
        super().__init__(f"{method} needs at least one score")


class OrphanCorrectionError(GradingError):
    """Raised when an amend or void names an assessment whose recording is
    not among the events being folded."""

    def __init__(self, assessment_id: UUID) -> None:
        self.assessment_id = assessment_id
        message = (
            f"assessment {assessment_id} is corrected, but its recording "
            "is not among the events given"
        )
        super().__init__(message)


class MixedEvidenceError(GradingError):
    """Raised when the events folded into one evidence list belong to more
    than one student or objective."""

    def __init__(self, assessment_id: UUID, *, student_id: str, objective_id: UUID):
        self.assessment_id = assessment_id
        self.student_id = student_id
        self.objective_id = objective_id
        message = (
            f"assessment {assessment_id} is for student {student_id} on "
            f"objective {objective_id}, not the pair being folded"
        )
        super().__init__(message)


class ScaleVersionNotFoundError(GradingError):
    """Raised when grading knows no such version of a scale for the tenant:
    it was never defined, belongs to another tenant, or has not arrived yet."""

    def __init__(self, scale_id: UUID, version: int) -> None:
        self.scale_id = scale_id
        self.version = version
        super().__init__(f"grading knows no version {version} of scale {scale_id}")


class PolicyVersionNotFoundError(GradingError):
    """Raised when grading knows no such version of a set's policy, or of
    one objective's override, for the tenant."""

    def __init__(
        self, objective_set_id: UUID, objective_id: UUID | None, version: int
    ) -> None:
        self.objective_set_id = objective_set_id
        self.objective_id = objective_id
        self.version = version
        scope = f"objective {objective_id}" if objective_id else "the whole set"
        message = (
            f"grading knows no version {version} of the policy of set "
            f"{objective_set_id} for {scope}"
        )
        super().__init__(message)


class RosterProblem(msgspec.Struct, frozen=True, kw_only=True):
    """One thing wrong with a roster bundle, and where it is.

    ``line`` is 1-based and counts the header; ``column`` is the header
    name. Both are ``None`` only when a whole file is missing. ``message``
    names records by ``sourcedId``, never by a person's name or email.
    """

    file: str
    line: int | None
    column: str | None
    message: str

    def describe(self) -> str:
        """Say where the problem is and what it is, on one line."""
        where = self.file
        if self.line is not None:
            where += f" line {self.line}"
        if self.column is not None:
            where += f" column {self.column}"
        return f"{where}: {self.message}"


class RosterImportError(GradingError):
    """Raised when a roster bundle has one or more problems, so none of it
    is taken; ``problems`` lists them (up to a cap) and ``total`` counts
    them all."""

    def __init__(self, problems: tuple[RosterProblem, ...], *, total: int) -> None:
        self.problems = problems
        self.total = total
        shown = "; ".join(problem.describe() for problem in problems[:3])
        more = f" (and {total - 3} more)" if total > 3 else ""
        super().__init__(f"roster bundle refused, {total} problem(s): {shown}{more}")


class PersonNotFoundError(GradingError):
    """Raised when the tenant's roster has no person with this id."""

    def __init__(self, tenant_id: str, person_id: UUID) -> None:
        self.tenant_id = tenant_id
        self.person_id = person_id
        super().__init__(f"tenant {tenant_id!r} has no person {person_id}")


class SectionNotFoundError(GradingError):
    """Raised when the tenant's roster has no section with this id, or only
    a removed one."""

    def __init__(self, tenant_id: str, section_id: str) -> None:
        self.tenant_id = tenant_id
        self.section_id = section_id
        super().__init__(f"tenant {tenant_id!r} has no section {section_id!r}")


class UnknownObjectiveSetError(GradingError):
    """Raised when a section is to be linked to an objective set grading's
    catalogue does not hold any objective of."""

    def __init__(self, tenant_id: str, objective_set_id: UUID) -> None:
        self.tenant_id = tenant_id
        self.objective_set_id = objective_set_id
        message = (
            f"grading's catalogue of tenant {tenant_id!r} knows no objective "
            f"of set {objective_set_id}"
        )
        super().__init__(message)
