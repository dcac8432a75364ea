"""Per-level bars (channels, H×W, memory, receptive field) and per-part bars (parameters, MACs)."""

from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..formatting import format_count, format_range, format_shape
from ..shapes.records import Trace
from .kit.measure import text_size
from .kit.style import GRID, INK, LEVEL_COLOR, MUTED, OFF, PART_LABEL, card_layout, short_number, wrap

PANEL_PX = 190  # height of one panel and its title


def _bar(fig: go.Figure, row: int, col: int, x: list[str], y: list, text: list[str], colors: list[str],
         hover: list[str], across: bool = False) -> None:
    """Bars of ``y`` over the categories ``x``, labelled outside; ``across``: drawn horizontally (a
    phone), the categories down the side."""
    bars = dict(x=y, y=[c.replace("<br>", " ") for c in x], orientation="h") if across else dict(x=x, y=y)
    fig.add_trace(go.Bar(
        **bars, text=text, textposition="outside", cliponaxis=False, marker=dict(color=colors),
        hovertext=hover, hoverinfo="text", textfont=dict(size=11, color=INK),
    ), row=row, col=col)


def _level_series(t: Trace) -> dict[str, list]:
    """Per level: value lists for each panel (None where the level was not reached)."""
    names = list(t.config.levels)
    lv = [t.levels.get(n) for n in names]
    declared = [t.map.levels[n].channels if n in t.map.levels else 0 for n in names]
    return {
        "names": names,
        "colors": [LEVEL_COLOR[n[0]] if v else OFF for n, v in zip(names, lv)],
        "channels": [v.shape[1] if v else c for v, c in zip(lv, declared)],
        "positions": [v.shape[2] * v.shape[3] if v else None for v in lv],
        "hw": [f"{v.shape[2]}×{v.shape[3]}" if v else "" for v in lv],
        "mib": [v.bytes / 2**20 if v else None for v in lv],
        "rf": [v.receptive_field if v else None for v in lv],
    }


def _level_ticks(fig: go.Figure, t: Trace, rows_cols: list[tuple[int, int]], across: bool = False) -> None:
    """Grey out, in the tick labels, levels that were never reached."""
    names = list(t.config.levels)
    text = [n if n in t.levels else f"<span style='color:{OFF}'>{n}</span>" for n in names]
    for r, c in rows_cols:
        (fig.update_yaxes if across else fig.update_xaxes)(tickvals=names, ticktext=text, row=r, col=c)


def _headroom(fig: go.Figure, row: int, col: int, values: list, log: bool, tickformat: str = "~s",
              across: bool = False) -> None:
    """Leave room beyond the longest bar for its outside label (above it, or right of it ``across``,
    where a label takes a larger share of a phone's narrow plot)."""
    vals = [v for v in values if v]
    if not vals:
        return
    axes = fig.update_xaxes if across else fig.update_yaxes
    if log:
        lo, hi = math.log10(min(vals)), math.log10(max(vals))
        axes(type="log", range=[lo - 0.4, hi + (0.9 if across else 0.35)], dtick=1, tickformat=tickformat,
             row=row, col=col)
    else:
        axes(range=[0, max(vals) * (1.45 if across else 1.18)], row=row, col=col)


def level_bars_figure(t: Trace, compact: bool = False) -> go.Figure:
    """Bars per level (channels, H×W, memory, receptive field) and per part (parameters, MACs);
    ``compact`` (a phone): the bars run across, the levels and parts down the side."""
    s = _level_series(t)
    names, colors = s["names"], s["colors"]
    partial = " (up to the mismatch)" if t.mismatch else ""
    c = t.config
    side = max(c.input_height, c.input_width)
    titles = ("Channels per level", "Spatial size H×W per level (log)", "Activation memory per level, MiB (log)",
              f"Receptive field per level, px (dashed: input, {side} px)", "Parameters per part (log)",
              f"MACs per part{partial} (log)")
    if compact:
        titles = tuple(wrap(x, 30) for x in titles)
    parts = [p for p in t.params.parts if t.params.parts[p] or t.macs.parts[p]]
    # One column: every panel as wide as the page allows, its bars' labels side by side (or, across,
    # one under the other).
    heights = [len(names)] * 4 + [len(parts)] * 2
    fig = make_subplots(rows=6, cols=1, vertical_spacing=0.04 if compact else 0.055, subplot_titles=titles,
                        row_heights=heights if compact else None)
    fig.update_annotations(font=dict(size=13, color=INK))
    hover = [f"<b>{n}</b> · " + (format_shape(t.levels[n].shape) if n in t.levels else "not reached") for n in names]
    _bar(fig, 1, 1, names, s["channels"], [str(c) for c in s["channels"]], colors, hover, compact)
    _bar(fig, 2, 1, names, s["positions"], s["hw"], colors, hover, compact)
    _bar(fig, 3, 1, names, s["mib"], [short_number(m) for m in s["mib"]], colors, hover, compact)
    # Where the field depends on the cell's position, the label shows the range ("435–467").
    rf_text = [format_range(*t.levels[n].receptive_field_range) if n in t.levels else "" for n in names]
    _bar(fig, 4, 1, names, s["rf"], rf_text, colors, hover, compact)
    labels = [PART_LABEL.get(p, p) for p in parts]
    part_colors = [LEVEL_COLOR["P" if p.startswith("fpn") else "C"] for p in parts]
    params = [t.params.parts[p] for p in parts]
    macs = [t.macs.parts[p] for p in parts]
    _bar(fig, 5, 1, labels, params, [format_count(v) for v in params], part_colors,
         [f"<b>{p}</b>: {v:,} parameters" for p, v in zip(parts, params)], compact)
    _bar(fig, 6, 1, labels, [m or None for m in macs], [format_count(v) for v in macs], part_colors,
         [f"<b>{p}</b>: {v:,} MACs (FLOPs = 2 × MACs)" for p, v in zip(parts, macs)], compact)
    input_line = dict(row=4, col=1, line=dict(color=MUTED, dash="dash", width=1), layer="below")
    if compact:
        fig.add_vline(x=side, **input_line)
    else:
        fig.add_hline(y=side, **input_line)
    _level_ticks(fig, t, [(1, 1), (2, 1), (3, 1), (4, 1)], compact)
    for (r, col), values, log in [((1, 1), s["channels"], False), ((2, 1), s["positions"], True),
                                  ((4, 1), s["rf"] + [side], False), ((5, 1), params, True), ((6, 1), macs, True)]:
        _headroom(fig, r, col, values, log, across=compact)
    _headroom(fig, 3, 1, s["mib"], True, tickformat="~g", across=compact)
    categories, values = (fig.update_yaxes, fig.update_xaxes) if compact else (fig.update_xaxes, fig.update_yaxes)
    categories(showgrid=False, linecolor=GRID, tickfont=dict(size=12))
    values(gridcolor=GRID, zeroline=False, tickfont=dict(size=11))
    if compact:
        fig.update_yaxes(autorange="reversed")  # C2 at the top, as read
    subtitle = (f"input {c.input_height}×{c.input_width}: {t.params.total:,} parameters, {format_count(t.macs.total)} MACs; "
                "blue: backbone, orange: FPN"
                + ("" if t.ok else "; grey levels were not reached (the trace stopped at a mismatch)"))
    labels = [str(x) for x in (s["channels"] + s["hw"] + rf_text)] + [format_count(v) for v in params + macs]
    bar_px = max(text_size(x, 11)[0] for x in labels) + 8
    title_px = max(text_size(x, 13)[0] + 12 for x in titles)
    if compact:  # part names down the side; a bar's label beside it, in the headroom left for it
        side_px = max(text_size(x.replace("<br>", " "), 12)[0] for x in names + [PART_LABEL.get(p, p) for p in parts]) + 14
        margin = dict(l=round(side_px), r=12, t=120, b=30)
        panel_px = max(title_px, 3.2 * bar_px)  # the label fits the headroom (~30 % of the axis)
        height = 22 * sum(heights) + 60 * 6 + 180
    else:
        margin = dict(l=50, r=20, t=90, b=50)
        # Each panel holds its title, and each bar its label (all bars of a panel side by side).
        panel_px = max([title_px, len(names) * bar_px, len(parts) * 64])
        height = PANEL_PX * 6 + 160
    width = margin["l"] + margin["r"] + panel_px
    fig.update_layout(card_layout("Levels and parts", height, subtitle, margin=margin, bargap=0.15,
                                  subtitle_chars=32 if compact else None, meta=dict(min_width=round(width))))
    return fig
