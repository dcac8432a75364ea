"""Figure style: colours, fonts, the white card every figure sits on, and small text helpers.

All figures are drawn on an explicit white card with dark ink and use a near-empty template to
keep the JSON small; ``theme.apply_theme`` recolours a finished figure for a dark page with the
``DARK`` pairs below, the one home of the light -> dark palette.
"""

from __future__ import annotations

from typing import Any

from ...model.add import AddRecord
from ...formatting import format_shape
from ...shapes.records import Trace

INK, MUTED, LINE, GRID, PAPER = "#111827", "#4b5563", "#6b7280", "#e5e7eb", "#ffffff"
OK, BAD, OFF = "#15803d", "#dc2626", "#9ca3af"
FIELD_THEORY, FIELD_ERF_BOX, FIELD_CELL, FIELD_OUTSIDE = "#1d4ed8", "#c026d3", "#0891b2", "#d1d5db"  # receptive fields
DIFF = "#c026d3"  # what differs from the other design of a comparison (≠ marks)
OFF_FILL = "#f3f4f6"
PILL_FILL, PILL_EDGE = "#f9fafb", "#d1d5db"  # small labels that sit on arrows
HOVER_EDGE = "#374151"
BAD_FILL = "#fef2f2"  # behind the mismatch note
ON_MARK = "#ffffff"  # text drawn on a coloured mark (the "+" of a ⊕ node); kept in every theme
STYLE = {  # box kind -> (fill, outline)
    "input": ("#f1f5f9", "#475569"),
    "stem": ("#e0e7ff", "#4338ca"),
    "C": ("#dbeafe", "#1d4ed8"),
    "P": ("#ffedd5", "#c2410c"),
    "F": ("#dbeafe", "#1d4ed8"),
    "S": ("#ede9fe", "#6d28d9"),
    "off": (OFF_FILL, OFF),
}
F_COLOR, S_COLOR, LATERAL = STYLE["F"][1], STYLE["S"][1], STYLE["input"][1]
FONT = dict(family="Inter, 'Segoe UI', Helvetica, Arial, sans-serif", size=13, color=INK)
LEVEL_COLOR = {"C": "#2563eb", "P": "#ea580c"}
# Light colour -> its dark-theme equivalent. Structural colours only: card, ink, grid, box fills and
# outlines (same hue, lighter outline on a darker fill). Semantic colours are absent on purpose and
# stay as they are: OK/BAD, LEVEL_COLOR, ON_MARK, heatmap colour scales. OFF ("not reached") becomes a
# darker grey, so unreached parts still recede on a dark card.
DARK: dict[str, str] = {
    PAPER: "#18181b",
    INK: "#e4e4e7",
    MUTED: "#a1a1aa",
    LINE: "#a1a1aa",
    GRID: "#3f3f46",
    OFF: "#63636b",
    OFF_FILL: "#27272a",
    PILL_FILL: "#27272a",
    PILL_EDGE: "#52525b",
    HOVER_EDGE: "#a1a1aa",
    BAD_FILL: "#2c1215",
    "#f1f5f9": "#1e293b", "#475569": "#94a3b8",  # input
    "#e0e7ff": "#1e1b4b", "#4338ca": "#a5b4fc",  # stem
    "#dbeafe": "#172554", "#1d4ed8": "#60a5fa",  # C, F
    "#ffedd5": "#431407", "#c2410c": "#fb923c",  # P
    "#ede9fe": "#2e1065", "#6d28d9": "#a78bfa",  # S
}
# Defaults a figure leaves to plotly.js (#444 lines, #eee grid, white card) and their dark values.
DARK_DEFAULTS = dict(paper=DARK[PAPER], ink=DARK[INK], grid=DARK[GRID], line=DARK[MUTED])
PART_LABEL = {"fpn.lateral": "FPN<br>lateral", "fpn.output": "FPN<br>output", "fpn.extra": "FPN<br>P6/P7"}


SUBTITLE_CHARS = 96


def card_layout(title: str, height: int, subtitle: str = "", subtitle_chars: int | None = None,
                **extra: Any) -> dict[str, Any]:
    """Layout shared by every figure: explicit height, white card, minimal template. The subtitle is
    wrapped at ``subtitle_chars`` (default ``SUBTITLE_CHARS``; fewer for a phone)."""
    if subtitle:  # wrapped, so the figure's measured width does not follow one long line
        lines = [subtitle] if "<" in subtitle else wrap(subtitle, subtitle_chars or SUBTITLE_CHARS).split("<br>")
        title += "".join(f"<br><span style='font-size:13px;color:{MUTED}'>{line}</span>" for line in lines)
    meta = extra.get("meta")
    if isinstance(meta, dict) and "min_width" in meta:  # a figure's measured width holds its title too
        from .measure import text_size

        margin = extra.get("margin", {})
        sides = margin.get("l", 80) + margin.get("r", 80) + 16
        extra["meta"] = meta | {"min_width": round(max(meta["min_width"], text_size(title, 17)[0] + sides))}
    return dict(
        title=dict(text=title, x=0.01, xanchor="left", y=1, yanchor="top", pad=dict(t=14),
                   font=dict(size=17, color=INK)),
        height=height,
        template="none",
        paper_bgcolor=PAPER,
        plot_bgcolor=PAPER,
        font=FONT,
        hoverlabel=dict(bgcolor=PAPER, bordercolor=HOVER_EDGE, font=dict(color=INK, size=13)),
        showlegend=False,
        **extra,
    )


def short_number(x: float | None) -> str:
    """A small positive number in at most 3 characters of precision: 3.06, 0.19, 0.0039."""
    return "" if x is None else (f"{x:.2f}" if x >= 0.1 else f"{x:.2g}")


def hidden_axes() -> dict[str, Any]:
    return dict(visible=False, showgrid=False, zeroline=False, fixedrange=True)


def wrap(text: str, width: int) -> str:
    """Break ``text`` into lines of at most ``width`` characters, joined by ``<br>``."""
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "<br>".join(lines + [line])


def add_status(add: AddRecord | None, where: str) -> tuple[str, str]:
    """(colour, hover line) of the addition ``where``: green if its operands agree, red if not, grey if not run."""
    if add is None:
        return OFF, f"<b>{where}</b>: not reached"
    (a, b), (sa, sb) = add.operands, add.shapes
    mark = "shapes agree ✓" if add.ok else "<b>MISMATCH ✗</b>"
    return (OK if add.ok else BAD), f"<b>{add.where}</b>: {a} {format_shape(sa)} + {b} {format_shape(sb)} {mark}"


def failure(t: Trace) -> str:
    """Short form of the mismatch, e.g. 'layer3.0: C 64 vs 128'."""
    m = t.mismatch
    where = m.where.removesuffix(" residual add").removeprefix("FPN merge into ")
    a, b = (s[m.dim] if 0 <= m.dim < len(s) else "-" for s in m.shapes)
    return f"{where}: {m.dim_name} {a} vs {b}"


def mismatch_note(t: Trace) -> str:
    return wrap("Shape mismatch — " + t.mismatch.headline, 58) if t.mismatch else ""
