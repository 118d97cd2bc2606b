"""Settings of every mastery process, read once from the environment.

Each field is read from the variable ``MASTERY_<FIELD>``. Everything is
checked when a process starts, and every problem is reported at once, each
naming its variable, so an operator fixes a bad configuration in one go
rather than one restart at a time. ``docs/configuration.md`` lists them all.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal, TypeVar, cast, get_args

import msgspec

from mastery_events.errors import EventsError
from mastery_events.keyring import decode_key_encryption_key
from mastery_events.subjects import DEFAULT_PREFIX, TOKEN

PREFIX = "MASTERY_"
SERVICES = ("objectives", "grading", "reports")

LogLevel = Literal["debug", "info", "warning", "error", "critical"]
LogFormat = Literal["console", "json"]

DATABASE_SCHEMES = ("postgresql://", "postgres://")
NATS_SCHEMES = ("nats://", "tls://", "ws://", "wss://")
# JetStream keeps at most five copies of a stream.
MAX_REPLICAS = 5
# RFC 7518 asks for a key at least as long as the HS256 hash.
MIN_SECRET_LENGTH = 32
MAX_RATE_LIMIT = 100_000
LOOPBACK_HTTP = ("http://127.0.0.1", "http://localhost", "http://[::1]")
HOST = re.compile(r"^[A-Za-z0-9.:_-]+$")

T = TypeVar("T")

# Settings whose values are never printed, even in a complaint about them.
SECRET_FIELDS = frozenset({"jwt_secret", "key_encryption_key"})


class SettingsError(EventsError):
    """Raised when environment variables hold values a process cannot run
    with; ``problems`` has one line per variable at fault."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  {problem}" for problem in problems)
        super().__init__(f"the configuration is not valid:\n{lines}")


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Where the engines are, which ports to serve on, and how to log.

    An unset URL means "start the embedded engine" to ``mastery up``, and is
    an error for a service started on its own. An unset port means "any free
    port", chosen when the process starts.
    """

    database_url: str | None = None
    migration_database_url: str | None = None
    nats_url: str | None = None
    data_dir: Path = Path(".mastery")
    host: str = "127.0.0.1"
    objectives_port: int | None = None
    grading_port: int | None = None
    reports_port: int | None = None
    log_level: LogLevel = "info"
    log_format: LogFormat = "console"
    subject_prefix: str = DEFAULT_PREFIX
    nats_replicas: int = 1
    nats_duplicate_window: float = 120.0
    relay_poll_interval: float = 1.0
    seal_interval: float = 60.0
    schedule_interval: float = 3600.0
    jwt_issuer: str = "mastery-local"
    jwt_audience: str = "mastery"
    jwt_jwks: str | None = None
    jwt_secret: str | None = None
    key_encryption_key: str | None = None
    rate_limit: int = 120
    trusted_proxies: str = "127.0.0.1"

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Settings:
        """Read and check every ``MASTERY_*`` variable in ``environ``, or
        raise ``SettingsError`` listing each problem found."""
        reader = EnvironmentReader(environ)
        defaults = cls()
        settings = cls(
            database_url=reader.read("database_url", None, parse_database_url),
            migration_database_url=reader.read(
                "migration_database_url", None, parse_database_url
            ),
            nats_url=reader.read("nats_url", None, parse_nats_url),
            data_dir=reader.read("data_dir", defaults.data_dir, parse_folder),
            host=reader.read("host", defaults.host, parse_host),
            objectives_port=reader.read("objectives_port", None, parse_port),
            grading_port=reader.read("grading_port", None, parse_port),
            reports_port=reader.read("reports_port", None, parse_port),
            log_level=reader.read("log_level", defaults.log_level, parse_log_level),
            log_format=reader.read("log_format", defaults.log_format, parse_log_format),
            subject_prefix=reader.read(
                "subject_prefix", defaults.subject_prefix, parse_subject_prefix
            ),
            nats_replicas=reader.read(
                "nats_replicas", defaults.nats_replicas, parse_replicas
            ),
            nats_duplicate_window=reader.read(
                "nats_duplicate_window",
                defaults.nats_duplicate_window,
                parse_seconds,
            ),
            relay_poll_interval=reader.read(
                "relay_poll_interval", defaults.relay_poll_interval, parse_seconds
            ),
            seal_interval=reader.read(
                "seal_interval", defaults.seal_interval, parse_seconds
            ),
            schedule_interval=reader.read(
                "schedule_interval", defaults.schedule_interval, parse_seconds
            ),
            jwt_issuer=reader.read("jwt_issuer", defaults.jwt_issuer, parse_claim),
            jwt_audience=reader.read(
                "jwt_audience", defaults.jwt_audience, parse_claim
            ),
            jwt_jwks=reader.read("jwt_jwks", None, parse_jwks),
            jwt_secret=reader.read("jwt_secret", None, parse_secret),
            key_encryption_key=reader.read(
                "key_encryption_key", None, parse_key_encryption_key
            ),
            rate_limit=reader.read("rate_limit", defaults.rate_limit, parse_rate_limit),
            trusted_proxies=reader.read(
                "trusted_proxies", defaults.trusted_proxies, parse_trusted_proxies
            ),
        )
        reader.problems.extend(port_clashes(settings))
        if reader.problems:
            raise SettingsError(reader.problems)

        return settings

    def port_of(self, service: str) -> int | None:
        """Return the port ``service`` is configured to serve on, if any."""
        ports = {
            "objectives": self.objectives_port,
            "grading": self.grading_port,
            "reports": self.reports_port,
        }
        if service not in ports:
            message = f"no port setting exists for a service named {service!r}"
            raise SettingsError([message])

        return ports[service]

    def require_engines(self) -> tuple[str, str]:
        """Return the database and NATS URLs, or raise ``SettingsError`` when
        either is unset, as it must not be for a service started alone."""
        if self.database_url is not None and self.nats_url is not None:
            return self.database_url, self.nats_url

        problems = []
        if self.database_url is None:
            problems.append(
                f"{variable('database_url')} is not set: a service started on "
                "its own needs a PostgreSQL URL (`mastery up` starts one)"
            )
        if self.nats_url is None:
            problems.append(
                f"{variable('nats_url')} is not set: a service started on its "
                "own needs a NATS URL (`mastery up` starts one)"
            )
        raise SettingsError(problems)

    def to_environment(self) -> dict[str, str]:
        """Return these settings as ``MASTERY_*`` variables, leaving unset
        ones out, so a child process reads back exactly these settings."""
        found: dict[str, str] = {}
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if value is None:
                continue
            found[variable(name)] = str(value)

        return found


def variable(field: str) -> str:
    """Return the environment variable that holds the setting ``field``."""
    return f"{PREFIX}{field.upper()}"


class EnvironmentReader:
    """Parse variables one at a time, collecting problems instead of
    stopping at the first."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.problems: list[str] = []

    def read(self, field: str, default: T, parse: Callable[[str], T]) -> T:
        """Return the parsed variable for ``field``, or ``default`` when it is
        unset, empty or invalid (an invalid value is recorded as a problem)."""
        name = variable(field)
        raw = self.environ.get(name, "").strip()
        if not raw:
            return default
        try:
            return parse(raw)
        except ValueError as error:
            shown = "(hidden)" if field in SECRET_FIELDS else repr(raw)
            self.problems.append(f"{name} {error}, got {shown}")
            return default


def parse_database_url(raw: str) -> str:
    """Accept a PostgreSQL URL."""
    if not raw.startswith(DATABASE_SCHEMES) or not raw.split("://", 1)[1]:
        message = "must be a PostgreSQL URL like postgresql://user@host:port/db"
        raise ValueError(message)
    return raw


def parse_nats_url(raw: str) -> str:
    """Accept one NATS URL, or several separated by commas."""
    servers = [server.strip() for server in raw.split(",")]
    if not all(server.startswith(NATS_SCHEMES) for server in servers):
        message = (
            "must be a NATS URL like nats://host:port (several may be "
            "separated by commas)"
        )
        raise ValueError(message)
    return ",".join(servers)


def parse_folder(raw: str) -> Path:
    """Accept any path; it is created when first needed."""
    return Path(raw).expanduser()


def parse_host(raw: str) -> str:
    """Accept a host name or an IP address to listen on."""
    if HOST.match(raw) is None:
        message = "must be a host name or IP address such as 127.0.0.1"
        raise ValueError(message)
    return raw


def parse_port(raw: str) -> int:
    """Accept a TCP port number."""
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        message = "must be a TCP port number from 1 to 65535"
        raise ValueError(message)
    return int(raw)


def parse_log_level(raw: str) -> LogLevel:
    """Accept a log level name, in any case."""
    if raw.lower() in get_args(LogLevel):
        return cast(LogLevel, raw.lower())
    message = f"must be one of {', '.join(get_args(LogLevel))}"
    raise ValueError(message)


def parse_log_format(raw: str) -> LogFormat:
    """Accept ``console`` or ``json``."""
    if raw.lower() in get_args(LogFormat):
        return cast(LogFormat, raw.lower())
    message = f"must be one of {', '.join(get_args(LogFormat))}"
    raise ValueError(message)


def parse_subject_prefix(raw: str) -> str:
    """Accept one NATS subject token, since it also names the streams."""
    if TOKEN.match(raw) is None:
        message = "must be one NATS subject token: letters, digits, '_' or '-'"
        raise ValueError(message)
    return raw


def parse_replicas(raw: str) -> int:
    """Accept a JetStream replica count."""
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_REPLICAS:
        message = f"must be a whole number of copies from 1 to {MAX_REPLICAS}"
        raise ValueError(message)
    return int(raw)


def parse_seconds(raw: str) -> float:
    """Accept a positive number of seconds."""
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        message = "must be a positive number of seconds"
        raise ValueError(message)
    return seconds


def parse_claim(raw: str) -> str:
    """Accept an issuer or audience: any text without spaces."""
    if any(character.isspace() for character in raw):
        message = "must be one issuer or audience name, without spaces"
        raise ValueError(message)
    return raw


def parse_jwks(raw: str) -> str:
    """Accept an HTTPS URL of a JWKS document, or the path of a JWKS file."""
    if raw.startswith("http://") and not raw.startswith(LOOPBACK_HTTP):
        message = "must be an https:// URL (http:// only on 127.0.0.1) or a path"
        raise ValueError(message)
    if raw.startswith(("http://", "https://")):
        return raw
    return str(Path(raw).expanduser())


def parse_secret(raw: str) -> str:
    """Accept an HS256 secret long enough not to be guessed."""
    if len(raw) < MIN_SECRET_LENGTH:
        # The value itself is never echoed: it is a secret.
        message = f"must be at least {MIN_SECRET_LENGTH} characters long"
        raise ValueError(message)
    return raw


def parse_key_encryption_key(raw: str) -> str:
    """Accept a key-encryption key: 32 random bytes in URL-safe base64."""
    decode_key_encryption_key(raw)
    return raw


def parse_rate_limit(raw: str) -> int:
    """Accept a number of requests a minute."""
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_RATE_LIMIT:
        message = f"must be a whole number of requests a minute, 1 to {MAX_RATE_LIMIT}"
        raise ValueError(message)
    return int(raw)


def parse_trusted_proxies(raw: str) -> str:
    """Accept ``*``, or IP addresses and networks separated by commas."""
    if raw == "*":
        return raw
    proxies = [proxy.strip() for proxy in raw.split(",")]
    for proxy in proxies:
        try:
            ipaddress.ip_network(proxy)
        except ValueError:
            message = (
                "must be IP addresses or networks (10.0.0.0/8) separated by "
                "commas, or *"
            )
            raise ValueError(message) from None
    return ",".join(proxies)


def port_clashes(settings: Settings) -> list[str]:
    """Describe each port that two services are configured to share."""
    seen: dict[int, str] = {}
    problems = []
    for service in SERVICES:
        port = settings.port_of(service)
        if port is None:
            continue
        field = f"{service}_port"
        if port in seen:
            problems.append(
                f"{variable(field)} and {variable(seen[port])} are both "
                f"{port}: each service needs a port of its own"
            )
        else:
            seen[port] = field

    return problems
