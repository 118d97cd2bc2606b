"""Which event verification names, decided from chains and seals alone."""

from __future__ import annotations

import hashlib
from uuid import UUID

import msgspec
import pytest

from mastery_events.seals import Seal, chain_seals, seal_hash
from mastery_events.verification import ChainedEvent, findings_in_order


def event(number: int, stream: str, version: int) -> ChainedEvent:
    """Return event ``number`` of a log, stored as it was chained: its own
    transaction, its place and a chain hash that recomputes."""
    chain = hashlib.sha256(f"{stream}{version}".encode()).digest()
    return ChainedEvent(
        event_id=UUID(int=number),
        stream_id=stream,
        stream_version=version,
        position=number,
        transaction_id=1_000 + number,
        chain_hash=chain,
        previous_version=version - 1 or None,
        recomputed=chain,
    )


# a1 b1 a2 b2 a3, in the global order.
LOG = [event(1, "a", 1), event(2, "b", 1), event(3, "a", 2), event(4, "b", 2)]
LOG.append(event(5, "a", 3))


def sealed(events: list[ChainedEvent]) -> list[Seal]:
    """Return the seals a sealing run over ``events`` writes."""
    rows = [
        (
            e.event_id,
            e.stream_id,
            e.stream_version,
            e.position,
            e.transaction_id,
            e.chain_hash,
        )
        for e in events
    ]
    return chain_seals(None, rows)


def test_a_log_as_sealed_has_no_findings() -> None:
    """Every event where it was sealed, every chain hash recomputing."""
    assert findings_in_order(LOG, sealed(LOG)) == []


def test_an_event_whose_fields_changed_is_named() -> None:
    """Its recomputed chain hash differs from the stored one."""
    changed = msgspec.structs.replace(LOG[2], recomputed=b"\x00" * 32)

    findings = findings_in_order([*LOG[:2], changed, *LOG[3:]], sealed(LOG))

    assert [(f.kind, f.event_id, f.position) for f in findings] == [
        ("changed", UUID(int=3), 3)
    ]


def test_a_deleted_sealed_event_is_named_once_by_its_seal() -> None:
    """a2 gone: its seal names it by id and place, and the gap in stream a
    at a3 is the same event, so it is not named twice."""
    log = [LOG[0], LOG[1], LOG[3], msgspec.structs.replace(LOG[4], previous_version=1)]
    log[3] = msgspec.structs.replace(log[3], recomputed=b"\x01" * 32)

    findings = findings_in_order(log, sealed(LOG))

    assert [(f.kind, f.event_id, f.stream_version) for f in findings] == [
        ("deleted", UUID(int=3), 2)
    ]


def test_a_deleted_unsealed_event_is_named_by_stream_and_version() -> None:
    """With only a1 and b1 sealed, a2 gone shows as a gap before a3."""
    log = [LOG[0], LOG[1], LOG[3], msgspec.structs.replace(LOG[4], previous_version=1)]

    findings = findings_in_order(log, sealed(LOG[:2]))

    assert [(f.kind, f.event_id, f.stream_id, f.stream_version) for f in findings] == [
        ("deleted", None, "a", 2)
    ]


def test_an_event_slipped_in_among_sealed_ones_is_named() -> None:
    """An event never sealed but standing before the last sealed place."""
    slipped = msgspec.structs.replace(
        event(9, "c", 1), transaction_id=1_002, position=2_500
    )
    log = sorted([*LOG, slipped], key=lambda e: e.place)

    findings = findings_in_order(log, sealed(LOG))

    assert [(f.kind, f.event_id) for f in findings] == [("inserted", UUID(int=9))]


def test_of_two_findings_the_earlier_in_the_global_order_comes_first() -> None:
    """a3 and a1 both changed: a1 is named first, whatever the input order."""
    log = [
        msgspec.structs.replace(e, recomputed=b"") if e.position in (1, 5) else e
        for e in LOG
    ]

    findings = findings_in_order(list(reversed(log)), sealed(LOG))

    assert [f.event_id for f in findings] == [UUID(int=1), UUID(int=5)]


def test_a_seal_that_does_not_follow_on_is_named() -> None:
    """A seal rewritten without its hash breaks the seals' own chain."""
    seals = sealed(LOG)
    seals[1] = msgspec.structs.replace(seals[1], stream_version=7)

    findings = findings_in_order(LOG, seals)

    assert (findings[0].kind, findings[0].event_id) == ("seal broken", UUID(int=2))


@pytest.mark.parametrize(
    "change",
    [
        {"seal_number": 2},
        {"event_id": UUID(int=2)},
        {"stream_id": "b"},
        {"stream_version": 2},
        {"position": 2},
        {"transaction_id": 1_002},
        {"chain_hash": b"\x02"},
    ],
)
def test_a_seal_hash_covers_every_sealed_field(change: dict[str, object]) -> None:
    """Changing any one field gives another seal hash."""
    first = sealed(LOG)[0]

    def hash_of(seal: Seal) -> bytes:
        return seal_hash(
            b"",
            seal.seal_number,
            event_id=seal.event_id,
            stream_id=seal.stream_id,
            stream_version=seal.stream_version,
            position=seal.position,
            transaction_id=seal.transaction_id,
            chain_hash=seal.chain_hash,
        )

    assert hash_of(first) == first.seal_hash
    assert hash_of(msgspec.structs.replace(first, **change)) != first.seal_hash
