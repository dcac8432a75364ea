"""The whole model: optional input padding, ResNet backbone, FPN neck."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .add import ShapeMismatchError
from .backbone import ResNetBackbone
from .config import Config
from .diagnosis import explain
from .fpn import FPN
from .levels import LevelSpec

PAD_MULTIPLE = 32


class PadToMultiple(nn.Module):
    """Zero-pads bottom and right to a multiple of ``multiple``: ``(N, C, H, W) -> (N, C, H', W')``."""

    kind = "pad"

    def __init__(self, multiple: int):
        super().__init__()
        self.multiple = multiple

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        pad_h, pad_w = -h % self.multiple, -w % self.multiple
        return F.pad(x, (0, pad_w, 0, pad_h)) if pad_h or pad_w else x

    def extra_repr(self) -> str:
        return f"multiple={self.multiple}"


class ResFPN(nn.Module):
    """ResNet + FPN. ``forward((N, C_in, H, W))`` returns every level, C2..C5 then P2..P7.

    Example:
        >>> model = build_model(Config(input_height=224, input_width=224))
        >>> {k: tuple(v.shape) for k, v in model(torch.zeros(1, 3, 224, 224)).items()}  # doctest: +NORMALIZE_WHITESPACE
        {'C2': (1, 64, 56, 56), 'C3': (1, 128, 28, 28), 'C4': (1, 256, 14, 14), 'C5': (1, 512, 7, 7),
         'P2': (1, 256, 56, 56), 'P3': (1, 256, 28, 28), 'P4': (1, 256, 14, 14), 'P5': (1, 256, 7, 7),
         'P6': (1, 256, 4, 4)}
    """

    def __init__(self, config: Config):
        super().__init__()
        self.config = config
        if config.policy == "pad":
            self.pad = PadToMultiple(PAD_MULTIPLE)
        self.backbone = ResNetBackbone(config)
        declared = self.backbone.output_shape()
        self.fpn = FPN(
            {c: declared[c] for c in config.fpn_levels},
            config.fpn_width,
            upsample=config.upsample,
            policy=config.policy,
            p6=config.p6,
            p7=config.p7,
        )

    def output_shape(self) -> dict[str, LevelSpec]:
        """Channels, stride and module path of every level, declared by the parts without running."""
        backbone = {k: v.under("backbone") for k, v in self.backbone.output_shape().items()}
        return backbone | {k: v.under("fpn") for k, v in self.fpn.output_shape().items()}

    def level_modules(self) -> dict[str, str]:
        """Which module's output is each level, e.g. ``{"C2": "backbone.layer1", "P4": "fpn.output.P4"}``."""
        return {k: v.module for k, v in self.output_shape().items()}

    def parts(self) -> dict[str, list[nn.Module]]:
        """The parts costs are counted by: stem, layer1..layer4, fpn.lateral, fpn.output, fpn.extra."""
        return self.backbone.parts() | {f"fpn.{k}": v for k, v in self.fpn.parts().items()}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.dim() != 4 or x.shape[1] != self.config.input_channels:
            raise ValueError(
                f"expected input (N, {self.config.input_channels}, H, W), got {tuple(x.shape)}"
            )
        input_hw = (x.shape[-2], x.shape[-1])
        try:
            if self.config.policy == "pad":
                x = self.pad(x)
            features = self.backbone(x)
            return features | self.fpn(features)
        except ShapeMismatchError as err:
            explain(err, self.config, input_hw)
            raise


def build_model(config: Config, seed: int = 0, device: torch.device | str = "cpu") -> ResFPN:
    """The model for ``config`` in eval mode, with seeded random weights (same seed, same weights).

    On the ``meta`` device nothing is allocated and no random numbers are drawn.
    """
    device = torch.device(device)
    if device.type == "meta":
        with torch.device("meta"):
            return ResFPN(config).eval()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ResFPN(config)
    return model.to(device).eval()
