"""How far apart two designs' activations are: relative L2 differences, difference maps, maps on a
shared scale, and which backbone levels two models compute identically (so one can reuse the other's)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .activations import reduce_channels
from ..model.config import LEVEL_STRIDE
from ..shapes.records import Trace


def relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    """Relative L2 difference of two activations of the same shape ``(N, C, H, W)``:

        ||A − B|| / max(||A||, ||B||)      (0 when both are zero)

    over all elements. It is symmetric (swapping A and B gives the same number), lies in 0..2,
    and is exactly 0 for identical tensors.
    """
    if a.shape != b.shape:
        raise ValueError(f"shapes {tuple(a.shape)} and {tuple(b.shape)} differ: no element-wise difference")
    if a is b:
        return 0.0
    a, b = a.float(), b.float()
    num = torch.linalg.vector_norm(a - b).item()
    den = max(torch.linalg.vector_norm(a).item(), torch.linalg.vector_norm(b).item())
    return num / den if den > 0 else 0.0


@dataclass
class DifferenceMaps:
    """Per level whose shapes agree, ``(H, W)`` = L2 norm over channels of A − B (first image of
    the batch); every map shares the colour scale 0..``vmax``."""

    maps: dict[str, torch.Tensor]
    vmax: float


def difference_maps(levels_a: dict[str, torch.Tensor], levels_b: dict[str, torch.Tensor]) -> DifferenceMaps:
    """Difference maps of the levels both sides have with the same shape, on one shared scale."""
    maps = {}
    for name in LEVEL_STRIDE:
        a, b = levels_a.get(name), levels_b.get(name)
        if a is not None and b is not None and a.shape == b.shape:
            maps[name] = torch.linalg.vector_norm((a[0] - b[0]).float(), dim=0)
    vmax = max((m.max().item() for m in maps.values()), default=0.0)
    return DifferenceMaps(maps, vmax)


def paired_maps(
    levels_a: dict[str, torch.Tensor], levels_b: dict[str, torch.Tensor], reduction: str = "mean", channel: int = 0
) -> dict[str, tuple[torch.Tensor | None, torch.Tensor | None, tuple[float, float]]]:
    """Per level, A's and B's heatmaps ``(H, W)`` (``reduce_channels``; None where a side lacks the
    level or the channel) and the colour range they share."""
    out = {}
    for name in LEVEL_STRIDE:
        maps = []
        for levels in (levels_a, levels_b):
            x = levels.get(name)
            maps.append(None if x is None or (reduction == "channel" and channel >= x.shape[1])
                        else reduce_channels(x, reduction, channel))
        present = [m for m in maps if m is not None]
        if present:
            lo = min(m.min().item() for m in present)
            hi = max(m.max().item() for m in present)
            out[name] = (maps[0], maps[1], (lo, hi))
    return out


def _same_module(x: nn.Module, y: nn.Module) -> bool:
    """Same structure (as printed) and equal parameters and buffers."""
    if repr(x) != repr(y):
        return False
    sx, sy = x.state_dict(), y.state_dict()
    return sx.keys() == sy.keys() and all(torch.equal(sx[k], sy[k]) for k in sx)


def shared_levels(model_a: nn.Module, model_b: nn.Module, ta: Trace, tb: Trace) -> tuple[str, ...]:
    """Backbone levels (a prefix of C2..C5) that the two models compute identically from the same
    image: same input and padded size, same stem, and the same stages up to that level."""
    if ta.input_shape != tb.input_shape or ta.backbone_input_shape != tb.backbone_input_shape:
        return ()
    ba, bb = model_a.backbone, model_b.backbone
    if not _same_module(ba.stem, bb.stem):
        return ()
    declared_b = bb.output_shape()
    shared = []
    for level, spec in ba.output_shape().items():
        other = declared_b.get(level)
        if other is None or other.module != spec.module:
            break
        if not _same_module(ba.get_submodule(spec.module), bb.get_submodule(other.module)):
            break
        shared.append(level)
    return tuple(shared)
