"""Run precision: float32 (exact reference) or bfloat16 (fast mode): the allowed values.

bf16 keeps float32's exponent range with an 8-bit mantissa, so a forward in bf16 differs from the
float32 one by a relative error of order 1e-3–1e-2. Whether bf16 is offered on this machine is
measured by ``resfpn.serving.bf16`` (a probe that runs it), not read from here. Torch-free.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

Precision = Literal["fp32", "bf16"]
PRECISIONS: dict[str, str] = {
    "fp32": "float32 (reference)",
    "bf16": "bfloat16 (where measured faster here)",
}
_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def check_precision(precision: object) -> Precision:
    """``precision`` if allowed, else a ValueError naming the allowed values."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r}: choose one of {', '.join(map(repr, PRECISIONS))}")
    return precision  # type: ignore[return-value]


def cpu_bf16_flags(cpuinfo: str | None = None) -> list[str]:
    """The bf16 instruction flags this CPU declares in /proc/cpuinfo ([] off Linux or without them).

    For benchmark reports only: whether bf16 is offered is decided by ``resfpn.serving.bf16``'s probe."""
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
