"""A student's records as a page a family can read and print: who the
student is, their enrollments, assessments, mastery and grades in tables,
then every event of the log about them, each with its fields.

Pure: records in, HTML out. The records command typesets it as a PDF.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

import msgspec

from mastery_grading.records import RecordedEvent, StudentRecords

STYLE = """
body { font-family: sans-serif; font-size: 10pt; color: #111; }
h1 { font-size: 16pt; } h2 { font-size: 12pt; margin-top: 1.5em; }
table { border-collapse: collapse; width: 100%; margin: 0.5em 0; }
th, td { border: 1px solid #999; padding: 2px 4px; text-align: left;
         vertical-align: top; overflow-wrap: anywhere; white-space: pre-wrap; }
th { background: #eee; }
"""


def records_html(records: StudentRecords) -> str:
    """Return ``records`` as one HTML page."""
    person = records.person
    fields = person.fields or {}
    name = " ".join(
        part for part in (fields.get("given_name"), fields.get("family_name")) if part
    )
    title = name or ("Erased student" if person.erased else str(person.person_id))
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Records of {escape(title)}</title><style>{STYLE}</style>",
        "</head><body>",
        f"<h1>Records of {escape(title)}</h1>",
        f"<p>District {escape(records.tenant_id)}, gathered "
        f"{escape(records.gathered_at.isoformat())}.</p>",
        "<h2>Who the roster holds</h2>",
        table(
            ["field", "value"],
            [
                ["person id", str(person.person_id)],
                ["role", person.role],
                ["enabled", str(person.enabled)],
                ["removed", str(person.removed)],
                ["erased", str(person.erased)],
                *([key, value or ""] for key, value in sorted(fields.items())),
            ],
        ),
        "<h2>Enrollments</h2>",
        table(
            ["section", "role", "active", "begins", "ends", "ended"],
            [
                [
                    e.section_id,
                    e.role,
                    str(e.active),
                    str(e.begins_on or ""),
                    str(e.ends_on or ""),
                    e.ended_at.isoformat() if e.ended_at else "",
                ]
                for e in records.enrollments
            ],
        ),
        "<h2>Guardians</h2>",
        table(["guardian id"], [[str(g)] for g in records.guardian_ids]),
        "<h2>Assessments</h2>",
        table(["assessment"], [[flat(a)] for a in records.assessments]),
        "<h2>Mastery timelines</h2>",
        table(["timeline"], [[flat(t)] for t in records.timelines]),
        "<h2>Traditional grades</h2>",
        table(["section grades"], [[flat(g)] for g in records.traditional_grades]),
        f"<h2>Every event about them ({len(records.events)})</h2>",
        event_table(records.events),
        *(
            section
            for schema, events in sorted(records.elsewhere.items())
            for section in (
                f"<h2>Events about them in {escape(schema)} ({len(events)})</h2>",
                event_table(events),
            )
        ),
        "</body></html>",
    ]
    return "\n".join(parts)


def event_table(events: Sequence[RecordedEvent]) -> str:
    """Return ``events`` as a table, one row each, fields as lines."""
    return table(
        ["recorded", "event", "by", "fields"],
        [
            [
                event.recorded_at.isoformat(),
                event.event_type,
                event.actor,
                flat(event.payload),
            ]
            for event in events
        ],
    )


def table(headings: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Return a table of ``rows`` under ``headings``, every cell escaped."""
    head = "".join(f"<th>{escape(heading)}</th>" for heading in headings)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>"
        for row in rows
    )
    if not body:
        body = f"<tr><td colspan='{len(headings)}'>none</td></tr>"

    return f"<table><tr>{head}</tr>{body}</table>"


def flat(value: Any) -> str:
    """Return ``value`` as ``key: value`` lines, nested keys joined by dots,
    so a record reads as text rather than as JSON."""
    lines: list[str] = []

    def walk(prefix: str, inner: Any) -> None:
        if isinstance(inner, dict):
            for key, item in inner.items():
                walk(f"{prefix}.{key}" if prefix else str(key), item)
        elif isinstance(inner, list):
            for index, item in enumerate(inner):
                walk(f"{prefix}[{index}]", item)
        else:
            lines.append(f"{prefix}: {'' if inner is None else inner}")

    walk("", msgspec.to_builtins(value))
    return "\n".join(lines)
