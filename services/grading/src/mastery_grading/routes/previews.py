"""Routes that show what a method would do: previews from bare scores, and
the scale versions grading knows."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import msgspec
import structlog
from litestar import Request, Response, Router, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody
from litestar.plugins.problem_details import ProblemDetailsException

from mastery_events.access import Caller, reads
from mastery_events.contract.objectives import Rounding
from mastery_events.runtime import ServiceRuntime
from mastery_grading.catalogue_store import Catalogue
from mastery_grading.errors import InvalidParameterError, ScaleVersionNotFoundError
from mastery_grading.mastery import Method, Policy, TieRule
from mastery_grading.previews import (
    PreviewResult,
    custom_scale,
    preview,
    with_threshold,
)
from mastery_grading.scales import BUILT_IN_SCALES, DEFAULT_SCALE, ScaleView

log = structlog.get_logger(__name__)

AREA = "grading"
# Versions are PostgreSQL integers; a larger one names nothing.
MAX_VERSION = 2**31 - 1
CatalogueReader = NamedDependency[Catalogue]

# Enough for a year of weekly evidence many times over, and small enough
# that a preview never keeps a worker busy.
MOST_SCORES = 500
MOST_LEVELS = 20
# No real scale comes near; the bound keeps every method's arithmetic,
# power_law's logarithms included, far from overflow.
Bounded = Annotated[float, msgspec.Meta(ge=-1_000_000, le=1_000_000)]
# Where each domain parameter sits in the body, to name it in a problem.
BODY_FIELDS = {
    "weight": "parameters.weight",
    "n": "parameters.n",
    "tie": "parameters.tie",
}


class PreviewParameters(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True
):
    """The method's parameters: ``weight`` for the two recent-weighted
    averages, ``n`` for ``n_times``, ``tie`` for ``mode``."""

    weight: float | None = None
    n: int | None = None
    tie: TieRule = "higher"


class PreviewLevel(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True
):
    """A level of a scale to preview on: its value and label."""

    value: Bounded
    label: Annotated[str, msgspec.Meta(min_length=1, max_length=80)]


class PreviewRequest(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True
):
    """Scores, oldest first, and the method to try on them.

    The scale is a built-in one named by ``scale`` (four-level unless
    named), or the given ``levels``, cut by ``cut_points`` or else by
    ``rounding`` as the objectives service cuts a scale; ``threshold``
    sets the mastery bar.
    """

    method: Method
    scores: Annotated[list[Bounded], msgspec.Meta(max_length=MOST_SCORES)]
    parameters: PreviewParameters = msgspec.field(default_factory=PreviewParameters)
    scale: str | None = None
    levels: (
        Annotated[list[PreviewLevel], msgspec.Meta(max_length=MOST_LEVELS)] | None
    ) = None
    cut_points: Annotated[list[Bounded], msgspec.Meta(max_length=MOST_LEVELS)] = (
        msgspec.field(default_factory=list)
    )
    rounding: Rounding | None = None
    threshold: Bounded | None = None


@post("/mastery/preview", status_code=200, tags=["mastery"], sync_to_thread=False)
def preview_mastery(data: JSONBody[PreviewRequest], identity: Caller) -> PreviewResult:
    """Show what a method makes of bare scores, so a teacher can compare
    methods before choosing one; no student or record is involved."""
    policy = Policy(
        method=data.method,
        weight=data.parameters.weight,
        n=data.parameters.n,
        tie=data.parameters.tie,
    )
    result = preview(data.scores, policy, scale_of(data))

    log.info(
        "mastery.previewed",
        tenant=identity.tenant_id,
        method=data.method,
        scores=len(data.scores),
        status=result.status,
    )
    return result


def scale_of(data: PreviewRequest) -> ScaleView:
    """Return the scale a preview asks for: given levels or a built-in."""
    if data.levels is not None:
        if data.scale is not None:
            message = "give a built-in scale or levels, not both"
            raise InvalidParameterError("levels", message)
        return custom_scale(
            [(level.value, level.label) for level in data.levels],
            cut_points=data.cut_points,
            rounding=data.rounding or "nearest",
            threshold=data.threshold,
        )

    if data.cut_points or data.rounding is not None:
        message = "cut points and rounding come with levels of your own"
        raise InvalidParameterError("cut_points", message)
    name = data.scale or DEFAULT_SCALE
    if name not in BUILT_IN_SCALES:
        known = ", ".join(sorted(BUILT_IN_SCALES))
        raise InvalidParameterError("scale", f"the built-in scales are {known}")

    return with_threshold(BUILT_IN_SCALES[name], data.threshold)


@get("/scales/{scale_id:uuid}/versions/{version:int}", guards=[reads(AREA)])
async def get_scale_version(
    identity: Caller,
    catalogue: CatalogueReader,
    scale_id: FromPath[UUID],
    version: FromPath[int],
) -> ScaleView:
    """Return a scale version as grading learnt it from the objectives
    service: the levels with their cuts, the threshold and the marks."""
    if not 1 <= version <= MAX_VERSION:
        raise ScaleVersionNotFoundError(scale_id, version)

    return await catalogue.scale_version(identity.tenant_id, scale_id, version)


def scale_version_not_found(
    request: Request[Any, Any, Any], error: ScaleVersionNotFoundError
) -> Response[Any]:
    """Answer an unknown scale version with a 404 problem that names no
    id, exactly as a scale of another tenant is answered."""
    problem = ProblemDetailsException(
        status_code=404, title="Scale version not found", detail="no such record"
    )
    return problem.to_response(request)


def invalid_preview(
    request: Request[Any, Any, Any], error: InvalidParameterError
) -> Response[Any]:
    """Answer a preview parameter out of range with a 400 problem that names
    the body field at fault."""
    field = BODY_FIELDS.get(error.field, error.field)
    problem = ProblemDetailsException(
        status_code=400,
        title="Invalid preview",
        detail=f"{field}: {error.message}",
        extra={"field": field},
    )
    return problem.to_response(request)


def previews_router(runtime: ServiceRuntime) -> Router:
    """Return the preview and scale routes, bound to ``runtime``."""

    def provide_catalogue() -> Catalogue:
        return Catalogue(runtime.pool, runtime.service.schema)

    return Router(
        path="/",
        route_handlers=[preview_mastery, get_scale_version],
        dependencies={"catalogue": Provide(provide_catalogue, sync_to_thread=False)},
        exception_handlers={
            ScaleVersionNotFoundError: scale_version_not_found,
            InvalidParameterError: invalid_preview,
        },
    )
