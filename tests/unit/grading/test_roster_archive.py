"""Unpacking an uploaded roster zip: what is taken, and what is refused
with the member at fault named."""

from __future__ import annotations

import io
import zipfile

import pytest

from mastery_grading import roster_archive
from mastery_grading.errors import RosterImportError
from mastery_grading.roster_archive import read_archive


def zipped(members: dict[str, bytes]) -> bytes:
    """Zip ``members`` by their paths."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def refused(data: bytes) -> list[tuple[str, str]]:
    """Return the (file, message) of each problem the archive is refused for."""
    with pytest.raises(RosterImportError) as raised:
        read_archive(data)
    return [(p.file, p.message) for p in raised.value.problems]


def test_csv_files_are_taken_by_name_from_a_folder_and_the_rest_ignored() -> None:
    """A folder's CSVs come out by bare name; a readme and macOS litter do not."""
    data = zipped(
        {
            "export/orgs.csv": b"sourcedId\r\n",
            "export/users.csv": b"sourcedId\r\n",
            "export/README.txt": b"exported by the SIS",
            "__MACOSX/export/._orgs.csv": b"\x00\x05",
        }
    )

    assert read_archive(data) == {
        "orgs.csv": b"sourcedId\r\n",
        "users.csv": b"sourcedId\r\n",
    }


def test_bytes_that_are_not_a_zip_are_refused() -> None:
    """A CSV sent as the archive is named as not a zip."""
    assert refused(b"sourcedId,name\r\n") == [("bundle.zip", "is not a zip archive")]


def test_a_file_name_in_two_folders_is_refused() -> None:
    """Two users.csv would leave it unclear which one is the bundle's."""
    data = zipped({"a/users.csv": b"1", "b/users.csv": b"2"})

    assert refused(data) == [
        ("b/users.csv", "repeats users.csv, already in the archive")
    ]


def test_a_member_larger_than_the_bound_is_refused_without_unpacking_it_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With a bound of 1 KiB, a 4 KiB users.csv of zeros is refused."""
    monkeypatch.setattr(roster_archive, "MOST_MEMBER_BYTES", 1024)
    data = zipped({"users.csv": b"0" * 4096, "orgs.csv": b"sourcedId\r\n"})

    assert refused(data) == [("users.csv", "unpacks to more than 1024 bytes")]


def test_too_many_files_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the bound on members, the archive is refused whole."""
    monkeypatch.setattr(roster_archive, "MOST_MEMBERS", 3)
    data = zipped({f"file-{n}.csv": b"x" for n in range(4)})

    assert refused(data) == [("bundle.zip", "holds 4 files, more than 3")]


def test_an_encrypted_member_is_refused() -> None:
    """A member flagged as encrypted cannot be read, and is named."""
    data = bytearray(zipped({"users.csv": b"sourcedId\r\n"}))
    # Set the encryption bit in both the local and the central header.
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.index(signature) + offset
        data[at] |= 0x1

    assert refused(bytes(data)) == [
        ("users.csv", "is encrypted; send the bundle unencrypted")
    ]
