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


def check_tenant_id(tenant_id: str) -> str:
    """Return ``tenant_id`` when it is valid, else raise."""
    if TENANT_ID.match(tenant_id) is None:
        raise InvalidTenantError(tenant_id)
    return tenant_id


class Subjects(msgspec.Struct, frozen=True, kw_only=True):
    """Builds and parses the bus's subjects under one prefix."""

    prefix: str = DEFAULT_PREFIX

    def event(self, service: str, tenant_id: str, event_type: str) -> str:
        """Return the subject one event is published on."""
        return f"{self.prefix}.{service}.{check_tenant_id(tenant_id)}.{event_type}"

    def service_events(self, service: str) -> str:
        """Return the wildcard subject of every event ``service`` publishes."""
        return f"{self.prefix}.{service}.>"

    def stream_name(self, service: str) -> str:
        """Return the JetStream stream that stores ``service``'s events."""
        return f"{self.prefix}_{service}".upper().replace("-", "_")

    def dead_letter(self, consumer: str) -> str:
        """Return the subject where ``consumer`` parks messages it gave up on."""
        return f"{self.prefix}.deadletter.{consumer}"

    def tenant_of(self, subject: str) -> str:
        """Return the tenant id an event subject names."""
        tokens = subject.split(".")
        prefix_tokens = self.prefix.count(".") + 1
        if len(tokens) != prefix_tokens + 3:
            message = f"{subject!r} is not an event subject under {self.prefix!r}"
            raise EventsError(message)
        return tokens[prefix_tokens + 1]
