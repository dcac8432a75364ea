"""Turn level activations ``(N, C, H, W)`` into 2-D maps and per-level statistics."""

from __future__ import annotations

import torch

from ..model.config import REDUCTIONS, Reduction


def reduce_channels(x: torch.Tensor, reduction: Reduction = "mean", channel: int = 0) -> torch.Tensor:
    """One map per level: ``(N, C, H, W)`` or ``(C, H, W)`` -> ``(H, W)`` (first image of the batch).

    Raises:
        ValueError: unknown reduction, or a channel index outside ``0..C-1``.
    """
    x = x[0] if x.dim() == 4 else x
    if reduction == "mean":
        return x.mean(0)
    if reduction == "mean-abs":
        return x.abs().mean(0)
    if reduction == "l2":
        return torch.linalg.vector_norm(x, dim=0)
    if reduction == "max":
        return x.amax(0)
    if reduction == "channel":
        if not 0 <= channel < x.shape[0]:
            raise ValueError(f"channel={channel}: this level has channels 0..{x.shape[0] - 1}")
        return x[channel]
    raise ValueError(f"reduction={reduction!r}: unknown; allowed: {', '.join(map(repr, REDUCTIONS))}")


def level_stats(x: torch.Tensor, top: int = 3) -> dict[str, object]:
    """Mean, std, fraction of exact zeros and the ``top`` channels by energy (mean x²) of one level."""
    x = x[0] if x.dim() == 4 else x
    energy = x.pow(2).mean(dim=(1, 2))
    k = min(top, energy.numel())
    values, idx = energy.topk(k)
    return {
        "mean": x.mean().item(),
        "std": x.std(unbiased=False).item(),
        "zeros": (x == 0).float().mean().item(),
        "top_channels": [(int(i), float(v)) for i, v in zip(idx, values)],
    }


def reduce_levels(
    levels: dict[str, torch.Tensor], reduction: Reduction = "mean", channel: int = 0
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """One 2-D map per level (``reduce_channels`` of each), and the levels left out because
    ``channel`` does not exist there, as readable notes ("P3 has 8 channels")."""
    maps, skipped = {}, []
    for name, x in levels.items():
        try:
            maps[name] = reduce_channels(x, reduction, channel)
        except ValueError:
            skipped.append(f"{name} has {x.shape[1]} channels")
    return maps, skipped
