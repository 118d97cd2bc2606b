"""The rebuild-progress hook: what a rebuild reports is what Prometheus
reads, and impossible progress is refused."""

from __future__ import annotations

import secrets

import pytest
from prometheus_client import REGISTRY

from mastery_events.metrics import forget_rebuild, report_rebuild


def progress(projection: str) -> tuple[float | None, float | None]:
    """Return the done and total events Prometheus would read for
    ``projection``."""
    labels = {"projection": projection}
    return (
        REGISTRY.get_sample_value("mastery_rebuild_done_events", labels),
        REGISTRY.get_sample_value("mastery_rebuild_total_events", labels),
    )


def test_reported_progress_is_what_a_scrape_reads() -> None:
    """Two reports of one rebuild: the scrape shows the later one."""
    projection = f"timelines-{secrets.token_hex(3)}"

    report_rebuild(projection, done=250, total=1_000)
    report_rebuild(projection, done=750, total=1_000)

    assert progress(projection) == (750.0, 1_000.0)


def test_a_forgotten_rebuild_no_longer_shows() -> None:
    """Once a rebuild is over and forgotten, neither gauge has its label."""
    projection = f"snapshots-{secrets.token_hex(3)}"
    report_rebuild(projection, done=1_000, total=1_000)

    forget_rebuild(projection)

    assert progress(projection) == (None, None)


@pytest.mark.parametrize(("done", "total"), [(-1, 10), (11, 10), (0, -5)])
def test_impossible_progress_is_refused_and_not_shown(done: int, total: int) -> None:
    """More done than in all, or a negative count, raises and sets nothing."""
    projection = f"reports-{secrets.token_hex(3)}"

    with pytest.raises(ValueError, match="0 <= done <= total"):
        report_rebuild(projection, done=done, total=total)

    assert progress(projection) == (None, None)
