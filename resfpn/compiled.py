"""A fused CPU graph of a served model: TorchScript, frozen, with oneDNN Graph fusion.

The eager served model (BatchNorm folded, channels-last) still calls one oneDNN convolution per
conv and then a separate pass for each ReLU and each residual or FPN addition. Traced and frozen,
with ``torch.jit.enable_onednn_fusion(True)``, oneDNN Graph fuses conv + ReLU and conv + add (+ ReLU)
into single kernels, so each activation is written once instead of two or three times.

The graph is specialised to one input shape (the trace records shape checks as constants), so it is
keyed by input shape as well as architecture and weights. It is accepted only if it reproduces the
eager model's levels on the warm-up input within float32 tolerance; any failure (a module that does
not trace, a mismatch) leaves the eager model serving.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

# Relative to each level's largest magnitude: fused kernels reorder float32 sums, nothing more.
TOLERANCE = 1e-4


class FusionRefused(RuntimeError):
    """The fused graph could not be built or did not reproduce the eager levels (the eager model serves)."""


def fused_graph(model: nn.Module, example: torch.Tensor, warmup: int = 3) -> torch.jit.ScriptModule:
    """A frozen, oneDNN-fused TorchScript graph of ``model`` for inputs shaped like ``example`` ``(N, 3, H, W)``.

    Runs ``warmup`` calls (the profiling executor fuses on the second) and checks every level
    against the eager model; raises ``FusionRefused`` if any differs by more than ``TOLERANCE``.
    """
    if example.device.type != "cpu" or example.dtype != torch.float32:
        raise FusionRefused(f"oneDNN fusion is used for float32 on CPU only, not {example.dtype} on {example.device}")
    torch.jit.enable_onednn_fusion(True)  # process-wide; affects TorchScript graphs only, never eager code
    try:
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shape checks become constants: intended
            warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.freeze: still the way to oneDNN Graph
            expected = model(example)
            graph = torch.jit.freeze(torch.jit.trace(model, example, strict=False, check_trace=False))
            for _ in range(warmup):
                got = graph(example)
    except Exception as err:  # noqa: BLE001 - any failure means: keep serving eager
        raise FusionRefused(f"tracing or fusing failed: {type(err).__name__}: {err}") from err
    if not isinstance(got, dict) or list(got) != list(expected):
        raise FusionRefused(f"the fused graph returned {type(got).__name__} with other levels")
    for name, want in expected.items():
        scale = want.abs().max().clamp_min(1e-12)
        error = ((got[name] - want).abs().max() / scale).item()
        if not error <= TOLERANCE:
            raise FusionRefused(f"{name} differs from the eager model by {error:.1e} (tolerance {TOLERANCE:.0e})")
    return graph
