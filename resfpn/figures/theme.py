"""Recolour a finished figure for the page's light or dark theme.

Every figure is drawn for a light page. ``apply_theme(fig, "dark")`` walks the figure's JSON once and
swaps each structural colour for its pair in ``kit.style.DARK`` (card, ink, grid, box fills and
outlines), also inside ``color:#…`` spans of label text and in ``rgba()`` colours; colours without a
pair (OK/BAD, level colours, colour scales) are semantic and stay. Text drawn on a coloured mark
(the "+" of a ⊕ node) keeps its colour too. Whatever a figure leaves to plotly.js's light defaults
(card, font, axis lines and grid) is set to the dark values, so a future figure needs nothing extra.
"""

from __future__ import annotations

import re
from typing import Any, Literal, get_args

import plotly.graph_objects as go

from .kit.style import DARK, DARK_DEFAULTS

Theme = Literal["light", "dark"]
THEMES: tuple[Theme, ...] = get_args(Theme)

_HEX = re.compile(r"#[0-9a-fA-F]{6}\b")
_RGBA = re.compile(r"rgba?\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*(,\s*[0-9.]+\s*)?\)")
_SPAN = re.compile(r"(color\s*:\s*)(#[0-9a-fA-F]{6}\b)")
_PALETTE = {k.lower(): v for k, v in DARK.items()}


def _hex(r: str, g: str, b: str) -> str:
    return f"#{int(r):02x}{int(g):02x}{int(b):02x}"


def _colour(value: str) -> str:
    """A colour value's dark pair, or the value itself when it has none (a semantic colour)."""
    key = value.strip().lower()
    if key in _PALETTE:
        return _PALETTE[key]
    m = _RGBA.fullmatch(key)
    if m and (new := _PALETTE.get(_hex(*m.group(1, 2, 3)))):
        r, g, b = (int(new[i:i + 2], 16) for i in (1, 3, 5))
        return f"rgba({r},{g},{b}{m.group(4) or ',1'})".replace(" ", "")
    return value


def _text(value: str) -> str:
    """Label text with its ``<span style='color:#…'>`` colours swapped."""
    if "color" not in value:
        return value
    return _SPAN.sub(lambda m: m.group(1) + _colour(m.group(2)), value)


def _walk(node: Any, key: str = "") -> Any:
    if isinstance(node, dict):
        return {k: _walk(v, k) for k, v in node.items()}
    if isinstance(node, (list, tuple)) and key.endswith("color"):  # per-point colours
        return [_colour(v) if isinstance(v, str) else v for v in node]
    if isinstance(node, list) and key not in ("colorscale", "z", "x", "y"):
        return [_walk(v, key) for v in node]
    if isinstance(node, str):
        return _colour(node) if key.endswith("color") else _text(node)
    return node


def _on_marks(trace: dict[str, Any]) -> bool:
    """Whether the trace's text is drawn on its own coloured marks (keeps its colour)."""
    pos = trace.get("textposition")
    return (pos == "middle center" and "markers" in str(trace.get("mode", ""))) or pos == "inside"


def _dark_defaults(layout: dict[str, Any]) -> None:
    """Make dark what the figure leaves to its template or to plotly.js's light defaults (in place).

    The figure's own values win over its template's, so the template's colours are overwritten.
    """
    d = DARK_DEFAULTS
    layout.setdefault("paper_bgcolor", d["paper"])
    layout.setdefault("plot_bgcolor", d["paper"])
    layout.setdefault("font", {}).setdefault("color", d["ink"])
    hover = layout.setdefault("hoverlabel", {})
    hover.setdefault("bgcolor", d["paper"])
    hover.setdefault("font", {}).setdefault("color", d["ink"])
    template = layout.get("template")
    if not isinstance(template, dict):  # a template name, or none at all
        template = {}
    tl = template.setdefault("layout", {})
    tl |= dict(paper_bgcolor=d["paper"], plot_bgcolor=d["paper"])
    tl.setdefault("font", {})["color"] = d["ink"]
    for axis in ("xaxis", "yaxis"):
        tl.setdefault(axis, {}).update(gridcolor=d["grid"], linecolor=d["line"], zerolinecolor=d["line"],
                                       tickcolor=d["line"])
    tl.setdefault("annotationdefaults", {})["arrowcolor"] = d["line"]
    tl.setdefault("coloraxis", {}).setdefault("colorbar", {}).update(tickcolor=d["line"], outlinecolor=d["line"])
    layout["template"] = template


def apply_theme(fig: go.Figure, theme: Theme) -> go.Figure:
    """``fig`` recoloured for a page in ``theme``.

    ``"light"`` returns ``fig`` itself, unchanged (figures are drawn for a light page). ``"dark"``
    returns a new figure and leaves ``fig`` as it was.
    """
    if theme not in THEMES:
        raise ValueError(f"theme={theme!r}: unknown theme; allowed: {', '.join(map(repr, THEMES))}")
    if theme == "light":
        return fig
    spec = fig.to_plotly_json()
    data = []
    for trace in spec.get("data", []):
        kept = trace.get("textfont") if _on_marks(trace) else None
        new = _walk(trace)
        if kept is not None:
            new["textfont"] = kept
        data.append(new)
    layout = _walk(spec.get("layout", {}))
    _dark_defaults(layout)
    return go.Figure(data=data, layout=layout)
