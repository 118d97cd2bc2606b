"""Event ids: UUIDv7 with the layout RFC 9562 gives it, ordered by the
millisecond they were made in."""

from __future__ import annotations

import time
import uuid

import pytest

from mastery_events.ids import MAX_UNIX_MS, uuid7

# 2026-01-01T00:00:00Z, which is 0x019b76daa800.
NEW_YEAR_2026_MS = 1_767_225_600_000


def test_ids_are_version_7_with_the_rfc_variant() -> None:
    """The version nibble is 7 and the variant bits are 10, as RFC 9562
    lays out a UUIDv7."""
    made = [uuid7() for _ in range(100)]

    assert {made_id.version for made_id in made} == {7}
    assert {made_id.variant for made_id in made} == {uuid.RFC_4122}
    assert {str(made_id)[14] for made_id in made} == {"7"}
    assert {str(made_id)[19] for made_id in made} <= set("89ab")


def test_the_first_48_bits_are_the_unix_milliseconds() -> None:
    """The timestamp field holds exactly the millisecond asked for, so the
    text form opens with its twelve hex digits."""
    made = uuid7(unix_ms=NEW_YEAR_2026_MS)

    assert made.int >> 80 == NEW_YEAR_2026_MS
    assert str(made).startswith("019b76da-a800-7")


def test_an_id_made_now_carries_the_current_millisecond() -> None:
    """Without a time given, the id holds the clock's millisecond."""
    before = time.time_ns() // 1_000_000
    made = uuid7()
    after = time.time_ns() // 1_000_000

    assert before <= made.int >> 80 <= after


def test_ids_of_a_later_millisecond_sort_later() -> None:
    """Whatever the random bits, an id of the next millisecond sorts after
    one of this millisecond: as UUIDs, as text and as bytes."""
    for _ in range(500):
        earlier = uuid7(unix_ms=NEW_YEAR_2026_MS)
        later = uuid7(unix_ms=NEW_YEAR_2026_MS + 1)

        assert earlier < later
        assert str(earlier) < str(later)
        assert earlier.bytes < later.bytes


def test_ids_of_one_millisecond_are_still_distinct() -> None:
    """The 74 random bits keep ids made in the same millisecond apart."""
    made = {uuid7(unix_ms=NEW_YEAR_2026_MS) for _ in range(10_000)}

    assert len(made) == 10_000


@pytest.mark.parametrize("unix_ms", [-1, MAX_UNIX_MS + 1])
def test_a_time_outside_48_bits_is_refused(unix_ms: int) -> None:
    """A millisecond count that does not fit the timestamp field raises
    instead of wrapping round to an id that sorts wrongly."""
    with pytest.raises(ValueError, match="48 bits"):
        uuid7(unix_ms=unix_ms)
