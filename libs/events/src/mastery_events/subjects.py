"""NATS subjects and JetStream stream names of the event bus.

Every event is published on ``<prefix>.<service>.<tenant>.<EventType>``, so a
subscriber can choose a service, a tenant or one type with wildcards, and a
consumer can check that an envelope's tenant is the one its subject names.
Each service's events live in one JetStream stream, ``<PREFIX>_<SERVICE>``.
"""

from __future__ import annotations

import re

import msgspec

from mastery_events.errors import EventsError

DEFAULT_PREFIX = "mastery"
DEAD_LETTER_NAME = "deadletter"
ANCHORS_NAME = "anchors"
# Matched with fullmatch: ``$`` alone would let a trailing newline through.
TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")


class InvalidTenantError(EventsError):
    """Raised when a tenant id is not a lower-case slug, which it must be to
    stand as one token of a NATS subject and in URLs."""

    def __init__(self, tenant_id: str) -> None:
        self.tenant_id = tenant_id
        message = (
            f"tenant id {tenant_id!r} must be 1-63 characters of a-z, 0-9 "
            "and '-', starting with a letter or digit"
        )
        super().__init__(message)


class InvalidSubjectError(EventsError):
    """Raised when a subject, or a token meant for one, does not follow the
    bus's scheme: a wildcard, a dot or a space would change what it matches."""

    def __init__(self, subject: str, reason: str) -> None:
        self.subject = subject
        self.reason = reason
        super().__init__(f"{subject!r} {reason}")


def check_tenant_id(tenant_id: str) -> str:
    """Return ``tenant_id`` when it is valid, else raise."""
    if TENANT_ID.fullmatch(tenant_id) is None:
        raise InvalidTenantError(tenant_id)
    return tenant_id


def check_token(token: str) -> str:
    """Return ``token`` when it can stand as one literal subject token, else
    raise, so a name can never widen a subscription."""
    if TOKEN.fullmatch(token) is None:
        reason = "is not one subject token of A-Z, a-z, 0-9, '_' and '-'"
        raise InvalidSubjectError(token, reason)
    return token


class EventSubject(msgspec.Struct, frozen=True, kw_only=True):
    """What an event subject names: the publishing service, the tenant and
    the event type."""

    service: str
    tenant_id: str
    event_type: str


class Subjects(msgspec.Struct, frozen=True, kw_only=True):
    """Builds and parses the bus's subjects under one prefix."""

    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        for token in self.prefix.split("."):
            check_token(token)

    def event(self, service: str, tenant_id: str, event_type: str) -> str:
        """Return the subject one event is published on."""
        return self._event(service, check_tenant_id(tenant_id), event_type)

    def event_address(self, service: str, event_type: str) -> str:
        """Return the address of an event type's channel with ``{tenant}``
        where the tenant goes, as AsyncAPI writes channel addresses."""
        return self._event(service, "{tenant}", event_type)

    def _event(self, service: str, tenant: str, event_type: str) -> str:
        tokens = (self.prefix, check_token(service), tenant, check_token(event_type))
        return ".".join(tokens)

    def parse(self, subject: str) -> EventSubject:
        """Return what an event subject under this prefix names, or raise
        when it is not one."""
        tokens = subject.split(".")
        prefix_tokens = self.prefix.split(".")
        if (
            len(tokens) != len(prefix_tokens) + 3
            or tokens[: len(prefix_tokens)] != prefix_tokens
        ):
            reason = f"is not an event subject under {self.prefix!r}"
            raise InvalidSubjectError(subject, reason)
        service, tenant_id, event_type = tokens[len(prefix_tokens) :]
        if TOKEN.fullmatch(service) is None or TOKEN.fullmatch(event_type) is None:
            reason = "names a wildcard or an empty service or event type"
            raise InvalidSubjectError(subject, reason)

        return EventSubject(
            service=service,
            tenant_id=check_tenant_id(tenant_id),
            event_type=event_type,
        )

    def tenant_of(self, subject: str) -> str:
        """Return the tenant id an event subject names."""
        return self.parse(subject).tenant_id

    def service_events(self, service: str) -> str:
        """Return the wildcard subject of every event ``service`` publishes."""
        return f"{self.prefix}.{check_token(service)}.>"

    def stream_name(self, service: str) -> str:
        """Return the JetStream stream that stores ``service``'s events."""
        # Stream names may not contain dots, and a prefix may.
        name = f"{self.prefix}_{service}".upper()
        return name.replace("-", "_").replace(".", "_")

    def dead_letter(self, consumer: str) -> str:
        """Return the subject where ``consumer`` parks messages it gave up on.

        ``*`` names every consumer's dead letters, for a subscription."""
        if consumer != "*":
            check_token(consumer)
        return f"{self.prefix}.{DEAD_LETTER_NAME}.{consumer}"

    def anchor(self, schema: str, tenant_id: str) -> str:
        """Return the subject where ``schema``'s sealer anchors the newest
        seal of ``tenant_id``."""
        tokens = (ANCHORS_NAME, check_token(schema), check_tenant_id(tenant_id))
        return ".".join((self.prefix, *tokens))

    def anchor_address(self) -> str:
        """Return the address of the seal anchors' channel, with ``{schema}``
        and ``{tenant}`` where they go, as AsyncAPI writes it."""
        return f"{self.prefix}.{ANCHORS_NAME}.{{schema}}.{{tenant}}"

    def dead_letter_address(self) -> str:
        """Return the address of the dead-letter channel with ``{consumer}``
        where the consumer's name goes, as AsyncAPI writes it."""
        return f"{self.prefix}.{DEAD_LETTER_NAME}.{{consumer}}"
