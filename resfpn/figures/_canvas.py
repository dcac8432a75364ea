"""A drawing canvas for diagrams: boxes, labels, pills, arrows and ⊕ nodes, made into one figure at the end."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import plotly.graph_objects as go

from ._style import INK, LINE, MUTED, ON_MARK, PAPER, PILL_EDGE, PILL_FILL, STYLE

@dataclass
class Canvas:
    """Traces, annotations and shapes of a diagram, collected as dicts and made into one figure at the end.

    (Adding annotations one by one to a ``go.Figure`` re-validates them all each time.)
    """

    traces: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    shapes: list[dict[str, Any]] = field(default_factory=list)

    def figure(self, layout: dict[str, Any]) -> go.Figure:
        return go.Figure(data=self.traces, layout=layout | dict(annotations=self.notes, shapes=self.shapes))


def add_box(cv: Canvas, x: float, y: float, w: float, h: float, style: str, hover: str, dash: str = "solid") -> None:
    """A rectangle drawn as a filled polygon, so hovering anywhere inside shows ``hover``."""
    fill, outline = STYLE[style]
    cv.traces.append(dict(type="scatter",
        x=[x - w / 2, x + w / 2, x + w / 2, x - w / 2, x - w / 2],
        y=[y - h / 2, y - h / 2, y + h / 2, y + h / 2, y - h / 2],
        mode="lines", fill="toself", fillcolor=fill, line=dict(color=outline, width=2, dash=dash),
        hoveron="fills", hoverinfo="text", text=hover, name="",
    ))


def add_label(cv: Canvas, x: float, y: float, text: str, color: str = INK, size: int = 13, **kw: Any) -> None:
    cv.notes.append(dict(x=x, y=y, text=text, showarrow=False, font=dict(size=size, color=color), **kw))


def add_pill(cv: Canvas, x: float, y: float, text: str, color: str = MUTED, border: str = PILL_EDGE,
             border_width: float = 1, **kw: Any) -> None:
    """A small label with its own background, for text that sits on or next to an arrow."""
    cv.notes.append(dict(
        x=x, y=y, text=text, showarrow=False, font=dict(size=11, color=color),
        bgcolor=PILL_FILL, bordercolor=border, borderwidth=border_width, borderpad=2, **kw,
    ))


def add_arrow(cv: Canvas, tail: tuple[float, float], head: tuple[float, float], color: str = LINE) -> None:
    cv.notes.append(dict(
        x=head[0], y=head[1], ax=tail[0], ay=tail[1], xref="x", yref="y", axref="x", ayref="y",
        text="", showarrow=True, arrowhead=2, arrowsize=1.1, arrowwidth=1.8, arrowcolor=color,
    ))


def add_nodes(cv: Canvas, nodes: list[tuple[float, float, str, int, str]]) -> None:
    """⊕ nodes as one marker trace: (x, y, colour, size, hover) each; nodes under 16 px get no "+"."""
    if not nodes:
        return
    xs, ys, colors, sizes, hovers = zip(*nodes)
    cv.traces.append(dict(type="scatter",
        x=xs, y=ys, mode="markers+text", text=["+" if s >= 16 else "" for s in sizes], textposition="middle center",
        textfont=dict(color=ON_MARK, size=17, family="Arial Black, Arial, sans-serif"),
        marker=dict(color=list(colors), size=list(sizes), opacity=1, line=dict(color=PAPER, width=2)),
        hovertext=list(hovers), hoverinfo="text", name="",
    ))
