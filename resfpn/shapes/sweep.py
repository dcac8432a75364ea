"""Width and depth sweep: about a hundred variants of a design priced shape-only, with a Pareto front.

Each variant's parameters, MACs and exact theoretical receptive field come from the size program
(``resfpn.shapes.sizes``): one recording per structure (block type and blocks per stage), so the widths are
free. The receptive field is solved on the program's ops exactly where no resize lies between the
input and the level (P5, P6, P7 and C2–C5): there every position's field has the same extent, so an
affine interval per axis is exact (the trace's position-by-position solver agrees; tests hold it).

    >>> s = sweep(Config())
    >>> len(s.designs) >= 90, any(d.current for d in s.designs)
    (True, True)
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from collections.abc import Callable
from typing import Any

import numpy as np

from ..model.config import PRESETS, Config, ConfigError
from .sizes import Program, costs, program, structure_key

MULTIPLIERS = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
# The presets' blocks per stage and their neighbours (a block more or less, a deeper third stage).
DEPTHS = ((1, 1, 1, 1), (1, 2, 2, 1), (2, 2, 2, 2), (2, 2, 4, 2), (2, 3, 4, 2), (3, 4, 6, 3), (3, 4, 8, 3),
          (3, 6, 12, 3), (4, 6, 8, 4))
BASE_WIDTHS = {"basic": (64, 128, 256, 512), "bottleneck": (256, 512, 1024, 2048)}


@dataclass
class Variant:
    """One design of the sweep and what it costs at the sweep's input size."""

    config: Config
    label: str
    params: int
    macs: int
    receptive_field: int | None
    builds: bool
    preset: str | None = None
    current: bool = False
    pareto: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"config": self.config.to_dict(), "label": self.label, "params": self.params, "macs": self.macs,
                "receptive_field": self.receptive_field, "builds": self.builds, "preset": self.preset,
                "current": self.current, "pareto": self.pareto}


@dataclass
class Sweep:
    designs: list[Variant]
    level: str
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"designs": [d.to_dict() for d in self.designs], "level": self.level, "seconds": round(self.seconds, 4)}


def field_extent(prog: Program, level: str) -> int | None:
    """Exact theoretical receptive field (pixels, one axis) of ``level``, or None where a resize lies
    on its way from the input (then the field varies by position: see ``resfpn.shapes.receptive``).

    Position i of a value reads input pixels ``[lo + jump·i, hi + jump·i]`` (unclipped); a window
    ``(k, s, p, d)`` maps that to ``lo - jump·p`` .. ``hi + jump·(d(k-1) - p)`` with jump ``jump·s``, an
    addition takes the union.
    """
    if level not in prog.levels:
        return None
    field: dict[int, tuple[int, int, int] | None] = {0: (1, 0, 0)}  # value -> (jump, lo, hi) on axis 0
    for op in prog.ops:
        x = field.get(op.ins[0])
        if x is None or op.kind in ("scale", "match"):
            field[op.out] = None
            continue
        jump, lo, hi = x
        if op.kind == "window":
            k, s, p, d, _ = op.axes[0]
            field[op.out] = (jump * s, lo - jump * p, hi + jump * (d * (k - 1) - p))
        elif op.kind == "pad":
            field[op.out] = x
        elif op.kind == "add":
            y = field.get(op.ins[1])
            field[op.out] = None if y is None or y[0] != jump else (jump, min(lo, y[1]), max(hi, y[2]))
    f = field.get(prog.levels[level])
    return None if f is None else f[2] - f[1] + 1


def _round(value: float, multiple: int) -> int:
    return max(multiple, int(round(value / multiple)) * multiple)


def _neck(config: Config) -> dict[str, Any]:
    """What every variant keeps from the design: input, skip option and the whole FPN."""
    names = ("input_height", "input_width", "input_channels", "batch", "skip", "fpn_from", "fpn_width", "upsample",
             "policy", "p6", "p7")
    return {n: getattr(config, n) for n in names}


def variants(config: Config) -> list[tuple[Config, str]]:
    """The sweep's designs: multipliers × depths × block types, plus the presets that share the
    design's neck and the design itself, without duplicates."""
    out: dict[Config, str] = {}
    e = config.expansion
    for block, depth, mult in itertools.product(("basic", "bottleneck"), DEPTHS, MULTIPLIERS):
        step = 8 * e if block == "bottleneck" else 8
        widths = tuple(_round(w * mult, step) for w in BASE_WIDTHS[block])
        try:
            c = config.replace(block=block, blocks=depth, widths=widths, stem_width=_round(64 * mult, 8))
        except ConfigError:
            continue
        out.setdefault(c, f"{block} {list(depth)} ×{mult:g}")
    for name, preset in PRESETS.items():
        out.setdefault(preset.replace(**_neck(config)), name)
    out.setdefault(config, "current design")
    return list(out.items())


def sweep(config: Config, level: str = "P5", allowed: Callable[[Config], bool] | None = None) -> Sweep:
    """Parameters, MACs and ``level``'s receptive field of every variant of ``config`` (see ``variants``)
    at its input size, with the Pareto front (fewest parameters and MACs, widest field) marked.
    ``allowed`` leaves out the variants it answers False for (a server's caps, say).

    Raises:
        ValueError: ``level`` is not a pyramid or backbone level of the design.
    """
    if level not in config.levels:
        raise ValueError(f"level={level!r}: not a level of this design; choose one of {', '.join(config.levels)}")
    start = time.perf_counter()
    presets: dict[Config, str] = {}
    for name, preset in PRESETS.items():
        key = preset.replace(**_neck(config))
        presets[key] = f"{presets[key]} / {name}" if key in presets else name
    designs = []
    for c, label in variants(config):
        if allowed is not None and not allowed(c):
            continue
        cost = costs(c, [c.input_height], [c.input_width])
        prog = program(structure_key(c))
        designs.append(Variant(c, label, cost.params, int(cost.macs[0]), field_extent(prog, level), bool(cost.builds[0]),
                               preset=presets.get(c), current=c == config))
    _mark_pareto(designs)
    return Sweep(designs, level, time.perf_counter() - start)


def _mark_pareto(designs: list[Variant]) -> None:
    """Mark the designs no other beats: at most its parameters and MACs and at least its field, one strictly."""
    pts = np.array([(d.params, d.macs, -(d.receptive_field or 0)) for d in designs], dtype=np.float64)
    for i, d in enumerate(designs):
        le = (pts <= pts[i]).all(1)
        lt = (pts < pts[i]).any(1)
        d.pareto = d.builds and not (le & lt).any()
