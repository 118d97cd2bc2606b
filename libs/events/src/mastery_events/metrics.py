"""What a service tells Prometheus about its log, its relay and its consumers.

Counters move where the work happens (the store counts the events it
appends, the relay the events it publishes). Lag is a question to the
database and to JetStream, so the gauges for it are set when Prometheus
scrapes ``/metrics`` rather than by a loop that would ask when nobody reads
the answer. A rebuild reports its progress through ``report_rebuild``.

Every label is a service, schema, consumer or projection name: never a
tenant, a person, an id or a request path with ids in it, so the numbers
carry no personal data and their count stays bounded.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

EVENTS_APPENDED = Counter(
    "mastery_events_appended",
    "Events the store inserted, by schema; an append whose caller's "
    "transaction later rolls back is counted too.",
    ["schema"],
)
EVENTS_PUBLISHED = Counter(
    "mastery_relay_published_events",
    "Events the relay saw JetStream store as new messages, by service.",
    ["service"],
)
RELAY_LEADER = Gauge(
    "mastery_relay_leader",
    "1 while this process's relay holds the lock and publishes, else 0.",
    ["service"],
)
RELAY_LAG_EVENTS = Gauge(
    "mastery_relay_lag_events",
    "Committed events not yet published to the bus, by service.",
    ["service"],
)
RELAY_LAG_SECONDS = Gauge(
    "mastery_relay_lag_oldest_seconds",
    "Age of the oldest committed event not yet published (0 when none).",
    ["service"],
)
CONSUMER_PENDING = Gauge(
    "mastery_consumer_pending_messages",
    "Messages on the stream a durable consumer has not yet been handed.",
    ["consumer", "stream"],
)
CONSUMER_ACK_PENDING = Gauge(
    "mastery_consumer_ack_pending_messages",
    "Messages handed to a durable consumer and not yet acknowledged.",
    ["consumer", "stream"],
)
REBUILD_DONE = Gauge(
    "mastery_rebuild_done_events",
    "Events a running rebuild of a projection has applied so far.",
    ["projection"],
)
REBUILD_TOTAL = Gauge(
    "mastery_rebuild_total_events",
    "Events a running rebuild of a projection has to apply in all.",
    ["projection"],
)


def report_rebuild(projection: str, *, done: int, total: int) -> None:
    """Publish how far a rebuild of ``projection`` has got, so a dashboard
    can show ``done / total`` while it runs."""
    if done < 0 or total < 0 or done > total:
        message = f"rebuild progress must be 0 <= done <= total, got {done}/{total}"
        raise ValueError(message)

    REBUILD_TOTAL.labels(projection).set(total)
    REBUILD_DONE.labels(projection).set(done)


def forget_rebuild(projection: str) -> None:
    """Drop a finished rebuild's progress, so it no longer shows."""
    # Removing a label set that was never set is allowed.
    REBUILD_DONE.remove(projection)
    REBUILD_TOTAL.remove(projection)
