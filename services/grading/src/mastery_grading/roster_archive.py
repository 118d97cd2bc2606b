"""Unpack a OneRoster bundle sent as one zip file, within fixed bounds.

A student information system exports a bundle as a zip of CSV files, at its
top level or inside one folder. Only the CSV files are taken, by their name
without the folder. An archive that is not a zip, is encrypted, holds too
many files, repeats a file name, or unpacks to more than the bounds allow is
refused whole, each problem naming the archive member at fault, before any
CSV is read.
"""

from __future__ import annotations

import io
import zipfile
from typing import Final

from mastery_grading.errors import RosterImportError, RosterProblem

ARCHIVE: Final = "bundle.zip"
# A district's bundle is a dozen files; the bounds stop an archive that
# unpacks to far more than it weighs from filling the service's memory.
MOST_MEMBERS: Final = 100
MOST_MEMBER_BYTES: Final = 64 * 1024 * 1024
MOST_TOTAL_BYTES: Final = 256 * 1024 * 1024


class _Problems(list[RosterProblem]):
    """The members refused so far."""

    def refuse(self, file: str, message: str) -> None:
        """Note that ``file`` is refused, and why."""
        self.append(RosterProblem(file=file, line=None, column=None, message=message))


def read_archive(data: bytes) -> dict[str, bytes]:
    """Return the CSV files of the zip ``data`` by name, or raise
    ``RosterImportError`` naming every member refused."""
    problems = _Problems()
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError):
        problems.refuse(ARCHIVE, "is not a zip archive")
        raise RosterImportError(tuple(problems), total=1) from None

    with archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        if len(members) > MOST_MEMBERS:
            message = f"holds {len(members)} files, more than {MOST_MEMBERS}"
            problems.refuse(ARCHIVE, message)
            members = []

        files: dict[str, bytes] = {}
        total = 0
        for info in members:
            name = info.filename.rsplit("/", 1)[-1]
            if not name.endswith(".csv") or info.filename.startswith("__MACOSX/"):
                continue
            if info.flag_bits & 0x1:
                message = "is encrypted; send the bundle unencrypted"
                problems.refuse(info.filename, message)
                continue
            if name in files:
                message = f"repeats {name}, already in the archive"
                problems.refuse(info.filename, message)
                continue
            content = _unpacked(archive, info, problems)
            if content is None:
                continue
            total += len(content)
            if total > MOST_TOTAL_BYTES:
                message = f"unpacks to more than {MOST_TOTAL_BYTES} bytes"
                problems.refuse(ARCHIVE, message)
                break
            files[name] = content

    if problems:
        raise RosterImportError(tuple(problems), total=len(problems))
    return files


def _unpacked(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, problems: _Problems
) -> bytes | None:
    """Return one member's bytes, reading no more than the bound allows
    whatever its header claims; note why when it cannot be read."""
    try:
        with archive.open(info) as member:
            content = member.read(MOST_MEMBER_BYTES + 1)
    except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError) as error:
        message = f"cannot be unpacked: {type(error).__name__}"
        problems.refuse(info.filename, message)
        return None
    if len(content) > MOST_MEMBER_BYTES:
        message = f"unpacks to more than {MOST_MEMBER_BYTES} bytes"
        problems.refuse(info.filename, message)
        return None

    return content
