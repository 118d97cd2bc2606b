"""Migration files as each component ships them."""

from __future__ import annotations

from pathlib import Path

import pytest

from mastery_deploy.services import installed_services
from mastery_events.keyring import keyring_migrations
from mastery_events.migrations import MigrationError, load_migrations


def test_two_migrations_with_one_number_are_refused_when_loaded(
    tmp_path: Path,
) -> None:
    """Two branches that each added 0005 cannot both be applied, so the
    loader refuses them by number before any database sees them."""
    for name in ("0001_first.sql", "0005_retention.sql", "0005_timelines.sql"):
        (tmp_path / name).write_text("SELECT 1;")

    with pytest.raises(MigrationError, match="0005"):
        load_migrations("grading", tmp_path)


def test_every_installed_components_migrations_are_numbered_one_after_another() -> None:
    """Each service's migrations, the event store's and the keyring's load
    without a repeated number and without a gap."""
    for service in installed_services():
        migrations = service.all_migrations()
        by_component: dict[str, list[int]] = {}
        for migration in migrations:
            by_component.setdefault(migration.component, []).append(migration.number)
        for component, numbers in by_component.items():
            assert numbers == list(range(1, len(numbers) + 1)), (component, numbers)
    assert [m.number for m in keyring_migrations()] == [1]
