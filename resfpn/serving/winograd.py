"""Winograd F(4×4, 3×3) convolution for wide 3×3 stride-1 layers on CPU (float32, inference).

A 3×3 convolution computes each 4×4 output tile from a 6×6 input tile with 144 multiply-adds per
channel pair; Winograd's minimal filtering (Lavin & Gray, 2016) does it with 36, after transforming
input tiles and filters into a 6×6 domain where the convolution becomes 36 independent matrix
products over channels. The transforms are linear maps applied with small matrices (``B``, ``G``,
``A``; the points 0, ±1, ±2, ∞), so the result equals the direct convolution up to float rounding:
about 1e-5 of the output's largest magnitude in float32 (checked in tests/test_fastpath.py).

Where it pays: many channels (the 36 products are then large matrix multiplies) and many tiles.
On the 2-core AVX-512 machine this project is measured on, a 256→256 conv on 64×64 to 256×256 maps
takes 0.64–0.79× the time of oneDNN's direct kernel; on a 16×16 map it is slower, so
``fastpath.PackedConv`` keeps the direct kernel too and picks by the number of output tiles
(``MIN_TILES``). Tiles are processed in blocks of at most ``BAND_TILES``, so the transformed block
(36 × tiles × channels) stays small and in cache (``WORKSPACE_BYTES``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..formatting import ceil_div

# Transform matrices of F(4, 3) (Lavin & Gray, 2016, section 4.2), in float64 for the weight transform.
_BT = torch.tensor([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                    [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], dtype=torch.float64)
_G = torch.tensor([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                   [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], dtype=torch.float64)
_AT = torch.tensor([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
                   dtype=torch.float64)
M, R = 4, 3  # output tile, filter size
A = M + R - 1  # input tile: 6
EXPANSION = A * A // (R * R)  # the Winograd weight holds 36 values per channel pair where the conv's has 9
_KB = torch.kron(_BT, _BT)  # (36, 36): both axes of Bᵀ d B at once
_KA = torch.kron(_AT, _AT)  # (16, 36): both axes of Aᵀ m A
MIN_CHANNELS = 256  # fewer input or output channels: the 36 products are too small to pay
MAX_CHANNEL_PAIRS = 256 * 256  # the transformed weight is EXPANSION× the weight: at most 9 MiB per conv
MIN_TILES = 256  # below this many output tiles per image the direct kernel is as fast or faster
BAND_TILES = 256  # tiles transformed together: 36 × 256 × 256 floats = 9 MiB per buffer at 256 channels
# The most one call holds beside its output, at 256 channels, in float32: a block of r × q tiles
# (r·q ≤ BAND_TILES) copied with its border, (4r + 2)(4q + 2) ≤ 2·16·BAND_TILES pixels; its 36-point
# transform and the 36 products (36·BAND_TILES values per channel each); the 16-point output.
WORKSPACE_BYTES = 4 * 256 * (2 * 16 * BAND_TILES + 36 * BAND_TILES * 2 + 16 * BAND_TILES)


def wide_enough(in_channels: int, out_channels: int) -> bool:
    """``MIN_CHANNELS`` or more each way and at most ``MAX_CHANNEL_PAIRS`` pairs (256 → 256 convs)."""
    return min(in_channels, out_channels) >= MIN_CHANNELS and in_channels * out_channels <= MAX_CHANNEL_PAIRS


def eligible(conv: nn.Conv2d) -> bool:
    """A 3×3, stride-1, padding-1, undilated, ungrouped float32 convolution with zero padding and
    ``wide_enough`` channels (the FPN's 256-wide output convs, 256-wide stages)."""
    return (conv.kernel_size == (3, 3) and conv.stride == (1, 1) and conv.padding == (1, 1)
            and conv.dilation == (1, 1) and conv.groups == 1 and conv.padding_mode == "zeros"
            and conv.weight.dtype == torch.float32 and wide_enough(conv.in_channels, conv.out_channels))


def transform_weight(weight: torch.Tensor) -> torch.Tensor:
    """``(C_out, C_in, 3, 3)`` → ``(36, C_in, C_out)``: ``G w Gᵀ`` per channel pair, computed in float64."""
    u = torch.einsum("ik,ockl,jl->ijco", _G, weight.detach().double(), _G)
    return u.reshape(A * A, weight.shape[1], weight.shape[0]).to(weight.dtype).contiguous()


def winograd_conv(x: torch.Tensor, u: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``conv2d(x, w, bias, padding=1)`` for ``u = transform_weight(w)``; ``x`` is ``(N, C, H, W)``.

    The output is channels-last in memory, like oneDNN's.
    """
    n, c, h, w = x.shape
    tiles_h, tiles_w = ceil_div(h, M), ceil_div(w, M)
    kb, ka = _KB.to(x.dtype), _KA.to(x.dtype)
    xh = x.permute(0, 2, 3, 1)  # NHWC view (no copy for a channels-last x)
    c_out = u.shape[-1]
    out = x.new_empty((n, tiles_h * M, tiles_w * M, c_out))
    cols = min(tiles_w, BAND_TILES)
    rows = max(1, BAND_TILES // cols)
    for i in range(n):
        for r0 in range(0, tiles_h, rows):
            for c0 in range(0, tiles_w, cols):
                r, q = min(rows, tiles_h - r0), min(cols, tiles_w - c0)
                # The block's input pixels with the 1-pixel zero border, padded out to whole tiles:
                # a (4r + 2, 4q + 2, C) copy, then a (6, 6, r, q, C) view of its overlapping 6×6
                # tiles, then one copy into the transform's layout.
                top, bottom, left, right = r0 * M - 1, (r0 + r) * M + 1, c0 * M - 1, (c0 + q) * M + 1
                block = F.pad(xh[i, max(top, 0):min(bottom, h), max(left, 0):min(right, w)],
                              (0, 0, max(-left, 0), max(right - w, 0), max(-top, 0), max(bottom - h, 0)))
                s_h, s_w, s_c = block.stride()
                d = block.as_strided((A, A, r, q, c), (s_h, s_w, M * s_h, M * s_w, s_c)).reshape(A * A, -1)
                v = (kb @ d).view(A * A, r * q, c)
                y = ka @ torch.bmm(v, u).view(A * A, -1)  # 36 channel products, then Aᵀ m A
                tile_block = out[i, r0 * M:(r0 + r) * M, c0 * M:(c0 + q) * M].view(r, M, q, M, c_out)
                tile_block.copy_(y.view(M, M, r, q, c_out).permute(2, 0, 3, 1, 4))
    if bias is not None:
        out.add_(bias)
    out = out.permute(0, 3, 1, 2)
    if out.shape[-2:] != (h, w):  # cropped to the input's size, back to a dense channels-last tensor
        out = out[:, :, :h, :w].contiguous(memory_format=torch.channels_last)
    return out


def tiles(h: int, w: int) -> int:
    """Output tiles of one image of ``h × w``."""
    return ceil_div(h, M) * ceil_div(w, M)
