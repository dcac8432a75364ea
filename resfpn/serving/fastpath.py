"""The CPU serving form of a folded model: prepacked convolution weights with ReLU and adds fused in.

The eager served model (BatchNorm folded, channels-last) still pays, per convolution, a reorder of
its weight into oneDNN's blocked layout on every call, and then a separate pass over memory for each
ReLU and each residual or FPN addition. Here every convolution keeps its weight prepacked once
(``mkldnn._reorder_convolution_weight``) and runs through oneDNN's pointwise-fused kernel
(``mkldnn._convolution_pointwise``, the op torch.compile's CPU backend emits), so

- ``relu(conv(x))`` is one kernel (stem, and every conv inside F(x) but the last),
- ``relu(conv(x) + S(x))`` is one kernel: the residual add and ReLU ride on F's last conv,
- ``lateral(c) + upsampled`` is one kernel: the FPN merge rides on the lateral 1×1 conv.

The convolutions are oneDNN's same kernels, so the levels equal the eager model's up to float
rounding of the fused epilogue. It is inference only (no autograd through these ops), for float32
and bfloat16 on CPU; ``available()`` says whether this PyTorch build has the ops. The additions it
fuses are the ones the meta trace already checked: a design whose operands disagree never gets here.
"""

from __future__ import annotations

import functools
import hashlib

import torch
import torch.nn.functional as F
from torch import nn

from . import winograd
from ..model.blocks import _Residual
from ..model.fpn import FPN


@functools.lru_cache(maxsize=1)
def available() -> bool:
    """Whether this PyTorch build runs oneDNN's prepacked, pointwise-fused convolutions correctly here.

    Checked once by running a small packed conv (+ add + ReLU) against ``F.conv2d``: the ops are
    private to PyTorch, so a build or CPU where they are missing or wrong serves the plain model.
    """
    if not (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise")):
        return False
    try:
        with torch.inference_mode():
            conv = nn.Conv2d(8, 8, 3, padding=1)
            x = torch.randn(1, 8, 6, 5).to(memory_format=torch.channels_last)
            y = torch.randn(1, 8, 6, 5)
            got = PackedConv(conv, relu=True, use_winograd=False)(x, add=y)
            want = torch.relu(F.conv2d(x, conv.weight, conv.bias, padding=1) + y)
            return bool(torch.allclose(got, want, rtol=1e-4, atol=1e-5))
    except (RuntimeError, NotImplementedError):
        return False


class PackedConv(nn.Module):
    """A bias-carrying 2-D convolution with its weight prepacked for oneDNN.

    ``forward(x)`` is ``conv(x)``, then ReLU if ``relu``; ``forward(x, add=y)`` is ``conv(x) + y``,
    then ReLU if ``relu``, with ``y`` of exactly the output's shape.
    """

    def __init__(self, conv: nn.Conv2d, relu: bool = False, use_winograd: bool = True):
        super().__init__()
        if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise ValueError(f"{conv}: only explicit zero padding is packed")
        self.padding, self.stride = list(conv.padding), list(conv.stride)
        self.dilation, self.groups, self.relu = list(conv.dilation), conv.groups, relu
        self.out_channels, self.kernel_size = conv.out_channels, conv.kernel_size
        weight = conv.weight.detach()
        self.weight = torch.ops.mkldnn._reorder_convolution_weight(
            weight, self.padding, self.stride, self.dilation, self.groups)
        self.weight_bytes = weight.numel() * weight.element_size()  # opaque tensors have no storage to count
        self._digest: torch.Tensor | None = None
        self.register_buffer("bias", None if conv.bias is None else conv.bias.detach().clone())
        # Wide 3×3 convs also keep their dense weight, for a Winograd form made on the first input
        # with enough tiles (4× the weight's size, so only models that meet such inputs pay for it).
        wide = use_winograd and winograd.eligible(conv)
        self.register_buffer("dense_weight", weight.clone() if wide else None)
        self.register_buffer("winograd_weight", None)

    def forward(self, x: torch.Tensor, add: torch.Tensor | None = None) -> torch.Tensor:
        if self.dense_weight is not None and winograd.tiles(*x.shape[-2:]) >= winograd.MIN_TILES:
            if self.winograd_weight is None:
                self.winograd_weight = winograd.transform_weight(self.dense_weight)
            y = winograd.winograd_conv(x, self.winograd_weight, self.bias)
            if add is not None:
                y.add_(add)
            return y.relu_() if self.relu else y
        geometry = (self.padding, self.stride, self.dilation, self.groups)
        if add is None:
            return torch.ops.mkldnn._convolution_pointwise(
                x, self.weight, self.bias, *geometry, "relu" if self.relu else "none", [], "")
        return torch.ops.mkldnn._convolution_pointwise.binary(
            x, add, self.weight, self.bias, *geometry, "add", None, "relu" if self.relu else None, [], "")

    def weight_digest(self) -> torch.Tensor:
        """sha256 of the weight (read back from the packed layout once, when first asked), as uint8."""
        if self._digest is None:
            raw = self.weight.to_dense().contiguous().view(-1).view(torch.uint8).numpy()
            self._digest = torch.frombuffer(bytearray(hashlib.sha256(raw).digest()), dtype=torch.uint8)
        return self._digest

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        # The packed weight is opaque to state_dict; its digest stands in for it there, so two
        # modules compare equal (``resfpn.analysis.differences``) only when their weights are equal.
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination[prefix + "weight_sha256"] = self.weight_digest()

    def extra_repr(self) -> str:
        return (f"out_channels={self.out_channels}, kernel_size={self.kernel_size}, stride={tuple(self.stride)}, "
                f"relu={self.relu}")


class PackedBlock(nn.Module):
    """``relu(F(x) + S(x))`` with F's convs packed: ReLU fused into each but the last, which also
    takes the add of S(x) and the block's ReLU."""

    def __init__(self, block: _Residual, use_winograd: bool = True):
        super().__init__()
        convs = block.residual_convs()
        self.kind, self.site = block.kind, block.site
        self.convs = nn.ModuleList(PackedConv(c, relu=True, use_winograd=use_winograd) for c in convs)
        self.shortcut = pack(block.shortcut, use_winograd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.shortcut(x)
        for conv in self.convs[:-1]:
            x = conv(x)
        return self.convs[-1](x, add=shortcut)


class PackedFPN(FPN):
    """The FPN with packed convs; each top-down merge is fused into its lateral 1×1 conv."""

    def merge(self, level: str, feature: torch.Tensor, coarser: torch.Tensor) -> torch.Tensor:
        top_down = self.upsample["P" + level[1:]](coarser, feature.shape[-2:])  # a 1×1 lateral keeps H, W
        return self.lateral[level](feature, add=top_down)


def pack(module: nn.Module, use_winograd: bool = True) -> nn.Module:
    """``module`` (BatchNorm already folded, eval mode) rewritten in place for CPU inference, returned.

    Residual blocks become ``PackedBlock``; a conv followed by a ReLU in a ``Sequential`` (the stem)
    takes the ReLU in; every other conv becomes a ``PackedConv``; the FPN fuses its merges.
    ``use_winograd=False`` keeps every convolution on oneDNN's direct kernels (``resfpn.serving.winograd``).
    """
    if isinstance(module, _Residual):
        return PackedBlock(module, use_winograd)
    if isinstance(module, nn.Conv2d):
        return PackedConv(module, use_winograd=use_winograd)
    if isinstance(module, FPN):
        module.__class__ = PackedFPN  # same state, fused merge (PackedFPN adds no attributes)
    previous = None  # the last non-identity child so far, for a Sequential's conv → ReLU
    for name, child in list(module.named_children()):
        if (isinstance(module, nn.Sequential) and isinstance(child, nn.ReLU)
                and isinstance(previous, PackedConv) and not previous.relu):
            previous.relu = True
            setattr(module, name, nn.Identity())
            continue
        setattr(module, name, pack(child, use_winograd))
        if not isinstance(child, nn.Identity):
            previous = getattr(module, name)
    return module


def packed_bytes(module: nn.Module) -> int:
    """Bytes ``module`` holds in tensors, packed weights included, and the Winograd weights its wide
    convs will make on a large enough input (4× their weight), so the cache budget never grows."""
    total = sum(t.numel() * t.element_size() for t in [*module.parameters(), *module.buffers()])
    for m in module.modules():
        if isinstance(m, PackedConv):
            total += m.weight_bytes
            if m.dense_weight is not None and m.winograd_weight is None:
                total += m.dense_weight.numel() * m.dense_weight.element_size() * winograd.EXPANSION
    return total
