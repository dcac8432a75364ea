"""A drawing canvas for diagrams: boxes, labels, pills, arrows and ⊕ nodes, made into one figure at the end."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import plotly.graph_objects as go

from ._measure import text_size
from ._style import INK, LINE, MUTED, ON_MARK, PAPER, PILL_EDGE, PILL_FILL, STYLE

@dataclass
class Canvas:
    """Traces, annotations and shapes of a diagram, collected as dicts and made into one figure at the end.

    (Adding annotations one by one to a ``go.Figure`` re-validates them all each time.)
    """

    traces: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    shapes: list[dict[str, Any]] = field(default_factory=list)
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)  # (x, y, w, h) in data units
    marks: list[tuple[float, float, float]] = field(default_factory=list)  # (x, y, diameter px) of ⊕ nodes

    def figure(self, layout: dict[str, Any]) -> go.Figure:
        """The diagram; ``layout.meta.min_width`` is the narrowest width (px) at which no label leaves
        the figure or touches another label, box or node, worked out from the measured labels."""
        meta = dict(layout.get("meta") or {}) | {"min_width": round(self.min_width(layout))}
        return go.Figure(data=self.traces, layout=layout | dict(annotations=self.notes, shapes=self.shapes, meta=meta))

    def min_width(self, layout: dict[str, Any]) -> float:
        x0, x1 = layout["xaxis"]["range"]
        y0, y1 = layout["yaxis"]["range"]
        margin = layout.get("margin", {})
        plot_h = layout["height"] - margin.get("t", 100) - margin.get("b", 80)
        per_y = plot_h / (y1 - y0)  # px per data unit, fixed by the height
        items = [_extent(n, per_y, y0) for n in self.notes if n.get("text") and n.get("xref", "x") == "x"]
        items += [(x, (y - y0) * per_y - d / 2, (y - y0) * per_y + d / 2, d, 0.5, False)
                  for x, y, d in self.marks]
        boxes = [(x - w / 2, x + w / 2, (y - h / 2 - y0) * per_y, (y + h / 2 - y0) * per_y) for x, y, w, h in self.boxes]
        need = 0.0  # px per data unit along x
        gap = 4.0
        for x, bottom, top, w, left_share, inside in items:
            if left_share > 0 and x > x0:
                need = max(need, w * left_share / (x - x0))
            if left_share < 1 and x < x1:
                need = max(need, w * (1 - left_share) / (x1 - x))
        for i, a in enumerate(items):
            for b in items[i + 1:]:
                if min(a[2], b[2]) - max(a[1], b[1]) <= 1 or abs(a[0] - b[0]) < 1e-9:
                    continue
                left, right = (a, b) if a[0] < b[0] else (b, a)
                need = max(need, (left[3] * (1 - left[4]) + right[3] * right[4] + gap) / (right[0] - left[0]))
            for bx0, bx1, bb, bt in boxes:
                if min(a[2], bt) - max(a[1], bb) <= 1 or bx0 - 1e-9 <= a[0] <= bx1 + 1e-9:
                    continue  # not level with the box, or the box's own label (checked against its width below)
                if a[0] < bx0:
                    need = max(need, (a[3] * (1 - a[4]) + gap) / (bx0 - a[0]))
                else:
                    need = max(need, (a[3] * a[4] + gap) / (a[0] - bx1))
        for x, y, w, h in self.boxes:  # a box holds its own label
            for n in self.notes:
                if n.get("x") == x and n.get("y") == y and n.get("text"):
                    need = max(need, (text_size(n["text"], n.get("font", {}).get("size", 13))[0] + 8) / w)
        sides = margin.get("l", 80) + margin.get("r", 80)
        title = (layout.get("title") or {}).get("text", "")
        return min(MAX_WIDTH, max(need * (x1 - x0), text_size(title, 17)[0] + 16) + sides)


MAX_WIDTH = 1800  # px: a diagram never asks for more (the page scrolls it sideways below its width)


def _extent(note: dict[str, Any], per_y: float, y0: float) -> tuple[float, float, float, float, float, bool]:
    """(x, bottom px, top px, width px, share of the width left of x, False) of an annotation."""
    w, h = text_size(note["text"], note.get("font", {}).get("size", 13))
    pad = 2 * (note.get("borderpad", 1) + note.get("borderwidth", 1))
    w, h = w + pad, h + pad
    left_share = {"left": 0.0, "right": 1.0}.get(note.get("xanchor", "center"), 0.5)
    below = {"bottom": 0.0, "top": 1.0}.get(note.get("yanchor", "middle"), 0.5)
    y = (note["y"] - y0) * per_y
    return note["x"], y - h * below, y + h * (1 - below), w, left_share, False


def add_box(cv: Canvas, x: float, y: float, w: float, h: float, style: str, hover: str, dash: str = "solid") -> None:
    """A rectangle drawn as a filled polygon, so hovering anywhere inside shows ``hover``."""
    fill, outline = STYLE[style]
    cv.boxes.append((x, y, w, h))
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
    cv.marks += [(x, y, size + 4) for x, y, size in zip(xs, ys, sizes)]
    cv.traces.append(dict(type="scatter",
        x=xs, y=ys, mode="markers+text", text=["+" if s >= 16 else "" for s in sizes], textposition="middle center",
        textfont=dict(color=ON_MARK, size=17, family="Arial Black, Arial, sans-serif"),
        marker=dict(color=list(colors), size=list(sizes), opacity=1, line=dict(color=PAPER, width=2)),
        hovertext=list(hovers), hoverinfo="text", name="",
    ))
