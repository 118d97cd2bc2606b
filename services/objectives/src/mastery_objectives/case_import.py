"""Read a CASE 1.0 or 1.1 CFPackage (JSON) into an import plan.

The CFDocument becomes the set, each CFItem an objective, each ``isChildOf``
association a parent link (its origin is the child, its destination the
parent or the document itself), and every other association a typed link.
Errors name the JSON path of the value at fault.
"""

from __future__ import annotations

import json
from typing import Any

from mastery_objectives.errors import ImportRejectedError
from mastery_objectives.import_plan import ImportPlan, PlannedItem, PlannedLink
from mastery_objectives.objective_sets import ObjectiveFields

CHILD_OF = "isChildOf"


class _Reader:
    """Pull typed values out of decoded JSON, naming the path on failure."""

    def __init__(self, file_name: str) -> None:
        self.file_name = file_name

    def fail(self, path: str, reason: str) -> ImportRejectedError:
        return ImportRejectedError(self.file_name, path, reason)

    def object(self, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, "expected an object")
        return value

    def array(self, value: Any, path: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(path, "expected an array")
        return value

    def text(self, node: dict[str, Any], name: str, path: str) -> str:
        value = node.get(name)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"{path}.{name}", "a non-empty string is required")
        return value

    def optional_text(self, node: dict[str, Any], name: str, path: str) -> str | None:
        value = node.get(name)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise self.fail(f"{path}.{name}", "expected a string")
        return value

    def strings(self, node: dict[str, Any], name: str, path: str) -> tuple[str, ...]:
        value = node.get(name)
        if value is None:
            return ()
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(f"{path}.{name}", "expected an array of strings")
        return tuple(value)


def read_case(text: str, *, file_name: str) -> ImportPlan:
    """Return the import plan of a CFPackage, or raise
    ``ImportRejectedError`` naming the JSON path at fault."""
    read = _Reader(file_name)
    try:
        package = json.loads(text)
    except json.JSONDecodeError as error:
        location = f"line {error.lineno}, column {error.colno}"
        raise read.fail(location, f"malformed JSON: {error.msg}") from None
    except RecursionError:
        raise read.fail("$", "the JSON is nested too deeply to be a package") from None
    package = read.object(package, "$")
    # Some publishers wrap the package in a CFPackage member.
    if "CFPackage" in package and "CFDocument" not in package:
        package = read.object(package["CFPackage"], "$.CFPackage")

    document = read.object(package.get("CFDocument"), "$.CFDocument")
    document_id = read.text(document, "identifier", "$.CFDocument")
    title = read.text(document, "title", "$.CFDocument")

    items: dict[str, dict[str, Any]] = {}
    item_paths: dict[str, str] = {}
    for index, raw in enumerate(read.array(package.get("CFItems"), "$.CFItems")):
        path = f"$.CFItems[{index}]"
        item = read.object(raw, path)
        identifier = read.text(item, "identifier", path)
        if identifier in items or identifier == document_id:
            raise read.fail(f"{path}.identifier", f"{identifier!r} is used twice")
        items[identifier] = item
        item_paths[identifier] = path

    parents: dict[str, tuple[str, str, int | None]] = {}
    links: list[PlannedLink] = []
    associations = read.array(package.get("CFAssociations"), "$.CFAssociations")
    for index, raw in enumerate(associations):
        path = f"$.CFAssociations[{index}]"
        association = read.object(raw, path)
        kind = read.text(association, "associationType", path)
        origin = read.object(association.get("originNodeURI"), f"{path}.originNodeURI")
        origin_id = read.text(origin, "identifier", f"{path}.originNodeURI")
        destination_path = f"{path}.destinationNodeURI"
        destination = read.object(
            association.get("destinationNodeURI"), destination_path
        )
        destination_id = read.text(destination, "identifier", destination_path)
        if origin_id not in items:
            reason = f"the origin {origin_id!r} is not an item of this package"
            raise read.fail(f"{path}.originNodeURI.identifier", reason)

        if kind == CHILD_OF and origin_id not in parents:
            if destination_id != document_id and destination_id not in items:
                reason = (
                    f"the parent {destination_id!r} is neither an item nor the "
                    "document of this package"
                )
                raise read.fail(f"{destination_path}.identifier", reason)
            sequence = association.get("sequenceNumber")
            order = sequence if isinstance(sequence, int) else None
            parent = None if destination_id == document_id else destination_id
            parents[origin_id] = (parent or "", path, order)
            continue

        # Further parents of an item, and every other association, are kept
        # as typed links: the hierarchy here is a tree.
        association_id = read.optional_text(association, "identifier", path)
        links.append(
            PlannedLink(
                key=association_id or f"{origin_id}:{kind}:{destination_id}",
                origin_key=origin_id,
                link_type=kind,
                target_key=destination_id if destination_id in items else None,
                target_identifier=destination_id,
                target_uri=read.optional_text(destination, "uri", destination_path),
                target_title=read.optional_text(destination, "title", destination_path),
            )
        )

    planned = [
        _planned_item(
            read,
            identifier,
            items[identifier],
            item_paths[identifier],
            parents.get(identifier),
        )
        for identifier in items
    ]

    return ImportPlan(
        file_name=file_name,
        title=title,
        subject=_subject(read, document),
        case_identifier=document_id,
        case_uri=read.optional_text(document, "uri", "$.CFDocument"),
        items=tuple(planned),
        links=tuple(links),
    )


def _planned_item(
    read: _Reader,
    identifier: str,
    item: dict[str, Any],
    path: str,
    parent: tuple[str, str, int | None] | None,
) -> PlannedItem:
    parent_key, parent_path, sequence = parent or ("", None, None)
    order = sequence
    if order is None:
        enumeration = item.get("listEnumeration")
        if isinstance(enumeration, str) and enumeration.isdigit():
            order = int(enumeration)
    # CASE 1.0 says educationLevel; some publishers write educationalLevel.
    levels = read.strings(item, "educationLevel", path) or read.strings(
        item, "educationalLevel", path
    )
    fields = ObjectiveFields(
        code=read.optional_text(item, "humanCodingScheme", path),
        statement=read.text(item, "fullStatement", path),
        label=read.optional_text(item, "abbreviatedStatement", path),
        order=order or 0,
        item_type=read.optional_text(item, "CFItemType", path),
        grade_bands=levels,
    )

    return PlannedItem(
        key=identifier,
        location=path,
        fields=fields,
        parent_key=parent_key or None,
        parent_location=f"{parent_path}.destinationNodeURI" if parent_path else None,
        case_identifier=identifier,
        case_uri=read.optional_text(item, "uri", path),
    )


def _subject(read: _Reader, document: dict[str, Any]) -> str:
    subjects = read.strings(document, "subject", "$.CFDocument")
    return ", ".join(subjects)
