"""What a runtime tells Prometheus before its engines answer: no lag figure
at all, rather than an old one, and no relay leading."""

from __future__ import annotations

import secrets

from prometheus_client import REGISTRY

from mastery_events.metrics import RELAY_LAG_EVENTS, RELAY_LAG_SECONDS
from mastery_events.runtime import Service, ServiceRuntime
from mastery_events.settings import Settings


async def test_a_runtime_without_its_database_drops_the_relay_lag() -> None:
    """A lag set earlier disappears from the scrape once the runtime cannot
    measure it, and the leader gauge says 0."""
    name = f"ghost{secrets.token_hex(3)}"
    runtime = ServiceRuntime(Service(name=name), Settings())
    RELAY_LAG_EVENTS.labels(name).set(42)
    RELAY_LAG_SECONDS.labels(name).set(7.5)

    await runtime.sample_metrics()

    labels = {"service": name}
    assert REGISTRY.get_sample_value("mastery_relay_lag_events", labels) is None
    assert REGISTRY.get_sample_value("mastery_relay_lag_oldest_seconds", labels) is None
    assert REGISTRY.get_sample_value("mastery_relay_leader", labels) == 0
