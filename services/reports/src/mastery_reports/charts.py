"""A small progress chart per objective, drawn as inline SVG geometry.

The chart is a step line of the level over time between the scale's lowest
and highest values, with a marker per point: a filled circle where the student had
mastered it, an open one where not, so the chart reads without colour.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from mastery_reports.snapshots import Point

WIDTH = 240
HEIGHT = 64
PAD = 6


class Marker(msgspec.Struct, frozen=True, kw_only=True):
    """One point of the chart, where it is drawn."""

    x: float
    y: float
    mastered: bool


class Chart(msgspec.Struct, frozen=True, kw_only=True):
    """What the template draws: the step line and its markers."""

    width: int
    height: int
    path: str
    markers: tuple[Marker, ...]


def progress_chart(
    points: Sequence[Point],
    *,
    lowest: float,
    highest: float,
) -> Chart | None:
    """Lay out ``points`` (oldest first) on a chart of ``WIDTH`` by
    ``HEIGHT``; ``None`` when there is nothing to draw."""
    if not points or highest <= lowest:
        return None
    first = points[0].at.timestamp()
    span = points[-1].at.timestamp() - first
    inner_w = WIDTH - 2 * PAD
    inner_h = HEIGHT - 2 * PAD

    def x_of(index: int) -> float:
        if span <= 0:
            # All on one day: spread evenly so each marker shows.
            return PAD + inner_w * (index / max(len(points) - 1, 1))
        return PAD + inner_w * (points[index].at.timestamp() - first) / span

    def y_of(level: float) -> float:
        clamped = min(max(level, lowest), highest)
        return PAD + inner_h * (1 - (clamped - lowest) / (highest - lowest))

    markers = tuple(
        Marker(x=round(x_of(i), 1), y=round(y_of(p.level), 1), mastered=p.mastered)
        for i, p in enumerate(points)
    )
    steps = [f"M{markers[0].x},{markers[0].y}"]
    for after in markers[1:]:
        steps.append(f"H{after.x}V{after.y}")
    if len(markers) == 1:
        steps.append(f"H{WIDTH - PAD}")

    return Chart(
        width=WIDTH,
        height=HEIGHT,
        path="".join(steps),
        markers=markers,
    )
