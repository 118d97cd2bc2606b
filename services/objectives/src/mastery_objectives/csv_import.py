"""Read a CSV of objectives into an import plan.

The first line names the columns. Ours are ``identifier``, ``code``,
``statement``, ``label``, ``parent``, ``order``, ``type`` and
``grade_bands``; OpenSALT's export names (``Identifier``,
``fullStatement``, ``Human Coding Scheme``, ``Is Child Of``, ...) are read
as the same columns. Columns named after CASE association types
(``IsRelatedTo``, ``Exemplar``, ...) become typed links. Errors name the
line.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import PurePath

from mastery_objectives.errors import ImportRejectedError
from mastery_objectives.import_plan import ImportPlan, PlannedItem, PlannedLink
from mastery_objectives.objective_sets import ObjectiveFields

# Column names are compared without case, spaces, dashes or underscores.
COLUMNS: dict[str, str] = {
    "identifier": "identifier",
    "code": "code",
    "humancodingscheme": "code",
    "statement": "statement",
    "fullstatement": "statement",
    "label": "label",
    "abbreviatedstatement": "label",
    "parent": "parent",
    "parentcode": "parent",
    "ischildof": "parent",
    "order": "order",
    "sequencenumber": "order",
    "type": "type",
    "cfitemtype": "type",
    "gradebands": "grade_bands",
    "educationlevel": "grade_bands",
}
LINK_COLUMNS: dict[str, str] = {
    "isrelatedto": "isRelatedTo",
    "exemplar": "exemplar",
    "replacedby": "replacedBy",
    "hasskilllevel": "hasSkillLevel",
    "ispartof": "isPartOf",
    "exactmatchof": "exactMatchOf",
    "precedes": "precedes",
    "isperipheralto": "isPeripheralTo",
}
REQUIRED = ("statement",)
LIST_SEPARATOR = re.compile(r"\s*[,;|]\s*")


def _normalise(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name).lower()


def read_csv(text: str, *, file_name: str) -> ImportPlan:
    """Return the import plan of a CSV file, or raise ``ImportRejectedError``
    naming the line at fault."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except csv.Error as error:
        raise ImportRejectedError(file_name, "line 1", str(error)) from None

    columns: dict[str, int] = {}
    link_columns: dict[str, int] = {}
    for index, name in enumerate(header):
        key = _normalise(name)
        if key in COLUMNS:
            columns.setdefault(COLUMNS[key], index)
        elif key in LINK_COLUMNS:
            link_columns[LINK_COLUMNS[key]] = index
    for required in REQUIRED:
        if required not in columns:
            reason = f"the required column {required!r} is missing"
            raise ImportRejectedError(file_name, "line 1", reason)
    if "identifier" not in columns and "code" not in columns:
        reason = "an 'identifier' or a 'code' column is required"
        raise ImportRejectedError(file_name, "line 1", reason)

    rows: list[tuple[int, list[str]]] = []
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                rows.append((reader.line_num, row))
    except csv.Error as error:
        location = f"line {reader.line_num}"
        raise ImportRejectedError(file_name, location, str(error)) from None

    def cell(row: list[str], column: str) -> str:
        index = columns.get(column)
        if index is None or index >= len(row):
            return ""
        return row[index].strip()

    # A parent is named by identifier or, as OpenSALT writes it, by code.
    keys_by_code: dict[str, str] = {}
    for _, row in rows:
        key = cell(row, "identifier") or cell(row, "code")
        if cell(row, "code"):
            keys_by_code.setdefault(cell(row, "code"), key)

    items: list[PlannedItem] = []
    links: list[PlannedLink] = []
    known_keys = {cell(row, "identifier") or cell(row, "code") for _, row in rows}
    for line, row in rows:
        location = f"line {line}"
        key = cell(row, "identifier") or cell(row, "code")
        if not key:
            reason = "the row has neither an identifier nor a code"
            raise ImportRejectedError(file_name, location, reason)
        statement = cell(row, "statement")
        if not statement:
            reason = "the statement is empty"
            raise ImportRejectedError(file_name, location, reason)
        order_text = cell(row, "order")
        if order_text and not order_text.lstrip("-").isdigit():
            reason = f"the order {order_text!r} is not a whole number"
            raise ImportRejectedError(file_name, location, reason)
        parent = cell(row, "parent")
        parent_key = None
        if parent:
            parent_key = parent if parent in known_keys else keys_by_code.get(parent)
            if parent_key is None:
                reason = f"the parent {parent!r} is not an item of this file"
                raise ImportRejectedError(file_name, location, reason)
        bands = cell(row, "grade_bands")
        items.append(
            PlannedItem(
                key=key,
                location=location,
                fields=ObjectiveFields(
                    code=cell(row, "code") or None,
                    statement=statement,
                    label=cell(row, "label") or None,
                    order=int(order_text) if order_text else 0,
                    item_type=cell(row, "type") or None,
                    grade_bands=tuple(LIST_SEPARATOR.split(bands)) if bands else (),
                ),
                parent_key=parent_key,
                case_identifier=cell(row, "identifier") or None,
            )
        )
        for link_type, index in link_columns.items():
            target = row[index].strip() if index < len(row) else ""
            if not target:
                continue
            target_key = target if target in known_keys else keys_by_code.get(target)
            is_uri = target.startswith(("http://", "https://"))
            links.append(
                PlannedLink(
                    key=f"{key}:{link_type}:{target}",
                    origin_key=key,
                    link_type=link_type,
                    target_key=target_key,
                    target_identifier=None if is_uri else target,
                    target_uri=target if is_uri else None,
                )
            )

    return ImportPlan(
        file_name=file_name,
        title=PurePath(file_name).stem or file_name,
        items=tuple(items),
        links=tuple(links),
    )
