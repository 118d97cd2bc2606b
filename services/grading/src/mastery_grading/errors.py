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


class ObjectiveNotYetKnownError(GradingError):
    """Raised when an imported assessment names an objective grading's
    catalogue has not heard of yet: the timeline would miss its set, so
    the projector tries again once the catalogue has caught up."""

    def __init__(self, tenant_id: str, objective_id: UUID) -> None:
        self.tenant_id = tenant_id
        self.objective_id = objective_id
        super().__init__(
            f"grading's catalogue does not know objective {objective_id} yet"
        )


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


class RecalculationNotFoundError(GradingError):
    """Raised when a tenant has no recalculation job of that id."""

    def __init__(self, job_id: UUID) -> None:
        self.job_id = job_id
        super().__init__(f"no recalculation job {job_id}")


class TimelineNotFoundError(GradingError):
    """Raised when a tenant has no timeline for a student on an objective,
    or none the caller may read."""

    def __init__(self, student_id: str, objective_id: UUID) -> None:
        self.student_id = student_id
        self.objective_id = objective_id
        super().__init__(f"no timeline of objective {objective_id} for the student")


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


class AssessmentRefusedError(GradingError):
    """Raised when an assessment, or one row of a batch, cannot be
    recorded as given; ``field`` names the part of the request at fault."""

    field: str = "body"


class SectionNotGradableError(AssessmentRefusedError):
    """Raised when the caller may not record grades in a section: it is
    not among a teacher's sections, or the caller never writes grades."""

    field = "section_id"

    def __init__(self, subject: str, *, section_id: str) -> None:
        self.subject = subject
        self.section_id = section_id
        super().__init__(f"{subject!r} may not record grades in section {section_id}")


class NotOnScaleError(AssessmentRefusedError):
    """Raised when a level is not one of a scale version's levels, or a
    mark not one of its marks; ``field`` is ``level`` or ``mark``."""

    def __init__(
        self, scale_id: UUID, version: int, *, field: str, value: object
    ) -> None:
        self.scale_id = scale_id
        self.version = version
        self.field = field
        self.value = value
        message = f"{value!r} is not a {field} of version {version} of scale {scale_id}"
        super().__init__(message)


class ReadingMissingError(AssessmentRefusedError):
    """Raised when an assessment gives both a level and a mark, or neither:
    it says exactly one of them."""

    field = "level"

    def __init__(self, *, both: bool) -> None:
        self.both = both
        message = (
            "give a level or a mark, not both" if both else "give a level or a mark"
        )
        super().__init__(message)


class UnknownScaleVersionError(AssessmentRefusedError):
    """Raised when an assessment names a scale version grading does not
    know for the tenant."""

    field = "scale_version"

    def __init__(self, scale_id: UUID, version: int) -> None:
        self.scale_id = scale_id
        self.version = version
        super().__init__(f"grading knows no version {version} of scale {scale_id}")


class UnknownObjectiveError(AssessmentRefusedError):
    """Raised when an assessment names an objective grading does not know
    for the tenant, or one that was removed."""

    field = "objective_id"

    def __init__(self, objective_id: UUID) -> None:
        self.objective_id = objective_id
        super().__init__(f"grading knows no objective {objective_id}")


class ObjectiveOutsideSectionError(AssessmentRefusedError):
    """Raised when an objective belongs to no objective set linked to the
    section the assessment is made in."""

    field = "objective_id"

    def __init__(self, objective_id: UUID, *, section_id: str) -> None:
        self.objective_id = objective_id
        self.section_id = section_id
        message = (
            f"objective {objective_id} is in no objective set taught in "
            f"section {section_id}"
        )
        super().__init__(message)


class StudentNotInSectionError(AssessmentRefusedError):
    """Raised when the student is not actively enrolled as a student in
    the section the assessment is made in."""

    field = "student_id"

    def __init__(self, student_id: str, *, section_id: str) -> None:
        self.student_id = student_id
        self.section_id = section_id
        message = f"student {student_id} is not enrolled in section {section_id}"
        super().__init__(message)


class NothingToAmendError(AssessmentRefusedError):
    """Raised when an amend changes neither the level, the mark nor the
    date of the assessment it names."""

    field = "level"

    def __init__(self, assessment_id: UUID) -> None:
        self.assessment_id = assessment_id
        message = f"the amend of assessment {assessment_id} changes nothing"
        super().__init__(message)


class InvalidGradeError(AssessmentRefusedError):
    """Raised when a traditional grade or a section's letter cuts do not
    hold together; ``field`` names the value at fault."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class RowProblem(msgspec.Struct, frozen=True, kw_only=True):
    """What is wrong with one row of a batch: its index from 0, the field
    at fault and why."""

    row: int
    field: str
    message: str


class BatchRefusedError(GradingError):
    """Raised when one or more rows of a batch cannot be recorded, so none
    of the batch is; ``problems`` lists them (up to a cap) and ``total``
    counts them all."""

    def __init__(self, problems: tuple[RowProblem, ...], *, total: int) -> None:
        self.problems = problems
        self.total = total
        first = problems[0]
        message = (
            f"batch refused, {total} bad row(s); row {first.row} "
            f"{first.field}: {first.message}"
        )
        super().__init__(message)


class AssessmentNotFoundError(GradingError):
    """Raised when an assessment is unknown to the tenant, or lies outside
    what the caller may see: both are answered alike."""

    def __init__(self, assessment_id: UUID) -> None:
        self.assessment_id = assessment_id
        super().__init__(f"no assessment {assessment_id}")


class AssessmentVoidedError(GradingError):
    """Raised when an amend or a void names an assessment already voided:
    a voided assessment stays as it was voided."""

    def __init__(self, assessment_id: UUID) -> None:
        self.assessment_id = assessment_id
        super().__init__(f"assessment {assessment_id} is voided")


class GradeNotFoundError(GradingError):
    """Raised when a traditional grade is unknown to the tenant, or lies
    outside what the caller may see."""

    def __init__(self, grade_id: UUID) -> None:
        self.grade_id = grade_id
        super().__init__(f"no traditional grade {grade_id}")


class GradeVoidedError(GradingError):
    """Raised when a void names a traditional grade already voided."""

    def __init__(self, grade_id: UUID) -> None:
        self.grade_id = grade_id
        super().__init__(f"traditional grade {grade_id} is voided")


class StudentNotFoundError(GradingError):
    """Raised when a student is unknown to the tenant, or the caller sees
    none of their sections."""

    def __init__(self, student_id: str) -> None:
        self.student_id = student_id
        super().__init__(f"no student {student_id}")


class IdempotencyKeyReusedError(GradingError):
    """Raised when an ``Idempotency-Key`` comes back with another request
    than the one it was first sent with."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__("this idempotency key was used for another request")


class ConcurrentChangeError(GradingError):
    """Raised when another writer changed a stream between this request's
    read and its append; the caller may try again."""

    def __init__(self, stream_id: str) -> None:
        self.stream_id = stream_id
        super().__init__(f"stream {stream_id} changed concurrently")


class UnknownSectionError(AssessmentRefusedError):
    """Raised when a recording names a section the roster does not hold
    for the tenant, or one it removed."""

    field = "section_id"

    def __init__(self, section_id: str) -> None:
        self.section_id = section_id
        super().__init__(f"the roster holds no section {section_id}")


class NoMasteryError(GradingError):
    """Raised when a student has no mastery in the tenant at the moments
    asked about."""

    def __init__(self, student_id: str) -> None:
        self.student_id = student_id
        super().__init__(f"no mastery of student {student_id} then")
