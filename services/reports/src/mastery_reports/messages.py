"""The words a report uses, in English and Spanish, and how one is chosen.

Every string a guardian reads comes from ``CATALOGUE``; templates look
them up by key, so a new language is a new entry here and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime

Language = str
DEFAULT_LANGUAGE = "en"

MONTHS: Mapping[Language, tuple[str, ...]] = {
    "en": (
        "January", "February", "March", "April", "May", "June", "July",
        "August", "September", "October", "November", "December",
    ),
    "es": (
        "enero", "febrero", "marzo", "abril", "mayo", "junio", "julio",
        "agosto", "septiembre", "octubre", "noviembre", "diciembre",
    ),
}  # fmt: skip

CATALOGUE: Mapping[Language, Mapping[str, str]] = {
    "en": {
        "title": "Progress report",
        "student": "Student",
        "section": "Class",
        "course": "Course",
        "term": "Term",
        "terms": "Terms",
        "objective": "Objective",
        "level": "Current level",
        "level_of": "level {rank} of {ranks}",
        "not_assessed": "Not assessed yet",
        "mastered_on": "Mastered on {date}",
        "not_mastered": "Not mastered yet",
        "evidence": "Evidence",
        "no_evidence": "No evidence recorded yet.",
        "comment": "Teacher's comment",
        "totals": "{mastered} of {objectives} objectives mastered, {assessed} assessed",
        "traditional": "Grade",
        "traditional_grades": "{count} graded pieces of work",
        "chart": "Progress on {objective}: {count} levels recorded, now {level}",
        "chart_legend": "Filled circle: mastered. Open circle: not yet.",
        "mark": "Mark",
        "on_date": "{date}",
        "nothing_shared": "This link covers no classes with objectives.",
        "not_found_title": "Report not found",
        "not_found": "This link does not lead to a report. It may have been "
        "typed wrongly, have expired or have been withdrawn. Ask the school "
        "for a new one.",
        "download_pdf": "Download as PDF",
        "language": "Language",
        "mastered": "Mastered",
    },
    "es": {
        "title": "Informe de progreso",
        "student": "Estudiante",
        "section": "Clase",
        "course": "Curso",
        "term": "Periodo",
        "terms": "Periodos",
        "objective": "Objetivo",
        "level": "Nivel actual",
        "level_of": "nivel {rank} de {ranks}",
        "not_assessed": "Aún sin evaluar",
        "mastered_on": "Dominado el {date}",
        "not_mastered": "Aún no dominado",
        "evidence": "Evidencias",
        "no_evidence": "Aún no hay evidencias registradas.",
        "comment": "Comentario del docente",
        "totals": "{mastered} de {objectives} objetivos dominados, "
        "{assessed} evaluados",
        "traditional": "Calificación",
        "traditional_grades": "{count} trabajos calificados",
        "chart": "Progreso en {objective}: {count} niveles registrados, ahora {level}",
        "chart_legend": "Círculo lleno: dominado. Círculo vacío: aún no.",
        "mark": "Marca",
        "on_date": "{date}",
        "nothing_shared": "Este enlace no incluye clases con objetivos.",
        "not_found_title": "Informe no encontrado",
        "not_found": "Este enlace no lleva a ningún informe. Puede estar mal "
        "escrito, haber caducado o haber sido retirado. Pida uno nuevo a la "
        "escuela.",
        "download_pdf": "Descargar en PDF",
        "language": "Idioma",
        "mastered": "Dominado",
    },
}

LANGUAGES = tuple(CATALOGUE)


def choose_language(asked: str | None, accept_language: str | None) -> Language:
    """Return the language a reader asked for with ``?lang=``, else the
    first known one of their ``Accept-Language`` by weight, else English."""
    if asked and asked.lower() in CATALOGUE:
        return asked.lower()
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept_language or "").split(",")):
        tag, _, parameters = part.strip().partition(";")
        weight = 1.0
        name, _, value = parameters.strip().partition("=")
        if name.strip() == "q":
            try:
                weight = float(value)
            except ValueError:
                weight = 0.0
        primary = tag.strip().split("-")[0].lower()
        if primary in CATALOGUE and weight > 0:
            ranked.append((-weight, index, primary))

    return min(ranked)[2] if ranked else DEFAULT_LANGUAGE


class Messages:
    """The catalogue of one language, with dates written in its words."""

    def __init__(self, language: Language) -> None:
        self.language = language if language in CATALOGUE else DEFAULT_LANGUAGE
        self._strings = CATALOGUE[self.language]

    def __call__(self, key: str, **values: object) -> str:
        """Return the message ``key`` with ``values`` filled in."""
        return self._strings[key].format(**values)

    def date(self, moment: datetime | date) -> str:
        """Write a date as a guardian says it: "12 March 2026", or
        "12 de marzo de 2026" in Spanish."""
        month = MONTHS[self.language][moment.month - 1]
        if self.language == "es":
            return f"{moment.day} de {month} de {moment.year}"

        return f"{moment.day} {month} {moment.year}"
