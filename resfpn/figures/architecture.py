"""Architecture map: input → stem → C2…C5 up the left, the FPN and P levels on the right."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass

import plotly.graph_objects as go

from ..model.config import LEVEL_STRIDE
from ..formatting import ceil_div, format_count, format_mib, format_shape
from ..shapes.records import Trace
from .kit.canvas import Canvas, add_arrow, add_box, add_label, add_nodes, add_pill
from .kit.measure import text_size
from .kit.highlight import Marks, add_rings, differs_hover, mark_box, place_marks
from .kit.style import (
    BAD, BAD_FILL, DIFF, INK, LATERAL, LINE, MUTED, OFF, OK, add_status, card_layout, failure, hidden_axes, mismatch_note,
    wrap,
)

ROW_PITCH = 11.0


@dataclass(frozen=True)
class _Geometry:
    """Where the columns sit (of 0..100) and how much each label says: the full map, or the compact
    one for a phone, whose boxes hold their label on three lines and whose residual adds sit on the
    backbone's own arrow, so no column of text stands beside it."""

    x_c: float  # centre of the backbone column
    x_m: float  # the merge column
    x_p: float  # the pyramid column
    compact: bool
    row_px: int  # height per row

    def box_label(self, name: str, shape: str, stride: str) -> str:
        return f"<b>{name}</b><br>{shape}<br>{stride}" if self.compact else f"<b>{name}</b> · {shape}<br>{stride}"

    def box_size(self, channels: int, positions: int) -> tuple[float, float]:
        if self.compact:
            return 22.5 + 0.2 * math.log2(max(channels, 1)), 6.4
        return _box_size(channels, positions)

    def fit(self, box: _Box) -> _Box:
        """Compact: the box widened to hold its label at ``PHONE_PX_PER_UNIT`` (long shapes, e.g.
        256×200×334, would otherwise widen the whole map past a phone's screen)."""
        if not self.compact:
            return box
        need = (text_size(box.label, 11)[0] + 8) / PHONE_PX_PER_UNIT
        return dataclasses.replace(box, w=max(box.w, need))


PHONE_PX_PER_UNIT = 3.1  # a phone's ~320 px of plot over the map's 0..100
NODE_GAP = 1.6  # data units from a compact stage's ⊕ centre to the arrows that meet it


FULL = _Geometry(33.0, 60.0, 84.0, compact=False, row_px=80)
COMPACT = _Geometry(14.0, 54.0, 85.5, compact=True, row_px=96)


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


def _level_box(t: Trace, name: str, x: float, g: _Geometry = FULL) -> _Box:
    lv = t.levels.get(name)
    y = _row(name) * ROW_PITCH
    if lv is None:
        spec = t.map.levels.get(name)
        channels, stride = (spec.channels, spec.stride) if spec else (0, LEVEL_STRIDE[name])
        _, _, h_in, w_in = t.backbone_input_shape or t.input_shape
        w, h = g.box_size(channels, ceil_div(h_in, stride) * ceil_div(w_in, stride))
        label = g.box_label(name, "not reached", f"stride {stride}" if g.compact else f"{channels} ch · stride {stride}")
        return _Box(x, y, w, h, "off", label, f"<b>{name}</b>: not reached — the trace stopped at a mismatch")
    w, h = g.box_size(lv.shape[1], lv.shape[2] * lv.shape[3])
    label = g.box_label(name, format_shape(lv.shape), f"stride {lv.stride}")
    return _Box(x, y, w, h, name[0], label, _level_hover(t, name))


def _level_costs(t: Trace, name: str) -> tuple[str, int, int]:
    """(what produces the level, params, MACs) from the trace's module records."""
    if name[0] == "C":
        stage = t.level_part(name)
        return f"output of {stage}", t.params.parts[stage], t.macs.parts[stage]
    mods = t.level_sources(name)
    extra = {"P6": f"P6 from {t.config.p6}", "P7": "3×3 stride-2 conv on ReLU(P6)"}
    what = "1×1 lateral + 3×3 output conv" if len(t.map.sources[name]) == 2 else extra[name]
    return what, sum(m.params for m in mods), sum(m.macs for m in mods)


def _level_hover(t: Trace, name: str) -> str:
    lv = t.levels[name]
    what, params, macs = _level_costs(t, name)
    return (
        f"<b>{name}</b> — {what}<br>shape {format_shape(lv.shape)}, stride {lv.stride}<br>"
        f"parameters {params:,}<br>MACs {format_count(macs)}<br>receptive field {lv.receptive_field} px<br>"
        f"activation memory {format_mib(lv.bytes)} (float32)"
    )


def _input_box(t: Trace, g: _Geometry = FULL) -> _Box:
    shape = t.input_shape
    label = f"<b>input</b><br>{format_shape(shape)}"
    padded = t.backbone_input_shape
    w, h = g.box_size(shape[1], shape[2] * shape[3])
    if padded and tuple(padded) != tuple(shape):
        label += ("<br>padded to<br>" if g.compact else "<br>padded to ") + f"{padded[2]}×{padded[3]}"
        h += 2.4 if g.compact else 0.0
    hover = f"<b>input</b> {format_shape(shape)}<br>memory {format_mib(4 * math.prod(shape))} (float32)"
    return _Box(g.x_c, 0.0, w, h, "input", label, hover)


def _stem_box(t: Trace, g: _Geometry = FULL) -> _Box:
    stem = t.stem
    if stem is None or stem.out_shape is None:
        w, h = g.box_size(1, 1)
        return _Box(g.x_c, ROW_PITCH, max(w, 12.0), 4.6, "off", "<b>stem</b> · not reached", "stem: not reached")
    s = stem.out_shape
    w, h = g.box_size(s[1], s[2] * s[3])
    hover = (
        f"<b>stem</b> — 7×7 stride-2 conv, BN, ReLU, 3×3 stride-2 max-pool<br>shape {format_shape(s)}, stride 4<br>"
        f"parameters {t.params.parts['stem']:,}<br>MACs {format_count(t.macs.parts['stem'])}<br>"
        f"receptive field {stem.receptive_field} px<br>activation memory {format_mib(4 * math.prod(s))} (float32)"
    )
    return _Box(g.x_c, ROW_PITCH, w, h, "stem", g.box_label("stem", format_shape(s), "stride 4"), hover)


def _draw_backbone(cv: Canvas, t: Trace, boxes: dict[str, _Box], marks: Marks = Marks(), g: _Geometry = FULL) -> None:
    """Input → stem → C2…C5 arrows, with a residual-add status marker per stage: beside the column
    with its label to the left, or (compact) on the arrow with its label to the right."""
    chain = ["input", "stem", "C2", "C3", "C4", "C5"]
    for lower, upper in zip(chain, chain[1:]):
        color = LINE if boxes[upper].style != "off" else OFF
        tail, head = boxes[lower].top, boxes[upper].bottom
        if g.compact and lower != "input":  # the stage's ⊕ sits on this arrow: into it, then on up
            middle = (tail[1] + head[1]) / 2
            add_arrow(cv, tail, (tail[0], middle - NODE_GAP), color)
            tail = (tail[0], middle + NODE_GAP)
        add_arrow(cv, tail, head, color)
    x_node = g.x_c if g.compact else min(boxes[c].left[0] for c in chain[1:]) - 2.5
    nodes, rings = [], []
    for i in range(4):
        lower, upper = boxes[chain[i + 1]], boxes[chain[i + 2]]
        stage = t.level_part(chain[i + 2])
        y = (lower.top[1] + upper.bottom[1]) / 2
        adds = t.stage_additions(chain[i + 2])
        color = OFF if not adds else (BAD if not all(a.ok for a in adds) else OK)
        failed = color == BAD
        lines = [add_status(a, a.where)[1] for a in adds] or ["not reached"]
        nodes.append((x_node, y, color, 26 if failed else 18, f"<b>{stage}</b> residual adds<br>" + "<br>".join(lines)))
        n = t.config.blocks[i]
        status = f"residual adds: {sum(a.ok for a in adds)}/{n} ok" if adds else "not reached"
        if failed:
            status = "✗ " + failure(t)
        differs = marks.get("stage", chain[i + 2])
        if differs:
            rings.append((x_node, y, 26 if failed else 18, differs_hover(differs)))
        text = (f"<span style='color:{DIFF}'><b>≠</b></span> " if differs and not g.compact else "") + (
            f"<b>{stage}</b> · {n} blocks" if g.compact else f"<b>{stage}</b> · {n}× {t.config.block}")
        if g.compact:  # the block type is in the subtitle; which block failed, in the mismatch note
            status = "✗ " + failure(t).partition(": ")[2] if failed else status.replace("residual adds: ", "adds ")
            add_label(cv, x_node + 6.5, y, f"{text}<br>{status}", color=BAD if failed else (INK if adds else MUTED),
                      size=11, xanchor="left", align="left")
        else:
            add_label(cv, x_node - 2.2, y, f"{text}<br>{status}", color=BAD if failed else (INK if adds else MUTED),
                      size=12, xanchor="right", align="right")
    add_nodes(cv, nodes)
    add_rings(cv, rings)


def _draw_fpn(cv: Canvas, t: Trace, boxes: dict[str, _Box], marks: Marks = Marks(), g: _Geometry = FULL) -> None:
    """Laterals, top-down resizes, ⊕ merges and 3×3 output convs into P levels."""
    cfg = t.config
    resize = f"×2 {cfg.upsample}" if cfg.policy != "match" else f"resize to lateral ({cfg.upsample})"
    if g.compact and cfg.policy == "match":
        resize = f"resize<br>({cfg.upsample})"
    lateral, output = ("1×1", "3×3") if g.compact else ("1×1 conv", "3×3 conv")
    X_M = g.x_m
    nodes, rings = [], []
    levels = list(cfg.fpn_levels)
    for c in levels:
        p, y = "P" + c[1], _row(c) * ROW_PITCH
        top = c == levels[-1]
        merge = t.merge_into(p)
        reached_lateral = bool(t.level_sources(p))
        color = OFF if not reached_lateral else LINE
        add_arrow(cv, boxes[c].right, (X_M - 1.6, y), color)
        add_pill(cv, (boxes[c].right[0] + X_M) / 2, y, **marks.pill("lateral", p, lateral, sign=not g.compact))
        if top:
            nodes.append((X_M, y, LATERAL if reached_lateral else OFF, 12,
                          f"lateral({c}) starts the top-down path (no addition here)"))
        else:
            status_color, hover = add_status(merge, f"FPN merge into {p}")
            big = merge is not None and not merge.ok
            nodes.append((X_M, y, status_color, 34 if big else 26, hover))
            if differs := marks.get("merge", p):
                rings.append((X_M, y, 34 if big else 26, differs_hover(differs)))
            above = (_row(c) + 1) * ROW_PITCH
            add_arrow(cv, (X_M, above - 1.6), (X_M, y + (2.2 if big else 1.6)), LINE if merge else OFF)
            add_pill(cv, X_M + 1.0, (y + above) / 2, **marks.pill("resize", p, resize, sign=not g.compact), xanchor="left")
            if big and not g.compact:  # compact: the red node and the mismatch note say it (no room beside)
                add_label(cv, X_M - 2.6, y - 2.6, f"<b>✗ {failure(t)}</b>", BAD, xanchor="right", yanchor="top")
        out_reached = p in t.levels
        add_arrow(cv, (X_M + 1.6, y), boxes[p].left, LINE if out_reached else OFF)
        add_pill(cv, (X_M + boxes[p].left[0]) / 2 + (2.5 if g.compact else 1.0), y, **marks.pill("output", p, output, sign=not g.compact))
    add_nodes(cv, nodes)
    add_rings(cv, rings)
    _draw_extra_levels(cv, t, boxes, marks, g)


def _draw_extra_levels(cv: Canvas, t: Trace, boxes: dict[str, _Box], marks: Marks = Marks(),
                       g: _Geometry = FULL) -> None:
    cfg = t.config
    X_P = g.x_p
    if "P6" in boxes:
        label = {"p5-conv": "3×3 conv, stride 2", "c5-conv": "3×3 conv on C5, stride 2",
                 "maxpool": "max-pool, stride 2"}
        if g.compact:  # left of the pyramid column, where nothing else stands above C5
            label = {"p5-conv": "3×3 conv, stride 2", "c5-conv": "3×3 on C5, s2", "maxpool": "max-pool, stride 2"}
        source = boxes["C5"] if cfg.p6 == "c5-conv" else boxes["P5"]
        color = LINE if "P6" in t.levels else OFF
        if cfg.p6 == "c5-conv":
            tail = (source.right[0], source.top[1])
            add_arrow(cv, tail, boxes["P6"].left, color)
            add_pill(cv, (tail[0] + boxes["P6"].left[0]) / 2, (tail[1] + boxes["P6"].y) / 2,
                     **marks.pill("extra", "P6", label[cfg.p6]))
        else:
            add_arrow(cv, source.top, boxes["P6"].bottom, color)
            add_pill(cv, X_P + (-1.0 if g.compact else 1.0), (source.top[1] + boxes["P6"].bottom[1]) / 2,
                     **marks.pill("extra", "P6", label[cfg.p6]), xanchor="right" if g.compact else "left")
    if "P7" in boxes:
        add_arrow(cv, boxes["P6"].top, boxes["P7"].bottom, LINE if "P7" in t.levels else OFF)
        add_pill(cv, X_P + (-1.0 if g.compact else 1.0), (boxes["P6"].top[1] + boxes["P7"].bottom[1]) / 2,
                 **marks.pill("extra", "P7", "ReLU, 3×3 conv, stride 2"), xanchor="right" if g.compact else "left")


def architecture_figure(t: Trace, *, highlight: Iterable[str] | None = None, title_prefix: str = "",
                        compact: bool = False) -> go.Figure:
    """Architecture map: input → stem → C2…C5 up the left, the FPN and P levels on the right.

    Args:
        t: the trace to draw.
        highlight: in a comparison, what differs from the other design: level names ("C3"),
            module paths ("backbone.layer2.0.shortcut") and additions ("FPN merge into P4"), e.g.
            ``figures.compare_highlight(report, "a")``. Each is drawn with a magenta outline and
            "≠", and a legend note says how many; None (not a comparison) draws neither.
        title_prefix: e.g. "A" gives the title "A: Architecture map".
        compact: the layout for a phone (about 330 px of plot): the same map, its labels shorter and
            on more lines, its residual adds on the backbone's arrow; ``layout.meta.min_width`` says
            how narrow either can be drawn.
    """
    cfg = t.config
    g = COMPACT if compact else FULL
    marks = place_marks(t, highlight)
    boxes = {"input": _input_box(t, g), "stem": _stem_box(t, g)}
    boxes |= {c: _level_box(t, c, g.x_c, g) for c in cfg.backbone_levels}
    boxes |= {p: _level_box(t, p, g.x_p, g) for p in cfg.pyramid_levels}
    boxes = {name: g.fit(b) for name, b in boxes.items()}
    cv = Canvas()
    for name, b in boxes.items():
        differs = marks.get("level", name)
        add_box(cv, b.x, b.y, b.w, b.h, b.style, b.hover + (f"<br>{differs_hover(differs)}" if differs else ""),
                dash="dash" if b.style == "off" else "solid")
        add_label(cv, b.x, b.y, b.label, color=MUTED if b.style == "off" else INK, size=11 if g.compact else 12)
        if differs:
            mark_box(cv, b.x, b.y, b.w, b.h, badge=not g.compact)
    _draw_backbone(cv, t, boxes, marks, g)
    _draw_fpn(cv, t, boxes, marks, g)
    top = max(_row(n) for n in boxes) * ROW_PITCH
    if g.compact:
        add_label(cv, 1.0, top + 7.5, "<b>Backbone</b> ↑", MUTED, xanchor="left")
        add_label(cv, (g.x_m + g.x_p) / 2 + 2, top + 7.5, "<b>FPN</b> ↓", MUTED)
        legend, legend_lines = "⊕ green: operands agree<br>red: mismatch · grey dashed: not reached<br>tap a box for details", 3
    else:
        add_label(cv, g.x_c, top + 7.5, "<b>ResNet backbone</b> (bottom-up)", MUTED)
        add_label(cv, (g.x_m + g.x_p) / 2 + 2, top + 7.5, "<b>FPN</b> (top-down + lateral)", MUTED)
        legend, legend_lines = ("⊕ green: operands agree · red: mismatch · grey dashed: not reached · "
                                "hover a box for parameters, MACs, receptive field, memory"), 1
    line = 3.0 * 80 / g.row_px  # one 11 px line, in data units
    bottom = -7.5 - line * legend_lines
    add_label(cv, 99, bottom + 1.0, legend, MUTED, size=11, xanchor="right", yanchor="bottom", align="right")
    diff_lines = 0  # lines of the "≠" legend under the legend
    if marks.shown:
        diff = wrap(marks.legend(), 46) if g.compact else marks.legend()
        diff_lines = diff.count("<br>") + 1 if g.compact else 1
        bottom -= line * diff_lines
        add_label(cv, 99, bottom + 0.3, diff, DIFF, size=11, xanchor="right", yanchor="bottom", align="right")
    if t.mismatch:
        text = wrap("Shape mismatch — " + t.mismatch.headline, 34) if g.compact else mismatch_note(t)
        cv.notes.append(dict(x=99, y=ROW_PITCH * (0.5 if g.compact else 0.95), text=text, showarrow=False, align="left",
                             xanchor="right", font=dict(size=11 if g.compact else 12, color=BAD), bgcolor=BAD_FILL,
                             bordercolor=BAD, borderwidth=1.5, borderpad=6))
    subtitle = (f"input {cfg.input_height}×{cfg.input_width}, {cfg.block} blocks {list(cfg.blocks)}, "
                f"widths {list(cfg.widths)}, skip {cfg.skip}; FPN d={cfg.fpn_width} on {cfg.fpn_levels[0]}–C5, "
                f"{cfg.upsample}, policy {cfg.policy}")
    rows = max(_row(n) for n in boxes) + 1
    return cv.figure(card_layout(
        f"{title_prefix}: Architecture map" if title_prefix else "Architecture map",
        180 + g.row_px * rows + 16 * (legend_lines - 1) + (24 + 16 * (diff_lines - 1) if diff_lines else 0),
        subtitle, margin=dict(l=6, r=6, t=106, b=6) if g.compact else dict(l=10, r=10, t=70, b=6),
        xaxis=hidden_axes() | dict(range=[0, 100]), yaxis=hidden_axes() | dict(range=[bottom, top + 10]),
        subtitle_chars=36 if g.compact else None,
    ))
