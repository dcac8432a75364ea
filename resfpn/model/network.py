"""The whole model: optional input padding, ResNet backbone, FPN neck."""

from __future__ import annotations

import hashlib

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

    def forward_from(self, known: dict[str, torch.Tensor], input_hw: tuple[int, int]) -> dict[str, torch.Tensor]:
        """Finish a forward from backbone levels already computed, e.g. by another design whose
        stem and first stages equal this one's: runs the remaining stages, then the FPN.

        Args:
            known: ``{"C2": (N, C, H/4, W/4), ..}``, a prefix of C2..C5 (at least C2).
            input_hw: the input's height and width, for the diagnosis of a mismatch.
        """
        try:
            features = self.backbone.forward_from(known)
            return features | self.fpn(features)
        except ShapeMismatchError as err:
            explain(err, self.config, input_hw)
            raise


def module_seed(seed: int, path: str, module: nn.Module) -> int:
    """The seed of one module's own parameters: a hash of (seed, module path, parameter shapes).

    sha256, not ``hash()``: the same in every process and on every platform. Two designs that
    share a module (same path, same shapes) therefore give it the same seeded weights.
    """
    shapes = [(name, tuple(p.shape)) for name, p in module.named_parameters(recurse=False)]
    digest = hashlib.sha256(repr((seed, path, shapes)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1  # 63 bits: any torch.manual_seed accepts it


def build_model(config: Config, seed: int = 0, device: torch.device | str = "cpu") -> ResFPN:
    """The model for ``config`` in eval mode, with seeded random weights (same seed, same weights).

    Each module with parameters or buffers is initialised by its own ``reset_parameters`` (the
    distributions PyTorch gives it) from a generator seeded by ``module_seed``: a module's weights
    depend on the seed, its place in the model and its shapes only, not on the modules built
    before it. So changing only the FPN leaves the backbone's weights as they were.

    On the ``meta`` device nothing is allocated and no random numbers are drawn.
    """
    device = torch.device(device)
    with torch.device("meta"):
        model = ResFPN(config).eval()
    if device.type == "meta":
        return model
    model = model.to_empty(device="cpu")
    with torch.random.fork_rng(devices=[]):
        for path, module in model.named_modules():
            if next(module.parameters(recurse=False), None) is None and next(module.buffers(recurse=False), None) is None:
                continue
            if not hasattr(module, "reset_parameters"):
                raise TypeError(f"{path} ({type(module).__name__}) has parameters but no reset_parameters() to seed")
            torch.manual_seed(module_seed(seed, path, module))
            module.reset_parameters()
    return model.to(device).eval()
