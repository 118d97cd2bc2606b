"""``mastery objectives import`` against real PostgreSQL: the same domain
path as the HTTP route, with a progress bar on large files."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from click.testing import CliRunner

from mastery_objectives.cli import command
from tests.integration.objectives.conftest import FIXTURES


@pytest.fixture
def runner(database_url: str) -> CliRunner:
    """A runner whose environment reaches the session's PostgreSQL."""
    return CliRunner(env={"MASTERY_DATABASE_URL": database_url})


def test_the_cli_imports_a_case_file_and_a_second_run_records_nothing(
    runner: CliRunner,
) -> None:
    """The second import of SmartLevel finds the set by its CASE document."""
    tenant = f"district-{secrets.token_hex(4)}"
    arguments = ["import", str(FIXTURES / "smart-level.case.json"), "--tenant", tenant]

    first = runner.invoke(command, arguments)
    second = runner.invoke(command, arguments)

    assert first.exit_code == 0, first.output
    assert "created objective set" in first.stdout
    assert "14 items, 15 events recorded" in first.stdout
    assert second.exit_code == 0, second.output
    assert "updated objective set" in second.stdout
    assert "14 items, 0 events recorded" in second.stdout


def test_a_large_file_shows_a_progress_bar(runner: CliRunner, tmp_path: Path) -> None:
    """A CSV of 600 objectives records 601 events behind a progress bar."""
    rows = [f"G{n},Objective number {n}" for n in range(600)]
    large = tmp_path / "large.csv"
    large.write_text("code,statement\n" + "\n".join(rows) + "\n")
    tenant = f"district-{secrets.token_hex(4)}"

    result = runner.invoke(command, ["import", str(large), "--tenant", tenant])

    assert result.exit_code == 0, result.output
    assert "recording events" in result.stderr
    assert "600 items, 601 events recorded" in result.stdout


def test_a_bad_file_is_refused_with_its_location(runner: CliRunner) -> None:
    """The CLI names the file and line, and exits non-zero."""
    bad = FIXTURES.parent / "missing-column.csv"
    tenant = f"district-{secrets.token_hex(4)}"

    result = runner.invoke(command, ["import", str(bad), "--tenant", tenant])

    assert result.exit_code == 1
    assert "missing-column.csv, line 1" in result.output
