"""The compare view: A's and B's architecture maps with what differs marked, their feature maps
side by side with the difference where shapes agree, and the rows of the differences table.

Everything here reads a ``resfpn.analysis.compare.Comparison`` (or its report); nothing builds or runs a model.
"""

from __future__ import annotations

import math
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..analysis.compare import SIDES, Comparison, Side, difference_maps, paired_maps, relative_difference
from ..model.config import REDUCTIONS, Reduction
from ..formatting import format_count, format_mib, format_shape
from .kit.measure import text_size
from .kit.style import BAD, INK, MUTED, PILL_EDGE, PILL_FILL, card_layout, hidden_axes, wrap
from .architecture import architecture_figure
from .heatmaps import MAX_CELLS, _as_2d, _fmt, _heatmap_template, _pool, add_map

INPUT_FIELDS = ("input_height", "input_width", "input_channels")  # Config fields that change the input box
COMPARE_TABLE_HEADERS = ["≠", "level / part", "A", "B", "receptive field A", "receptive field B",
                         "memory A", "memory B", "difference"]


# -- architecture maps -----------------------------------------------------------------------------


def compare_highlight(report: dict[str, Any], side: str) -> list[str]:
    """What side ``side`` ("a" or "b") has that differs from the other side, for ``architecture_figure``.

    Args:
        report: ``Comparison.to_dict()`` or ``compare_traces(..)``.

    Returns:
        Module paths (``report["highlight"][side]``), the levels whose ``differs`` is set and that
        this side has, the additions that differ and that this side makes, and ``"input"`` when the
        input size differs.
    """
    if side not in SIDES:
        raise ValueError(f"side={side!r}: expected one of {SIDES}")
    names = list(report["highlight"][side])
    names += [name for name, lv in report["levels"].items() if lv["differs"] and lv[side] is not None]
    names += [a["where"] for a in report["additions"] if a["differs"] and a[side] is not None]
    if set(INPUT_FIELDS) & set(report.get("changed", {})):
        names.append("input")
    return names


def compare_architecture_figures(comparison: Comparison, compact: bool = False) -> tuple[go.Figure, go.Figure]:
    """A's and B's architecture maps, titled "A: …" and "B: …", each marking what differs from the
    other with "≠"; a side refused before its trace gets a card with its error instead. ``compact``:
    laid out for a phone (see ``architecture_figure``)."""
    figures = []
    for key, side in zip(SIDES, (comparison.a, comparison.b)):
        if side.trace is None:
            figures.append(_message_figure(f"{side.name}: Architecture map", side.error or "no design"))
        else:
            figures.append(architecture_figure(side.trace, highlight=compare_highlight(comparison.traces, key),
                                               title_prefix=side.name, compact=compact))
    return figures[0], figures[1]


def _message_figure(title: str, message: str, height: int = 300) -> go.Figure:
    note = dict(x=0.5, y=0.5, xref="paper", yref="paper", text=wrap(message, 70), showarrow=False,
                font=dict(size=14, color=BAD))
    return go.Figure(layout=card_layout(title, height, annotations=[note], xaxis=hidden_axes(), yaxis=hidden_axes()))


# -- feature maps side by side ---------------------------------------------------------------------

ROW_PX = 240  # height of one level's row
GAP_PX = 58  # room between rows for two-line subplot titles
TOP_PX = 170  # title, subtitle and the two horizontal colour bars


def compare_heatmaps_figure(
    comparison: Comparison,
    *,
    reduction: Reduction = "mean",
    channel: int = 0,
    image: Any = None,
    opacity: float = 0.5,
    colorscale: str = "Viridis",
    difference_colorscale: str = "Magma",
) -> go.Figure:
    """Per level (C2–C5, P2–P7 present in either run): A's map | B's map | |A−B|.

    A and B of one level share one colour range (``paired_maps``), so equal colours are equal
    values. Where the level has the same shape on both sides, the third column is the L2 norm over
    channels of A − B (``difference_maps``, one scale for all levels) titled with the relative L2
    difference ``||A − B|| / max(||A||, ||B||)`` of the whole level; where shapes differ, or a side
    lacks the level, a text cell says so with both shapes.

    Args:
        comparison: ``compare(a, b, image, ..)``; the runs' levels are ``(1, C, H/stride, W/stride)``.
        reduction, channel: how channels become one map (``reduce_channels``).
        image: optional PIL image, drawn in grey under every map (sent once, as in ``heatmap_grid_figure``).
        opacity: map opacity over the image.

    Maps are sent as uint8 percent of their range and block-averaged alike when the finest map is
    longer than ``MAX_CELLS`` on a side, so the JSON stays small for any input size.
    """
    a, b = comparison.a, comparison.b
    la, lb = (a.run.levels if a.run else {}), (b.run.levels if b.run else {})
    label = f"channel {channel}" if reduction == "channel" else REDUCTIONS[reduction]
    title = f"A vs B: feature maps ({label})"
    pairs = paired_maps(la, lb, reduction, channel)
    if not pairs:
        reasons = " · ".join(_absent(s, None, channel) for s in (a, b))
        return _message_figure(title, f"no feature maps to compare: {reasons}")
    diffs = difference_maps(la, lb)
    arrays = {name: [None if m is None else _as_2d(m) for m in pair[:2]] for name, pair in pairs.items()}
    longest = max(max(x.shape) for pair in arrays.values() for x in pair if x is not None)
    f = max(1, math.ceil(longest / MAX_CELLS))
    names = list(pairs)
    n = len(names)
    plot_px = n * ROW_PX + (n - 1) * GAP_PX
    fig = make_subplots(rows=n, cols=3, horizontal_spacing=0.04, vertical_spacing=GAP_PX / plot_px if n > 1 else 0,
                        subplot_titles=[t for name in names for t in _row_titles(name, pairs[name], la, lb, diffs)])
    fig.update_annotations(font=dict(size=12, color=INK))  # the subplot titles
    for row, name in enumerate(names, start=1):
        lo, hi = pairs[name][2]
        for col, (side, x) in enumerate(zip((a, b), arrays[name]), start=1):
            if x is None:
                _text_cell(fig, row, col, _absent(side, name, channel))
                continue
            add_map(fig, row, col, _pool(x, f), side.trace, stride=side.trace.levels[name].stride * f, lo=lo, hi=hi,
                    label=f"<b>{side.name} · {name}</b>", image=image is not None, opacity=opacity,
                    meta=dict(side=side.name, level=name, range=[lo, hi]))
        if name in diffs.maps:
            add_map(fig, row, 3, _pool(_as_2d(diffs.maps[name]), f), a.trace, stride=a.trace.levels[name].stride * f,
                    lo=0.0, hi=diffs.vmax, label=f"<b>|A−B| · {name}</b>", image=image is not None, opacity=opacity,
                    coloraxis="coloraxis2", meta=dict(side="A−B", level=name, range=[0.0, diffs.vmax]))
        else:
            _text_cell(fig, row, 3, _no_difference(name, la, lb), color=INK)
    subtitle = ("A and B of a row share one colour scale; |A−B| is the L2 norm over channels of A − B, "
                "one scale for all levels" + (f"; every map at 1/{f} resolution" if f > 1 else ""))
    subtitle += "".join(f"<br><span style='color:{BAD}'>{wrap(_not_run(s), 110)}</span>"
                        for s in (a, b) if s.run is None)
    height = TOP_PX + plot_px + 12
    titles = [x.text for x in fig.layout.annotations]
    col_px = max([ROW_PX] + [text_size(x, 12)[0] + 8 for x in titles])
    fig.update_layout(card_layout(title, height, subtitle, margin=dict(l=10, r=10, t=TOP_PX, b=12),
                                  meta=dict(min_width=round(20 + 3 * col_px / (1 - 2 * 0.04)))))
    fig.update_layout(template=_heatmap_template(image), coloraxis=dict(
        colorscale=colorscale, cmin=0, cmax=100, colorbar=_bar(0.02, 0.6, ["row min", "row max"], [0, 100],
                                                                 "A, B (each row its own range)", height)),
        coloraxis2=dict(colorscale=difference_colorscale, cmin=0, cmax=100, colorbar=_bar(
            0.71, 0.27, [_fmt(diffs.vmax * q / 100) for q in (0, 50, 100)], [0, 50, 100], "|A−B|", height)))
    return fig


def _row_titles(name: str, pair, la: dict, lb: dict, diffs) -> list[str]:
    """Subplot titles of one level's row: A's and B's shapes with their shared range, and the difference."""
    lo, hi = pair[2]
    shared = "(A and B)" if pair[0] is not None and pair[1] is not None else ""
    titles = []
    for side, m, levels in (("A", pair[0], la), ("B", pair[1], lb)):
        x = levels.get(name)
        titles.append("" if m is None else f"<b>{side} · {name}</b> {format_shape(tuple(x.shape))}"
                      f"<br><span style='color:{MUTED}'>scale {_fmt(lo)} … {_fmt(hi)} {shared}</span>")
    if name in diffs.maps:
        d = relative_difference(la[name], lb[name])
        titles.append(f"<b>|A−B| · {name}</b> rel. L2 {d:.3g}<br><span style='color:{MUTED}'>"
                      f"max {_fmt(diffs.maps[name].max().item())}</span>")
    else:
        titles.append("")
    return titles


def _not_run(side: Side) -> str:
    """Why a side has no run: its error, or its shape mismatch."""
    why = side.error or ("shape mismatch: " + side.trace.mismatch.headline if side.trace and side.trace.mismatch
                         else "no image run")
    return f"{side.name} did not run: {why.removeprefix(side.name + ': ')}"


def _absent(side: Side, name: str | None, channel: int) -> str:
    """Why a side shows no map of ``name`` (any level when None)."""
    if side.run is None:
        return _not_run(side) if name is None else f"<b>{side.name} did not run</b><br>(see the subtitle)"
    x = side.run.levels.get(name) if name else None
    if name is None:
        return f"{side.name}: no level has channel {channel}"
    if x is None:
        return f"{side.name} has no {name}"
    return f"{side.name}: no channel {channel}<br>({x.shape[1]} channels)"


def _no_difference(name: str, la: dict, lb: dict) -> str:
    xa, xb = la.get(name), lb.get(name)
    if not la or not lb:
        return f"{'B' if not lb else 'A'} did not run:<br>no difference map"
    if xa is None or xb is None:
        return f"<b>only {'A' if xb is None else 'B'} has {name}</b><br>no difference map"
    return (f"<b>shapes differ</b><br>A {format_shape(tuple(xa.shape))}<br>B {format_shape(tuple(xb.shape))}"
            "<br>no element-wise difference")


def _text_cell(fig: go.Figure, row: int, col: int, text: str, color: str = MUTED) -> None:
    """``text`` in the middle of subplot (row, col), which has no map."""
    sub = fig.get_subplot(row, col)
    fig.add_annotation(x=sum(sub.xaxis.domain) / 2, y=sum(sub.yaxis.domain) / 2, xref="paper", yref="paper",
                       text=text, showarrow=False, font=dict(size=13, color=color), bgcolor=PILL_FILL,
                       bordercolor=PILL_EDGE, borderwidth=1, borderpad=8, name="text cell")


def _bar(x: float, length: float, text: list[str], ticks: list[float], title: str, height: int) -> dict[str, Any]:
    """A horizontal colour bar under the title, from ``x`` over ``length`` of the width."""
    return dict(orientation="h", x=x, xanchor="left", len=length, yref="container", y=1 - 66 / height, yanchor="top",
                thickness=12, outlinewidth=0, tickvals=ticks, ticktext=text, tickfont=dict(size=11),
                title=dict(text=title, side="top", font=dict(size=12)))


# -- the differences table -------------------------------------------------------------------------


def compare_table_rows(report: dict[str, Any]) -> list[list[str]]:
    """Rows of the differences table (columns ``COMPARE_TABLE_HEADERS``), plain strings for a dataframe.

    One row per level (shapes, receptive fields, memory, relative L2 difference when an image was
    run), then parameters and MACs per part (total, backbone, FPN, stem, layer1..4, FPN parts; parts
    that are zero on both sides left out) and activation memory, each marked "≠" where A and B differ.

    Args:
        report: ``Comparison.to_dict()`` (or ``compare_traces(..)``, without differences).
    """
    rows = []
    for name, lv in report["levels"].items():
        rf, mem = lv["receptive_field"], lv["bytes"]
        rows.append([
            "≠" if lv["differs"] else "", name, _shape(lv["a"]), _shape(lv["b"]),
            _cell(rf["a"], lambda v: f"{v} px"), _cell(rf["b"], lambda v: f"{v} px"),
            _cell(mem["a"], format_mib), _cell(mem["b"], format_mib), _level_difference(lv, report["mismatch"]),
        ])
    costs = report["costs"]
    for what, fmt in (("params", lambda v: f"{v:,}"), ("macs", format_count)):
        for part, pair in costs[what].items():
            if not pair["a"] and not pair["b"] and part not in ("total", "backbone", "fpn"):
                continue
            rows.append([_mark(pair), f"{'parameters' if what == 'params' else 'MACs'} · {part}",
                         _cell(pair["a"], fmt), _cell(pair["b"], fmt), "", "", "", "", _delta(pair, fmt)])
    for part, pair in costs["activation_bytes"].items():
        rows.append([_mark(pair), f"activation memory · {part.replace('_', ' ')}", "", "", "", "",
                     _cell(pair["a"], format_mib), _cell(pair["b"], format_mib), _delta(pair, format_mib)])
    return rows


def _cell(value: Any, fmt) -> str:
    return "—" if value is None else fmt(value)


def _shape(shape: list[int] | None) -> str:
    return _cell(shape, lambda s: format_shape(tuple(s)))


def _mark(pair: dict[str, Any]) -> str:
    return "≠" if pair["a"] != pair["b"] else ""


def _level_difference(lv: dict[str, Any], mismatch: dict[str, Any]) -> str:
    """What differs at a level, and the relative L2 difference of its activations when known."""
    if lv["a"] is None or lv["b"] is None:
        missing = "b" if lv["b"] is None else "a"
        if mismatch[missing]:
            return f"{missing.upper()} not reached (shape mismatch)"
        return f"only {'A' if missing == 'b' else 'B'}"
    (_, ca, *size_a), (_, cb, *size_b) = lv["a"], lv["b"]
    what = (["channels"] if ca != cb else []) + (["size"] if size_a != size_b else [])
    if lv["receptive_field"]["a"] != lv["receptive_field"]["b"]:
        what.append("receptive field")
    if lv["difference"] is not None:
        what.append(f"rel. L2 {lv['difference']:.3g}")
    return ", ".join(what)


def _delta(pair: dict[str, Any], fmt) -> str:
    """B − A with its sign and, where A is not zero, in percent: '+80 (+6.8%)'."""
    a, b = pair["a"], pair["b"]
    if a is None or b is None or a == b:
        return ""
    sign = "+" if b > a else "−"
    percent = f" ({(b - a) / a:+.1%})".replace("-", "−") if a else ""
    return f"{sign}{fmt(abs(b - a))}{percent}"
