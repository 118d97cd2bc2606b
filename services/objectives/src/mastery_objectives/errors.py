"""The errors of the objectives service: one root, a subclass per refusal.

Each carries the ids or the place involved; only the HTTP edge turns them
into problem details.
"""

from __future__ import annotations

from uuid import UUID


class ObjectivesError(Exception):
    """Raised when the objectives service refuses a request."""


class ObjectiveSetNotFoundError(ObjectivesError):
    """Raised when a tenant has no objective set with the given id."""

    def __init__(self, objective_set_id: UUID) -> None:
        self.objective_set_id = objective_set_id
        super().__init__(f"there is no objective set {objective_set_id}")


class ObjectiveSetExistsError(ObjectivesError):
    """Raised when a set is created under an id that is already taken."""

    def __init__(self, objective_set_id: UUID) -> None:
        self.objective_set_id = objective_set_id
        super().__init__(f"objective set {objective_set_id} already exists")


class SetVersionNotFoundError(ObjectivesError):
    """Raised when a set has never been published at the asked version."""

    def __init__(self, objective_set_id: UUID, set_version: int) -> None:
        self.objective_set_id = objective_set_id
        self.set_version = set_version
        message = f"objective set {objective_set_id} has no version {set_version}"
        super().__init__(message)


class ObjectiveNotFoundError(ObjectivesError):
    """Raised when a set holds no objective with the given id."""

    def __init__(self, objective_set_id: UUID, objective_id: UUID) -> None:
        self.objective_set_id = objective_set_id
        self.objective_id = objective_id
        message = f"objective set {objective_set_id} has no objective {objective_id}"
        super().__init__(message)


class ObjectiveExistsError(ObjectivesError):
    """Raised when an objective is added under an id the set already has."""

    def __init__(self, objective_set_id: UUID, objective_id: UUID) -> None:
        self.objective_set_id = objective_set_id
        self.objective_id = objective_id
        message = f"objective set {objective_set_id} already has {objective_id}"
        super().__init__(message)


class ObjectiveHasChildrenError(ObjectivesError):
    """Raised when an objective that still has children is removed."""

    def __init__(self, objective_set_id: UUID, objective_id: UUID) -> None:
        self.objective_set_id = objective_set_id
        self.objective_id = objective_id
        message = f"objective {objective_id} still has children; remove them first"
        super().__init__(message)


class HierarchyCycleError(ObjectivesError):
    """Raised when a parent link would make an objective its own ancestor."""

    def __init__(self, objective_id: UUID | str, parent_id: UUID | str) -> None:
        self.objective_id = objective_id
        self.parent_id = parent_id
        message = (
            f"putting {objective_id} under {parent_id} would make it its own ancestor"
        )
        super().__init__(message)


class DuplicateCodeError(ObjectivesError):
    """Raised when two objectives of one set would share a human code."""

    def __init__(self, objective_set_id: UUID, code: str) -> None:
        self.objective_set_id = objective_set_id
        self.code = code
        message = f"objective set {objective_set_id} already uses the code {code!r}"
        super().__init__(message)


class ObjectiveSetArchivedError(ObjectivesError):
    """Raised when an archived set is changed."""

    def __init__(self, objective_set_id: UUID) -> None:
        self.objective_set_id = objective_set_id
        super().__init__(f"objective set {objective_set_id} is archived")


class NothingToPublishError(ObjectivesError):
    """Raised when a set is published with no change since its last version."""

    def __init__(self, objective_set_id: UUID, set_version: int) -> None:
        self.objective_set_id = objective_set_id
        self.set_version = set_version
        message = (
            f"objective set {objective_set_id} has not changed since version "
            f"{set_version}"
        )
        super().__init__(message)


class ScaleInvalidError(ObjectivesError):
    """Raised when a scale breaks a rule; ``field`` names the part at fault."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class ScaleNotFoundError(ObjectivesError):
    """Raised when a tenant has no such scale, or not at that version."""

    def __init__(self, scale_id: UUID, scale_version: int | None = None) -> None:
        self.scale_id = scale_id
        self.scale_version = scale_version
        message = f"there is no scale {scale_id}"
        if scale_version is not None:
            message = f"scale {scale_id} has no version {scale_version}"
        super().__init__(message)


class ScaleArchivedError(ObjectivesError):
    """Raised when an archived scale is revised or published."""

    def __init__(self, scale_id: UUID) -> None:
        self.scale_id = scale_id
        super().__init__(f"scale {scale_id} is archived")


class StarterScaleNotFoundError(ObjectivesError):
    """Raised when the starter library has no scale by the given key."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"the starter library has no scale {key!r}")


class PolicyInvalidError(ObjectivesError):
    """Raised when a calculation policy's parameter is missing, out of its
    range, or does not belong to the method."""

    def __init__(self, parameter: str, reason: str) -> None:
        self.parameter = parameter
        self.reason = reason
        super().__init__(f"{parameter}: {reason}")


class ImportRejectedError(ObjectivesError):
    """Raised when an uploaded file cannot be imported; ``location`` is the
    line (CSV) or JSON path (CASE) at fault, and nothing is stored."""

    def __init__(self, file_name: str, location: str, reason: str) -> None:
        self.file_name = file_name
        self.location = location
        self.reason = reason
        super().__init__(f"{file_name}, {location}: {reason}")


class ImportTooLargeError(ImportRejectedError):
    """Raised when an uploaded file is larger than the import limit."""

    def __init__(self, file_name: str, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        reason = f"the file has {size} bytes, more than the limit of {limit}"
        super().__init__(file_name, "whole file", reason)


class ConcurrentChangeError(ObjectivesError):
    """Raised when another writer changed the same set or scale first."""

    def __init__(self, stream_id: str) -> None:
        self.stream_id = stream_id
        message = f"{stream_id} was changed by someone else; reload and retry"
        super().__init__(message)
