"""The whole system as a guardian meets it: `mastery up` loads the demo
district, prints a share link, and the report opens in a real browser and
as a PDF with the same objectives."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pypdf
import pytest

from tests.e2e.test_stack import RunningStack, running_stack

# The demo loads a term of evidence for 150 students before it prints.
DEMO_DEADLINE = 720.0
GUARDIAN_LINK = re.compile(r"A guardian's report: (?P<url>\S+)")
STANDARD = re.compile(r"CCSS\.Math\.Content\.[67]\.RP\.A\.[123]\b")
LEVELS = ("Beginning", "Developing", "Proficient", "Mastered")
CHROMIUM = shutil.which("chromium")
BROWSER_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars")


@pytest.fixture
def demo_stack(tmp_path: Path) -> Iterator[RunningStack]:
    """`mastery up` with its default: embedded engines and the demo."""
    yield from running_stack(tmp_path)


def guardian_url(stack: RunningStack) -> str:
    """Wait for the demo to load and return the link it printed."""
    deadline = time.monotonic() + DEMO_DEADLINE
    while time.monotonic() < deadline:
        found = GUARDIAN_LINK.search(stack.output())
        if found:
            return found["url"]
        assert stack.process.poll() is None, stack.stderr.read_text()[-4000:]
        assert "could not be loaded" not in stack.output(), stack.stderr.read_text()
        time.sleep(1)
    pytest.fail(f"no guardian link printed:\n{stack.output()}")


def browse(url: str, *arguments: str) -> str:
    """Open ``url`` in headless Chromium with ``arguments``; return stdout."""
    assert CHROMIUM is not None
    done = subprocess.run(
        [CHROMIUM, *BROWSER_FLAGS, *arguments, url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_a_guardian_opens_the_demo_report_in_a_browser_and_as_a_pdf(
    demo_stack: RunningStack, tmp_path: Path
) -> None:
    """The printed link opens in Chromium on a phone-sized screen: the
    page names the student's standards with a level in words for each,
    a screenshot is saved, and the PDF of the same report lists the same
    standards."""
    url = guardian_url(demo_stack)

    page = browse(url, "--dump-dom")
    screenshot = tmp_path / "guardian-report.png"
    browse(url, "--window-size=412,915", f"--screenshot={screenshot}")
    pdf = httpx.get(f"{url}/pdf", timeout=120)

    shown = set(STANDARD.findall(page))
    assert len(shown) >= 3, page[:2000]
    assert any(level in page for level in LEVELS)
    assert screenshot.stat().st_size > 10_000
    assert pdf.status_code == 200
    assert pdf.headers["content-type"].startswith("application/pdf")
    text = "".join(
        p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf.content)).pages
    )
    assert set(STANDARD.findall(text)) == shown
