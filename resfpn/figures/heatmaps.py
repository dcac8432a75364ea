"""Heatmap grid: feature maps per level, C2–C5 above P2–P7, optionally over the input image."""

from __future__ import annotations

import base64
import io
import math
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..model.config import LEVEL_STRIDE
from ..shapes.records import Trace
from ._measure import text_size
from ._style import INK, MUTED, card_layout, hidden_axes, wrap

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


def _image_uri(image: Any, side: int = 192, max_bytes: int = IMAGE_BYTES, qualities: tuple[int, ...] = (75, 55, 35)) -> str:
    """The overlay image as a small greyscale JPEG data URI: at most ``side`` px a side and about
    ``max_bytes`` (halving the side until the lowest quality fits)."""
    im = image.convert("L")
    while True:
        small = im.copy()
        small.thumbnail((side, side))
        for quality in qualities:
            buf = io.BytesIO()
            small.save(buf, "JPEG", quality=quality, optimize=True)
            if buf.tell() <= max_bytes or side <= 32:
                return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
        side //= 2


CELL_PX = 120  # narrowest map, px a side
COLORBAR_PX = 110
NARROW_CHARS = 40  # subtitle line on a narrow screen


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
        text, title = [_fmt(lo + (hi - lo) * q / 100) for q in ticks], wrap(reduction_label, 12)
    else:
        ticks, text, title = [0, 50, 100], ["min", "mid", "max"], "each map:<br>own range"
    # The title runs beside the bar (side "right"), where no tick label can sit on it.
    return dict(tickvals=ticks, ticktext=text, title=dict(text=title.replace("<br>", " "), font=dict(size=12), side="right"),
                thickness=14, len=0.8,
                outlinewidth=0, tickfont=dict(size=11))


def _cells(names: list[str], columns: int | None = None) -> dict[str, tuple[int, int]]:
    """(row, column) of each map, from 1. By default a C row above a P row, one column per level
    number (Ck above Pk); with ``columns``, rows of that many maps, the P levels on a new row."""
    if columns is None:
        rows = [r for r in "CP" if any(n[0] == r for n in names)]
        numbers = sorted({int(n[1:]) for n in names})
        return {n: (rows.index(n[0]) + 1, numbers.index(int(n[1:])) + 1) for n in names}
    cells, row = {}, 0
    for kind in "CP":
        group = [n for n in names if n[0] == kind]
        for i, n in enumerate(group):
            cells[n] = (row + i // columns + 1, i % columns + 1)
        row += -(-len(group) // columns)
    return cells


def heatmap_grid_figure(
    maps: dict[str, Any],
    t: Trace,
    *,
    colorscale: str = "Viridis",
    shared_scale: bool = False,
    image: Any = None,
    opacity: float = 0.5,
    reduction_label: str = "mean",
    columns: int | None = None,
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
        columns: maps per row (a phone asks for 2); by default one column per level number, Ck
            above Pk.

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
        return go.Figure(layout=card_layout(title, 300, subtitle, annotations=[note], xaxis=hidden_axes(),
                                        yaxis=hidden_axes()))
    cells = _cells(order, columns)
    n_rows, n_cols = max(r for r, _ in cells.values()), max(k for _, k in cells.values())
    rows, cols = range(n_rows), range(n_cols)
    by_cell = {rc: n for n, rc in cells.items()}
    shared = _finite_range(list(arrays.values()))
    strides = {n: t.levels[n].stride if n in t.levels else LEVEL_STRIDE[n] for n in order}
    titles = [_map_title(n, arrays[n], strides[n], shared_scale) if (n := by_cell.get((r, k))) else ""
              for r in range(1, len(rows) + 1) for k in range(1, len(cols) + 1)]
    # Square cells at the measured column width, titles in the gap between rows: the height follows
    # from the width, so no empty band opens between the C and the P row.
    margin = dict(l=10, r=10, t=100, b=10)
    col_px = max([CELL_PX] + [text_size(x, 12)[0] + 8 for x in titles])
    title_px = max(text_size(x, 12)[1] for x in titles) + 10
    plot_h = len(rows) * col_px + (len(rows) - 1) * title_px
    colorbar = _colorbar(shared_scale, *shared, reduction_label)
    if columns is None:
        width = margin["l"] + margin["r"] + len(cols) * col_px / (1 - 0.02) + COLORBAR_PX
    else:  # narrow: the colour bar lies under the maps, not beside them, and the subtitle wraps short
        margin["b"] += 70
        subtitle = wrap(subtitle, NARROW_CHARS)
        margin["t"] += 17 * subtitle.count("<br>")
        colorbar |= dict(orientation="h", x=0.5, xanchor="center", y=0, yanchor="top", ypad=36, len=0.9,
                         thickness=10, title=colorbar["title"] | dict(side="top"))
        width = margin["l"] + margin["r"] + len(cols) * col_px / (1 - 0.02)
    fig = make_subplots(rows=len(rows), cols=len(cols), subplot_titles=titles, horizontal_spacing=0.02,
                        vertical_spacing=title_px / plot_h if len(rows) > 1 else 0.05)
    for name in order:
        row, col = cells[name]
        lo, hi = shared if shared_scale else _finite_range([arrays[name]])
        add_map(fig, row, col, _pool(arrays[name], f), t, stride=strides[name] * f, lo=lo, hi=hi,
                label=f"<b>{name}</b>", image=image is not None, opacity=opacity)
    fig.update_annotations(font=dict(size=12, color=INK))
    fig.update_layout(card_layout(title, margin["t"] + margin["b"] + plot_h, subtitle, margin=margin,
                                  meta=dict(min_width=round(width))))
    fig.update_layout(template=_heatmap_template(image), coloraxis=dict(
        colorscale=colorscale, cmin=0, cmax=100, colorbar=colorbar))
    return fig


def add_map(fig: go.Figure, row: int, col: int, shown: np.ndarray, t: Trace, *, stride: int, lo: float, hi: float,
            label: str, image: bool = False, opacity: float = 0.5, coloraxis: str = "coloraxis",
            meta: dict[str, Any] | None = None) -> None:
    """One map of ``t`` (already pooled to ``stride`` input pixels per cell) in subplot (row, col).

    Sent as uint8 percent of lo..hi with image-oriented square cells; hovering a cell names its
    input pixels. With ``image``, the template's overlay image is drawn under it, stretched to the
    network's input, and the map gets ``opacity``.
    """
    _, _, h_in, w_in = t.backbone_input_shape or t.input_shape
    fig.add_trace(go.Heatmap(
        z=_quantise(shown, lo, hi), x=_windows(shown.shape[1], stride, w_in), y=_windows(shown.shape[0], stride, h_in),
        coloraxis=coloraxis, opacity=opacity if image else 1.0, meta=meta,
        hovertemplate=(f"{label} cell, {stride}×{stride} input px<br>rows %{{y}}, cols %{{x}}<br>"
                       f"value: %{{z}}% of the way from {_fmt(lo)} to {_fmt(hi)}<extra></extra>"),
    ), row=row, col=col)
    sub = fig.get_subplot(row, col)
    x_ref, y_ref = sub.xaxis.plotly_name.replace("axis", ""), sub.yaxis.plotly_name.replace("axis", "")
    fig.update_yaxes(scaleanchor=x_ref, scaleratio=1, row=row, col=col)
    if image:
        c = t.config
        fig.add_layout_image(xref=x_ref, yref=y_ref, x=-0.5, y=-0.5, sizex=c.input_width / stride,
                             sizey=c.input_height / stride)


def _map_title(name: str, a: np.ndarray, stride: int, shared_scale: bool) -> str:
    """e.g. '<b>P3</b> 28×28 · stride 8', with the map's own value range below when not shared."""
    head = f"<b>{name}</b> {a.shape[0]}×{a.shape[1]} · stride {stride}"
    lo, hi = _finite_range([a])
    return head if shared_scale else f"{head}<br>range {_fmt(lo)} … {_fmt(hi)}"
