"""Text sizes in pixels, measured from the characters, so figures lay themselves out from their content.

Widths are per character, in em, for the sans-serif faces the figures ask for (Inter, Segoe UI,
Helvetica, Arial and their metric twins such as Liberation Sans), rounded up so an estimate is never
narrower than the text a browser draws; bold adds 7 %. Plotly's HTML subset is understood: tags are
dropped, ``<br>`` starts a line, and a ``font-size`` inside a ``<span style=...>`` changes the size.
"""

from __future__ import annotations

import html
import re

LINE_HEIGHT = 1.3  # Plotly's line spacing, in em
_NARROW = set("iljI.,:;'|!()[]{} ") | {"·", "…"}
_SEMI = set("frt1-/\"")
_WIDE = set("mwMW@%⊕≠✗✓—→×")
_UPPER = set("ABCDEFGHJKLNOPQRSTUVXYZ")
_TAG = re.compile(r"<(/?)(\w+)([^>]*)>")
_SIZE = re.compile(r"font-size:\s*([0-9.]+)px")


def _char_em(ch: str) -> float:
    if ch in _NARROW:
        return 0.30
    if ch in _SEMI:
        return 0.40
    if ch in _WIDE:
        return 0.90
    if ch in _UPPER or ch.isdigit():
        return 0.72 if ch in _UPPER else 0.58
    return 0.58


def _runs(text: str, size: float):
    """(line index, characters, size px, bold) runs of Plotly's HTML subset."""
    line, sizes, bold = 0, [size], 0
    pos = 0
    for m in _TAG.finditer(text):
        yield line, html.unescape(text[pos:m.start()]), sizes[-1], bold > 0
        pos = m.end()
        closing, tag, attrs = m[1] == "/", m[2].lower(), m[3]
        if tag == "br":
            line += 1
        elif tag == "b":
            bold += -1 if closing else 1
        elif tag == "span":
            if closing:
                sizes.pop() if len(sizes) > 1 else None
            else:
                found = _SIZE.search(attrs)
                sizes.append(float(found[1]) if found else sizes[-1])
    yield line, html.unescape(text[pos:]), sizes[-1], bold > 0


def text_size(text: str, size: float = 13) -> tuple[float, float]:
    """(width, height) in px of ``text`` (Plotly HTML) drawn at ``size`` px."""
    widths: dict[int, float] = {}
    heights: dict[int, float] = {}
    for line, chars, px, bold in _runs(text, size):
        em = sum(_char_em(c) for c in chars) * (1.07 if bold else 1.0)
        widths[line] = widths.get(line, 0.0) + em * px
        heights[line] = max(heights.get(line, 0.0), px * LINE_HEIGHT)
    return max(widths.values(), default=0.0), sum(heights.values())
