"""ResNet backbone: stem, then layer1..layer4 returning C2..C5, declared before it runs."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import BasicBlock, Bottleneck
from .config import Config
from .levels import LevelSpec


class Stem(nn.Sequential):
    """7×7 stride-2 conv, BN, ReLU, 3×3 stride-2 max-pool: ``(N, 3, H, W) -> (N, C, H/4, W/4)``."""

    kind = "stem"

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 7, stride=2, padding=3, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)


class Stage(nn.Sequential):
    """The blocks of one stage (``layer1``..``layer4``); the first one changes stride and width."""

    kind = "stage"


class ResNetBackbone(nn.Module):
    """ResNet without its classifier. ``forward`` returns ``{"C2": .., "C5": ..}``.

    Level ``Ck`` is ``(N, widths[k-2], ceil(H/2^k), ceil(W/2^k))``; ``output_shape()`` declares
    channels and stride per level without running anything.

    Example:
        >>> bb = ResNetBackbone(Config())
        >>> bb.output_shape()["C3"]
        LevelSpec(channels=128, stride=8, module='layer2')
        >>> {k: (v.channels, v.stride) for k, v in bb.output_shape().items()}
        {'C2': (64, 4), 'C3': (128, 8), 'C4': (256, 16), 'C5': (512, 32)}
    """

    def __init__(self, config: Config):
        super().__init__()
        self.stem = Stem(config.input_channels, config.stem_width)
        self._levels: dict[str, LevelSpec] = {}  # written by the loop that builds the stages
        in_channels, stride = config.stem_width, 4
        for i, (width, n_blocks) in enumerate(zip(config.widths, config.blocks)):
            stage_stride = 1 if i == 0 else 2
            name = f"layer{i + 1}"
            blocks = []
            for j in range(n_blocks):
                site = f"{name}.{j}"
                s = stage_stride if j == 0 else 1
                if config.block == "basic":
                    blocks.append(BasicBlock(in_channels, width, s, config.skip, site=site))
                else:
                    blocks.append(
                        Bottleneck(in_channels, width, s, config.skip, config.stride_in, config.expansion, site=site)
                    )
                in_channels = width
            self.add_module(name, Stage(*blocks))
            stride *= stage_stride
            self._levels[f"C{i + 2}"] = LevelSpec(channels=width, stride=stride, module=name)

    def output_shape(self) -> dict[str, LevelSpec]:
        return dict(self._levels)

    @property
    def stage_names(self) -> dict[str, str]:
        """Level -> the stage module that produces it, e.g. ``{"C2": "layer1", ..}``, from the declaration."""
        return {level: spec.module for level, spec in self._levels.items()}

    def parts(self) -> dict[str, list[nn.Module]]:
        """The stem and each stage, by name, for counting parameters and MACs per part."""
        return {"stem": [self.stem]} | {s.module: [self.get_submodule(s.module)] for s in self._levels.values()}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self._stages_after({}, self.stem(x))

    def forward_from(self, known: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """All of C2..C5 from a prefix of them already computed (at least C2): runs the other stages.

        Raises:
            ValueError: ``known`` is not a prefix of the declared levels.
        """
        levels = list(self._levels)
        if not known or list(known) != levels[: len(known)]:
            raise ValueError(f"known levels {list(known)}: expected a prefix of {levels}")
        return self._stages_after(dict(known), known[levels[len(known) - 1]])

    def _stages_after(self, features: dict[str, torch.Tensor], x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Runs from ``x`` (the last level in ``features``, or the stem's output) the stages of the
        levels ``features`` lacks, adding their outputs to it."""
        for level, spec in self._levels.items():
            if level not in features:
                x = self.get_submodule(spec.module)(x)
                features[level] = x
        return features
