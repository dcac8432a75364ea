"""Run precision: float32 (exact reference) or bfloat16 (fast mode), and where bf16 is fast.

bf16 keeps float32's exponent range with an 8-bit mantissa, so a forward in bf16 differs from the
float32 one by a relative error of order 1e-3–1e-2. On CPUs with bf16 dot-product instructions
(AVX-512 BF16, AMX) oneDNN runs bf16 convolutions at about a third of the float32 time; elsewhere it
converts on the fly and is slower than float32. Torch-free, so the page can say it without torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

Precision = Literal["fp32", "bf16"]
PRECISIONS: dict[str, str] = {
    "fp32": "float32 (reference)",
    "bf16": "bfloat16 (fast on CPUs with bf16 instructions)",
}
_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def check_precision(precision: object) -> Precision:
    """``precision`` if allowed, else a ValueError naming the allowed values."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r}: choose one of {', '.join(map(repr, PRECISIONS))}")
    return precision  # type: ignore[return-value]


def cpu_bf16_flags(cpuinfo: str | None = None) -> list[str]:
    """The bf16 instruction flags this CPU declares in /proc/cpuinfo ([] off Linux or without them)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return []
    flags = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
    return [f for f in _BF16_FLAGS if f in flags]


def bf16_slow_reason(device: str = "cpu", cpuinfo: str | None = None) -> str | None:
    """None where a bf16 run is fast on ``device``; otherwise one sentence saying why it would be slow."""
    if device.startswith("cuda"):
        import torch

        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return None
        return "this GPU has no native bf16 arithmetic, so bf16 would be emulated (slower than fp32)"
    flags = cpu_bf16_flags(cpuinfo)
    if flags:
        return None
    return ("this CPU declares no bf16 instructions (AVX-512 BF16 or AMX in /proc/cpuinfo), so oneDNN would "
            "convert every value on the fly: bf16 would be slower than fp32 here")
