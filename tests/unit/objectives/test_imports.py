"""Reading CSV and CASE uploads into import plans, and the events an import
decides on a new set and on a set imported before."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from mastery_events.contract.objectives import ObjectiveSetEvent
from mastery_objectives.errors import ImportRejectedError, ImportTooLargeError
from mastery_objectives.import_plan import ImportPlan, import_events
from mastery_objectives.objective_sets import ObjectiveSet, evolve
from mastery_objectives.uploads import plan_upload

FIXTURES = Path(__file__).parents[2] / "fixtures" / "case"
SET_ID = UUID("0190a5c4-1e00-7000-8000-000000000005")
MONDAY = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
TUESDAY = datetime(2026, 1, 6, 9, 30, tzinfo=UTC)
OUR_CSV = b"""code,statement,label,parent,order,grade_bands
6.RP,Ratios and proportional relationships,Ratios,,1,6;7
6.RP.A,Understand ratio concepts,,6.RP,1,6
6.RP.A.1,Use ratio language,,6.RP.A,2,6
"""


def fixture(name: str) -> bytes:
    """Return the bytes of one shared CASE fixture."""
    return (FIXTURES / name).read_bytes()


def rejected(data: bytes, file_name: str, **options: Any) -> ImportRejectedError:
    """Upload ``data`` and return the refusal it must cause."""
    with pytest.raises(ImportRejectedError) as caught:
        plan_upload(data, file_name=file_name, **options)

    return caught.value


def package(**changes: Any) -> dict[str, Any]:
    """Return the SmartLevel fixture as JSON with top-level ``changes``."""
    document: dict[str, Any] = json.loads(fixture("smart-level.case.json"))
    document.update(changes)

    return document


def encode(document: dict[str, Any]) -> bytes:
    """Encode a package as an upload would carry it."""
    return json.dumps(document, indent=2).encode()


def imported(
    plan: ImportPlan, state: ObjectiveSet | None = None, *, at: datetime = MONDAY
) -> tuple[ObjectiveSet, list[ObjectiveSetEvent]]:
    """Decide and apply an import; return the state and its events."""
    events = import_events(
        state,
        plan,
        objective_set_id=SET_ID,
        owner_scope="district",
        owner_id="springfield-usd",
        by="system:importer",
        at=at,
    )
    for event in events:
        state = evolve(state, event)
    assert state is not None

    return state, events


@pytest.mark.parametrize(
    ("name", "items", "children", "links"),
    [
        ("smart-level.case.json", 14, 12, 0),
        ("what-standards-could-be.case.json", 16, 14, 23),
        ("utf8.case.json", 1, 0, 0),
        ("opensalt-sample.csv", 10, 7, 4),
    ],
)
def test_each_fixture_plans_its_items_parents_and_links(
    name: str, items: int, children: int, links: int
) -> None:
    """Counted from the files: items, those under another item, other links."""
    plan = plan_upload(fixture(name), file_name=name)

    assert len(plan.items) == items
    assert sum(item.parent_key is not None for item in plan.items) == children
    assert len(plan.links) == links


def test_case_fields_map_onto_objectives() -> None:
    """Human code, education level, item type and identifier are kept."""
    plan = plan_upload(
        fixture("what-standards-could-be.case.json"), file_name="wscb.json"
    )
    first = plan.items[0]

    assert plan.title == "What Standards Could Be"
    assert first.fields.code
    assert first.fields.grade_bands
    assert first.fields.item_type
    assert first.case_identifier == first.key
    assert first.case_uri is not None
    assert first.case_uri.startswith("http")


def test_opensalt_csv_parents_are_found_by_code() -> None:
    """OpenSALT's "Is Child Of" names the parent's human code."""
    plan = plan_upload(fixture("opensalt-sample.csv"), file_name="opensalt.csv")
    parents = {item.key: item.parent_key for item in plan.items}

    assert parents["Math.Fractions.Cluster1.Standard1a"] == (
        "Math.Fractions.Cluster1.Standard1"
    )
    assert parents["Math"] is None


def test_our_csv_columns_are_read() -> None:
    """Our documented columns give codes, parents, order and grade bands."""
    plan = plan_upload(OUR_CSV, file_name="ratios.csv")
    by_code = {item.fields.code: item for item in plan.items}

    assert plan.title == "ratios"
    assert by_code["6.RP.A.1"].parent_key == "6.RP.A"
    assert by_code["6.RP.A.1"].fields.order == 2
    assert by_code["6.RP"].fields.grade_bands == ("6", "7")


def test_a_new_set_gets_one_event_per_item_and_link() -> None:
    """Importing What Standards Could Be creates the set, 16 objectives and
    23 links."""
    plan = plan_upload(
        fixture("what-standards-could-be.case.json"), file_name="wscb.json"
    )

    state, events = imported(plan)

    names = [type(event).__name__ for event in events]
    assert names.count("ObjectiveSetCreated") == 1
    assert names.count("ObjectiveAdded") == 16
    assert names.count("ObjectiveLinked") == 23
    assert len(state.objectives) == 16


def test_reimporting_the_same_file_records_nothing() -> None:
    """An unchanged package is recognised item by item."""
    plan = plan_upload(fixture("smart-level.case.json"), file_name="smart.json")
    state, _ = imported(plan)

    _, again = imported(plan, state, at=TUESDAY)

    assert again == []


def test_reimporting_an_edited_package_records_only_the_changes() -> None:
    """A reworded item, a moved item, a new item and a dropped item make
    four events, and nothing else."""
    original = package()
    plan = plan_upload(encode(original), file_name="smart.json")
    state, _ = imported(plan)

    edited = package()
    items = edited["CFItems"]
    associations = edited["CFAssociations"]
    items[0]["fullStatement"] = "Item 1, reworded"
    dropped = next(
        item
        for item in items
        if not any(
            a["destinationNodeURI"]["identifier"] == item["identifier"]
            for a in associations
        )
    )
    items.remove(dropped)
    edited["CFAssociations"] = [
        a
        for a in associations
        if a["originNodeURI"]["identifier"] != dropped["identifier"]
    ]
    items.append(
        {"identifier": "new-item", "fullStatement": "Item 3", "uri": "urn:new"}
    )
    child = next(
        a
        for a in edited["CFAssociations"]
        if a["destinationNodeURI"]["identifier"] != edited["CFDocument"]["identifier"]
    )
    child["destinationNodeURI"] = {"identifier": edited["CFDocument"]["identifier"]}

    _, events = imported(
        plan_upload(encode(edited), file_name="smart.json"), state, at=TUESDAY
    )

    assert sorted(type(event).__name__ for event in events) == [
        "ObjectiveAdded",
        "ObjectiveChanged",
        "ObjectiveMoved",
        "ObjectiveRemoved",
    ]


def test_malformed_json_names_its_line_and_column() -> None:
    """A missing comma is reported where the parser stopped."""
    error = rejected(b'{\n  "CFDocument": {}\n  "CFItems": []\n}', "broken.json")

    assert error.location == "line 3, column 3"
    assert error.file_name == "broken.json"


def test_an_is_child_of_cycle_is_refused_at_its_association() -> None:
    """Two items that are each other's parent form a cycle."""
    document = package()
    first, second = document["CFItems"][0], document["CFItems"][1]
    document["CFAssociations"] = [
        {
            "identifier": f"loop-{index}",
            "associationType": "isChildOf",
            "originNodeURI": {"identifier": origin["identifier"]},
            "destinationNodeURI": {"identifier": parent["identifier"]},
        }
        for index, (origin, parent) in enumerate([(first, second), (second, first)])
    ]

    error = rejected(encode(document), "loop.json")

    assert error.location.startswith("$.CFAssociations[")
    assert "cycle" in error.reason


def test_duplicate_human_codes_are_refused_at_the_second_item() -> None:
    """Two items coded M.F cannot be told apart by a teacher."""
    document = package()
    document["CFItems"][0]["humanCodingScheme"] = "M.F"
    document["CFItems"][3]["humanCodingScheme"] = "M.F"

    error = rejected(encode(document), "twins.json")

    assert error.location == "$.CFItems[3]"
    assert "M.F" in error.reason


def test_an_association_to_an_unknown_item_is_refused() -> None:
    """A parent that is neither an item nor the document is named by path."""
    document = package()
    document["CFAssociations"][2]["destinationNodeURI"] = {"identifier": "ghost"}

    error = rejected(encode(document), "ghost.json")

    assert error.location == "$.CFAssociations[2].destinationNodeURI.identifier"


def test_an_item_without_a_statement_is_refused() -> None:
    """fullStatement is required on every CFItem."""
    document = package()
    del document["CFItems"][5]["fullStatement"]

    error = rejected(encode(document), "silent.json")

    assert error.location == "$.CFItems[5].fullStatement"


def test_a_csv_without_a_statement_column_is_refused_on_line_1() -> None:
    """The required column's absence is named."""
    error = rejected(b"code,label\n6.RP,Ratios\n", "short.csv")

    assert (error.location, "'statement'" in error.reason) == ("line 1", True)


def test_a_csv_parent_that_is_not_in_the_file_names_its_line() -> None:
    """Line numbers count the header as line 1."""
    data = b"code,statement,parent\n6.RP,Ratios,\n6.RP.A,Concepts,6.XX\n"

    error = rejected(data, "orphan.csv")

    assert error.location == "line 3"


def test_a_byte_order_mark_is_refused() -> None:
    """Spreadsheet exports with a BOM are refused with a way out."""
    error = rejected(b"\xef\xbb\xbf" + OUR_CSV, "bom.csv")

    assert "byte-order mark" in error.reason


def test_bytes_that_are_not_utf8_name_their_line() -> None:
    """A Latin-1 é on line 2 is found there."""
    data = b"code,statement\n6.RP,Caf\xe9 ratios\n"

    error = rejected(data, "latin1.csv")

    assert error.location == "line 2"


def test_an_empty_file_is_refused() -> None:
    """Whitespace only counts as empty."""
    error = rejected(b" \n", "empty.csv")

    assert "empty" in error.reason


def test_a_file_over_the_limit_is_refused() -> None:
    """The limit is checked before anything is read."""
    with pytest.raises(ImportTooLargeError) as caught:
        plan_upload(OUR_CSV, file_name="big.csv", limit=64)

    assert caught.value.size == len(OUR_CSV)
    assert caught.value.limit == 64


def test_a_nul_character_is_refused_on_its_line() -> None:
    """A NUL marks a binary file, which the store's text could not keep."""
    error = rejected(b"code,statement\n6.RP,Ratios\x00\n", "binary.csv")

    assert error.location == "line 2"


def test_json_nested_beyond_reason_is_refused() -> None:
    """A hundred thousand nested arrays are no package, and no crash."""
    error = rejected(
        b"{" + b'"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}", "deep.json"
    )

    assert error.location == "$"
    assert "nested" in error.reason
