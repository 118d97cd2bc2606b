"""``mastery grading roster import`` against real PostgreSQL: counts
printed, a second run records nothing, a broken bundle stores nothing, and
a large one shows a progress bar."""

from __future__ import annotations

import asyncio
import secrets
import shutil
from pathlib import Path

import asyncpg
import pytest
from click.testing import CliRunner

from mastery_grading.cli import command
from mastery_grading.service import SERVICE
from tests.keys import KEY_ENCRYPTION_KEY
from tests.unit.grading.test_oneroster import (
    ENROLLMENTS,
    ROLES,
    STAMP,
    USERS,
    lakeside,
    with_row,
)

LAKESIDE = Path(__file__).parents[2] / "fixtures" / "oneroster" / "lakeside"


@pytest.fixture
def runner(database_url: str) -> CliRunner:
    """A runner whose environment reaches the session's PostgreSQL with the
    session's key-encryption key."""
    return CliRunner(
        env={
            "MASTERY_DATABASE_URL": database_url,
            "MASTERY_KEY_ENCRYPTION_KEY": KEY_ENCRYPTION_KEY,
        }
    )


def tenant() -> str:
    """Return a district of this test's own."""
    return f"district-{secrets.token_hex(4)}"


def events_of(database_url: str, district: str) -> int:
    """Return how many events grading's log holds for ``district``; the
    command runs its own event loop, so this test must not."""

    async def count() -> int:
        connection = await asyncpg.connect(database_url)
        try:
            found: int = await connection.fetchval(
                f'SELECT count(*) FROM "{SERVICE.schema}".events WHERE tenant_id = $1',
                district,
            )
        finally:
            await connection.close()
        return found

    return asyncio.run(count())


def write_bundle(folder: Path, files: dict[str, bytes]) -> Path:
    """Write ``files`` into ``folder`` and return it."""
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def test_the_cli_imports_a_bundle_and_a_second_run_records_nothing(
    runner: CliRunner,
) -> None:
    """Lakeside's counts are printed; the same folder again changes nothing."""
    arguments = ["roster", "import", str(LAKESIDE), "--tenant", tenant()]

    first = runner.invoke(command, arguments)
    second = runner.invoke(command, arguments)

    assert first.exit_code == 0, first.output
    assert "18 events recorded" in first.stdout
    assert "people: 6 added, 0 changed, 0 removed" in first.stdout
    assert "sections: 2 added, 0 changed, 0 removed" in first.stdout
    assert second.exit_code == 0, second.output
    assert "nothing changed" in second.stdout
    assert "people: 0 added, 0 changed, 0 removed" in second.stdout


def test_a_broken_bundle_is_refused_whole_and_stores_nothing(
    runner: CliRunner, tmp_path: Path, database_url: str
) -> None:
    """After a good import, a folder whose users.csv has a bad flag on line 3
    exits 1 naming file, line and column, and the log does not grow."""
    district = tenant()
    runner.invoke(command, ["roster", "import", str(LAKESIDE), "--tenant", district])
    before = events_of(database_url, district)
    broken = tmp_path / "broken"
    shutil.copytree(LAKESIDE, broken)
    users = with_row(USERS, 2, "enabledUser", "maybe")
    (broken / "users.csv").write_bytes(lakeside(users=users)["users.csv"])

    result = runner.invoke(
        command, ["roster", "import", str(broken), "--tenant", district]
    )

    assert result.exit_code == 1
    assert "users.csv line 3 column enabledUser" in result.stderr
    assert "nothing imported" in result.stderr
    assert before == 18
    assert events_of(database_url, district) == before


def test_a_large_bundle_shows_a_progress_bar(runner: CliRunner, tmp_path: Path) -> None:
    """250 more students are sealed behind a progress bar."""
    users = [list(row) for row in USERS]
    roles = [list(row) for row in ROLES]
    enrollments = [list(row) for row in ENROLLMENTS]
    for n in range(250):
        student = f"s-{n:03d}"
        users.append(
            [
                student,
                "active",
                STAMP,
                "true",
                student,
                f"Student{n}",
                "Lakeside",
                "",
                "",
            ]
        )
        roles.append(
            [f"r-{student}", "active", STAMP, student, "primary", "student", "", "",
             "hillside", ""]
        )  # fmt: skip
        enrollments.append(
            [f"e-{student}", "active", STAMP, "alg-h", "hillside", student, "student",
             "", "", ""]
        )  # fmt: skip
    folder = write_bundle(
        tmp_path / "large", lakeside(users=users, roles=roles, enrollments=enrollments)
    )

    result = runner.invoke(
        command, ["roster", "import", str(folder), "--tenant", tenant()]
    )

    assert result.exit_code == 0, result.output
    assert "sealing people" in result.stderr
    assert "people: 256 added" in result.stdout


def test_an_import_without_a_key_encryption_key_is_refused(
    database_url: str,
) -> None:
    """No key, no import: nothing is sealed with a key that is not there."""
    runner = CliRunner(env={"MASTERY_DATABASE_URL": database_url})

    result = runner.invoke(
        command, ["roster", "import", str(LAKESIDE), "--tenant", tenant()]
    )

    assert result.exit_code == 1
    assert "MASTERY_KEY_ENCRYPTION_KEY is not set" in result.stderr
