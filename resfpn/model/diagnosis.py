"""Why an addition's operands disagree, and concrete fixes, for a given configuration.

Every downsampling layer here (stride-2 3×3 or 1×1 conv, the stem's pool, Option A's subsample,
ResNet-D's ceil-mode pool) maps a size n to ceil(n/2), so level Ck has ceil(n/2^k) rows. The '×2'
top-down policy doubles the coarser level, which only lands on the lateral's size when each of
those rounded sizes is even.
"""

from __future__ import annotations

from .add import Fix, ShapeMismatchError
from .config import LABELS, MAX_INPUT, Config
from ..formatting import ceil_div


def level_size(n: int, k: int) -> int:
    """Rows (or columns) of level k for an input of n: ceil(n / 2^k)."""
    return ceil_div(n, 2**k)


def x2_holds(n: int, config: Config) -> bool:
    """True when every ×2 top-down step lands exactly on its lateral's size for input size n."""
    first = int(config.fpn_from[1])
    return all(level_size(n, k) == 2 * level_size(n, k + 1) for k in range(first, 5))


def x2_residues(config: Config) -> list[int]:
    """The sizes mod 32 (0 for a multiple) at which the ×2 policy holds: it depends on n mod 32 only,
    since every level up to C5 has ceil(n / 2^k) rows and 32 / 2^k is whole.

        >>> x2_residues(Config()), x2_residues(Config(fpn_from="C3"))
        ([29, 30, 31, 0], [25, 26, 27, 28, 29, 30, 31, 0])
    """
    return [r % 32 for r in range(1, 33) if x2_holds(r, config)]


def nearest_valid_sizes(n: int, config: Config) -> tuple[int | None, int | None]:
    """The nearest input sizes at or below and above ``n`` for which the ×2 policy holds."""
    below = next((m for m in range(n, 0, -1) if x2_holds(m, config)), None)
    above = next((m for m in range(n, MAX_INPUT + 1) if x2_holds(m, config)), None)
    return below, above


def explain(err: ShapeMismatchError, config: Config, input_hw: tuple[int, int]) -> None:
    """Attach cause and fixes to ``err`` (in place) for a model built from ``config``."""
    if err.where.startswith("FPN merge"):
        cause, fixes = _explain_merge(err, config, input_hw)
    elif err.where.endswith("residual add"):
        cause, fixes = _explain_residual(err, config)
    else:
        cause, fixes = "The two operands of this element-wise addition disagree in shape.", []
    err.explain(cause, fixes)


def _chain(n: int, config: Config) -> str:
    return " → ".join(str(level_size(n, k)) for k in range(0, 6))


def _either(values: list[int]) -> str:
    return ", ".join(map(str, values[:-1])) + f" or {values[-1]}" if len(values) > 1 else str(values[0])


def _explain_merge(err: ShapeMismatchError, config: Config, input_hw: tuple[int, int]) -> tuple[str, list[Fix]]:
    h, w = input_hw
    if config.policy not in ("x2", "pad"):
        return "The resized top-down map does not match its lateral.", [Fix("use the 'match' policy", {"policy": "match"})]
    bad = [(name, n) for name, n in (("height", h), ("width", w)) if not x2_holds(n, config)]
    dim = err.dim
    size = err.shapes[0][dim] if dim < 4 else 0
    doubled = err.shapes[1][dim] if dim < 4 else 0
    name, n = bad[0] if bad else ("height", h)
    cause = (
        f"Input {h}×{w}: the ×2 top-down policy doubles each coarser level, but every stride-2 layer "
        f"rounds odd sizes up ({name} {_chain(n, config)}), so doubling gives {doubled} where the lateral "
        f"has {size}. The ×2 policy needs each axis ≡ {_either(x2_residues(config))} (mod 32), the sizes whose "
        f"rounded halvings stay even down to {config.fpn_from}; python -m resfpn sizes lists them."
    )
    changes_low, changes_high = {}, {}
    for name, n in bad:
        lo, hi = nearest_valid_sizes(n, config)
        key = f"input_{name}"
        if lo:
            changes_low[key] = lo
        if hi:
            changes_high[key] = hi
    fixes = []
    for changes in (changes_low, changes_high):
        if changes and len(changes) == len(bad):
            new_h, new_w = changes.get("input_height", h), changes.get("input_width", w)
            fixes.append(Fix(f"use input {new_h}×{new_w}", changes))
    fixes.append(Fix(f"switch to the '{LABELS['policy']['match']}' policy", {"policy": "match"}))
    fixes.append(Fix("switch to the 'pad to a multiple of 32' policy", {"policy": "pad"}))
    return cause, fixes


def _explain_residual(err: ShapeMismatchError, config: Config) -> tuple[str, list[Fix]]:
    (_, c_f, *_), (_, c_s, *_) = err.shapes
    if err.dim == 1 and config.skip == "A" and c_s > c_f:
        widths = list(config.widths)
        stem = config.stem_width
        stem_fix = min(stem, widths[0])
        for i in range(1, 4):
            widths[i] = max(widths[i], widths[i - 1])
        cause = (
            f"Option A makes S(x) by appending zero channels (out − in of them); it can add channels but "
            f"not remove them, and here the width shrinks from {c_s} to {c_f}."
        )
        fixes = [
            Fix("use option B (1×1 projection where shapes change)", {"skip": "B"}),
            Fix("use option D (avg-pool + 1×1 projection)", {"skip": "D"}),
        ]
        if widths != list(config.widths) or stem_fix != stem:
            changes: dict = {}
            if widths != list(config.widths):
                changes["widths"] = widths
            if stem_fix != stem:
                changes["stem_width"] = stem_fix
            label = "make widths non-decreasing (" + ", ".join(f"{k}={v}" for k, v in changes.items()) + ")"
            fixes.append(Fix(label, changes))
        return cause, fixes
    return (
        f"F(x) and S(x) disagree in {err.dim_name}; the skip path must reshape x exactly as the residual branch does.",
        [Fix("use option B (1×1 projection where shapes change)", {"skip": "B"})],
    )
