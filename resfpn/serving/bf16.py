"""Whether this machine is offered bf16: the library's own probe, run once per process.

bf16 is offered only where this machine runs bf16 convolutions natively and a bf16 conv is measured
faster than the float32 one here. Native means: the kernels the served bf16 model would use (the
packed oneDNN ones where ``resfpn.serving.fastpath`` serves, else ``F.conv2d``) run without an exception and
match float32. oneDNN refuses its bf16 weight reorder on CPUs without bf16 conversion instructions
(AVX2), and elsewhere emulates bf16 slower than float32; both end up "not offered", with one
sentence saying why. A list of /proc/cpuinfo flags is not asked: the probe runs what would run.
"""

from __future__ import annotations

import functools
import os
import statistics
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import fastpath
from .precision import Precision, check_precision

# The probe's conv: a ResNet stage-2 3×3 conv at a 448-pixel input; timed in about 0.15 s on 2 cores.
# Much smaller convs are dominated by call overhead (128→128 on 28×28 measured 0.93–1.07× on the
# AVX-512 BF16 EPYC this was written on, against 0.55× on 56×56), which would hide a real speed-up.
PROBE_CHANNELS, PROBE_SIZE, PROBE_REPEATS = 128, 56, 5


class PrecisionUnavailable(ValueError):
    """A precision this machine does not offer; the message says why in one sentence."""


@dataclass(frozen=True)
class Bf16Offer:
    """The probe's answer: offered or not, why not, and what was measured."""

    offered: bool
    reason: str  # why bf16 is not offered (one sentence), "" where it is
    ratio: float | None  # bf16 time ÷ float32 time of the probe conv, as measured here; None if it could not run
    measured_on: str  # what the ratio was measured on, e.g. "a 128→128 3×3 conv on 28×28, packed oneDNN kernels"

    def note(self) -> str:
        """The sentence under the precision control."""
        if not self.offered:
            return f"bf16 is not offered here: {self.reason}."
        return (f"bf16: measured {self.ratio:.2f}× the float32 time here ({self.measured_on}); levels differ from "
                "fp32 by ~1e-2 (relative), shown after a run once the fp32 run of the same image is cached.")


@functools.lru_cache(maxsize=None)
def offer(device: str = "cpu") -> Bf16Offer:
    """Whether bf16 is offered on ``device`` ("cpu" or "cuda..."), probed once per process.

    ``RESFPN_BF16=0`` in the environment turns it off without probing (a server that wants fp32 only).
    """
    if os.environ.get("RESFPN_BF16", "1") == "0":
        return Bf16Offer(False, "bf16 is turned off on this server (RESFPN_BF16=0)", None, "")
    if device.startswith("cuda"):
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return Bf16Offer(True, "", None, "this GPU (native bf16, under autocast)")
        return Bf16Offer(False, "this GPU has no native bf16 arithmetic, so bf16 would be emulated (slower than fp32)",
                         None, "")
    return probe()


def probe() -> Bf16Offer:
    """Run, check and time the probe conv in bf16 and float32 (not cached: ``offer`` caches it)."""
    packed = fastpath.available(torch.float32)
    form = "packed oneDNN kernels" if packed else "F.conv2d"
    measured_on = f"a {PROBE_CHANNELS}→{PROBE_CHANNELS} 3×3 conv on {PROBE_SIZE}×{PROBE_SIZE}, {form}"
    conv = nn.Conv2d(PROBE_CHANNELS, PROBE_CHANNELS, 3, padding=1).requires_grad_(False)
    x = torch.randn(1, PROBE_CHANNELS, PROBE_SIZE, PROBE_SIZE, generator=torch.Generator().manual_seed(0))
    x = x.to(memory_format=torch.channels_last)
    try:
        runs = {dtype: _runner(conv, x, dtype, packed) for dtype in (torch.float32, torch.bfloat16)}
        with torch.inference_mode():
            want, got = runs[torch.float32](), runs[torch.bfloat16]()
            error = float((got.float() - want).abs().max() / want.abs().max())
            if not error < 3e-2:
                return Bf16Offer(False, f"bf16 convolutions give wrong results here ({error:.0e} off float32)",
                                 None, measured_on)
            if packed:
                why = fastpath.self_check(torch.bfloat16)
                if why is not None:
                    return Bf16Offer(False, why, None, measured_on)
            times: dict[torch.dtype, list[float]] = {dtype: [] for dtype in runs}
            for _ in range(PROBE_REPEATS):  # interleaved, so a busy neighbour slows both alike
                for dtype, run in runs.items():
                    start = time.perf_counter()
                    run()
                    times[dtype].append(time.perf_counter() - start)
    except Exception as err:  # noqa: BLE001  (any failure means: not native here)
        first = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        return Bf16Offer(False, f"this CPU does not run bf16 convolutions natively ({first})", None, measured_on)
    ratio = statistics.median(times[torch.bfloat16]) / statistics.median(times[torch.float32])
    if ratio >= 1.0:
        return Bf16Offer(False, f"a bf16 convolution took {ratio:.2f}× the float32 time on this CPU "
                                f"({measured_on}), so bf16 would be slower here", ratio, measured_on)
    return Bf16Offer(True, "", ratio, measured_on)


def _runner(conv: nn.Conv2d, x: torch.Tensor, dtype: torch.dtype, packed: bool):
    c = nn.Conv2d(conv.in_channels, conv.out_channels, 3, padding=1).requires_grad_(False)
    c.load_state_dict(conv.state_dict())
    c = c.to(dtype)
    xd = x.to(dtype)
    if packed:
        p = fastpath.PackedConv(c, relu=True, kernels=("onednn",))
        return lambda: p(xd)
    return lambda: F.conv2d(xd, c.weight, c.bias, padding=1).relu_()


def require(precision: object, device: str = "cpu") -> Precision:
    """``precision`` if allowed and offered on ``device``; else ValueError (unknown value) or
    ``PrecisionUnavailable`` (bf16 where the probe says no), naming why."""
    precision = check_precision(precision)
    if precision == "bf16":
        answer = offer(device)
        if not answer.offered:
            raise PrecisionUnavailable(f"precision='bf16' is not offered here: {answer.reason}; use 'fp32'")
    return precision
