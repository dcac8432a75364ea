"""Residual block view: F(x) and S(x) side by side for the first block of each stage."""

from __future__ import annotations

from dataclasses import dataclass

import plotly.graph_objects as go

from ..model.config import SKIP_OPTIONS
from ..formatting import format_count, format_shape
from ..shapes.records import ModuleRecord, Trace
from .kit.canvas import Canvas, add_arrow, add_box, add_label, add_nodes, add_pill
from .kit.style import (
    BAD, F_COLOR, GRID, INK, LINE, MUTED, OFF, OFF_FILL, S_COLOR, add_status, card_layout, failure, hidden_axes, wrap,
)

SLOT, STEP_W = 25.0, 10.4  # width of one stage's panel (of 0..100) and of a step's box
Y_IN, Y_ADD, Y_OUT, STEP_H = 6.0, 76.0, 90.0, 8.5
ROW_H = 116.0  # data units per row of panels (a panel spans -5.5..105 of its row)


@dataclass(frozen=True)
class _Panel:
    """Where one stage's panel sits: its left edge and width (of 0..100) and its row's y offset.
    Four in a row (a desktop), or two by two (a phone), the same drawing scaled."""

    x0: float
    slot: float = SLOT
    y0: float = 0.0

    def x(self, share: float) -> float:
        """The x at ``share`` of the panel's width."""
        return self.x0 + share * self.slot

    @property
    def scale(self) -> float:
        return self.slot / SLOT


def _kernel_stride(m: ModuleRecord) -> tuple[int, int]:
    """(kernel, stride) of a recorded conv or pool, as the trace recorded them."""
    return m.kernel or 1, m.stride or 1


def _residual_steps(t: Trace, block: str) -> list[tuple[str, ModuleRecord, str]]:
    """(box label, conv record, hover) for each conv of F(x), bottom to top."""
    convs = t.residual_convs(block)
    steps = []
    for i, m in enumerate(convs):
        k, s = _kernel_stride(m)
        after = "BN" if i == len(convs) - 1 else "BN, ReLU"
        title = f"{m.name.rsplit('.', 1)[1]} {k}×{k}" + (f", /{s}" if s > 1 else "")
        hover = (f"<b>{m.name}</b>: {k}×{k} conv, stride {s}, {m.in_shape[1]}→{m.out_shape[1]} channels, then {after}"
                 f"<br>out {format_shape(m.out_shape)} · parameters {m.params:,} · MACs {format_count(m.macs)}")
        steps.append((title, m, hover))
    return steps


def _skip_steps(t: Trace, block: str) -> list[tuple[str, ModuleRecord, str]]:
    """(box label, record, hover) for each box of S(x); empty for an identity shortcut."""
    short = t.shortcut(block)
    if short is None or short.kind == "identity":
        return []
    if short.kind == "shortcut-zero-pad":
        s = round(short.in_shape[2] / short.out_shape[2]) if short.out_shape else 1
        hover = (f"<b>Option A</b>: subsample with stride {s}, then append zero channels<br>"
                 f"{format_shape(short.in_shape)} → {format_shape(short.out_shape or ())} · no parameters")
        return [("zero-pad" + (f", /{s}" if s > 1 else ""), short, hover)]
    steps = []
    for m in t.shortcut_steps(block):
        if m.kind == "avgpool":
            title, what = "avg-pool, /2", "2×2 average pool, stride 2 (ceil mode)"
        else:
            k, s = _kernel_stride(m)
            title = "1×1 conv" + (f", /{s}" if s > 1 else "")
            what = f"1×1 conv, stride {s}, {m.in_shape[1]}→{(m.out_shape or m.in_shape)[1]} channels, then BN"
        hover = (f"<b>{m.name}</b>: {what}<br>out {format_shape(m.out_shape or ())} · "
                 f"parameters {m.params:,} · MACs {format_count(m.macs)}")
        steps.append((title, m, hover))
    return steps


def _step_ys(n: int) -> list[float]:
    lo, hi = 24.0, 60.0
    return [(lo + hi) / 2] if n == 1 else [lo + i * (hi - lo) / (n - 1) for i in range(n)]


def _draw_column(cv: Canvas, steps: list, x: float, style: str, p: _Panel) -> tuple[float, float]:
    """Boxes for one path from the block input up, joined by arrows; returns the top of the last box."""
    tail = (x, p.y0 + Y_IN + 3.5)
    for (title, m, hover), y in zip(steps, _step_ys(len(steps))):
        y += p.y0
        add_arrow(cv, tail, (x, y - STEP_H / 2))
        add_box(cv, x, y, STEP_W * p.scale, STEP_H, style, hover)
        shape = format_shape(m.out_shape) if m.out_shape else "not produced"
        add_label(cv, x, y, f"<b>{title}</b><br>{shape}", size=11, bgcolor="rgba(255,255,255,0.8)" if
                   m.kind == "shortcut-zero-pad" else None)
        tail = (x, y + STEP_H / 2)
    return tail


def _draw_skip(cv: Canvas, t: Trace, block: str, x: float, p: _Panel) -> tuple[float, float]:
    """S(x): a plain line for identity, else its boxes; returns the top of the path."""
    steps = _skip_steps(t, block)
    if not steps:
        y = p.y0 + _step_ys(1)[0]
        cv.shapes.append(dict(type="line", x0=x, x1=x, y0=p.y0 + Y_IN + 3.5, y1=y + STEP_H / 2,
                               line=dict(color=LINE, width=1.8)))
        add_pill(cv, x, y, "identity")
        return x, y + STEP_H / 2
    top = _draw_column(cv, steps, x, "S", p)
    if steps[0][1].kind == "shortcut-zero-pad":
        _draw_zero_pad(cv, steps[0][1], x, STEP_W * p.scale, p)
    return top


def _draw_zero_pad(cv: Canvas, short: ModuleRecord, x: float, w: float, p: _Panel) -> None:
    """Overdraw an Option A box: the real channels, then hatched zero channels, to scale."""
    cin = short.in_shape[1]
    cout = (short.out_shape or short.in_shape)[1]
    pad, y = cout - cin, p.y0 + _step_ys(1)[0]
    if pad <= 0:
        text = "+0 zero channels:<br>A cannot<br>remove channels" if p.slot > SLOT else \
            "+0 zero channels:<br>A cannot remove channels"
        add_pill(cv, x, y - STEP_H / 2 - 1.5, text, BAD, yanchor="top")
        return
    x_split = x - w / 2 + w * cin / cout
    x_right, y0, y1 = x + w / 2, y - STEP_H / 2, y + STEP_H / 2
    cv.traces.append(dict(type="scatter",
        x=[x_split, x_right, x_right, x_split, x_split], y=[y0, y0, y1, y1, y0], mode="lines", fill="toself",
        fillcolor=GRID, fillpattern=dict(shape="/", fgcolor=OFF, bgcolor=OFF_FILL, size=7),
        line=dict(color=S_COLOR, width=2, dash="dot"), hoveron="fills", hoverinfo="text", name="",
        text=f"{pad} zero channels appended by Option A (no parameters, always zero)",
    ))
    add_pill(cv, x, y0 - 2.5, f"{cin} real | +{pad} zero channels", S_COLOR, yanchor="top")


def _block_panel(cv: Canvas, t: Trace, stage_index: int, p: _Panel) -> None:
    path = t.transition_block(t.config.backbone_levels[stage_index])
    site, y0 = t.map.site[path], p.y0
    block = t.module(path)
    x_f, x_s, x_mid = p.x(6.8 / SLOT), p.x(18.2 / SLOT), p.x(0.5)
    wide = p.slot - 3 * p.scale  # the input and output boxes
    if block is None:
        add_box(cv, x_mid, y0 + 50, wide, 84, "off", f"{site}: not reached — the trace stopped earlier", "dash")
        add_label(cv, x_mid, y0 + 100, f"<b>{site}</b>", MUTED)
        add_label(cv, x_mid, y0 + 50, "not reached", MUTED, size=14)
        return
    out = block.out_shape
    title = f"<b>{site}</b><br>{format_shape(block.in_shape)} → " + (
        format_shape(out) if out else "✗ not produced")
    add_label(cv, x_mid, y0 + 100, title, BAD if out is None else INK, yanchor="middle")
    add_box(cv, x_mid, y0 + Y_IN, wide, 7, "input", f"block input x: {format_shape(block.in_shape)}")
    add_label(cv, x_mid, y0 + Y_IN, f"<b>x</b> · {format_shape(block.in_shape)}", size=12)
    f_top = _draw_column(cv, _residual_steps(t, path), x_f, "F", p)
    s_top = _draw_skip(cv, t, path, x_s, p)
    add = next(iter(t.additions_in(path)), None)
    color, hover = add_status(add, f"{site} residual add")
    failed = add is not None and not add.ok
    y_add = y0 + Y_ADD
    add_arrow(cv, f_top, (x_mid - 1.4, y_add - 1.6))
    add_arrow(cv, s_top, (x_mid + 1.4, y_add - 1.6))
    add_label(cv, x_f - 1, y_add - 3, "<b>F(x)</b>", F_COLOR, xanchor="right")
    add_label(cv, x_s + 1, y_add - 3, "<b>S(x)</b>", S_COLOR, xanchor="left")
    add_nodes(cv, [(x_mid, y_add, color, 32 if failed else 26, hover)])
    if failed:
        add_label(cv, x_mid, y_add + 5.5, f"<b>✗ {failure(t)}</b>", BAD)
        return
    add_arrow(cv, (x_mid, y_add + 2), (x_mid, y0 + Y_OUT - 3.5))
    add_box(cv, x_mid, y0 + Y_OUT, wide, 7, "C", f"block output ReLU(F(x) + S(x)): {format_shape(out)}")
    add_label(cv, x_mid, y0 + Y_OUT, f"<b>ReLU(F+S)</b> · {format_shape(out)}", size=12)


def block_figure(t: Trace, compact: bool = False) -> go.Figure:
    """Residual block view: F(x) and S(x) side by side for the first block of each stage, the four
    stages in a row, or (``compact``, a phone) one above the other, each as wide as the screen."""
    cv = Canvas()
    cols = 1 if compact else 4
    rows = 4 // cols
    for i in range(4):
        row, col = divmod(i, cols)
        _block_panel(cv, t, i, _Panel(x0=col * 100 / cols, slot=100 / cols, y0=(rows - 1 - row) * ROW_H))
    note = ("each conv (skip convs too) is followed by BN, and by ReLU except the last; "
            "/2 = stride 2; hover for details")
    if compact:
        add_label(cv, 99, -5, wrap(note, 48), MUTED, size=11, xanchor="right", yanchor="top", align="right")
    else:
        add_label(cv, 99, -5, note, MUTED, size=11, xanchor="right", yanchor="bottom")
    skip = t.config.skip
    subtitle = (f"first block of each stage; y = ReLU(F(x) + S(x)); "
                f"skip option {skip}: {SKIP_OPTIONS[skip].split(':')[0]}")
    bottom = -5.5 - (12.0 if compact else 0.0)  # the note's three lines (~45 px), under the last panel
    top = (rows - 1) * ROW_H + 105
    return cv.figure(card_layout(
        "Residual blocks", 2050 if compact else 620, subtitle, margin=dict(l=6, r=6, t=110, b=6) if compact
        else dict(l=10, r=10, t=70, b=6), subtitle_chars=36 if compact else None,
        xaxis=hidden_axes() | dict(range=[0, 100]), yaxis=hidden_axes() | dict(range=[bottom, top]),
    ))
