"""Fold eval-mode BatchNorm into the preceding convolution, for a faster inference copy.

In eval mode ``bn(conv(x))`` is one affine map per channel after the conv, so it can be written
into the conv's weight and bias. The folded model computes the same levels (up to float
rounding) with one pass over each activation instead of two. Only for inference: the folded
model has no BatchNorm statistics to train or to load checkpoints into.
"""

from __future__ import annotations

import copy

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

# (conv, bn) attribute pairs as the stem, blocks and projection shortcuts name them.
_PAIRS = (("conv", "bn"), ("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3"))


def fold_batchnorm(model: nn.Module, inplace: bool = False) -> nn.Module:
    """``model`` in eval mode with every conv → BN pair folded into one conv (a copy unless ``inplace``)."""
    model = (model if inplace else copy.deepcopy(model)).eval()
    for module in model.modules():
        for conv_name, bn_name in _PAIRS:
            conv, bn = getattr(module, conv_name, None), getattr(module, bn_name, None)
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                setattr(module, conv_name, fuse_conv_bn_eval(conv, bn))
                setattr(module, bn_name, nn.Identity())
    return model
