"""Who may read and share which student's report."""

from __future__ import annotations

from mastery_events.access import Owner, may
from mastery_events.identity import Identity
from mastery_reports.snapshot_store import SectionInfo, SectionPlace
from mastery_reports.snapshots import SectionReport

AREA = "reports"


def owner_of(
    identity: Identity, section: SectionInfo | SectionPlace | SectionReport
) -> Owner:
    """Return where a section's records belong, in the caller's tenant (a
    section is only ever loaded from that tenant)."""
    return Owner(
        tenant_id=identity.tenant_id,
        school_id=section.school_id,
        section_id=section.section_id,
    )


def reads_section(
    identity: Identity, section: SectionInfo | SectionPlace | SectionReport
) -> bool:
    """Tell whether the caller reads a section's reports: teachers their
    sections, leaders their schools, auditors and admins all."""
    if identity.has_role("teacher") and not identity.has_role(
        "school_leader", "auditor", "district_admin"
    ):
        # A teacher sees the reports of their own sections only, not of
        # every section of their school.
        return section.section_id in identity.sections

    return may(identity, owner_of(identity, section), action="read", area=AREA)


def shares_section(identity: Identity, section: SectionInfo) -> bool:
    """Tell whether the caller may share a report covering a section:
    district admins any, leaders their schools', teachers their own."""
    if identity.has_role("district_admin"):
        return True
    if identity.has_role("school_leader") and section.school_id in identity.schools:
        return True

    return identity.has_role("teacher") and section.section_id in identity.sections
