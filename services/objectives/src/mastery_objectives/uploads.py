"""Checks every uploaded file passes before its format is read: size,
emptiness, encoding; and which format it is in."""

from __future__ import annotations

import codecs
from typing import Literal

from mastery_objectives.case_import import read_case
from mastery_objectives.csv_import import read_csv
from mastery_objectives.errors import ImportRejectedError, ImportTooLargeError
from mastery_objectives.import_plan import MAX_IMPORT_BYTES, ImportPlan, check_plan

UploadFormat = Literal["case", "csv"]


def upload_text(data: bytes, *, file_name: str, limit: int) -> str:
    """Return the text of an upload, refusing one that is too large, empty,
    starts with a byte-order mark, or is not UTF-8."""
    if len(data) > limit:
        raise ImportTooLargeError(file_name, len(data), limit)
    if not data.strip():
        raise ImportRejectedError(file_name, "whole file", "the file is empty")
    if data.startswith(codecs.BOM_UTF8):
        # Spreadsheet programs add it; refusing it keeps the first column's
        # name from silently gaining an invisible character.
        reason = "the file starts with a byte-order mark; save it as UTF-8 without one"
        raise ImportRejectedError(file_name, "line 1", reason)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        reason = f"byte {error.start} is not UTF-8 ({data[error.start]:#04x})"
        raise ImportRejectedError(file_name, f"line {line}", reason) from None
    if "\x00" in text:
        # Text files never hold NUL; it is a binary file, and the store's
        # text columns could not keep it.
        offset = text.index("\x00")
        line = text.count("\n", 0, offset) + 1
        reason = "the file holds a NUL character; it is not a text file"
        raise ImportRejectedError(file_name, f"line {line}", reason)

    return text


def upload_format(text: str) -> UploadFormat:
    """Tell a CASE package (a JSON object) from a CSV file by its first
    character."""
    return "case" if text.lstrip().startswith(("{", "[")) else "csv"


def plan_upload(
    data: bytes, *, file_name: str, limit: int = MAX_IMPORT_BYTES
) -> ImportPlan:
    """Read an uploaded CSV or CASE file into a checked import plan."""
    text = upload_text(data, file_name=file_name, limit=limit)
    if upload_format(text) == "case":
        plan = read_case(text, file_name=file_name)
    else:
        plan = read_csv(text, file_name=file_name)
    check_plan(plan)

    return plan
