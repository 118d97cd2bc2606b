"""What the reports routes are given besides the request itself."""

from __future__ import annotations

from typing import TypeAlias

from litestar.di import NamedDependency, Provide

from mastery_events.keyring import Keyring
from mastery_events.runtime import ServiceRuntime
from mastery_reports.share_link_store import ShareLinks
from mastery_reports.snapshot_store import Snapshots

SnapshotReader: TypeAlias = NamedDependency[Snapshots]
"""How a handler asks for the snapshots: ``snapshots: SnapshotReader``."""
LinkStore: TypeAlias = NamedDependency[ShareLinks]
"""How a handler asks for the share links: ``links: LinkStore``."""
People: TypeAlias = NamedDependency[Keyring]
"""How a handler asks for the keyring that opens names: ``keyring: People``."""


def providers(runtime: ServiceRuntime) -> dict[str, Provide]:
    """Provide each request with the snapshots and share links of
    ``runtime``'s database, and its keyring."""

    def provide_snapshots() -> Snapshots:
        return Snapshots(
            runtime.pool,
            runtime.service.schema,
            statements=runtime.statement_pool,
        )

    def provide_links() -> ShareLinks:
        return ShareLinks(runtime.pool, runtime.store)

    def provide_keyring() -> Keyring:
        return runtime.keyring

    return {
        "snapshots": Provide(provide_snapshots, sync_to_thread=False),
        "links": Provide(provide_links, sync_to_thread=False),
        "keyring": Provide(provide_keyring, sync_to_thread=False),
    }
