"""Share links on a running reports service: created by a teacher, opened
without an account as a page, a PDF and JSON, each view written to the
disclosure log; unknown, expired and revoked links alike answered with one
not-found page; the public routes rate limited."""

from __future__ import annotations

import html
import re
import zlib
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
import structlog

from mastery_events.contract import CONTRACT
from mastery_events.contract.reports import ReportViewed, ShareLinkCreated
from mastery_events.ids import uuid7
from mastery_events.store import EventStore
from mastery_reports.errors import SharedReportNotFoundError
from mastery_reports.share_link_store import ShareLinks, new_token, stream_of
from mastery_reports.share_links import CreateShareLink, Served, token_hash
from tests.integration.reports.district import (
    SECTION,
    TERM,
    District,
    Stack,
    assessed,
    new_district,
    objectives_of,
    seeded,
)

TITLE = re.compile(r"<title>(.*?)</title>", re.S)
HEADING = re.compile(r"<h([1-4])[^>]*>(.*?)</h\1>", re.S)
TAG = re.compile(r"<[^>]+>")
PDF_TITLE = re.compile(rb"/Title\s*(\((?:\\.|[^\\)])*\)|<[0-9A-Fa-f]+>)")
PDF_STREAM = re.compile(rb"stream\r?\n(.*?)\r?\nendstream", re.S)


async def share(
    stack: Stack, district: District, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Create a link to the student's report as their teacher."""
    answer = await stack.client.post(
        f"/students/{district.student_id}/share-links",
        json=body or {"section_ids": [SECTION]},
        headers=stack.teacher(district),
    )
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def headings(page: str) -> list[str]:
    """Return the text of a page's h1 to h4 headings, in order."""
    return [
        " ".join(html.unescape(TAG.sub("", text)).split())
        for _, text in HEADING.findall(page)
    ]


def page_title(page: str) -> str:
    """Return the text of a page's title element."""
    found = TITLE.search(page)
    assert found is not None
    return " ".join(html.unescape(found[1]).split())


def pdf_titles(pdf: bytes) -> list[str]:
    """Return every title a PDF holds: its outline's (the bookmarks made
    from headings) and its metadata's, from plain and compressed objects
    alike."""
    chunks = [pdf]
    for match in PDF_STREAM.finditer(pdf):
        try:
            chunks.append(zlib.decompress(match[1]))
        except zlib.error:
            continue
    titles = []
    for chunk in chunks:
        for raw in PDF_TITLE.findall(chunk):
            if raw.startswith(b"<"):
                titles.append(bytes.fromhex(raw[1:-1].decode()).decode("utf-16"))
            else:
                text = raw[1:-1].replace(rb"\(", b"(").replace(rb"\)", b")")
                titles.append(text.decode("latin-1"))
    return [" ".join(title.split()) for title in titles]


async def test_a_shared_link_opens_the_report_and_logs_the_view(
    stack: Stack,
) -> None:
    """The teacher's link opens the student's report with no token: both
    objectives, the level in words, the security headers and no caching;
    the view is one ReportViewed, and neither the answer listing links nor
    any stored event holds the token."""
    district = new_district()
    await seeded(stack, district)
    created = await share(stack, district)
    token = created["token"]

    page = await stack.client.get(created["path"])
    listed = await stack.client.get(
        f"/students/{district.student_id}/share-links",
        headers=stack.teacher(district),
    )
    link_id = UUID(created["share_link"]["share_link_id"])
    events = await EventStore(stack.pool, "reports", registry=CONTRACT).read_stream(
        district.tenant, stream_of(link_id)
    )
    decoded = [CONTRACT.decode(envelope) for envelope in events]

    assert len(token) >= 22
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "4.NF.1 Explain why fractions are equivalent" in headings(page.text)
    assert any(h.startswith("4.NF.6 ") for h in headings(page.text))
    assert "Developing" in page.text
    assert "level 2 of 4" in page.text
    assert "<script" not in page.text
    assert listed.status_code == 200
    assert [link["views"] for link in listed.json()] == [1]
    assert [link["status"] for link in listed.json()] == ["open"]
    assert token not in listed.text
    assert [type(event) for event in decoded] == [ShareLinkCreated, ReportViewed]
    assert isinstance(decoded[0], ShareLinkCreated)
    assert decoded[0].token_hash == token_hash(token)
    assert decoded[0].section_ids == (SECTION,)
    assert all(token.encode() not in bytes(envelope.payload) for envelope in events)


async def test_a_view_names_what_it_served_and_the_page_links_its_pdf_tokenless(
    stack: Stack,
) -> None:
    """The ReportViewed of a page says its language and format and the
    source log positions of the snapshot served; the page's PDF link holds
    no token yet opens the PDF, itself recorded as a view."""
    district = new_district()
    await seeded(stack, district)
    created = await share(stack, district)
    served = await stack.snapshot_positions(district)

    page = await stack.client.get(created["path"], params={"lang": "es"})
    pdf_href = re.search(r'<a href="([^"]*)">', page.text)
    assert pdf_href is not None
    pdf = await stack.client.get(created["path"] + html.unescape(pdf_href[1]))
    link_id = UUID(created["share_link"]["share_link_id"])
    events = await EventStore(stack.pool, "reports", registry=CONTRACT).read_stream(
        district.tenant, stream_of(link_id)
    )
    page_view, pdf_view = [CONTRACT.decode(envelope) for envelope in events][1:]

    assert created["token"] not in page.text
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF")
    assert isinstance(page_view, ReportViewed)
    assert isinstance(pdf_view, ReportViewed)
    assert (page_view.format, page_view.language) == ("html", "es")
    assert (pdf_view.format, pdf_view.language) == ("pdf", "es")
    assert page_view.positions == served
    assert set(served) == {"objectives", "grading"}


async def test_the_pdf_has_the_same_objectives_as_the_page(stack: Stack) -> None:
    """The PDF of a shared report is a PDF whose outline lists the same
    headings as the page, objectives included, and whose metadata has the
    page's title; the JSON names the same
    objective codes; each of the three reads is logged as a view."""
    district = new_district()
    await seeded(stack, district)
    created = await share(stack, district)

    page = await stack.client.get(created["path"])
    pdf = await stack.client.get(f"{created['path']}/pdf")
    document = await stack.client.get(f"{created['path']}/json")
    listed = await stack.client.get(
        f"/students/{district.student_id}/share-links",
        headers=stack.teacher(district),
    )
    codes = [
        objective["code"]
        for section in document.json()["sections"]
        for objective_set in section["objective_sets"]
        for objective in objective_set["objectives"]
    ]

    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")
    assert Counter(pdf_titles(pdf.content)) == Counter(
        [*headings(page.text), page_title(page.text)]
    )
    assert "4.NF.1 Explain why fractions are equivalent" in pdf_titles(pdf.content)
    assert codes == ["4.NF.1", "4.NF.6"]
    assert listed.json()[0]["views"] == 3


async def test_every_bad_link_gets_the_same_page(stack: Stack) -> None:
    """An unknown token, a revoked link's token, an expired link's token,
    a good token under another tenant and a malformed tenant all answer
    404 with one and the same page, and none of them logs a view."""
    district = new_district()
    await seeded(stack, district)
    revoked = await share(stack, district)
    revoking = await stack.client.post(
        f"/share-links/{revoked['share_link']['share_link_id']}/revoke",
        headers=stack.teacher(district),
    )
    expired_token = new_token()
    month_ago = datetime.now(UTC) - timedelta(days=31)
    store = EventStore(stack.pool, "reports", registry=CONTRACT)
    await ShareLinks(stack.pool, store).create(
        district.tenant,
        CreateShareLink(
            share_link_id=uuid7(),
            student_id=district.student_id,
            section_ids=(SECTION,),
            token_hash=token_hash(expired_token),
            created_by="ms-frizzle",
            at=month_ago,
        ),
    )
    open_link = await share(stack, district)

    paths = [
        f"/shared/{district.tenant}/{new_token()}",
        revoked["path"],
        f"/shared/{district.tenant}/{expired_token}",
        f"/shared/riverside/{open_link['token']}",
        f"/shared/NOT..A..TENANT/{open_link['token']}",
    ]
    answers = [await stack.client.get(path) for path in paths]
    listed = await stack.client.get(
        f"/students/{district.student_id}/share-links",
        headers=stack.teacher(district),
    )

    assert revoking.status_code == 200
    assert revoking.json()["status"] == "revoked"
    assert {answer.status_code for answer in answers} == {404}
    assert len({answer.text for answer in answers}) == 1
    assert "Report not found" in answers[0].text
    assert sorted(link["status"] for link in listed.json()) == [
        "expired",
        "open",
        "revoked",
    ]
    assert [link["views"] for link in listed.json()] == [0, 0, 0]


async def test_a_link_stops_opening_when_it_expires(stack: Stack) -> None:
    """A link made for one day opens its report a minute before it
    expires and not at the moment it does; the refused view is not
    logged."""
    district = new_district()
    await seeded(stack, district)
    store = EventStore(stack.pool, "reports", registry=CONTRACT)
    links = ShareLinks(stack.pool, store)
    token = new_token()
    made = datetime(2026, 9, 14, 15, 0, tzinfo=UTC)
    link = await links.create(
        district.tenant,
        CreateShareLink(
            share_link_id=uuid7(),
            student_id=district.student_id,
            section_ids=(SECTION,),
            term_id=TERM,
            token_hash=token_hash(token),
            valid_for=timedelta(days=1),
            created_by="ms-frizzle",
            at=made,
        ),
    )

    viewed = await links.view(
        district.tenant,
        token_hash(token),
        at=link.expires_at - timedelta(minutes=1),
        served=Served(format="html"),
    )
    with pytest.raises(SharedReportNotFoundError):
        await links.view(
            district.tenant,
            token_hash(token),
            at=link.expires_at,
            served=Served(format="html"),
        )

    assert link.expires_at == made + timedelta(days=1)
    assert viewed.views == 1
    assert (await links.get(district.tenant, link.share_link_id)).views == 1


async def test_the_public_routes_are_rate_limited(stack: Stack) -> None:
    """One client may open 120 shared pages a minute; the 121st answer is
    429 saying when the window resets, while the teacher's authenticated routes go on
    answering."""
    district = new_district()
    path = f"/shared/{district.tenant}/{new_token()}"

    statuses = [(await stack.client.get(path)).status_code for _ in range(121)]
    teacher = await stack.client.get(
        f"/students/{district.student_id}/share-links",
        headers=stack.teacher(district),
    )
    limited = await stack.client.get(path)

    assert statuses[:120] == [404] * 120
    assert statuses[120] == 429
    assert limited.status_code == 429
    assert int(limited.headers["ratelimit-reset"]) <= 60
    assert teacher.status_code == 404


async def test_a_report_speaks_spanish_when_asked(stack: Stack) -> None:
    """After fractions is mastered on the 17th of September, the page says
    so in English by default, in Spanish for ?lang=es and for a browser
    preferring Spanish."""
    district = new_district()
    await seeded(stack, district)
    await stack.append(
        stack.grading,
        district.tenant,
        assessed(
            district, district.fractions, 3, days=10, label="Proficient", mastered=True
        ),
    )
    await stack.settle(
        district,
        "mastery reaching the report",
        lambda r: objectives_of(r)["4.NF.1"]["mastered"],
    )
    created = await share(stack, district)

    english = await stack.client.get(created["path"])
    asked = await stack.client.get(f"{created['path']}?lang=es")
    preferred = await stack.client.get(
        created["path"], headers={"Accept-Language": "es-MX,es;q=0.9,en;q=0.5"}
    )

    assert "Mastered on 17 September 2026" in english.text
    assert 'lang="en"' in english.text
    assert "Dominado el 17 de septiembre de 2026" in asked.text
    assert 'lang="es"' in asked.text
    assert "Dominado el 17 de septiembre de 2026" in preferred.text


async def test_only_the_students_teachers_and_leaders_share_a_report(
    stack: Stack,
) -> None:
    """The teacher of another section gets 404 as for a student who does
    not exist, an auditor 403, the school's leader 201, and a teacher
    naming a section the student is not in 422 with the field named."""
    district = new_district()
    await seeded(stack, district)
    path = f"/students/{district.student_id}/share-links"
    body = {"section_ids": [SECTION]}

    other_teacher = await stack.client.post(
        path, json=body, headers=stack.teacher(district, section="room-14")
    )
    nobody = await stack.client.post(
        f"/students/{uuid7()}/share-links", json=body, headers=stack.teacher(district)
    )
    auditor = await stack.client.post(
        path,
        json=body,
        headers={
            "Authorization": "Bearer "
            + stack.keys.token(district.tenant, ["auditor"], subject="auditor-ann")
        },
    )
    leader = await stack.client.post(
        path,
        json=body,
        headers={
            "Authorization": "Bearer "
            + stack.keys.token(
                district.tenant,
                ["school_leader"],
                subject="principal-skinner",
                schools=["lincoln-elementary"],
            )
        },
    )
    wrong_section = await stack.client.post(
        path,
        json={"section_ids": [SECTION, "room-99"]},
        headers=stack.teacher(district),
    )

    assert other_teacher.status_code == nobody.status_code == 404
    assert other_teacher.json() == nobody.json()
    assert auditor.status_code == 403
    assert leader.status_code == 201
    assert wrong_section.status_code == 422
    assert wrong_section.json()["location"] == "section_ids"


async def test_no_log_line_holds_a_token(stack: Stack) -> None:
    """Creating a link, opening it as a page and a PDF, and trying a
    token that does not exist leave log lines, none holding either token:
    the shared routes stay out of the request log, and the view is logged
    by the link's id."""
    district = new_district()
    await seeded(stack, district)
    bad = new_token()

    with structlog.testing.capture_logs() as entries:
        created = await share(stack, district)
        await stack.client.get(created["path"])
        await stack.client.get(f"{created['path']}/pdf")
        await stack.client.get(f"/shared/{district.tenant}/{bad}")
    logged = repr(entries)
    viewed = [e for e in entries if e["event"] == "report.viewed"]

    assert "http.request" in logged
    assert [e["share_link_id"] for e in viewed] == [
        created["share_link"]["share_link_id"]
    ] * 2
    assert created["token"] not in logged
    assert bad not in logged
