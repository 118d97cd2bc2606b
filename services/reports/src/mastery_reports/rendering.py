"""Reports as pages, PDFs and documents, rendered on the server.

One Jinja environment serves both Litestar's template responses and the
PDF, so a report's page and its PDF come from the same template and show
the same objectives. Nothing a report shows runs script: charts and level
badges are inline SVG.
"""

from __future__ import annotations

import asyncio
from importlib import resources
from typing import Any

import jinja2
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig

from mastery_reports.charts import Chart, progress_chart
from mastery_reports.colours import safe_colour
from mastery_reports.messages import Messages
from mastery_reports.snapshots import StudentSnapshot

REPORT_TEMPLATE = "report.html"
NOT_FOUND_TEMPLATE = "not_found.html"
LANGUAGE_NAMES = (("en", "English"), ("es", "Español"))


def environment() -> jinja2.Environment:
    """Return the Jinja environment of the report templates, escaping
    every value and refusing a name the context lacks."""
    found = jinja2.Environment(
        loader=jinja2.PackageLoader("mastery_reports", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    found.filters["safe_colour"] = safe_colour

    return found


ENVIRONMENT = environment()
STYLESHEET = (
    resources.files("mastery_reports").joinpath("templates/report.css").read_text()
)


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    """Return Litestar's template configuration on the shared environment."""
    return TemplateConfig(
        instance=JinjaTemplateEngine.from_environment(ENVIRONMENT),
    )


def charts_of(snapshot: StudentSnapshot) -> dict[str, Chart]:
    """Return the progress chart of each objective that has a timeline,
    by objective id."""
    found = {}
    for section in snapshot.sections:
        for objective_set in section.objective_sets:
            for objective in objective_set.objectives:
                if objective.lowest is None or objective.highest is None:
                    continue
                chart = progress_chart(
                    objective.timeline,
                    lowest=objective.lowest,
                    highest=objective.highest,
                )
                if chart is not None:
                    found[str(objective.objective_id)] = chart

    return found


def report_context(
    snapshot: StudentSnapshot,
    *,
    language: str,
    pdf_href: str = "",
    for_pdf: bool = False,
    student_name: str | None = None,
) -> dict[str, Any]:
    """Return what the report template is rendered with."""
    return {
        "report": snapshot,
        "t": Messages(language),
        "lang": language,
        "languages": LANGUAGE_NAMES,
        "charts": charts_of(snapshot),
        "pdf_href": pdf_href,
        "for_pdf": for_pdf,
        "student_name": student_name,
    }


def shared_pdf_href(language: str) -> str:
    """Return a shared page's link to its own PDF: relative and without
    the token, so the page holds nothing an auditor's replay could not
    write again."""
    return f"?lang={language}&download=pdf"


def not_found_context(language: str) -> dict[str, Any]:
    """Return what the not-found page is rendered with."""
    return {"t": Messages(language), "lang": language, "for_pdf": False}


def render(template: str, context: dict[str, Any]) -> str:
    """Render one template to text."""
    return ENVIRONMENT.get_template(template).render(context)


def pdf_of(html: str) -> bytes:
    """Typeset a rendered report as PDF with the report's stylesheet; slow
    and blocking, so call it through ``render_pdf``."""
    # Imported here: it loads pango, which nothing but a PDF needs.
    import weasyprint

    document = weasyprint.HTML(string=html)
    pdf: bytes = document.write_pdf(stylesheets=[weasyprint.CSS(string=STYLESHEET)])

    return pdf


async def render_pdf(
    snapshot: StudentSnapshot, *, language: str, student_name: str | None = None
) -> bytes:
    """Return the report as PDF, typeset off the event loop."""
    context = report_context(
        snapshot, language=language, for_pdf=True, student_name=student_name
    )
    html = render(REPORT_TEMPLATE, context)

    return await asyncio.to_thread(pdf_of, html)
