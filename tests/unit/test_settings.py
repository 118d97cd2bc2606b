"""Settings read from MASTERY_* variables, and what a bad value is told."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mastery_events.keyring import new_key_encryption_key
from mastery_events.settings import Settings, SettingsError, variable

CONFIGURATION_DOC = Path(__file__).parents[2] / "docs" / "configuration.md"


def problems_of(environ: dict[str, str]) -> list[str]:
    """Return the problems reported for ``environ``, failing if none are."""
    with pytest.raises(SettingsError) as raised:
        Settings.from_environment(environ)
    return raised.value.problems


def test_an_empty_environment_gives_the_documented_defaults() -> None:
    """With nothing set, engines are embedded, ports free and logs readable."""
    settings = Settings.from_environment({})

    assert settings.database_url is None
    assert settings.nats_url is None
    assert settings.data_dir == Path(".mastery")
    assert settings.host == "127.0.0.1"
    assert settings.port_of("grading") is None
    assert settings.log_level == "info"
    assert settings.log_format == "console"
    assert settings.subject_prefix == "mastery"
    assert settings.nats_replicas == 1
    assert settings.nats_duplicate_window == 120.0


def test_every_variable_is_read_into_its_field() -> None:
    """Each MASTERY_* variable lands in the field of the same name."""
    settings = Settings.from_environment(
        {
            "MASTERY_DATABASE_URL": "postgresql://ada@db.example:6543/mastery",
            "MASTERY_NATS_URL": "nats://bus-1:7222, nats://bus-2:7222",
            "MASTERY_DATA_DIR": "/srv/mastery",
            "MASTERY_HOST": "10.0.0.7",
            "MASTERY_OBJECTIVES_PORT": "8101",
            "MASTERY_GRADING_PORT": "8102",
            "MASTERY_REPORTS_PORT": "8103",
            "MASTERY_LOG_LEVEL": "DEBUG",
            "MASTERY_LOG_FORMAT": "json",
            "MASTERY_SUBJECT_PREFIX": "district-7",
            "MASTERY_NATS_REPLICAS": "3",
            "MASTERY_NATS_DUPLICATE_WINDOW": "90",
            "MASTERY_RELAY_POLL_INTERVAL": "0.25",
        }
    )

    assert settings == Settings(
        database_url="postgresql://ada@db.example:6543/mastery",
        nats_url="nats://bus-1:7222,nats://bus-2:7222",
        data_dir=Path("/srv/mastery"),
        host="10.0.0.7",
        objectives_port=8101,
        grading_port=8102,
        reports_port=8103,
        log_level="debug",
        log_format="json",
        subject_prefix="district-7",
        nats_replicas=3,
        nats_duplicate_window=90.0,
        relay_poll_interval=0.25,
    )


def test_settings_survive_the_trip_through_a_child_environment() -> None:
    """What the launcher hands a child process reads back the same."""
    settings = Settings(
        database_url="postgresql://postgres@127.0.0.1:6001/postgres",
        nats_url="nats://127.0.0.1:6002",
        data_dir=Path("/srv/stack"),
        grading_port=6003,
        log_format="json",
        relay_poll_interval=0.5,
    )

    assert Settings.from_environment(settings.to_environment()) == settings


@pytest.mark.parametrize(
    ("name", "value", "complaint"),
    [
        ("MASTERY_DATABASE_URL", "mysql://db/mastery", "must be a PostgreSQL URL"),
        ("MASTERY_DATABASE_URL", "postgresql://", "must be a PostgreSQL URL"),
        ("MASTERY_NATS_URL", "nats://a:1,http://b:2", "must be a NATS URL"),
        ("MASTERY_HOST", "local host", "must be a host name or IP address"),
        ("MASTERY_GRADING_PORT", "eighty", "must be a TCP port number"),
        ("MASTERY_REPORTS_PORT", "70000", "must be a TCP port number"),
        ("MASTERY_LOG_LEVEL", "loud", "must be one of debug, info, warning"),
        ("MASTERY_LOG_FORMAT", "xml", "must be one of console, json"),
        ("MASTERY_SUBJECT_PREFIX", "a.b", "must be one NATS subject token"),
        ("MASTERY_NATS_REPLICAS", "7", "from 1 to 5"),
        ("MASTERY_NATS_DUPLICATE_WINDOW", "-5", "positive number of seconds"),
        ("MASTERY_RELAY_POLL_INTERVAL", "soon", "positive number of seconds"),
    ],
)
def test_a_bad_value_is_reported_with_its_variable_and_the_rule(
    name: str, value: str, complaint: str
) -> None:
    """The message names the variable, says what it must be, and quotes the
    value that was given."""
    (problem,) = problems_of({name: value})
    assert problem.startswith(f"{name} ")
    assert complaint in problem
    assert problem.endswith(f"got {value!r}")


def test_every_problem_is_reported_at_once() -> None:
    """An operator sees all the bad variables in one go, in one message."""
    with pytest.raises(SettingsError) as raised:
        Settings.from_environment(
            {
                "MASTERY_GRADING_PORT": "eighty",
                "MASTERY_LOG_FORMAT": "xml",
                "MASTERY_NATS_REPLICAS": "0",
            }
        )

    message = str(raised.value)
    assert message.startswith("the configuration is not valid:\n")
    for name in ("MASTERY_GRADING_PORT", "MASTERY_LOG_FORMAT", "MASTERY_NATS_REPLICAS"):
        assert name in message
    assert len(raised.value.problems) == 3


def test_two_services_on_one_port_are_refused() -> None:
    """Each service needs a port of its own."""
    (problem,) = problems_of(
        {"MASTERY_OBJECTIVES_PORT": "8100", "MASTERY_REPORTS_PORT": "8100"}
    )

    assert problem == (
        "MASTERY_REPORTS_PORT and MASTERY_OBJECTIVES_PORT are both 8100: "
        "each service needs a port of its own"
    )


def test_a_service_started_alone_names_the_missing_urls() -> None:
    """Without URLs a lone service cannot start, and says which are missing."""
    settings = Settings.from_environment({"MASTERY_NATS_URL": "nats://bus:7222"})

    with pytest.raises(SettingsError) as raised:
        settings.require_engines()

    (problem,) = raised.value.problems
    assert problem.startswith("MASTERY_DATABASE_URL is not set")


def test_every_setting_is_documented_in_the_configuration_table() -> None:
    """docs/configuration.md has a table row for each field's variable."""
    rows = re.findall(
        r"^\| `(MASTERY_[A-Z_]+)` \|", CONFIGURATION_DOC.read_text(), re.M
    )

    documented = set(rows)
    expected = {variable(field) for field in Settings.__struct_fields__}
    assert expected - documented == set()
    assert documented - expected == set()


def test_a_key_encryption_key_must_be_32_bytes_and_is_never_echoed() -> None:
    """A short or malformed key-encryption key is refused by name, and the
    complaint does not repeat the value."""
    with pytest.raises(SettingsError) as refused:
        Settings.from_environment({"MASTERY_KEY_ENCRYPTION_KEY": "c2hvcnQta2V5"})

    (problem,) = refused.value.problems
    assert "MASTERY_KEY_ENCRYPTION_KEY" in problem
    assert "32 bytes" in problem
    assert "c2hvcnQta2V5" not in problem


def test_a_key_encryption_key_of_32_bytes_is_accepted() -> None:
    """A key made by the keyring's own generator reads back unchanged."""
    key = new_key_encryption_key()

    settings = Settings.from_environment({"MASTERY_KEY_ENCRYPTION_KEY": key})

    assert settings.key_encryption_key == key


def test_trusted_proxies_and_the_rate_limit_are_read_and_checked() -> None:
    """Networks and addresses are accepted with spaces trimmed; a host name
    or a zero limit is refused by variable."""
    settings = Settings.from_environment(
        {
            "MASTERY_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.1",
            "MASTERY_RATE_LIMIT": "600",
        }
    )
    with pytest.raises(SettingsError) as refused:
        Settings.from_environment(
            {"MASTERY_TRUSTED_PROXIES": "ingress.local", "MASTERY_RATE_LIMIT": "0"}
        )

    assert settings.trusted_proxies == "10.0.0.0/8,192.0.2.1"
    assert settings.rate_limit == 600
    assert [problem.split()[0] for problem in refused.value.problems] == [
        "MASTERY_RATE_LIMIT",
        "MASTERY_TRUSTED_PROXIES",
    ]
