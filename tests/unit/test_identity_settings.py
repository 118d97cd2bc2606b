"""The identity settings: what is accepted, and secrets never echoed."""

from __future__ import annotations

import pytest

from mastery_events.settings import Settings, SettingsError


def test_a_short_secret_is_refused_without_repeating_it() -> None:
    """The complaint says how long a secret must be, and hides the value."""
    with pytest.raises(SettingsError) as raised:
        Settings.from_environment({"MASTERY_JWT_SECRET": "hunter2-hunter2"})

    (problem,) = raised.value.problems
    assert problem.startswith("MASTERY_JWT_SECRET must be at least 32")
    assert "hunter2" not in problem


@pytest.mark.parametrize(
    ("raw", "accepted"),
    [
        ("https://id.lakeside.example/.well-known/jwks.json", True),
        ("http://127.0.0.1:8089/jwks.json", True),
        ("http://id.lakeside.example/jwks.json", False),
        ("/etc/mastery/jwks.json", True),
    ],
)
def test_a_jwks_is_a_file_or_an_https_url(raw: str, accepted: bool) -> None:
    """Keys fetched in the clear could be swapped on the way, except on
    the machine itself."""
    environ = {"MASTERY_JWT_JWKS": raw}
    if accepted:
        assert Settings.from_environment(environ).jwt_jwks == raw
    else:
        with pytest.raises(SettingsError):
            Settings.from_environment(environ)


def test_the_identity_settings_survive_a_child_environment() -> None:
    """What `mastery up` hands its services reads back the same."""
    settings = Settings(
        migration_database_url="postgresql://postgres@127.0.0.1:6001/postgres",
        jwt_issuer="https://id.lakeside.example",
        jwt_audience="mastery-lakeside",
        jwt_secret="s" * 40,
    )

    assert Settings.from_environment(settings.to_environment()) == settings
