"""What can go wrong in the reports service, as one family of errors."""

from __future__ import annotations

from uuid import UUID


class ReportsError(Exception):
    """Raised when the reports service refuses something; the root of its
    errors, so an entrypoint can translate them all in one place."""


class ShareLinkNotFoundError(ReportsError):
    """Raised when a share link id names no link of the caller's tenant."""

    def __init__(self, share_link_id: UUID) -> None:
        self.share_link_id = share_link_id
        super().__init__(f"no share link {share_link_id}")


class SharedReportNotFoundError(ReportsError):
    """Raised when a share token is unknown, expired or revoked; which of
    the three is never told, to the caller or to the log."""

    def __init__(self) -> None:
        super().__init__("no report is shared under this link")


class StudentNotFoundError(ReportsError):
    """Raised when reports holds no snapshot of a student in the tenant."""

    def __init__(self, student_id: str) -> None:
        self.student_id = student_id
        super().__init__(f"no report of student {student_id}")


class SectionNotFoundError(ReportsError):
    """Raised when a section is unknown to reports, or hidden from the
    caller, which is answered the same way."""

    def __init__(self, section_id: str) -> None:
        self.section_id = section_id
        super().__init__(f"no section {section_id}")


class InvalidShareRequestError(ReportsError):
    """Raised when a share link request names sections the student is not
    enrolled in, or a term none of them runs in; ``field`` names the part
    of the request at fault."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class ViewNotFoundError(ReportsError):
    """Raised when a tenant's log holds no view of a shared report with the
    event id given."""

    def __init__(self, view_id: UUID) -> None:
        self.view_id = view_id
        super().__init__(f"no view {view_id} of a shared report")


class ViewNotReproducibleError(ReportsError):
    """Raised when a view cannot be rendered again from the log: recorded
    before views kept their positions, or the log no longer holds the
    events the served report reflected."""

    def __init__(self, view_id: UUID, reason: str) -> None:
        self.view_id = view_id
        self.reason = reason
        super().__init__(f"view {view_id} cannot be reproduced: {reason}")
