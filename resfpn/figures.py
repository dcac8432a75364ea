"""Plotly figures of a traced configuration: architecture map, residual blocks, level bars, heatmaps.

Every figure takes a ``Trace`` (and, for the heatmaps, maps the caller has already reduced over
channels) and returns a ``go.Figure``. Nothing here builds a model or imports gradio.

All figures sit on an explicit white card with dark ink, so they read the same on a light or a
dark page (no grey can reach good contrast on both), and use a near-empty template to keep the
JSON small.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .add import AddRecord, format_shape
from .config import LEVEL_STRIDE, SKIP_OPTIONS
from .tracing import ModuleRecord, Trace

# -- shared style ---------------------------------------------------------------------------------

INK, MUTED, LINE, GRID, PAPER = "#111827", "#4b5563", "#6b7280", "#e5e7eb", "#ffffff"
OK, BAD, OFF = "#15803d", "#dc2626", "#9ca3af"
OFF_FILL = "#f3f4f6"
STYLE = {  # box kind -> (fill, outline)
    "input": ("#f1f5f9", "#475569"),
    "stem": ("#e0e7ff", "#4338ca"),
    "C": ("#dbeafe", "#1d4ed8"),
    "P": ("#ffedd5", "#c2410c"),
    "F": ("#dbeafe", "#1d4ed8"),
    "S": ("#ede9fe", "#6d28d9"),
    "off": (OFF_FILL, OFF),
}
FONT = dict(family="Inter, 'Segoe UI', Helvetica, Arial, sans-serif", size=13, color=INK)
LEVEL_COLOR = {"C": "#2563eb", "P": "#ea580c"}
PART_LABEL = {"fpn.lateral": "FPN<br>lateral", "fpn.output": "FPN<br>output", "fpn.extra": "FPN<br>P6/P7"}


def _layout(title: str, height: int, subtitle: str = "", **extra: Any) -> dict[str, Any]:
    """Layout shared by every figure: explicit height, white card, minimal template."""
    if subtitle:
        title += f"<br><span style='font-size:13px;color:{MUTED}'>{subtitle}</span>"
    return dict(
        title=dict(text=title, x=0.01, xanchor="left", y=1, yanchor="top", pad=dict(t=14),
                   font=dict(size=17, color=INK)),
        height=height,
        template="none",
        paper_bgcolor=PAPER,
        plot_bgcolor=PAPER,
        font=FONT,
        hoverlabel=dict(bgcolor="#ffffff", bordercolor="#374151", font=dict(color=INK, size=13)),
        showlegend=False,
        **extra,
    )


def _human(n: float, unit: str = "") -> str:
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{n / scale:.3g} {suffix}{unit}"
    return f"{n:.0f} {unit}".rstrip()


def _short(x: float | None) -> str:
    """A small positive number in at most 3 characters of precision: 3.06, 0.19, 0.0039."""
    return "" if x is None else (f"{x:.2f}" if x >= 0.1 else f"{x:.2g}")


def _mib(n: int) -> str:
    return f"{n / 2**20:.2f} MiB"


def _hidden_axes() -> dict[str, Any]:
    return dict(visible=False, showgrid=False, zeroline=False, fixedrange=True)


@dataclass
class _Canvas:
    """Traces, annotations and shapes of a diagram, collected as dicts and made into one figure at the end.

    (Adding annotations one by one to a ``go.Figure`` re-validates them all each time.)
    """

    traces: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    shapes: list[dict[str, Any]] = field(default_factory=list)

    def figure(self, layout: dict[str, Any]) -> go.Figure:
        return go.Figure(data=self.traces, layout=layout | dict(annotations=self.notes, shapes=self.shapes))


def _add_box(cv: _Canvas, x: float, y: float, w: float, h: float, style: str, hover: str, dash: str = "solid") -> None:
    """A rectangle drawn as a filled polygon, so hovering anywhere inside shows ``hover``."""
    fill, outline = STYLE[style]
    cv.traces.append(dict(type="scatter",
        x=[x - w / 2, x + w / 2, x + w / 2, x - w / 2, x - w / 2],
        y=[y - h / 2, y - h / 2, y + h / 2, y + h / 2, y - h / 2],
        mode="lines", fill="toself", fillcolor=fill, line=dict(color=outline, width=2, dash=dash),
        hoveron="fills", hoverinfo="text", text=hover, name="",
    ))


def _add_label(cv: _Canvas, x: float, y: float, text: str, color: str = INK, size: int = 13, **kw: Any) -> None:
    cv.notes.append(dict(x=x, y=y, text=text, showarrow=False, font=dict(size=size, color=color), **kw))


def _add_pill(cv: _Canvas, x: float, y: float, text: str, color: str = MUTED, **kw: Any) -> None:
    """A small label with its own background, for text that sits on or next to an arrow."""
    cv.notes.append(dict(
        x=x, y=y, text=text, showarrow=False, font=dict(size=11, color=color),
        bgcolor="#f9fafb", bordercolor="#d1d5db", borderwidth=1, borderpad=2, **kw,
    ))


def _add_arrow(cv: _Canvas, tail: tuple[float, float], head: tuple[float, float], color: str = LINE) -> None:
    cv.notes.append(dict(
        x=head[0], y=head[1], ax=tail[0], ay=tail[1], xref="x", yref="y", axref="x", ayref="y",
        text="", showarrow=True, arrowhead=2, arrowsize=1.1, arrowwidth=1.8, arrowcolor=color,
    ))


def _add_nodes(cv: _Canvas, nodes: list[tuple[float, float, str, int, str]]) -> None:
    """⊕ nodes as one marker trace: (x, y, colour, size, hover) each; nodes under 16 px get no "+"."""
    if not nodes:
        return
    xs, ys, colors, sizes, hovers = zip(*nodes)
    cv.traces.append(dict(type="scatter",
        x=xs, y=ys, mode="markers+text", text=["+" if s >= 16 else "" for s in sizes], textposition="middle center",
        textfont=dict(color="#ffffff", size=17, family="Arial Black, Arial, sans-serif"),
        marker=dict(color=list(colors), size=list(sizes), opacity=1, line=dict(color="#ffffff", width=2)),
        hovertext=list(hovers), hoverinfo="text", name="",
    ))


def _wrap(text: str, width: int) -> str:
    """Break ``text`` into lines of at most ``width`` characters, joined by ``<br>``."""
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "<br>".join(lines + [line])


def _add_status(add: AddRecord | None, where: str) -> tuple[str, str]:
    """(colour, hover line) of the addition ``where``: green if its operands agree, red if not, grey if not run."""
    if add is None:
        return OFF, f"<b>{where}</b>: not reached"
    (a, b), (sa, sb) = add.operands, add.shapes
    mark = "shapes agree ✓" if add.ok else "<b>MISMATCH ✗</b>"
    return (OK if add.ok else BAD), f"<b>{add.where}</b>: {a} {format_shape(sa)} + {b} {format_shape(sb)} {mark}"


def _module(t: Trace, name: str) -> ModuleRecord | None:
    return next((m for m in t.modules if m.name == name), None)


def _failure(t: Trace) -> str:
    """Short form of the mismatch, e.g. 'layer3.0: C 64 vs 128'."""
    m = t.mismatch
    where = m.where.removesuffix(" residual add").removeprefix("FPN merge into ")
    a, b = (s[m.dim] if 0 <= m.dim < len(s) else "-" for s in m.shapes)
    return f"{where}: {m.dim_name} {a} vs {b}"


def _mismatch_note(t: Trace) -> str:
    return _wrap("Shape mismatch — " + t.mismatch.headline, 58) if t.mismatch else ""


# -- architecture map -----------------------------------------------------------------------------

ROW_PITCH = 11.0
X_C, X_M, X_P = 33.0, 60.0, 84.0  # centres of the backbone, merge and pyramid columns (of 0..100)


@dataclass
class _Box:
    """A tensor in the architecture map, centred at (x, y)."""

    x: float
    y: float
    w: float
    h: float
    style: str
    label: str
    hover: str

    @property
    def top(self) -> tuple[float, float]:
        return self.x, self.y + self.h / 2

    @property
    def bottom(self) -> tuple[float, float]:
        return self.x, self.y - self.h / 2

    @property
    def left(self) -> tuple[float, float]:
        return self.x - self.w / 2, self.y

    @property
    def right(self) -> tuple[float, float]:
        return self.x + self.w / 2, self.y


def _box_size(channels: int, positions: int) -> tuple[float, float]:
    """Width grows with log2(channels), height with log2(H·W); both clamped to stay readable."""
    w = max(12.0, 2.0 + 2.0 * math.log2(max(channels, 1)))
    h = min(8.0, max(4.4, 1.5 + 0.45 * math.log2(max(positions, 1))))
    return w, h


def _row(name: str) -> int:
    """Row of a tensor: input 0, stem 1, C2/P2 2, … C5/P5 5, P6 6, P7 7."""
    fixed = {"input": 0, "stem": 1}
    return fixed[name] if name in fixed else int(name[1:])


def _level_box(t: Trace, name: str, x: float) -> _Box:
    lv = t.levels.get(name)
    y = _row(name) * ROW_PITCH
    if lv is None:
        channels, stride = t.declared.get(name, (0, LEVEL_STRIDE[name]))
        _, _, h_in, w_in = t.backbone_input_shape or t.input_shape
        w, h = _box_size(channels, -(-h_in // stride) * -(-w_in // stride))
        label = f"<b>{name}</b> · not reached<br>{channels} ch · stride {stride}"
        return _Box(x, y, w, h, "off", label, f"<b>{name}</b>: not reached — the trace stopped at a mismatch")
    w, h = _box_size(lv.shape[1], lv.shape[2] * lv.shape[3])
    label = f"<b>{name}</b> · {format_shape(lv.shape)}<br>stride {lv.stride}"
    return _Box(x, y, w, h, name[0], label, _level_hover(t, name))


def _level_costs(t: Trace, name: str) -> tuple[str, int, int]:
    """(what produces the level, params, MACs) from the trace's module records."""
    if name[0] == "C":
        stage = f"layer{int(name[1]) - 1}"
        return f"output of {stage}", t.params.parts[stage], t.macs.parts[stage]
    k = name[1:]
    names = [f"fpn.lateral.C{k}", f"fpn.output.P{k}"] if f"C{k}" in t.config.fpn_levels else [f"fpn.{name.lower()}"]
    mods = [m for m in t.modules if m.name in names]
    extra = {"P6": f"P6 from {t.config.p6}", "P7": "3×3 stride-2 conv on ReLU(P6)"}
    what = "1×1 lateral + 3×3 output conv" if len(names) == 2 else extra[name]
    return what, sum(m.params for m in mods), sum(m.macs for m in mods)


def _level_hover(t: Trace, name: str) -> str:
    lv = t.levels[name]
    what, params, macs = _level_costs(t, name)
    return (
        f"<b>{name}</b> — {what}<br>shape {format_shape(lv.shape)}, stride {lv.stride}<br>"
        f"parameters {params:,}<br>MACs {_human(macs)}<br>receptive field {lv.receptive_field} px<br>"
        f"activation memory {_mib(lv.bytes)} (float32)"
    )


def _input_box(t: Trace) -> _Box:
    shape = t.input_shape
    label = f"<b>input</b><br>{format_shape(shape)}"
    padded = t.backbone_input_shape
    if padded and tuple(padded) != tuple(shape):
        label += f"<br>padded to {padded[2]}×{padded[3]}"
    w, h = _box_size(shape[1], shape[2] * shape[3])
    hover = f"<b>input</b> {format_shape(shape)}<br>memory {_mib(4 * math.prod(shape))} (float32)"
    return _Box(X_C, 0.0, w, h, "input", label, hover)


def _stem_box(t: Trace) -> _Box:
    stem = _module(t, "backbone.stem")
    if stem is None or stem.out_shape is None:
        return _Box(X_C, ROW_PITCH, 12.0, 4.6, "off", "<b>stem</b> · not reached", "stem: not reached")
    s = stem.out_shape
    w, h = _box_size(s[1], s[2] * s[3])
    hover = (
        f"<b>stem</b> — 7×7 stride-2 conv, BN, ReLU, 3×3 stride-2 max-pool<br>shape {format_shape(s)}, stride 4<br>"
        f"parameters {t.params.parts['stem']:,}<br>MACs {_human(t.macs.parts['stem'])}<br>"
        f"receptive field {stem.receptive_field} px<br>activation memory {_mib(4 * math.prod(s))} (float32)"
    )
    return _Box(X_C, ROW_PITCH, w, h, "stem", f"<b>stem</b> · {format_shape(s)}<br>stride 4", hover)


def _draw_backbone(cv: _Canvas, t: Trace, boxes: dict[str, _Box]) -> None:
    """Input → stem → C2…C5 arrows, with a residual-add status marker per stage."""
    chain = ["input", "stem", "C2", "C3", "C4", "C5"]
    for lower, upper in zip(chain, chain[1:]):
        reached = boxes[upper].style != "off"
        _add_arrow(cv, boxes[lower].top, boxes[upper].bottom, LINE if reached else OFF)
    x_node = min(boxes[c].left[0] for c in chain[1:]) - 2.5
    nodes = []
    for i in range(4):
        stage, lower, upper = f"layer{i + 1}", boxes[chain[i + 1]], boxes[chain[i + 2]]
        y = (lower.top[1] + upper.bottom[1]) / 2
        adds = [a for a in t.additions if a.where.startswith(stage + ".")]
        color = OFF if not adds else (BAD if not all(a.ok for a in adds) else OK)
        failed = color == BAD
        lines = [_add_status(a, a.where)[1] for a in adds] or ["not reached"]
        nodes.append((x_node, y, color, 26 if failed else 18, f"<b>{stage}</b> residual adds<br>" + "<br>".join(lines)))
        n = t.config.blocks[i]
        status = f"residual adds: {sum(a.ok for a in adds)}/{n} ok" if adds else "not reached"
        if failed:
            status = "✗ " + _failure(t)
        _add_label(cv, x_node - 2.2, y, f"<b>{stage}</b> · {n}× {t.config.block}<br>{status}",
                   color=BAD if failed else (INK if adds else MUTED), size=12, xanchor="right", align="right")
    _add_nodes(cv, nodes)


def _draw_fpn(cv: _Canvas, t: Trace, boxes: dict[str, _Box]) -> None:
    """Laterals, top-down resizes, ⊕ merges and 3×3 output convs into P levels."""
    cfg = t.config
    merges = {a.where.removeprefix("FPN merge into "): a for a in t.additions if a.where.startswith("FPN merge")}
    resize = f"×2 {cfg.upsample}" if cfg.policy != "match" else f"resize to lateral ({cfg.upsample})"
    failed = t.mismatch.where.removeprefix("FPN merge into ") if t.mismatch else None
    nodes = []
    levels = list(cfg.fpn_levels)
    for c in levels:
        p, y = "P" + c[1], _row(c) * ROW_PITCH
        top = c == levels[-1]
        merge = merges.get(p)
        reached_lateral = _module(t, f"fpn.lateral.{c}") is not None
        color = OFF if not reached_lateral else LINE
        _add_arrow(cv, boxes[c].right, (X_M - 1.6, y), color)
        _add_pill(cv, (boxes[c].right[0] + X_M) / 2, y, "1×1 conv")
        if top:
            nodes.append((X_M, y, "#475569" if reached_lateral else OFF, 12,
                          f"lateral({c}) starts the top-down path (no addition here)"))
        else:
            status_color, hover = _add_status(merge, f"FPN merge into {p}")
            big = p == failed
            nodes.append((X_M, y, status_color, 34 if big else 26, hover))
            above = (_row(c) + 1) * ROW_PITCH
            _add_arrow(cv, (X_M, above - 1.6), (X_M, y + (2.2 if big else 1.6)), LINE if merge else OFF)
            _add_pill(cv, X_M + 1.0, (y + above) / 2, resize, xanchor="left")
            if big:
                _add_label(cv, X_M - 2.6, y - 2.6, f"<b>✗ {_failure(t)}</b>", BAD, xanchor="right", yanchor="top")
        out_reached = p in t.levels
        _add_arrow(cv, (X_M + 1.6, y), boxes[p].left, LINE if out_reached else OFF)
        _add_pill(cv, (X_M + boxes[p].left[0]) / 2 + 1.0, y, "3×3 conv")
    _add_nodes(cv, nodes)
    _draw_extra_levels(cv, t, boxes)


def _draw_extra_levels(cv: _Canvas, t: Trace, boxes: dict[str, _Box]) -> None:
    cfg = t.config
    if "P6" in boxes:
        label = {"p5-conv": "3×3 conv, stride 2", "c5-conv": "3×3 conv on C5, stride 2",
                 "maxpool": "max-pool, stride 2"}
        source = boxes["C5"] if cfg.p6 == "c5-conv" else boxes["P5"]
        color = LINE if "P6" in t.levels else OFF
        if cfg.p6 == "c5-conv":
            tail = (source.right[0], source.top[1])
            _add_arrow(cv, tail, boxes["P6"].left, color)
            _add_pill(cv, (tail[0] + boxes["P6"].left[0]) / 2, (tail[1] + boxes["P6"].y) / 2, label[cfg.p6])
        else:
            _add_arrow(cv, source.top, boxes["P6"].bottom, color)
            _add_pill(cv, X_P + 1.0, (source.top[1] + boxes["P6"].bottom[1]) / 2, label[cfg.p6], xanchor="left")
    if "P7" in boxes:
        _add_arrow(cv, boxes["P6"].top, boxes["P7"].bottom, LINE if "P7" in t.levels else OFF)
        _add_pill(cv, X_P + 1.0, (boxes["P6"].top[1] + boxes["P7"].bottom[1]) / 2, "ReLU, 3×3 conv, stride 2",
                  xanchor="left")


def architecture_figure(t: Trace) -> go.Figure:
    """Architecture map: input → stem → C2…C5 up the left, the FPN and P levels on the right."""
    cfg = t.config
    boxes = {"input": _input_box(t), "stem": _stem_box(t)}
    boxes |= {c: _level_box(t, c, X_C) for c in cfg.backbone_levels}
    boxes |= {p: _level_box(t, p, X_P) for p in cfg.pyramid_levels}
    cv = _Canvas()
    for b in boxes.values():
        _add_box(cv, b.x, b.y, b.w, b.h, b.style, b.hover, dash="dash" if b.style == "off" else "solid")
        _add_label(cv, b.x, b.y, b.label, color=MUTED if b.style == "off" else INK, size=12)
    _draw_backbone(cv, t, boxes)
    _draw_fpn(cv, t, boxes)
    top = max(_row(n) for n in boxes) * ROW_PITCH
    _add_label(cv, X_C, top + 7.5, "<b>ResNet backbone</b> (bottom-up)", MUTED)
    _add_label(cv, (X_M + X_P) / 2 + 2, top + 7.5, "<b>FPN</b> (top-down + lateral)", MUTED)
    _add_label(cv, 99, -9.5, "⊕ green: operands agree · red: mismatch · grey dashed: not reached · "
               "hover a box for parameters, MACs, receptive field, memory", MUTED, size=11,
               xanchor="right", yanchor="bottom")
    if t.mismatch:
        cv.notes.append(dict(x=99, y=ROW_PITCH * 0.95, text=_mismatch_note(t), showarrow=False, align="left",
                           xanchor="right", font=dict(size=12, color=BAD), bgcolor="#fef2f2",
                           bordercolor=BAD, borderwidth=1.5, borderpad=6))
    subtitle = (f"input {cfg.input_height}×{cfg.input_width}, {cfg.block} blocks {list(cfg.blocks)}, "
                f"widths {list(cfg.widths)}, skip {cfg.skip}; FPN d={cfg.fpn_width} on {cfg.fpn_levels[0]}–C5, "
                f"{cfg.upsample}, policy {cfg.policy}")
    rows = max(_row(n) for n in boxes) + 1
    return cv.figure(_layout(
        "Architecture map", 180 + 80 * rows, subtitle, margin=dict(l=10, r=10, t=70, b=6),
        xaxis=_hidden_axes() | dict(range=[0, 100]), yaxis=_hidden_axes() | dict(range=[-10.5, top + 10]),
    ))


# -- residual blocks ------------------------------------------------------------------------------

SLOT, STEP_W = 25.0, 10.4  # width of one stage's panel (of 0..100) and of a step's box
Y_IN, Y_ADD, Y_OUT, STEP_H = 6.0, 76.0, 90.0, 8.5


def _kernel_stride(m: ModuleRecord) -> tuple[int, int]:
    """(kernel, stride) of a recorded conv or pool, as the trace recorded them."""
    return m.kernel or 1, m.stride or 1


def _residual_steps(t: Trace, site: str) -> list[tuple[str, ModuleRecord, str]]:
    """(box label, conv record, hover) for each conv of F(x), bottom to top."""
    convs = [m for m in t.modules if m.kind == "conv" and m.name.startswith(f"backbone.{site}.conv")]
    steps = []
    for i, m in enumerate(convs):
        k, s = _kernel_stride(m)
        after = "BN" if i == len(convs) - 1 else "BN, ReLU"
        title = f"{m.name.rsplit('.', 1)[1]} {k}×{k}" + (f", /{s}" if s > 1 else "")
        hover = (f"<b>{m.name}</b>: {k}×{k} conv, stride {s}, {m.in_shape[1]}→{m.out_shape[1]} channels, then {after}"
                 f"<br>out {format_shape(m.out_shape)} · parameters {m.params:,} · MACs {_human(m.macs)}")
        steps.append((title, m, hover))
    return steps


def _skip_steps(t: Trace, site: str) -> list[tuple[str, ModuleRecord, str]]:
    """(box label, record, hover) for each box of S(x); empty for an identity shortcut."""
    short = _module(t, f"backbone.{site}.shortcut")
    if short is None or short.kind == "identity":
        return []
    if short.kind == "shortcut-zero-pad":
        s = round(short.in_shape[2] / short.out_shape[2]) if short.out_shape else 1
        hover = (f"<b>Option A</b>: subsample with stride {s}, then append zero channels<br>"
                 f"{format_shape(short.in_shape)} → {format_shape(short.out_shape or ())} · no parameters")
        return [("zero-pad" + (f", /{s}" if s > 1 else ""), short, hover)]
    steps = []
    for part in ("pool", "conv"):
        m = _module(t, f"backbone.{site}.shortcut.{part}")
        if m is None:
            continue
        if part == "pool":
            title, what = "avg-pool, /2", "2×2 average pool, stride 2 (ceil mode)"
        else:
            k, s = _kernel_stride(m)
            title = "1×1 conv" + (f", /{s}" if s > 1 else "")
            what = f"1×1 conv, stride {s}, {m.in_shape[1]}→{(m.out_shape or m.in_shape)[1]} channels, then BN"
        hover = (f"<b>{m.name}</b>: {what}<br>out {format_shape(m.out_shape or ())} · "
                 f"parameters {m.params:,} · MACs {_human(m.macs)}")
        steps.append((title, m, hover))
    return steps


def _step_ys(n: int) -> list[float]:
    lo, hi = 24.0, 60.0
    return [(lo + hi) / 2] if n == 1 else [lo + i * (hi - lo) / (n - 1) for i in range(n)]


def _draw_column(cv: _Canvas, steps: list, x: float, style: str) -> tuple[float, float]:
    """Boxes for one path from the block input up, joined by arrows; returns the top of the last box."""
    tail = (x, Y_IN + 3.5)
    for (title, m, hover), y in zip(steps, _step_ys(len(steps))):
        _add_arrow(cv, tail, (x, y - STEP_H / 2))
        _add_box(cv, x, y, STEP_W, STEP_H, style, hover)
        shape = format_shape(m.out_shape) if m.out_shape else "not produced"
        _add_label(cv, x, y, f"<b>{title}</b><br>{shape}", size=11, bgcolor="rgba(255,255,255,0.8)" if
                   m.kind == "shortcut-zero-pad" else None)
        tail = (x, y + STEP_H / 2)
    return tail


def _draw_skip(cv: _Canvas, t: Trace, site: str, x: float) -> tuple[float, float]:
    """S(x): a plain line for identity, else its boxes; returns the top of the path."""
    steps = _skip_steps(t, site)
    if not steps:
        y = _step_ys(1)[0]
        cv.shapes.append(dict(type="line", x0=x, x1=x, y0=Y_IN + 3.5, y1=y + STEP_H / 2,
                               line=dict(color=LINE, width=1.8)))
        _add_pill(cv, x, y, "identity")
        return x, y + STEP_H / 2
    top = _draw_column(cv, steps, x, "S")
    if steps[0][1].kind == "shortcut-zero-pad":
        _draw_zero_pad(cv, steps[0][1], x, STEP_W)
    return top


def _draw_zero_pad(cv: _Canvas, short: ModuleRecord, x: float, w: float) -> None:
    """Overdraw an Option A box: the real channels, then hatched zero channels, to scale."""
    cin = short.in_shape[1]
    cout = (short.out_shape or short.in_shape)[1]
    pad, y = cout - cin, _step_ys(1)[0]
    if pad <= 0:
        _add_pill(cv, x, y - STEP_H / 2 - 1.5, "+0 zero channels:<br>A cannot remove channels", BAD, yanchor="top")
        return
    x_split = x - w / 2 + w * cin / cout
    x_right, y0, y1 = x + w / 2, y - STEP_H / 2, y + STEP_H / 2
    cv.traces.append(dict(type="scatter",
        x=[x_split, x_right, x_right, x_split, x_split], y=[y0, y0, y1, y1, y0], mode="lines", fill="toself",
        fillcolor="#e5e7eb", fillpattern=dict(shape="/", fgcolor="#9ca3af", bgcolor="#f3f4f6", size=7),
        line=dict(color="#6d28d9", width=2, dash="dot"), hoveron="fills", hoverinfo="text", name="",
        text=f"{pad} zero channels appended by Option A (no parameters, always zero)",
    ))
    _add_pill(cv, x, y0 - 2.5, f"{cin} real | +{pad} zero channels", "#6d28d9", yanchor="top")


def _block_panel(cv: _Canvas, t: Trace, stage_index: int) -> None:
    stage = f"layer{stage_index + 1}"
    site, x0 = f"{stage}.0", stage_index * SLOT
    block = _module(t, f"backbone.{site}")
    x_f, x_s, x_mid = x0 + 6.8, x0 + 18.2, x0 + SLOT / 2
    if block is None:
        _add_box(cv, x_mid, 50, SLOT - 3, 84, "off", f"{site}: not reached — the trace stopped earlier", "dash")
        _add_label(cv, x_mid, 100, f"<b>{site}</b>", MUTED)
        _add_label(cv, x_mid, 50, "not reached", MUTED, size=14)
        return
    out = block.out_shape
    title = f"<b>{site}</b><br>{format_shape(block.in_shape)} → " + (
        format_shape(out) if out else "✗ not produced")
    _add_label(cv, x_mid, 100, title, BAD if out is None else INK, yanchor="middle")
    _add_box(cv, x_mid, Y_IN, SLOT - 3, 7, "input", f"block input x: {format_shape(block.in_shape)}")
    _add_label(cv, x_mid, Y_IN, f"<b>x</b> · {format_shape(block.in_shape)}", size=12)
    f_top = _draw_column(cv, _residual_steps(t, site), x_f, "F")
    s_top = _draw_skip(cv, t, site, x_s)
    add = next((a for a in t.additions if a.where == f"{site} residual add"), None)
    color, hover = _add_status(add, f"{site} residual add")
    failed = add is not None and not add.ok
    _add_arrow(cv, f_top, (x_mid - 1.4, Y_ADD - 1.6))
    _add_arrow(cv, s_top, (x_mid + 1.4, Y_ADD - 1.6))
    _add_label(cv, x_f - 1, Y_ADD - 3, "<b>F(x)</b>", "#1d4ed8", xanchor="right")
    _add_label(cv, x_s + 1, Y_ADD - 3, "<b>S(x)</b>", "#6d28d9", xanchor="left")
    _add_nodes(cv, [(x_mid, Y_ADD, color, 32 if failed else 26, hover)])
    if failed:
        _add_label(cv, x_mid, Y_ADD + 5.5, f"<b>✗ {_failure(t)}</b>", BAD)
        return
    _add_arrow(cv, (x_mid, Y_ADD + 2), (x_mid, Y_OUT - 3.5))
    _add_box(cv, x_mid, Y_OUT, SLOT - 3, 7, "C", f"block output ReLU(F(x) + S(x)): {format_shape(out)}")
    _add_label(cv, x_mid, Y_OUT, f"<b>ReLU(F+S)</b> · {format_shape(out)}", size=12)


def block_figure(t: Trace) -> go.Figure:
    """Residual block view: F(x) and S(x) side by side for the first block of each stage."""
    cv = _Canvas()
    for i in range(4):
        _block_panel(cv, t, i)
    _add_label(cv, 99, -5, "each conv (skip convs too) is followed by BN, and by ReLU except the last; "
               "/2 = stride 2; hover for details", MUTED, size=11, xanchor="right", yanchor="bottom")
    skip = t.config.skip
    subtitle = (f"first block of each stage; y = ReLU(F(x) + S(x)); "
                f"skip option {skip}: {SKIP_OPTIONS[skip].split(':')[0]}")
    return cv.figure(_layout(
        "Residual blocks", 620, subtitle, margin=dict(l=10, r=10, t=70, b=6),
        xaxis=_hidden_axes() | dict(range=[0, 100]), yaxis=_hidden_axes() | dict(range=[-5.5, 105]),
    ))


# -- per-level bars -------------------------------------------------------------------------------


def _bar(fig: go.Figure, row: int, col: int, x: list[str], y: list, text: list[str], colors: list[str],
         hover: list[str]) -> None:
    fig.add_trace(go.Bar(
        x=x, y=y, text=text, textposition="outside", cliponaxis=False, marker=dict(color=colors),
        hovertext=hover, hoverinfo="text", textfont=dict(size=11, color=INK),
    ), row=row, col=col)


def _level_series(t: Trace) -> dict[str, list]:
    """Per level: value lists for each panel (None where the level was not reached)."""
    names = list(t.config.levels)
    lv = [t.levels.get(n) for n in names]
    declared = [t.declared.get(n, (0, 0))[0] for n in names]
    return {
        "names": names,
        "colors": [LEVEL_COLOR[n[0]] if v else OFF for n, v in zip(names, lv)],
        "channels": [v.shape[1] if v else c for v, c in zip(lv, declared)],
        "positions": [v.shape[2] * v.shape[3] if v else None for v in lv],
        "hw": [f"{v.shape[2]}×{v.shape[3]}" if v else "" for v in lv],
        "mib": [v.bytes / 2**20 if v else None for v in lv],
        "rf": [v.receptive_field if v else None for v in lv],
    }


def _level_ticks(fig: go.Figure, t: Trace, rows_cols: list[tuple[int, int]]) -> None:
    """Grey out, in the tick labels, levels that were never reached."""
    names = list(t.config.levels)
    text = [n if n in t.levels else f"<span style='color:{OFF}'>{n}</span>" for n in names]
    for r, c in rows_cols:
        fig.update_xaxes(tickvals=names, ticktext=text, row=r, col=c)


def _headroom(fig: go.Figure, row: int, col: int, values: list, log: bool, tickformat: str = "~s") -> None:
    """Leave room above the tallest bar for its outside label."""
    vals = [v for v in values if v]
    if not vals:
        return
    if log:
        lo, hi = math.log10(min(vals)), math.log10(max(vals))
        fig.update_yaxes(type="log", range=[lo - 0.4, hi + 0.35], dtick=1, tickformat=tickformat, row=row, col=col)
    else:
        fig.update_yaxes(range=[0, max(vals) * 1.18], row=row, col=col)


def level_bars_figure(t: Trace) -> go.Figure:
    """Bars per level (channels, H×W, memory, receptive field) and per part (parameters, MACs)."""
    s = _level_series(t)
    names, colors = s["names"], s["colors"]
    partial = " (up to the mismatch)" if t.mismatch else ""
    fig = make_subplots(rows=3, cols=2, horizontal_spacing=0.08, vertical_spacing=0.13, subplot_titles=(
        "Channels per level", "Spatial size H×W per level (log)", "Activation memory per level, MiB (log)",
        "Receptive field per level, px", "Parameters per part (log)", f"MACs per part{partial} (log)"))
    fig.update_annotations(font=dict(size=13, color=INK))
    hover = [f"<b>{n}</b> · " + (format_shape(t.levels[n].shape) if n in t.levels else "not reached") for n in names]
    _bar(fig, 1, 1, names, s["channels"], [str(c) for c in s["channels"]], colors, hover)
    _bar(fig, 1, 2, names, s["positions"], s["hw"], colors, hover)
    _bar(fig, 2, 1, names, s["mib"], [_short(m) for m in s["mib"]], colors, hover)
    # Where the field depends on the cell's position, the label shows the range ("435–467").
    rf_text = [f"{lv.receptive_field_range[0]}–{r}" if r and lv.receptive_field_range[0] != r else (str(r) if r else "")
               for r, lv in zip(s["rf"], (t.levels.get(n) for n in names))]
    _bar(fig, 2, 2, names, s["rf"], rf_text, colors, hover)
    parts = [p for p in t.params.parts if t.params.parts[p] or t.macs.parts[p]]
    labels = [PART_LABEL.get(p, p) for p in parts]
    part_colors = [LEVEL_COLOR["P" if p.startswith("fpn") else "C"] for p in parts]
    params = [t.params.parts[p] for p in parts]
    macs = [t.macs.parts[p] for p in parts]
    _bar(fig, 3, 1, labels, params, [_human(v) for v in params], part_colors,
         [f"<b>{p}</b>: {v:,} parameters" for p, v in zip(parts, params)])
    _bar(fig, 3, 2, labels, [m or None for m in macs], [_human(v) for v in macs], part_colors,
         [f"<b>{p}</b>: {v:,} MACs (FLOPs = 2 × MACs)" for p, v in zip(parts, macs)])
    c = t.config
    side = max(c.input_height, c.input_width)
    fig.add_hline(y=side, row=2, col=2, line=dict(color=MUTED, dash="dash", width=1), layer="below",
                  annotation_text=f"input {side} px", annotation_position="bottom left",
                  annotation_font=dict(size=11, color=MUTED))
    _level_ticks(fig, t, [(1, 1), (1, 2), (2, 1), (2, 2)])
    for (r, col), values, log in [((1, 1), s["channels"], False), ((1, 2), s["positions"], True),
                                  ((2, 2), s["rf"] + [side], False), ((3, 1), params, True), ((3, 2), macs, True)]:
        _headroom(fig, r, col, values, log)
    _headroom(fig, 2, 1, s["mib"], True, tickformat="~g")
    fig.update_xaxes(showgrid=False, linecolor=GRID, tickfont=dict(size=12))
    fig.update_yaxes(gridcolor=GRID, zeroline=False, tickfont=dict(size=11))
    subtitle = (f"input {c.input_height}×{c.input_width}: {t.params.total:,} parameters, {_human(t.macs.total)} MACs; "
                "blue: backbone, orange: FPN"
                + ("" if t.ok else "; grey levels were not reached (the trace stopped at a mismatch)"))
    fig.update_layout(_layout("Levels and parts", 920, subtitle, margin=dict(l=50, r=20, t=90, b=50), bargap=0.15))
    return fig


# -- heatmap grid ---------------------------------------------------------------------------------

MAX_CELLS = 128  # longest side of the finest map as sent; all maps are block-averaged alike beyond it
IMAGE_BYTES = 9_000  # budget for the overlay JPEG, sent once (in the template) for every subplot


def _as_2d(m: Any) -> np.ndarray:
    """A float64 (H, W) array from a tensor or array; drops leading size-1 dims, e.g. of (1, H, W)."""
    if hasattr(m, "detach"):
        m = m.detach().float().cpu().numpy()
    a = np.asarray(m, dtype=np.float64)
    while a.ndim > 2 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 2:
        raise ValueError(f"heatmap maps must be 2-D (H, W); got shape {tuple(np.shape(m))}")
    return a


def _pool(a: np.ndarray, f: int) -> np.ndarray:
    """Mean over f×f blocks (edges padded by repetition): (H, W) -> (ceil(H/f), ceil(W/f))."""
    if f == 1:
        return a
    h, w = a.shape
    a = np.pad(a, ((0, -h % f), (0, -w % f)), mode="edge")
    return a.reshape(a.shape[0] // f, f, a.shape[1] // f, f).mean(axis=(1, 3))


def _finite_range(arrays: list[np.ndarray]) -> tuple[float, float]:
    vals = [a[np.isfinite(a)] for a in arrays]
    vals = [v for v in vals if v.size]
    if not vals:
        return 0.0, 0.0
    return float(min(v.min() for v in vals)), float(max(v.max() for v in vals))


def _quantise(a: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Percent of the way from lo to hi, as uint8 0..100 (non-finite values become 0)."""
    q = (a - lo) / (hi - lo) * 100 if hi > lo else np.zeros_like(a)
    return np.clip(np.rint(np.nan_to_num(q, nan=0.0, posinf=100.0, neginf=0.0)), 0, 100).astype(np.uint8)


def _windows(n: int, step: int, size: int) -> list[str]:
    """Input pixels covered by each of n cells of ``step`` pixels, e.g. ['0-7', '8-15', …].

    ASCII only: after the maps these labels are the largest text in the figure.
    """
    labels = []
    for i in range(n):
        a, b = i * step, min(i * step + step - 1, size - 1)
        labels.append(f"{a}-{b}" if a < b else (f"{a}" if a < size else f"{a}+ (padding)"))
    return labels


def _image_uri(image: Any) -> str:
    """The overlay image as a small greyscale JPEG data URI of at most IMAGE_BYTES."""
    im, side = image.convert("L"), 192
    while True:
        small = im.copy()
        small.thumbnail((side, side))
        for quality in (75, 55, 35):
            buf = io.BytesIO()
            small.save(buf, "JPEG", quality=quality, optimize=True)
            if buf.tell() <= IMAGE_BYTES or side <= 32:
                return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
        side //= 2


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def _heatmap_template(image: Any) -> go.layout.Template:
    """Axis settings shared by every subplot, and the overlay image, stored once."""
    axis = dict(type="category", showticklabels=False, showgrid=False, zeroline=False, ticks="", constrain="domain")
    layout: dict[str, Any] = dict(xaxis=axis, yaxis=axis | dict(autorange="reversed", constraintoward="top"))
    if image is not None:
        layout["imagedefaults"] = dict(source=_image_uri(image), xanchor="left", yanchor="top", sizing="stretch",
                                       layer="below")
    return go.layout.Template(layout=layout)


def _colorbar(shared_scale: bool, lo: float, hi: float, reduction_label: str) -> dict[str, Any]:
    """Real values on the colour bar when the scale is shared, else min…max of each map."""
    if shared_scale:
        ticks = [0, 25, 50, 75, 100]
        text, title = [_fmt(lo + (hi - lo) * q / 100) for q in ticks], _wrap(reduction_label, 12)
    else:
        ticks, text, title = [0, 50, 100], ["min", "mid", "max"], "each map:<br>own range"
    return dict(tickvals=ticks, ticktext=text, title=dict(text=title, font=dict(size=12)), thickness=14, len=0.8,
                outlinewidth=0, tickfont=dict(size=11))


def _grid(names: list[str]) -> tuple[list[str], list[int]]:
    """Rows (C above P) and columns (one per level number, so Ck sits above Pk)."""
    rows = [r for r in "CP" if any(n[0] == r for n in names)]
    return rows, sorted({int(n[1:]) for n in names})


def heatmap_grid_figure(
    maps: dict[str, Any],
    t: Trace,
    *,
    colorscale: str = "Viridis",
    shared_scale: bool = False,
    image: Any = None,
    opacity: float = 0.5,
    reduction_label: str = "mean",
) -> go.Figure:
    """Feature maps per level, C2–C5 above P2–P7, sent as compact uint8, optionally over the image.

    Args:
        maps: level name -> map ``(H/stride, W/stride)`` already reduced over channels (tensor or
            array), any subset of C2..C5 and P2..P7.
        t: the trace of the configuration that produced the maps (gives each level's stride).
        colorscale: any Plotly colour scale name.
        shared_scale: one colour range for all maps; otherwise each map spans its own min..max.
        image: optional PIL image at the network's input size, drawn in grey under every map.
        opacity: heatmap opacity when an image is given.
        reduction_label: how channels were reduced, e.g. "mean", "max over channels" or "channel 7",
            for the titles ("over channels" is added unless the label mentions a channel).

    Each map is sent as uint8 percent-of-range (0..100, Plotly's binary array encoding); subplot
    titles, colour bar and hover carry the real values. If the finest map is longer than
    ``MAX_CELLS`` on a side, every map is block-averaged by the same factor, so the figure stays
    under 100 kB of JSON for any input size.
    """
    order = [n for n in LEVEL_STRIDE if n in maps]
    arrays = {n: _as_2d(maps[n]) for n in order}
    c = t.config
    f = max([1] + [math.ceil(max(a.shape) / MAX_CELLS) for a in arrays.values()])
    if "channel" not in reduction_label:  # "mean" -> "mean over channels"; "one chosen channel" stays
        reduction_label += " over channels"
    title = f"Feature maps ({reduction_label})"
    subtitle = (f"input {c.input_height}×{c.input_width}; "
                + ("one colour scale for all maps" if shared_scale else "each map scaled to its own range")
                + (f"; every map shown at 1/{f} resolution" if f > 1 else "") + "; hover a cell for its input pixels")
    if not order:
        note = dict(x=0.5, y=0.5, xref="paper", yref="paper", text="no feature maps to show", showarrow=False,
                    font=dict(size=14, color=MUTED))
        return go.Figure(layout=_layout(title, 300, subtitle, annotations=[note], xaxis=_hidden_axes(),
                                        yaxis=_hidden_axes()))
    rows, cols = _grid(order)
    cells = {n: (rows.index(n[0]) + 1, cols.index(int(n[1:])) + 1) for n in order}
    by_cell = {rc: n for n, rc in cells.items()}
    shared = _finite_range(list(arrays.values()))
    strides = {n: t.levels[n].stride if n in t.levels else LEVEL_STRIDE[n] for n in order}
    titles = [_map_title(n, arrays[n], strides[n], shared_scale) if (n := by_cell.get((r, k))) else ""
              for r in range(1, len(rows) + 1) for k in range(1, len(cols) + 1)]
    fig = make_subplots(rows=len(rows), cols=len(cols), subplot_titles=titles, horizontal_spacing=0.02,
                        vertical_spacing=0.14 if len(rows) > 1 else 0.05)
    _, _, h_in, w_in = t.backbone_input_shape or t.input_shape
    for name in order:
        row, col = cells[name]
        step = strides[name] * f
        lo, hi = shared if shared_scale else _finite_range([arrays[name]])
        shown = _pool(arrays[name], f)
        fig.add_trace(go.Heatmap(
            z=_quantise(shown, lo, hi), x=_windows(shown.shape[1], step, w_in), y=_windows(shown.shape[0], step, h_in),
            coloraxis="coloraxis", opacity=opacity if image is not None else 1.0,
            hovertemplate=(f"<b>{name}</b> cell, {step}×{step} input px<br>rows %{{y}}, cols %{{x}}<br>"
                           f"value: %{{z}}% of the way from {_fmt(lo)} to {_fmt(hi)}<extra></extra>"),
        ), row=row, col=col)
        sub = fig.get_subplot(row, col)
        x_ref, y_ref = sub.xaxis.plotly_name.replace("axis", ""), sub.yaxis.plotly_name.replace("axis", "")
        fig.update_yaxes(scaleanchor=x_ref, scaleratio=1, row=row, col=col)
        if image is not None:
            fig.add_layout_image(xref=x_ref, yref=y_ref, x=-0.5, y=-0.5, sizex=c.input_width / step,
                                 sizey=c.input_height / step)
    fig.update_annotations(font=dict(size=12, color=INK))
    fig.update_layout(_layout(title, 150 + 250 * len(rows), subtitle, margin=dict(l=10, r=10, t=100, b=10)))
    fig.update_layout(template=_heatmap_template(image), coloraxis=dict(
        colorscale=colorscale, cmin=0, cmax=100, colorbar=_colorbar(shared_scale, *shared, reduction_label)))
    return fig


def _map_title(name: str, a: np.ndarray, stride: int, shared_scale: bool) -> str:
    """e.g. '<b>P3</b> 28×28 · stride 8', with the map's own value range below when not shared."""
    head = f"<b>{name}</b> {a.shape[0]}×{a.shape[1]} · stride {stride}"
    lo, hi = _finite_range([a])
    return head if shared_scale else f"{head}<br>range {_fmt(lo)} … {_fmt(hi)}"
