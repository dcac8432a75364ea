"""Receptive fields of one clicked point: the selected level over the image, every level in thumbnails.

Coordinates are input pixels of the resized image, as continuous positions: pixel ``(x, y)`` covers
``[x, x + 1) × [y, y + 1)``, so a box ``[top, left, bottom, right]`` (bottom/right exclusive) is
drawn exactly as the rectangle ``left..right × top..bottom``. Theoretical boxes are unclipped; the
axes grow to show the part outside the image, which is shaded (there are no pixels there, only the
padding the convolutions see).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..model.config import LEVEL_STRIDE
from ..analysis.effective import MASS, cell_at, check_point
from ..shapes.records import Trace
from ._measure import text_size
from ._style import FIELD_CELL as CELL
from ._style import FIELD_ERF_BOX as ERF_BOX
from ._style import FIELD_OUTSIDE as OUTSIDE
from ._style import FIELD_THEORY as THEORY
from ._style import INK, LEVEL_COLOR, MUTED, ON_MARK, card_layout, wrap
from .heatmaps import _image_uri as heatmap_image_uri
from .heatmaps import _pool, _quantise

MAX_ERF_CELLS = 128  # longest side of the effective-field map as sent (it is cropped to the theoretical box first)
IMAGE_SIDE = 256  # longest side of the image as sent, once, for the main panel and every thumbnail
IMAGE_BYTES = 16_000
THUMB_COLUMNS = 4  # Ck above Pk for k = 2..5; P6 and P7 on a third row

# Colour by mass rank: each pixel shows the share of the gradient held by the pixels at least as strong
# as it, so the coloured region up to 95 % is the smallest set of pixels holding 95 % (the 95 % box is the
# smallest rectangle). Beyond 95 % it is transparent, so the image shows through.
ERF_COLORSCALE = [[0.0, "rgba(128,0,38,0.9)"], [0.5, "rgba(227,26,28,0.75)"], [0.8, "rgba(253,141,60,0.55)"],
                  [0.95, "rgba(254,217,118,0.4)"], [0.955, "rgba(255,255,255,0)"], [1.0, "rgba(255,255,255,0)"]]

MIN_WIDTH = 640  # px: the image, the level legend under it and the subtitle's lines side by side


def receptive_field_figure(
    image: Any,
    point: tuple[int, int],
    t: Trace,
    fields: dict[str, dict[str, Any]],
    level: str,
    *,
    weights_label: str,
) -> go.Figure:
    """The fields of the cells covering ``point``: the selected level large, every level as a thumbnail.

    Args:
        image: the PIL image as the network saw it, ``W×H = config.input_width × config.input_height``.
        point: ``(x, y)`` in pixels of that image.
        t: the trace of the design (its exact fields give every level's theoretical box).
        fields: what ``resfpn.analysis.effective.effective_fields`` returned for this point; it must hold
            ``level`` (its ``erf`` map ``(H, W)`` and 95 % box are drawn). Other levels it holds get
            their 95 % box drawn in their thumbnail too.
        level: the level drawn large, one of the design's levels.
        weights_label: which weights produced the effective field, e.g. "random (seed 0)" or
            "ImageNet (torchvision)"; shown with a note that the effective field depends on them.

    The large panel shows the image, the cell's theoretical field (dashed, unclipped), the effective
    field as a heatmap (the input-gradient magnitude, linear from 0 to its maximum) with its 95 %
    box (solid), the cell's own stride tile and the point. The thumbnails, C2–C5 above P2–P7, share
    one scale so the boxes compare at a glance; the selected one is framed.

    Raises:
        ValueError: an unknown level, a level missing from ``fields``, or an image or map of the
            wrong size (the message names what is allowed).
        PointError: the point is not a pixel of the image.
    """
    c = t.config
    h_in, w_in = c.input_height, c.input_width
    if level not in t.fields:
        allowed = ", ".join(t.fields) or "none (the trace stopped at a mismatch)"
        raise ValueError(f"level {level!r} is not in this design; allowed: {allowed}")
    x, y = check_point(t, *point)
    if level not in fields:
        raise ValueError(f"no effective field for {level} in `fields` (it has: {', '.join(fields) or 'nothing'}); "
                         f"compute it with effective_fields(..., levels=[{level!r}])")
    if tuple(image.size) != (w_in, h_in):
        raise ValueError(f"image is {image.size[0]}×{image.size[1]} (W×H); expected the resized input "
                         f"{w_in}×{h_in}, as the network saw it")
    erf = np.asarray(fields[level]["erf"], dtype=np.float64)
    if erf.shape != (h_in, w_in):
        raise ValueError(f"effective field of {level} has shape {erf.shape}; expected ({h_in}, {w_in}) = (H, W)")

    names = [n for n in LEVEL_STRIDE if n in t.fields]
    cells = {n: cell_at(t, n, x, y) for n in names}
    boxes = {n: t.fields[n].box(*cells[n]) for n in names}
    places = _thumb_places(names)
    n_rows = max(r for r, _ in places.values())
    specs: list[list[dict | None]] = [[{"rowspan": n_rows} if r == 1 else None] + [None] * THUMB_COLUMNS
                                      for r in range(1, n_rows + 1)]
    for r, k in places.values():
        specs[r - 1][k] = {}
    fig = make_subplots(rows=n_rows, cols=1 + THUMB_COLUMNS, specs=specs,
                        column_widths=[0.54] + [0.46 / THUMB_COLUMNS] * THUMB_COLUMNS,
                        horizontal_spacing=0.012, vertical_spacing=0.1 if n_rows == 3 else 0.14,
                        subplot_titles=[_main_title(t, level, cells[level], boxes[level], fields[level])]
                        + [_thumb_title(t, n, cells[n], boxes[n], n == level) for n in _in_grid_order(places)])
    shapes: list[dict[str, Any]] = []
    images: list[dict[str, Any]] = []

    main = _refs(fig, 1, 1)
    view = _union([[0, 0, h_in, w_in], boxes[level]], margin=0.04)
    _panel(fig, shapes, images, main, view, h_in, w_in, 1, 1, ticks=True)
    _erf_trace(fig, erf, boxes[level], h_in, w_in)
    _boxes(shapes, main, level, cells[level], boxes[level], fields[level].get("erf_box"), t, legend=True)
    fig.add_trace(go.Scatter(x=[x + 0.5], y=[y + 0.5], mode="markers", name=f"point ({x}, {y})", showlegend=True,
                             marker=dict(size=11, color=ON_MARK, line=dict(color=INK, width=2.5)),
                             hovertemplate=f"clicked point x={x}, y={y}<extra></extra>"), row=1, col=1)

    shared = _union([[0, 0, h_in, w_in], *boxes.values()], margin=0.03)
    for n in names:
        r, k = places[n]
        refs = _refs(fig, r, k + 1)
        _panel(fig, shapes, images, refs, shared, h_in, w_in, r, k + 1, ticks=False)
        erf_box = fields[n].get("erf_box") if n in fields else None
        _boxes(shapes, refs, n, cells[n], boxes[n], erf_box, t, legend=False)
        fig.add_trace(go.Scatter(x=[x + 0.5], y=[y + 0.5], mode="markers", showlegend=False, hoverinfo="skip",
                                 marker=dict(size=4, color=INK)), row=r, col=k + 1)
        if n == level:
            shapes.append(dict(type="rect", xref=f"{refs[0]} domain", yref=f"{refs[1]} domain", x0=-0.03, x1=1.03,
                               y0=-0.03, y1=1.02, line=dict(color=LEVEL_COLOR[n[0]], width=3),
                               name="selected level", layer="above"))

    subtitle = wrap(f"point x={x}, y={y} of the {w_in}×{h_in} input · weights: {weights_label} · the effective "
                    "field depends on the weights (seeded random weights and trained ones give different maps); "
                    "the theoretical box does not", 105)
    fig.update_annotations(font=dict(size=12, color=INK))
    # The top margin holds the title block and, under it, the main panel's title: both measured.
    title = f"Receptive fields of the cells covering pixel ({x}, {y})"
    block_px = 14 + text_size(card_layout(title, 1, subtitle)["title"]["text"], 17)[1]
    main_px = text_size(fig.layout.annotations[0].text, 12)[1]
    top_margin = round(max(128, block_px + main_px + 16))
    height, bottom_margin = 200 + 150 * n_rows + (top_margin - 128), 112
    below = lambda px: -px / (height - top_margin - bottom_margin)  # noqa: E731  (pixels under the plot, in paper units)
    fig.update_layout(card_layout(
        title, height, subtitle,
        margin=dict(l=46, r=12, t=top_margin, b=bottom_margin), meta=dict(min_width=MIN_WIDTH),
        legend=dict(orientation="h", x=0, xanchor="left", y=below(26), yanchor="top", font=dict(size=12),
                    bgcolor="rgba(255,255,255,0)")))
    fig.update_layout(shapes=shapes, images=images, template=_template(image), showlegend=True,
                      coloraxis=dict(colorscale=ERF_COLORSCALE, cmin=0, cmax=100, colorbar=dict(
                          orientation="h", title=dict(text="effective field: share of the input gradient held by "
                                                      "the pixels at least this strong", side="top",
                                                      font=dict(size=11)),
                          thickness=9, len=0.45, x=0, xanchor="left", y=below(56), yanchor="top",
                          tickvals=[0, 50, 80, 95], ticktext=["0", "50 %", "80 %", "95 %"], tickfont=dict(size=10),
                          outlinewidth=0)))
    return fig


def _thumb_places(names: list[str]) -> dict[str, tuple[int, int]]:
    """(row, column) of each thumbnail, columns 1..4: Ck above Pk for k ≤ 5, then P6, P7 on the next row."""
    rows = [r for r in ("C", "P", "X") if any(_row_key(n) == r for n in names)]
    return {n: (rows.index(_row_key(n)) + 1, (int(n[1:]) - 2) % THUMB_COLUMNS + 1) for n in names}


def _row_key(name: str) -> str:
    return "X" if int(name[1:]) > 5 else name[0]


def _in_grid_order(places: dict[str, tuple[int, int]]) -> list[str]:
    """Level names in make_subplots' title order (row by row, left to right)."""
    return sorted(places, key=lambda n: places[n])


def _refs(fig: go.Figure, row: int, col: int) -> tuple[str, str]:
    sub = fig.get_subplot(row, col)
    return sub.xaxis.plotly_name.replace("axis", ""), sub.yaxis.plotly_name.replace("axis", "")


def _union(boxes: list[list[int]], margin: float) -> list[float]:
    """The smallest ``[top, left, bottom, right]`` holding every box, grown by ``margin`` of its larger side."""
    top, left = min(b[0] for b in boxes), min(b[1] for b in boxes)
    bottom, right = max(b[2] for b in boxes), max(b[3] for b in boxes)
    pad = margin * max(bottom - top, right - left)
    return [top - pad, left - pad, bottom + pad, right + pad]


def _size(box: list[int]) -> str:
    """'195×227 px' (height × width) of a box."""
    return f"{box[2] - box[0]}×{box[3] - box[1]} px"


def _main_title(t: Trace, level: str, cell: tuple[int, int], box: list[int], f: dict[str, Any]) -> str:
    head = (f"<b>{level}</b> cell [{cell[0]}, {cell[1]}] · stride {t.levels[level].stride}<br>"
            f"theoretical field {_size(box)} (dashed)")
    erf_box = f.get("erf_box")
    if erf_box is None:
        return head + "<br>effective field: zero everywhere (no input gradient reaches this cell)"
    share = f.get("erf_mass_in_box", MASS)
    return head + f"<br>effective field: {MASS:.0%} of it in {_size(erf_box)} (solid; holds {share:.1%})"


def _thumb_title(t: Trace, name: str, cell: tuple[int, int], box: list[int], selected: bool) -> str:
    color = LEVEL_COLOR[name[0]] if selected else INK
    mark = "▶ " if selected else ""
    return (f"<span style='color:{color}'>{mark}<b>{name}</b> [{cell[0]}, {cell[1]}]</span><br>"
            f"<span style='font-size:11px;color:{MUTED}'>{_size(box)}</span>")


def _panel(fig: go.Figure, shapes: list, images: list, refs: tuple[str, str], view: list[float], h_in: int,
           w_in: int, row: int, col: int, ticks: bool) -> None:
    """The image at ``[0, W) × [0, H)``, its outline, the shaded outside, and axes fixed to ``view``."""
    xr, yr = refs
    images.append(dict(xref=xr, yref=yr, x=0, y=0, sizex=w_in, sizey=h_in))
    shapes.append(dict(type="rect", xref=xr, yref=yr, x0=0, y0=0, x1=w_in, y1=h_in, layer="below",
                       line=dict(color=MUTED, width=1), name="image"))
    top, left, bottom, right = view
    bands = [(left, top, right, 0), (left, h_in, right, bottom), (left, 0, 0, h_in), (w_in, 0, right, h_in)]
    xs: list[float | None] = []
    ys: list[float | None] = []
    for x0, y0, x1, y1 in bands:
        if x1 > x0 and y1 > y0:
            xs += [x0, x1, x1, x0, x0, None]
            ys += [y0, y0, y1, y1, y0, None]
    if xs:
        fig.add_trace(go.Scatter(
            x=xs, y=ys, mode="lines", fill="toself", fillcolor="rgba(229,231,235,0.9)", line=dict(width=0),
            fillpattern=dict(shape="/", fgcolor=OUTSIDE, size=8, solidity=0.15), hoveron="fills", showlegend=False,
            name="outside the image", text="outside the image: no pixels, only the padding the convolutions see",
            hoverinfo="text"), row=row, col=col)
    axis = dict(showgrid=False, zeroline=False, showline=False, fixedrange=False, constrain="domain")
    tick = dict(showticklabels=True, ticks="outside", ticklen=3, tickfont=dict(size=10, color=MUTED)) if ticks \
        else dict(showticklabels=False, ticks="")
    fig.update_xaxes(axis | tick | dict(range=[left, right], constraintoward="left"), row=row, col=col)
    fig.update_yaxes(axis | tick | dict(range=[bottom, top], scaleanchor=xr, scaleratio=1, constraintoward="top"),
                     row=row, col=col)


def _boxes(shapes: list, refs: tuple[str, str], name: str, cell: tuple[int, int], box: list[int],
           erf_box: list[int] | None, t: Trace, legend: bool) -> None:
    """The theoretical box (dashed), the cell's stride tile and, when known, the 95 % effective box (solid)."""
    xr, yr = refs
    s = t.levels[name].stride
    row, col = cell
    thin = 1.2 if not legend else 2.0
    shapes.append(dict(type="rect", xref=xr, yref=yr, x0=col * s, x1=(col + 1) * s, y0=row * s, y1=(row + 1) * s,
                       line=dict(color=CELL, width=thin), fillcolor="rgba(8,145,178,0.25)",
                       name=f"{name} cell ({s}×{s} px tile)", legendrank=3, showlegend=legend))
    shapes.append(dict(type="rect", xref=xr, yref=yr, x0=box[1], x1=box[3], y0=box[0], y1=box[2],
                       line=dict(color=THEORY, width=thin, dash="dash"), name=f"{name} theoretical field",
                       legendrank=1, showlegend=legend))
    if erf_box is not None:
        shapes.append(dict(type="rect", xref=xr, yref=yr, x0=erf_box[1], x1=erf_box[3], y0=erf_box[0],
                           y1=erf_box[2], line=dict(color=ERF_BOX, width=thin), name=f"{name} effective field "
                           f"({MASS:.0%} box)", legendrank=2, showlegend=legend))


def _erf_trace(fig: go.Figure, erf: np.ndarray, box: list[int], h_in: int, w_in: int) -> None:
    """The effective field inside the theoretical box (zero outside it), as uint8 percent of its maximum."""
    peak = float(erf.max())
    if not peak > 0:
        return
    top, left = max(0, box[0]), max(0, box[1])
    bottom, right = min(h_in, box[2]), min(w_in, box[3])
    crop = erf[top:bottom, left:right]
    f = max(1, math.ceil(max(crop.shape) / MAX_ERF_CELLS))
    shown = _pool(crop, f)
    # Cell edges (n + 1 of them): exact at the crop's far edges even when the last block is partial.
    ys = np.minimum(np.arange(shown.shape[0] + 1) * f + top, bottom)
    xs = np.minimum(np.arange(shown.shape[1] + 1) * f + left, right)
    fig.add_trace(go.Heatmap(
        z=_quantise(_mass_rank(shown), 0.0, 1.0), x=xs, y=ys, coloraxis="coloraxis", zsmooth=False,
        name="effective field",
        hovertemplate=("x %{x:.0f}, y %{y:.0f}" + (f" (mean over {f}×{f} px)" if f > 1 else "")
                       + ": among the strongest pixels holding %{z}% of the input gradient<extra></extra>"),
    ), row=1, col=1)


def _mass_rank(m: np.ndarray) -> np.ndarray:
    """Per pixel, the share of ``m``'s total held by the pixels at least as large (0..1; zeros get 1)."""
    flat = m.ravel()
    order = np.argsort(-flat, kind="stable")
    rank = np.empty(flat.size)
    rank[order] = np.cumsum(flat[order]) / flat.sum()
    rank[flat <= 0] = 1.0
    return rank.reshape(m.shape)


def _template(image: Any) -> go.layout.Template:
    """The image stored once, for the main panel and every thumbnail."""
    return go.layout.Template(layout=dict(imagedefaults=dict(
        source=_image_uri(image), xanchor="left", yanchor="top", sizing="stretch", layer="below")))


def _image_uri(image: Any) -> str:
    """The image as a greyscale JPEG data URI, at most IMAGE_SIDE px a side and about IMAGE_BYTES."""
    return heatmap_image_uri(image, IMAGE_SIDE, IMAGE_BYTES, (80, 60, 40))
