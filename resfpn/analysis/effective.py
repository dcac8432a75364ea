"""Effective receptive fields (Luo et al., NeurIPS 2016): where a cell's activation really looks.

For a point of the input image and each level, the cell covering the point, its exact theoretical
box (``resfpn.shapes.receptive``) and its effective field: ``|∂(Σ_c a_c[row, col]) / ∂x|`` summed over the
input channels, an ``(H, W)`` map, with the smallest box holding 95 % of its mass.

Cost: one forward with autograd, then one backward per requested level (parameters do not need
gradients, so each backward computes input gradients only). Ask for the selected level only to keep a
click at one forward and one backward.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..model.config import Config
from ..shapes.tracing import Trace, trace

MASS = 0.95
SEARCH_CELLS = 96  # the exact box search runs on a grid of at most this many blocks a side


class PointError(ValueError):
    """A point that is not a pixel of the input image; the message names the point and the image size."""


def cell_at(t: Trace, level: str, x: int, y: int) -> tuple[int, int]:
    """``(row, col)`` of the cell of ``level`` whose stride-sized tile ``[k·s, (k+1)·s)`` holds pixel ``(x, y)``.

    Clamped to the level's size (under the 'match' policy a level may cover slightly less than its tiles).
    """
    lv = t.levels[level]
    return min(y // lv.stride, lv.shape[2] - 1), min(x // lv.stride, lv.shape[3] - 1)


def check_point(t: Trace, x: Any, y: Any) -> tuple[int, int]:
    """The point as whole pixels, or ``PointError``; a traced mismatch is raised as its diagnosis."""
    c = t.config
    try:
        xi, yi = int(x), int(y)
        if xi != x or yi != y:
            raise ValueError
    except (TypeError, ValueError):
        raise PointError(f"point ({x!r}, {y!r}): expected whole pixel coordinates x, y") from None
    if not (0 <= xi < c.input_width and 0 <= yi < c.input_height):
        raise PointError(
            f"point (x={xi}, y={yi}) is outside the {c.input_width}×{c.input_height} input "
            f"(allowed: 0 ≤ x < {c.input_width}, 0 ≤ y < {c.input_height}, in pixels of the resized image)"
        )
    if t.mismatch is not None:
        raise t.mismatch
    return xi, yi


def effective_fields(
    model: torch.nn.Module, image: torch.Tensor, point: tuple[int, int], levels: list[str] | None = None,
    t: Trace | None = None, config: Config | None = None,
) -> dict[str, dict[str, Any]]:
    """Theoretical and effective field, per level, of the cell covering ``point = (x, y)``.

    Args:
        model: a ``ResFPN`` (BN folded or not) built for ``image``'s size.
        image: ``(1, C_in, H, W)``, as the model sees it.
        point: ``(x, y)`` in input pixels.
        levels: which levels (default: every level the design has); each costs one backward.
        t: the shape trace of ``model.config`` at this size (traced when not given).
        config: the design at this input size, when ``model.config`` is the size-free one a cache keeps.

    Returns:
        ``{"C2": {"cell": [row, col], "box": [top, left, bottom, right], "erf": (H, W) float32 array,
        "erf_box": [...], "erf_mass_in_box": float}, ...}``. Boxes are in input pixels, bottom/right
        exclusive; ``box`` is unclipped, ``erf_box`` lies within the image (None if the map is all zero).

    Raises:
        PointError: the point is not a pixel of the image.
        ShapeMismatchError: the design cannot run at this size (with its diagnosis).
    """
    config = config or model.config
    if image.dim() != 4 or image.shape[0] != 1 or tuple(image.shape[2:]) != (config.input_height, config.input_width):
        raise ValueError(
            f"image {tuple(image.shape)}: expected (1, {config.input_channels}, {config.input_height}, "
            f"{config.input_width}) for this design"
        )
    t = t or trace(config.replace(batch=1))
    x, y = check_point(t, *point)
    wanted = list(levels) if levels is not None else list(t.levels)
    unknown = [lv for lv in wanted if lv not in t.levels]
    if unknown:
        raise ValueError(f"levels {unknown}: not in this design; allowed: {', '.join(t.levels)}")
    needs = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        inp = image.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            out = model(inp)
            result = {}
            for i, name in enumerate(wanted):
                row, col = cell_at(t, name, x, y)
                (grad,) = torch.autograd.grad(out[name][0, :, row, col].sum(), inp, retain_graph=i < len(wanted) - 1)
                erf = grad[0].abs().sum(0).float().cpu().numpy()
                box, mass = mass_box(erf)
                result[name] = {"cell": [row, col], "box": t.fields[name].box(row, col), "erf": erf,
                                "erf_box": box, "erf_mass_in_box": mass}
    finally:
        for p, n in zip(model.parameters(), needs):
            p.requires_grad_(n)
    return result


def receptive_field_report(
    model: torch.nn.Module, image: torch.Tensor, x: int, y: int, levels: list[str] | None = None
) -> dict[str, Any]:
    """What ``/receptive_field`` returns: ``{"point": [x, y], "levels": {"C2": {"cell", "box", "erf_box",
    "erf_mass_in_box", "stride", "receptive_field_range"}, ..}}`` (JSON-ready, the maps left out)."""
    t = trace(model.config.replace(batch=1))
    fields = effective_fields(model, image, (x, y), levels, t)
    out = {}
    for name, f in fields.items():
        out[name] = {k: v for k, v in f.items() if k != "erf"}
        out[name]["stride"] = t.levels[name].stride
        out[name]["receptive_field_range"] = list(t.levels[name].receptive_field_range)
    return {"point": [int(x), int(y)], "levels": out}


def mass_box(m: np.ndarray, mass: float = MASS) -> tuple[list[int] | None, float]:
    """The smallest box ``[top, left, bottom, right]`` (bottom/right exclusive) holding ``mass`` of ``m``.

    "Smallest" is least area (ties: the first found, scanning tops downward). Exact over boxes whose
    edges lie on a grid of ``b = ceil(max(H, W) / 96)`` pixels (exact at pixel level up to 96 px a
    side); the edges of that box are then moved inward one pixel at a time while ``mass`` remains,
    so the result holds at least ``mass`` but may exceed the pixel-level optimum by less than ``b``
    pixels per edge. Returns ``(None, 0.0)`` for an all-zero map.
    """
    m = np.asarray(m, dtype=np.float64)
    total = m.sum()
    if not total > 0:
        return None, 0.0
    h, w = m.shape
    b = max(1, -(-max(h, w) // SEARCH_CELLS))
    gh, gw = -(-h // b), -(-w // b)
    padded = np.zeros((gh * b, gw * b))
    padded[:h, :w] = m / total
    g = padded.reshape(gh, b, gw, b).sum((1, 3))
    need = mass - 1e-12
    rows = np.vstack([np.zeros((1, gw)), np.cumsum(g, 0)])  # rows[i] = column sums of block rows < i
    best = (np.inf, 0.0, 0, 0, 0, 0)
    for top in range(gh):
        strip = rows[top + 1:] - rows[top]  # (bottoms, gw): column sums of block rows top..bottom
        cum = np.hstack([np.zeros((strip.shape[0], 1)), np.cumsum(strip, 1)])  # (bottoms, gw + 1)
        ok = cum[:, -1] >= need
        if not ok.any():
            continue
        cum = cum[ok]
        bottoms = np.nonzero(ok)[0] + top + 1
        # For each left edge, the first right edge whose strip sum reaches the mass (rows made one
        # increasing sequence by an offset of 2 per row, so one searchsorted serves them all).
        offset = 2.0 * np.arange(cum.shape[0])[:, None]
        flat = (cum + offset).ravel()
        right = np.searchsorted(flat, (cum[:, :-1] + need + offset).ravel(), side="left").reshape(cum.shape[0], gw)
        right -= (gw + 1) * np.arange(cum.shape[0])[:, None]
        valid = right <= gw
        width = np.where(valid, right - np.arange(gw)[None, :], 10**9)  # invalid: never the least area
        area = width * (bottoms - top)[:, None]
        i, j = np.unravel_index(np.argmin(area), area.shape)
        if valid[i, j]:
            got = cum[i, right[i, j]] - cum[i, j]
            cand = (area[i, j], -got, top, j, bottoms[i], right[i, j])
            if cand[:2] < best[:2]:
                best = cand
    _, _, t0, l0, b0, r0 = best
    box = [t0 * b, l0 * b, min(b0 * b, h), min(r0 * b, w)]
    share = m / total
    inside = lambda bx: share[bx[0]:bx[2], bx[1]:bx[3]].sum()  # noqa: E731
    moved = b > 1
    while moved:
        moved = False
        for edge, step in ((0, 1), (1, 1), (2, -1), (3, -1)):
            trial = list(box)
            trial[edge] += step
            if trial[0] < trial[2] and trial[1] < trial[3] and inside(trial) >= need:
                box, moved = trial, True
    return [int(v) for v in box], float(min(1.0, inside(box)))


def image_fields(engine, config, image, point: tuple[int, int], weights, levels: list[str] | None = None):
    """``effective_fields`` for a PIL image through ``engine``'s cached model with ``weights``.

    Returns ``(fields, resized)``: the per-level result and the image as the network saw it. Holds
    the engine's slot (the backward needs the model to itself).
    """
    from ..serving.images import resize_for_input, to_tensor

    resized = resize_for_input(image, config.input_height, config.input_width)
    with engine.slot():
        model, _, _ = engine.model(config.replace(batch=1), weights, grad=True)
        x = to_tensor(resized, 1).to(engine.device)
        return effective_fields(model, x, point, levels, config=config.replace(batch=1)), resized
