"""Migrations that have been released are never edited.

A database records the checksum of every migration it applied and refuses
to start when a file that claims an applied version says something else
(``MigrationError``). Districts upgrade in place, so a change to a
released migration would stop every deployment that ran it; a change
comes as a migration with the next number instead. The checksums below
are the released files'; add a migration here once it has been released.
"""

from __future__ import annotations

from mastery_deploy.services import installed_services
from mastery_events.migrations import Migration

RELEASED = {
    (
        "event_store",
        1,
    ): "5484b5b66ed19491874dc6ab50970f0ee0f5edffa0986188deee59d2b9fbf23b",
    (
        "event_store",
        2,
    ): "32a2e1fb2f32d3548691ed360bd636e5ab6757bcd6d68b20f98f94ab32fd797d",
    (
        "event_store",
        3,
    ): "bedc9c3883f8eeb1b270ed03f0fac6db9549fc5873d622a5d2782fa51f515996",
    (
        "event_store",
        4,
    ): "a35ccd50c8c90c919563219c1bdb82fab23e019fb7bf3741fd026fcf9664dd38",
    (
        "event_store",
        5,
    ): "b9ac7191505c7ae90c1d9ab4f5e46cd1148e19f46f123f1c646bfe3e9bc5b979",
    (
        "objectives",
        1,
    ): "69e6643bdf04cd450009b8736f085c3c0a0d0f62d04006bfc7a7af8225f637d9",
    (
        "objectives",
        2,
    ): "09bb973bbc4ebda2679eaf5fc7f57109524139b8841d64e7897fee963d7b835b",
    ("grading", 1): "f4a5d4b6a1e8256182970284d1a8f308ec0034f3670e276bfe962f74fecc9fd9",
    ("grading", 2): "baae31b0ce01e76d9c190ea7b87124ab9fcbac11fe8431c824f7f505f99301b3",
    ("grading", 3): "897c6ceab97b13422882ec021c2106531342db7fc58bd39ce42be8fd84ec3cc8",
    ("grading", 4): "4bcacfcf433f78865cebddaf16288bdf8388053ec038ee61d67b5be18f8d62b3",
    ("grading", 5): "3e35dbe4f8b968c9f3b85dc3fcd4eab96106aa1215ccb5d815c00bcfc6080ae4",
    ("grading", 6): "78f889d3b26e26cf91b0baa3fdd20259a372d14a8cfc420d1441b5581ae04b1f",
    ("grading", 7): "08019859682d9a52563a6014f2eecf2de214bdd0b43aeb0c9ab2fc00bfdb75e1",
    ("grading", 8): "cc3262790c6b10e968b27f10ca553333479ab553ce2f06bbe1e149df7b84e9ab",
    ("reports", 1): "fed0a042bfe32625829bf9293774a23b93003d6829155917aafc6043514915b8",
    ("reports", 2): "57534f8895cc12e4cf4c5778d12ed5dc4888d92ad99d8fbcf8905037d7e82934",
    ("reports", 3): "1129fc959a039a824acb3d11eaf5ce0d0b7d3aaeb8c5199307ddb5ce42931fb9",
}


def shipped() -> dict[tuple[str, int], Migration]:
    """Every migration the installed services carry, by component and number."""
    return {
        (migration.component, migration.number): migration
        for service in installed_services()
        for migration in service.all_migrations()
    }


def test_released_migrations_are_shipped_as_they_were_released() -> None:
    """Each released migration is still shipped, with the text it had."""
    migrations = shipped()

    changed = [
        f"{component} {number:04d}"
        for (component, number), checksum in RELEASED.items()
        if (component, number) not in migrations
        or migrations[component, number].checksum != checksum
    ]

    assert changed == []
