"""How the CLI, the figures and the page write numbers: shapes, counts, bytes (and ceiling division).

Torch-free, so the page can format before torch loads.

    >>> format_shape((1, 256, 15, 15)), format_count(14_373_696), format_count(118_013_952, "FLOPs")
    ('256×15×15', '14.4 M', '118 MFLOPs')
    >>> format_mib(3 * 2**20 + 2**18), ceil_div(225, 32)
    ('3.25 MiB', 8)
"""

from __future__ import annotations


def format_shape(shape: tuple[int, ...]) -> str:
    """``(1, 256, 15, 15)`` -> ``'256×15×15'`` (batch left out, as in the papers)."""
    return "×".join(str(s) for s in (shape[1:] if len(shape) == 4 else shape))


def format_count(n: float, unit: str = "") -> str:
    """Three significant digits with a k/M/G prefix: 14373696 -> '14.4 M', 512 -> '512'."""
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{n / scale:.3g} {prefix}{unit}"
    return f"{n:.0f} {unit}".rstrip()


def format_mib(n: float, digits: int = 2) -> str:
    """Bytes in MiB, thousands grouped: 5786624 -> '5.52 MiB', 2**33 with ``digits=0`` -> '8,192 MiB'."""
    return f"{n / 2**20:,.{digits}f} MiB"


def ceil_div(a: int, b: int) -> int:
    """``ceil(a / b)`` in integers, e.g. rows of a stride-``b`` level for an input of ``a`` rows."""
    return -(-a // b)


def format_range(lo: int, hi: int) -> str:
    """``'435–467'`` where a value depends on the position, else ``'435'``."""
    return f"{lo}" if lo == hi else f"{lo}–{hi}"


def shape_bytes(shape: tuple[int, ...] | None, element_size: int = 4) -> int:
    """Bytes of a tensor of ``shape`` (float32 by default); 0-d or unknown shapes count one element."""
    n = element_size
    for s in shape or ():
        n *= s
    return n
