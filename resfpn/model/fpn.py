"""Feature Pyramid Network neck (Lin et al., 2017), built from a backbone's level declaration."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .add import checked_add
from .config import P6_SOURCES, P6Source, Policy, Upsample
from .levels import LevelSpec


def merge_site(level: str) -> str:
    """Where the top-down merge that makes ``level`` happens, as errors and the trace name it."""
    return f"FPN merge into {level}"


class TopDownResize(nn.Module):
    """Brings the coarser merged map to the lateral's resolution.

    ``policy='x2'`` (and ``'pad'``, whose input is already padded) scales by exactly 2, as in the
    paper; ``'match'`` resizes to the lateral's actual size, as torchvision does, so any input works.
    """

    kind = "upsample"

    def __init__(self, mode: Upsample, policy: Policy):
        super().__init__()
        self.mode, self.policy = mode, policy

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if self.policy == "match":
            return F.interpolate(x, size=size, mode=self.mode)
        return F.interpolate(x, scale_factor=2.0, mode=self.mode)

    def extra_repr(self) -> str:
        return f"mode={self.mode}, policy={self.policy}"


class FPN(nn.Module):
    """Lateral 1×1 convs, a top-down path of resize + checked add, 3×3 output convs, P6/P7.

    Args:
        in_levels: backbone declaration, e.g. ``{"C2": LevelSpec(64, 4, "layer1"), .., "C5": ..}``.
        out_channels: the pyramid width d.
        upsample: ``'nearest'`` or ``'bilinear'``.
        policy: ``'x2'``, ``'match'`` or ``'pad'`` (see ``TopDownResize``).
        p6: ``'p5-conv'``, ``'c5-conv'``, ``'maxpool'`` or ``'none'``.
        p7: add P7 = 3×3 stride-2 conv on ReLU(P6).

    ``forward`` takes the backbone's dict and returns ``{"P2": (N, d, H/4, W/4), .., "P6": ..}``.
    """

    def __init__(
        self,
        in_levels: dict[str, LevelSpec],
        out_channels: int,
        upsample: Upsample = "nearest",
        policy: Policy = "x2",
        p6: P6Source = "p5-conv",
        p7: bool = False,
    ):
        super().__init__()
        self.in_levels = dict(in_levels)
        self.p6_source, self.has_p7 = p6, p7
        names = list(self.in_levels)
        top = names[-1]
        self.lateral = nn.ModuleDict({c: nn.Conv2d(s.channels, out_channels, 1) for c, s in self.in_levels.items()})
        self.output = nn.ModuleDict({"P" + c[1:]: nn.Conv2d(out_channels, out_channels, 3, padding=1) for c in names})
        self.upsample = nn.ModuleDict({"P" + c[1:]: TopDownResize(upsample, policy) for c in names[:-1]})
        self._out = {p: LevelSpec(out_channels, s.stride, f"output.{p}") for p, s in zip(self.output, in_levels.values())}
        top_stride = self.in_levels[top].stride
        if p6 == "maxpool":
            self.p6 = nn.MaxPool2d(1, stride=2)
        elif p6 in ("p5-conv", "c5-conv"):
            source_channels = out_channels if p6 == "p5-conv" else self.in_levels[top].channels
            self.p6 = nn.Conv2d(source_channels, out_channels, 3, stride=2, padding=1)
        elif p6 != "none":
            raise ValueError(f"p6={p6!r}: unknown P6 source; allowed: {', '.join(map(repr, P6_SOURCES))}")
        if p6 != "none":
            self._out["P6"] = LevelSpec(out_channels, top_stride * 2, "p6")
        if p7:
            if p6 == "none":
                raise ValueError("p7=True needs a P6 to build on")
            self.p7_relu = nn.ReLU()  # not in place: P6 is an output too
            self.p7 = nn.Conv2d(out_channels, out_channels, 3, stride=2, padding=1)
            self._out["P7"] = LevelSpec(out_channels, top_stride * 4, "p7")

    def output_shape(self) -> dict[str, LevelSpec]:
        return dict(self._out)

    def parts(self) -> dict[str, list[nn.Module]]:
        """Laterals, output convs and the extra levels (P6/P7), for counting per part."""
        extra = [m for m in (getattr(self, n, None) for n in ("p6", "p7_relu", "p7")) if m is not None]
        return {"lateral": [self.lateral], "output": [self.output], "extra": extra}

    def level_sources(self) -> dict[str, list[nn.Module]]:
        """The modules whose parameters make each level: lateral and output conv, or the P6/P7 conv."""
        sources = {"P" + c[1:]: [self.lateral[c], self.output["P" + c[1:]]] for c in self.in_levels}
        return sources | {p: [getattr(self, p.lower())] for p in ("P6", "P7") if p in self._out}

    def merge(self, level: str, feature: torch.Tensor, coarser: torch.Tensor) -> torch.Tensor:
        """The top-down merge into ``level``'s P: ``lateral(feature) + resize(coarser)``, checked."""
        p = "P" + level[1:]
        lateral = self.lateral[level](feature)
        top_down = self.upsample[p](coarser, lateral.shape[-2:])
        names = (f"lateral({level})", f"upsampled P{int(level[1:]) + 1}")
        return checked_add(lateral, top_down, merge_site(p), names)

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        names = list(self.in_levels)
        top = names[-1]
        merged = self.lateral[top](features[top])
        results = {"P" + top[1:]: self.output["P" + top[1:]](merged)}
        for c in reversed(names[:-1]):
            p = "P" + c[1:]
            merged = self.merge(c, features[c], merged)
            results[p] = self.output[p](merged)
        results = dict(sorted(results.items()))
        if self.p6_source != "none":
            top_p = "P" + top[1:]
            source = features[top] if self.p6_source == "c5-conv" else results[top_p]
            results["P6"] = self.p6(source)
        if self.has_p7:
            results["P7"] = self.p7(self.p7_relu(results["P6"]))
        return results
