"""Colours a report can show text on and still meet WCAG AA contrast.

A scale's colours are chosen by the district, so a report never trusts
them to carry text: it writes the level on the colour in whichever of
near-black or white contrasts more, and never lets the colour alone say
which level it is.
"""

from __future__ import annotations

import functools
import re

DARK = "#1a1a1a"
BLACK = "#000000"
LIGHT = "#ffffff"
# Shown for a level whose scale has not reached reports yet.
NEUTRAL = "#6b6b6b"
# WCAG 2.x level AA for normal text.
AA_CONTRAST = 4.5
HEX_COLOUR = re.compile(r"#?([0-9a-fA-F]{6}|[0-9a-fA-F]{3})")


def channels(colour: str) -> tuple[int, int, int] | None:
    """Return the red, green and blue of a ``#rrggbb`` or ``#rgb`` colour,
    or ``None`` when ``colour`` is written some other way."""
    match = HEX_COLOUR.fullmatch(colour.strip())
    if match is None:
        return None
    digits = match[1]
    if len(digits) == 3:
        digits = "".join(d * 2 for d in digits)

    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


def luminance(colour: str) -> float:
    """Return a colour's relative luminance as WCAG defines it; a colour
    that cannot be read counts as the neutral grey."""
    found = channels(colour) or channels(NEUTRAL)
    assert found is not None

    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    red, green, blue = (linear(c) for c in found)

    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast(first: str, second: str) -> float:
    """Return the WCAG contrast ratio of two colours, from 1 to 21."""
    lighter, darker = sorted((luminance(first), luminance(second)), reverse=True)

    return (lighter + 0.05) / (darker + 0.05)


# A district has a handful of scale colours and every level of every
# snapshot asks for one of them, so each is worked out once.
@functools.lru_cache(maxsize=1024)
def readable_text_on(background: str) -> str:
    """Return near-black or white, whichever reads better on
    ``background``, or pure black where neither reaches AA (a saturated
    red): one of black and white always does."""
    best = max((DARK, LIGHT), key=lambda text: contrast(text, background))
    if contrast(best, background) >= AA_CONTRAST:
        return best

    return BLACK


def safe_colour(colour: str) -> str:
    """Return ``colour`` as ``#rrggbb`` when it is one, else the neutral
    grey, so a stored value can never break out of an attribute."""
    found = channels(colour)
    if found is None:
        return NEUTRAL

    return "#{:02x}{:02x}{:02x}".format(*found)
