"""Residual blocks ``y = relu(F(x) + S(x))`` and the four skip paths S of the ResNet papers."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .add import checked_add
from .config import SKIP_OPTIONS, SkipOption, StrideIn


class ZeroPadShortcut(nn.Module):
    """Option A: subsample with the block's stride and append ``out - in`` zero channels.

    ``(N, C_in, H, W) -> (N, C_out, ceil(H/s), ceil(W/s))``. It has no parameters. It can add
    channels but never remove them: when ``out_channels < in_channels`` it passes the input on
    unchanged, and the residual add reports the channel mismatch with a fix.
    """

    kind = "shortcut-zero-pad"

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.pad = max(0, out_channels - in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.pad:
            x = F.pad(x, (0, 0, 0, 0, 0, self.pad))
        return x

    def extra_repr(self) -> str:
        return f"{self.in_channels}->{self.out_channels}, stride={self.stride}, zero channels={self.pad}"


class Projection(nn.Sequential):
    """Options B and C: 1×1 conv with the block's stride, then BN (torchvision's ``downsample``)."""

    kind = "shortcut-projection"

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)


class AvgDownProjection(nn.Sequential):
    """Option D (ResNet-D): 2×2 average pool (ceil mode) where strided, then 1×1 conv + BN.

    The pool lets every input pixel reach the shortcut, where a strided 1×1 conv skips 3 in 4.
    """

    kind = "shortcut-avg-down"

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        if stride > 1:
            self.pool = nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False)
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)


def make_shortcut(skip: SkipOption, in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """The skip path S(x) for skip option ``skip`` ('A'..'D'); identity where the paper says so."""
    reshapes = stride != 1 or in_channels != out_channels
    if skip == "C":
        return Projection(in_channels, out_channels, stride)
    if not reshapes:
        return nn.Identity()
    if skip == "A":
        return ZeroPadShortcut(in_channels, out_channels, stride)
    if skip == "B":
        return Projection(in_channels, out_channels, stride)
    if skip == "D":
        return AvgDownProjection(in_channels, out_channels, stride)
    raise ValueError(f"skip={skip!r}: unknown skip option; allowed: {', '.join(map(repr, SKIP_OPTIONS))}")


class _Residual(nn.Module):
    """Shared forward: ``relu(F(x) + S(x))`` through the checked add."""

    kind: str
    site: str  # e.g. "layer3.0", set by the backbone that places the block
    shortcut: nn.Module  # S(x)

    def residual_convs(self) -> list[nn.Conv2d]:
        """The convolutions of F(x), input to output."""
        return [m for m in self.children() if isinstance(m, nn.Conv2d)]

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = checked_add(self.residual(x), self.shortcut(x), f"{self.site} residual add", ("F(x)", "S(x)"))
        return self.relu(out)


class BasicBlock(_Residual):
    """Two 3×3 convs: ``(N, C_in, H, W) -> (N, C_out, ceil(H/s), ceil(W/s))``."""

    kind = "basic-block"

    def __init__(self, in_channels: int, out_channels: int, stride: int, skip: SkipOption, site: str = "block"):
        super().__init__()
        self.in_channels, self.out_channels, self.stride, self.site = in_channels, out_channels, stride, site
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = make_shortcut(skip, in_channels, out_channels, stride)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))


class Bottleneck(_Residual):
    """1×1 reduce, 3×3, 1×1 expand; inner width ``out_channels // expansion``.

    ``stride_in='3x3'`` puts the stride in the 3×3 conv (torchvision, "v1.5"); ``'1x1'`` in the
    first 1×1 (the original paper and the MSRA models, "v1").
    """

    kind = "bottleneck-block"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        skip: SkipOption,
        stride_in: StrideIn = "3x3",
        expansion: int = 4,
        site: str = "block",
    ):
        super().__init__()
        self.in_channels, self.out_channels, self.stride, self.site = in_channels, out_channels, stride, site
        inner = out_channels // expansion
        s1, s3 = (1, stride) if stride_in == "3x3" else (stride, 1)
        self.conv1 = nn.Conv2d(in_channels, inner, 1, stride=s1, bias=False)
        self.bn1 = nn.BatchNorm2d(inner)
        self.conv2 = nn.Conv2d(inner, inner, 3, stride=s3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(inner)
        self.conv3 = nn.Conv2d(inner, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = make_shortcut(skip, in_channels, out_channels, stride)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.bn3(self.conv3(out))
