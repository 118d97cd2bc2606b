"""The replay runs the cyclic garbage collector less often while it works
and leaves the collector as it found it."""

from __future__ import annotations

import gc

import pytest

from mastery_grading.replay import YOUNG_COLLECTION, rarer_collections


def test_collections_are_rarer_while_replaying_and_as_before_after() -> None:
    """The youngest generation's threshold is raised inside and put back
    on the way out, the older generations' left alone."""
    before = gc.get_threshold()

    with rarer_collections():
        inside = gc.get_threshold()

    assert inside == (max(YOUNG_COLLECTION, before[0]), *before[1:])
    assert gc.get_threshold() == before


def test_overlapping_replays_put_the_old_thresholds_back_once_both_end() -> None:
    """Two replays in one process, the first ending before the second:
    the second keeps the rarer collections until it ends too."""
    before = gc.get_threshold()
    first, second = rarer_collections(), rarer_collections()

    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    while_second_runs = gc.get_threshold()
    second.__exit__(None, None, None)

    assert while_second_runs[0] == max(YOUNG_COLLECTION, before[0])
    assert gc.get_threshold() == before


def test_a_failing_replay_still_puts_the_thresholds_back() -> None:
    """An error inside leaves the collector as it was."""
    before = gc.get_threshold()

    with pytest.raises(LookupError), rarer_collections():
        raise LookupError("a scale the catalogue lacks")

    assert gc.get_threshold() == before
