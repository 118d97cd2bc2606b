"""The event contract: every event type the services publish, in one registry."""

from __future__ import annotations

from typing import Any

from mastery_events.contract import grading, objectives, reports, roster
from mastery_events.contract.registry import EventType, Registry, event_name
from mastery_events.envelope import Event

__all__ = ["CONTRACT", "EventType", "Registry", "event_name"]

CONTRACT = Registry()

STREAMS: tuple[tuple[str, str, tuple[type[Event], ...]], ...] = (
    ("objectives", "objective-set", objectives.OBJECTIVE_SET_EVENTS),
    ("objectives", "scale", objectives.SCALE_EVENTS),
    (
        "grading",
        "assessment",
        (
            grading.AssessmentRecorded,
            grading.AssessmentAmended,
            grading.AssessmentVoided,
        ),
    ),
    ("grading", "roster", roster.ROSTER_EVENTS),
    ("grading", "auditor-access", (grading.AuditorAccessed,)),
    (
        "grading",
        "mastery",
        (
            grading.MasteryChanged,
            grading.RecalculationStarted,
            grading.RecalculationFinished,
        ),
    ),
    (
        "grading",
        "gradebook",
        (
            grading.TraditionalGradeRecorded,
            grading.TraditionalGradeVoided,
            grading.GradeBridgeSet,
        ),
    ),
    (
        "reports",
        "share-link",
        (reports.ShareLinkCreated, reports.ShareLinkRevoked, reports.ReportViewed),
    ),
    ("reports", "report-reproduction", (reports.ReportReproduced,)),
)

for _service, _stream, _payloads in STREAMS:
    for _payload in _payloads:
        CONTRACT.add(_payload, service=_service, stream=_stream)


@CONTRACT.upcaster("AssessmentRecorded", from_version=1)
def _evidence_title_becomes_evidence(fields: dict[str, Any]) -> dict[str, Any]:
    title = fields.pop("evidence_title")
    fields["evidence"] = {"title": title, "kind": "unspecified"}
    return fields
