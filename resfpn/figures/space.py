"""The design space: valid input sizes (strips and a 2-D map), cost against input size, and the
width/depth sweep. Each figure's points carry what a click applies in ``customdata``."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..model.config import LABELS
from ..formatting import format_count, format_mib
from ..shapes.sizes import AXES, Costs, SizeMap
from ..shapes.sweep import Sweep
from .kit.measure import text_size
from .kit.style import BAD, GRID, INK, LEVEL_COLOR, MUTED, OK, PAPER, card_layout

MAP_SPAN = 32  # sizes per axis in the 2-D map, around the design's own size
MAP_CELL_PX = 8  # the narrowest a map cell may be drawn
_BUILDS = [[0, BAD], [0.5, BAD], [0.5, OK], [1, OK]]


def _short(where: str) -> str:
    return where.replace("FPN merge into ", "merge into ").replace(" residual add", " add")


def _failure_text(m: SizeMap, policy: str, axis: str) -> list[str]:
    """Per size of one strip: '' where it builds, else the first failing addition and its two sizes."""
    prog, am = m.programs[policy], m.axes[policy][axis]
    texts = []
    sites = [_short(op.module) for op in prog.additions]
    for n, j in enumerate(am.first_fail.tolist(), start=1):
        if j < 0:
            texts.append("✓")
            continue
        a, b = (int(am.sizes[v, n - 1]) for v in prog.additions[j].ins)
        texts.append(f"✗ {sites[j]} {a}≠{b}" if a != b else f"✗ {sites[j]} channels")
    return texts


def _levels_line(m: SizeMap, policy: str, axis: str, n: int) -> str:
    return " · ".join(f"{k} {v}" for k, v in m.level_sizes(policy, axis, n).items())


def _window(n: int, span: int, top: int) -> range:
    start = min(max(1, n - span // 2), max(1, top - span + 1))
    return range(start, min(top, start + span - 1) + 1)


def sizes_figure(m: SizeMap, span: int = MAP_SPAN) -> go.Figure:
    """Strips of every size 1..max per policy (height, then width) and the 2-D map of the design's
    policy around its size. Hover: sizes and level sizes, or the first failing addition; ``customdata``
    holds the ``[height, width]`` a click on the map applies (a click on a strip applies its axis' size,
    named by the trace: ``height-strip`` or ``width-strip``)."""
    c = m.config
    h0, w0, top = c.input_height, c.input_width, m.max_size
    policies = list(m.axes)
    fig = make_subplots(rows=3, cols=1, row_heights=[0.13, 0.13, 0.74], vertical_spacing=0.07, subplot_titles=(
        f"Height 1–{top}: green builds", f"Width 1–{top}: green builds",
        f"H × W near {h0}×{w0}, {LABELS['policy'][c.policy]} (click to use)"))
    fig.update_annotations(font=dict(size=13, color=INK))
    sizes = np.arange(1, top + 1)
    for row, axis in enumerate(AXES, start=1):
        z = [m.axes[p][axis].builds.astype(int).tolist() for p in policies]
        text = [_failure_text(m, p, axis) for p in policies]
        fig.add_trace(go.Heatmap(
            x=sizes, y=[LABELS["policy"][p] for p in policies], z=z, text=text,
            colorscale=_BUILDS, zmin=0, zmax=1, showscale=False, xgap=0, ygap=2,
            hovertemplate=f"{axis} %{{x}} · %{{y}}: %{{text}}<extra></extra>", name=f"{axis}-strip",
        ), row=row, col=1)
        current = h0 if axis == "height" else w0
        if current <= top:
            fig.add_vline(x=current, line=dict(color=INK, width=2), row=row, col=1)
        fig.update_xaxes(range=[0.5, top + 0.5], row=row, col=1, tickfont=dict(size=10))
    hs, ws = _window(h0, span, top), _window(w0, span, top)
    _map(fig, m, c.policy, hs, ws)
    if h0 in hs and w0 in ws:
        fig.add_trace(go.Scatter(x=[w0], y=[h0], mode="markers", marker=dict(symbol="x-thin", size=16,
                      line=dict(width=3, color=INK)), hoverinfo="skip", name="current size"), row=3, col=1)
    fig.update_xaxes(title_text="input width", row=3, col=1, title_font=dict(size=12))
    fig.update_yaxes(title_text="input height", row=3, col=1, title_font=dict(size=12), autorange="reversed")
    fig.update_xaxes(showgrid=False, zeroline=False)
    fig.update_yaxes(showgrid=False, zeroline=False, fixedrange=True, row=1, col=1)
    fig.update_yaxes(fixedrange=True, row=2, col=1)
    summary = "<br>".join(f"{LABELS['policy'][p]}: {m.summary(p, 'height')}" + (
        "" if m.summary(p, "height") == m.summary(p, "width") else f" × {m.summary(p, 'width')}") for p in policies)
    margin = dict(l=round(max(text_size(LABELS["policy"][p], 13)[0] for p in policies)) + 16, r=20, t=130, b=50)
    titles = [a.text for a in fig.layout.annotations]
    panel_px = max([text_size(t, 13)[0] + 12 for t in titles] + [len(ws) * MAP_CELL_PX])
    fig.update_layout(card_layout("Valid input sizes", 800, summary, margin=margin,
                                  meta=dict(min_width=round(margin["l"] + margin["r"] + panel_px))))
    return fig


def _map(fig: go.Figure, m: SizeMap, policy: str, hs: range, ws: range) -> None:
    mh, mw = m.axes[policy]["height"], m.axes[policy]["width"]
    row_levels = {h: _levels_line(m, policy, "height", h) for h in hs}
    col_levels = {w: _levels_line(m, policy, "width", w) for w in ws}
    z, text, custom = [], [], []
    for h in hs:
        zr, tr, cr = [], [], []
        for w in ws:
            ok = bool(mh.builds[h - 1] and mw.builds[w - 1])
            zr.append(int(ok))
            if ok:
                tr.append(f"builds ✓<br>height: {row_levels[h]}<br>width: {col_levels[w]}")
            else:
                f = m.failure_at(policy, h, w)
                a, b = f.shapes
                tr.append(f"fails ✗ at {f.where}<br>{f.operands[0]} {a[2]}×{a[3]} vs {f.operands[1]} {b[2]}×{b[3]}")
            cr.append([h, w])
        z.append(zr)
        text.append(tr)
        custom.append(cr)
    fig.add_trace(go.Heatmap(x=list(ws), y=list(hs), z=z, text=text, customdata=custom, colorscale=_BUILDS, zmin=0,
                             zmax=1, showscale=False, xgap=1, ygap=1, name="size-map",
                             hovertemplate="<b>%{y}×%{x}</b> %{text}<extra></extra>"), row=3, col=1)


def cost_figure(curve: Costs, marks: Costs, mark_labels: list[str], latency: dict | None = None) -> go.Figure:
    """MACs, peak activation memory and latency against input size (x: √(H·W) in pixels), over the sizes
    that build, with the design's size and the common sizes marked; parameters do not depend on size."""
    fig = make_subplots(rows=3, cols=1, vertical_spacing=0.09, shared_xaxes=True, subplot_titles=(
        "MACs", "Peak activation memory (float32)", "Forward latency here"))
    fig.update_annotations(font=dict(size=13, color=INK))
    ok = curve.builds
    side = np.sqrt(curve.heights * curve.widths)[ok]
    size_text = [f"{h}×{w}" for h, w in zip(curve.heights[ok], curve.widths[ok])]
    color = LEVEL_COLOR["C"]
    fig.add_trace(go.Scatter(x=side, y=curve.macs[ok] / 1e9, mode="lines", line=dict(color=color, width=2),
                             text=size_text, hovertemplate="%{text}: %{y:.3g} GMACs<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Scatter(x=side, y=curve.peak_bytes[ok] / 2**20, mode="lines", line=dict(color=color, width=2),
                             text=size_text, hovertemplate="%{text}: %{y:,.0f} MiB<extra></extra>"), row=2, col=1)
    mx = np.sqrt(marks.heights * marks.widths)
    mtext = [f"{lab}: {h}×{w}" for lab, h, w in zip(mark_labels, marks.heights, marks.widths)]
    positions, panel_px = _mark_positions(mx, mark_labels, float(side.max()) if len(side) else 1.0)
    mark_style = dict(mode="markers+text", textposition=positions, textfont=dict(size=MARK_LABEL_PX, color=INK),
                      marker=dict(size=9, color=[BAD if lab.startswith("current") else MUTED for lab in mark_labels],
                                  line=dict(width=1, color=PAPER)))
    fig.add_trace(go.Scatter(x=mx, y=marks.macs / 1e9, text=mark_labels, hovertext=[
        f"{t}: {format_count(v)} MACs" for t, v in zip(mtext, marks.macs)], hoverinfo="text", **mark_style), row=1, col=1)
    fig.add_trace(go.Scatter(x=mx, y=marks.peak_bytes / 2**20, text=mark_labels, hovertext=[
        f"{t}: {format_mib(v, 0)}" for t, v in zip(mtext, marks.peak_bytes)], hoverinfo="text", **mark_style), row=2, col=1)
    if latency and latency.get("points"):
        pts = latency["points"]
        fig.add_trace(go.Scatter(x=[math.sqrt(p["height"] * p["width"]) for p in pts],
                                 y=[p["seconds"] * 1e3 for p in pts], mode="markers", marker=dict(size=9, color=BAD),
                                 hovertext=[f"{p['height']}×{p['width']}: {p['seconds'] * 1e3:.0f} ms measured"
                                            for p in pts], hoverinfo="text"), row=3, col=1)
        a, b = latency["fit"]
        fig.add_trace(go.Scatter(x=side, y=(a + b * curve.macs[ok]) * 1e3, mode="lines",
                                 line=dict(color=color, width=2, dash="dot"), text=size_text,
                                 hovertemplate="%{text}: %{y:,.0f} ms (fitted)<extra></extra>"), row=3, col=1)
        fig.add_trace(go.Scatter(x=mx, y=(a + b * marks.macs) * 1e3, text=mark_labels, hovertext=[
            f"{t}: {(a + b * v) * 1e3:,.0f} ms (fitted)" for t, v in zip(mtext, marks.macs)], hoverinfo="text",
            **mark_style), row=3, col=1)
        note = (f"latency ≈ {a * 1e3:.1f} ms + {b * 1e12:.1f} ms per GMAC,<br>fitted to {len(pts)} runs on "
                f"{latency.get('device', 'this machine')}")
    else:
        y0, y1 = fig.layout.yaxis3.domain
        fig.add_annotation(text="press “Measure latency”", x=0.5,
                           y=(y0 + y1) / 2, xref="paper", yref="paper", showarrow=False, font=dict(size=12, color=MUTED))
        # an invisible point keeps the empty panel's axes drawn
        fig.add_trace(go.Scatter(x=[0], y=[0], mode="markers", marker=dict(opacity=0), hoverinfo="skip"), row=3, col=1)
        note = "latency not measured yet"
    for row in (1, 2, 3):
        fig.update_xaxes(gridcolor=GRID, row=row, col=1, showticklabels=True, zeroline=False)
        fig.update_yaxes(gridcolor=GRID, zeroline=False, row=row, col=1)
    x_title = "√(H·W), px: the side of a square input with as many pixels"
    fig.update_xaxes(title_text=x_title, title_font=dict(size=11), row=3, col=1)
    top = float(side.max()) if len(side) else 1.0
    fig.update_xaxes(range=[0, top * 1.02], row=1, col=1)  # the marks' labels are placed for this range
    for row, values in ((1, curve.macs[ok] / 1e9), (2, curve.peak_bytes[ok] / 2**20)):
        high = float(values.max()) if len(values) else 1.0  # room under zero for a label below a mark
        fig.update_yaxes(range=[-0.16 * high, 1.08 * high], row=row, col=1)
    panel_px = max(panel_px, text_size(x_title, 11)[0] + 12, *(text_size(t, 13)[0] + 12 for t in (
        "MACs", "Peak activation memory (float32)", "Forward latency here")))
    fig.update_yaxes(title_text="GMACs", title_font=dict(size=11), row=1, col=1)
    fig.update_yaxes(title_text="MiB", title_font=dict(size=11), row=2, col=1)
    fig.update_yaxes(title_text="ms", title_font=dict(size=11), row=3, col=1)
    fig.update_layout(card_layout("Cost against input size", 780,
                                  f"{curve.params:,} parameters at every size<br>{note}",
                                  margin=dict(l=60, r=20, t=105, b=50), meta=dict(min_width=round(60 + 20 + panel_px))))
    return fig


MARK_LABEL_PX = 11


def _mark_positions(x, labels: list[str], top: float) -> tuple[list[str], float]:
    """Where each mark's label goes, and the narrowest plot (px) at which no two labels on the same
    side overlap: in the order of size, labels go above and below their marks in turn (neighbours,
    such as 1024 and ≈800×1333, never share a side), to the right of the mark unless that leaves
    the plot. The x axis runs from 0 to 1.02 × ``top``."""
    span = top * 1.02
    order = sorted(range(len(labels)), key=lambda i: x[i])
    widths = [text_size(t, MARK_LABEL_PX)[0] + 6 for t in labels]
    positions = [""] * len(labels)
    for rank, i in enumerate(order):
        right = x[i] + widths[i] * span / 360 < span  # at the narrowest plot considered
        positions[i] = ("top " if rank % 2 == 0 else "bottom ") + ("right" if right else "left")
    need = 360.0
    for a in range(len(order)):
        for b in range(a + 1, len(order)):
            i, j = order[a], order[b]
            if positions[i].split()[0] != positions[j].split()[0]:
                continue
            dx = (x[j] - x[i]) / span  # fraction of the plot between the two marks
            ext = (widths[i] if positions[i].endswith("right") else 0) + (widths[j] if positions[j].endswith("left") else 0)
            if ext and dx > 0:
                need = max(need, ext / dx)
    return positions, need


def sweep_figure(s: Sweep) -> go.Figure:
    """Parameters against MACs of every variant, coloured by the level's receptive field, with the
    Pareto front, the presets and the current design labelled; ``customdata`` is the variant's index."""
    d = s.designs
    fig = go.Figure()
    front = sorted((v for v in d if v.pareto), key=lambda v: v.params)
    fig.add_trace(go.Scatter(x=[v.params for v in front], y=[v.macs for v in front], mode="lines",
                             line=dict(color=MUTED, width=1.5, dash="dot"), hoverinfo="skip", name="Pareto front"))
    rf = [v.receptive_field or 0 for v in d]
    fig.add_trace(go.Scatter(
        x=[v.params for v in d], y=[v.macs for v in d], mode="markers", customdata=list(range(len(d))),
        marker=dict(size=[14 if v.current else 10 if v.pareto or v.preset else 7 for v in d], color=rf,
                    colorscale="Viridis", showscale=True,
                    colorbar=dict(title=dict(text=f"{s.level} field, px", font=dict(size=11)), thickness=12),
                    symbol=["diamond" if v.config.block == "bottleneck" else "circle" for v in d],
                    line=dict(width=[2 if v.current or v.pareto else 0 for v in d], color=INK)),
        hovertext=[f"<b>{v.label}</b>{' (' + v.preset + ')' if v.preset and v.preset != v.label else ''}<br>"
                   f"{v.params:,} parameters · {format_count(v.macs)} MACs · {s.level} field {v.receptive_field} px"
                   + ("<br>on the Pareto front" if v.pareto else "") + ("" if v.builds else "<br>does not build at this size")
                   + "<br>click to use this design" for v in d], hoverinfo="text", name="designs"))
    c = d[0].config
    colorbar_px = max(text_size(f"{s.level} field, px", 11)[0], 12 + 6 + text_size(f"{max(rf):,}", 13)[0]) + 24
    margin = dict(l=70, r=20, t=160, b=55)
    placed = _place_labels(d, margin, colorbar_px)
    for (v, text), (ay, _) in zip(_labelled(d), placed["ay"]):
        fig.add_annotation(x=math.log10(v.params), y=math.log10(max(v.macs, 1)), text=text, showarrow=True,
                           arrowhead=0, ax=0, ay=ay, font=dict(size=SWEEP_LABEL_PX, color=INK))
    fig.update_xaxes(type="log", title_text="parameters", gridcolor=GRID, range=placed["x"],
                     **_log_ticks(placed["x"], placed["px_x"], 40))
    fig.update_yaxes(type="log", title_text=f"MACs at {c.input_height}×{c.input_width}", gridcolor=GRID, range=placed["y"],
                     **_log_ticks(placed["y"], placed["px_y"], 22))
    fig.update_layout(card_layout("Width × depth sweep", 520,
                                  f"{len(d)} designs: widths ×0.25–2 × blocks<br>● basic ◆ bottleneck; "
                                  f"{s.seconds * 1e3:.0f} ms<br>ringed: Pareto front (fewer<br>parameters and MACs, "
                                  f"wider {s.level} field)<br>click a point to use it",
                                  margin=margin, meta=dict(min_width=placed["width"])))
    return fig


SWEEP_HEIGHT = 520
SWEEP_LABEL_PX = 11
_ROWS = (-22, -40, -58, -76, 26, 44)  # label offsets tried, px (negative: above the point)


def _labelled(d: list) -> list:
    return [(v, "current" if v.current else v.preset) for v in d if v.current or v.preset]


def _place_labels(d: list, margin: dict, colorbar_px: float) -> dict:
    """The sweep's labels (current design, presets) placed so that none overlaps another: the narrowest
    figure width (from 360 px) at which each label, tried at a few heights above and below its point,
    finds a free place inside the plot. Wider, the points only move apart, so the places still hold.
    Returns the offsets, the axes' ranges (log10) and that width."""
    xs = [math.log10(v.params) for v in d]
    ys = [math.log10(max(v.macs, 1)) for v in d]
    labels = sorted(_labelled(d), key=lambda vt: (math.log10(vt[0].params), -vt[0].macs))
    sizes = [text_size(t, SWEEP_LABEL_PX) for _, t in labels]
    half = max([w / 2 for w, _ in sizes] + [8]) + 4
    plot_h = SWEEP_HEIGHT - margin["t"] - margin["b"]
    room = max(-a for a in _ROWS) + SWEEP_LABEL_PX * 2  # above the highest point, for its label
    y_lo, y_hi = min(ys), max(ys)
    y_span = max(y_hi - y_lo, 0.1)
    per_px_y = y_span / (plot_h - room - 12)
    y_range = [y_lo - 12 * per_px_y, y_hi + room * per_px_y]
    x_lo, x_hi = min(xs), max(xs)
    x_span = max(x_hi - x_lo, 0.1)
    width = 360
    while True:
        plot_w = width - margin["l"] - margin["r"] - colorbar_px
        if plot_w > 2 * half + 40:
            # Room at each end only for the labels that need it (a label is centred on its point).
            pad = [8.0, 8.0]
            for _ in range(3):
                per_px_x = x_span / (plot_w - sum(pad))
                pad = [max([8.0] + [w / 2 + 4 - (math.log10(v.params) - x_lo) / per_px_x
                                    for (v, _), (w, _) in zip(labels, sizes)]),
                       max([8.0] + [w / 2 + 4 - (x_hi - math.log10(v.params)) / per_px_x
                                    for (v, _), (w, _) in zip(labels, sizes)])]
            per_px_x = x_span / (plot_w - sum(pad))
            x_range = [x_lo - pad[0] * per_px_x, x_hi + pad[1] * per_px_x]
            boxes, offsets = [], []
            for (v, _), (w, h) in zip(labels, sizes):
                px = (math.log10(v.params) - x_range[0]) / per_px_x
                py = (y_range[1] - math.log10(max(v.macs, 1))) / per_px_y  # from the plot's top
                for ay in _ROWS:
                    centre = py + ay + (-h / 2 if ay < 0 else h / 2)
                    box = (px - w / 2 - 2, px + w / 2 + 2, centre - h / 2 - 1, centre + h / 2 + 1)
                    if box[2] < 0 or box[3] > plot_h:
                        continue
                    if all(box[1] <= b[0] or b[1] <= box[0] or box[3] <= b[2] or b[3] <= box[2] for b in boxes):
                        boxes.append(box)
                        offsets.append(ay)
                        break
                else:
                    break
            if len(offsets) == len(labels) or width >= 2000:
                break
        width += 20
    ay = dict(zip((id(v) for v, _ in labels), offsets + [_ROWS[0]] * (len(labels) - len(offsets))))
    return dict(ay=[(ay[id(v)], t) for v, t in _labelled(d)], x=x_range, y=y_range, width=width,
                px_x=1 / per_px_x, px_y=1 / per_px_y)


def _log_ticks(log_range: list[float], px_per_decade: float, gap_px: float) -> dict:
    """Tick values and labels of a log axis that stay ``gap_px`` apart at ``px_per_decade`` (the
    narrowest drawing): 1, 2, 5 per decade where there is room, else every decade or every few.
    Plotly's own minor labels ("2", "5" in small type) crowd the decade labels on a short axis."""
    lo, hi = log_range
    if math.log10(2) * px_per_decade >= gap_px:
        steps, every = (1, 2, 5), 1
    else:
        steps, every = (1,), max(1, math.ceil(gap_px / px_per_decade))
    values = [m * 10.0 ** k for k in range(math.floor(lo), math.ceil(hi) + 1) if k % every == 0 for m in steps
              if lo <= math.log10(m) + k <= hi]
    return dict(tickvals=values, ticktext=[format_count(v).replace(" ", "") for v in values])
