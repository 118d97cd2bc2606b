"""How a report presents itself: contrast of text on level colours, the
chart's geometry, the language chosen, and dates in plain words."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from mastery_reports.charts import HEIGHT, PAD, WIDTH, progress_chart
from mastery_reports.colours import AA_CONTRAST, contrast, readable_text_on, safe_colour
from mastery_reports.messages import CATALOGUE, Messages, choose_language
from mastery_reports.snapshots import Point

MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_text_on_any_level_colour_meets_aa() -> None:
    """Near-black or white, whichever is chosen, reads at 4.5:1 or more on
    a dark navy, a mid grey-blue, a bright yellow and pure red."""
    for background in ("#1a237e", "#5b7083", "#f2c12e", "#ff0000", "#777"):
        text = readable_text_on(background)

        assert contrast(text, background) >= AA_CONTRAST, background


def test_contrast_of_black_on_white_is_twenty_one() -> None:
    """The extremes of the WCAG ratio."""
    assert round(contrast("#000000", "#ffffff"), 1) == 21.0
    assert contrast("#abcdef", "#abcdef") == 1.0


def test_a_colour_that_is_not_hex_becomes_neutral_grey() -> None:
    """A stored colour cannot break out of an SVG attribute."""
    assert safe_colour('red" onload="x') == "#6b6b6b"
    assert safe_colour("#ABC") == "#aabbcc"


def test_the_chart_spans_its_box_from_first_to_last_point() -> None:
    """Levels 1, 3 and 4 on a 1-4 scale over eight days: the first marker
    at the left bottom, the last at the right top, filled where mastered."""
    points = [
        Point(at=MONDAY, level=1, mastered=False),
        Point(at=MONDAY + timedelta(days=4), level=3, mastered=True),
        Point(at=MONDAY + timedelta(days=8), level=4, mastered=True),
    ]

    chart = progress_chart(points, lowest=1, highest=4)

    assert chart is not None
    first, middle, last = chart.markers
    assert (first.x, first.y) == (PAD, HEIGHT - PAD)
    assert (last.x, last.y) == (WIDTH - PAD, PAD)
    assert middle.x == (WIDTH / 2)
    assert [m.mastered for m in chart.markers] == [False, True, True]
    assert chart.path.startswith(f"M{first.x},{first.y}")


def test_no_chart_without_points_or_range() -> None:
    """Nothing to draw for no points, or a scale of one value."""
    point = Point(at=MONDAY, level=2, mastered=False)

    assert progress_chart([], lowest=1, highest=4) is None
    assert progress_chart([point], lowest=2, highest=2) is None


def test_the_language_comes_from_the_query_then_the_browser() -> None:
    """?lang wins; then the highest-weighted known language; else
    English."""
    assert choose_language("es", "en-GB") == "es"
    assert choose_language(None, "fr-FR, es;q=0.8, en;q=0.5") == "es"
    assert choose_language(None, "en;q=0.4, es-MX;q=0.9") == "es"
    assert choose_language("klingon", "de") == "en"
    assert choose_language(None, None) == "en"


def test_dates_are_written_in_words() -> None:
    """The 12th of March in English and Spanish."""
    day = date(2026, 3, 12)

    assert Messages("en")("mastered_on", date=Messages("en").date(day)) == (
        "Mastered on 12 March 2026"
    )
    assert Messages("es")("mastered_on", date=Messages("es").date(day)) == (
        "Dominado el 12 de marzo de 2026"
    )


def test_both_languages_have_every_message() -> None:
    """No key is missing from the Spanish catalogue, nor extra in it."""
    assert set(CATALOGUE["es"]) == set(CATALOGUE["en"])
