"""``python -m resfpn sizes``: the input sizes a design builds at, per top-down policy and axis."""

from __future__ import annotations

import argparse
import json
import sys

from ..formatting import format_shape
from ..model.config import LABELS, ConfigError
from ..share.design_file import DesignFileError
from .args import EXIT_OK, EXIT_USAGE, add_design_arguments, config_from_args, input_size


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m resfpn sizes",
        description="Which input sizes 1..2048 a design builds at, for each top-down policy (x2, match, pad) "
        "and each axis, from a size program recorded from the model's own meta forward; where a size "
        "does not build, the first addition that fails and its two shapes.",
    )
    add_design_arguments(p)
    p.add_argument("--aspect", type=input_size, metavar="HxW",
                   help="also list the nearest sizes that build under the design's policy and keep this "
                   "height x width's aspect ratio (e.g. 750x1000 for a 1000-wide, 750-high photo)")
    p.add_argument("--json", action="store_true",
                   help="print JSON: per policy and axis the sorted valid sizes, a summary and sample failures")
    return p


def sizes_main(argv: list[str]) -> int:
    from ..shapes.sizes import aspect_sizes, size_map

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except (DesignFileError, ConfigError) as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    m = size_map(config)
    h, w = config.input_height, config.input_width
    aspect = aspect_sizes(m, config.policy, *args.aspect) if args.aspect else None
    if args.json:
        report = m.to_dict()
        failure = m.failure_at(config.policy, h, w)
        report["current"] = {"height": h, "width": w, "policy": config.policy,
                             "builds": failure is None, "failure": failure.to_dict() if failure else None}
        if aspect is not None:
            report["aspect"] = aspect
        print(json.dumps(report, indent=2))
        return EXIT_OK
    print(format_sizes(m, aspect, args.aspect))
    return EXIT_OK


def format_sizes(m, aspect: list[dict] | None = None, aspect_of: tuple[int, int] | None = None) -> str:
    """The compact table: one line per policy and axis, then the design's own size."""
    c = m.config
    lines = [f"input sizes 1–{m.max_size} that build, per top-down policy and axis "
             f"({c.block} blocks {list(c.blocks)}, skip {c.skip}, FPN on {c.fpn_levels[0]}–C5, P6 {c.p6}, P7 {c.p7}):"]
    for policy, axes in m.valid.items():
        for axis, valid in axes.items():
            label = f"{policy} {axis}:"
            lines.append(f"  {label:<14} {m.summary(policy, axis):<24} ({len(valid)} of {m.max_size})")
    h, w = c.input_height, c.input_width
    label = LABELS["policy"][c.policy]
    if (f := m.failure_at(c.policy, h, w)) is None:
        lines.append(f"design's size {h}×{w} builds under {label}")
    else:
        near = [m.nearest_valid(c.policy, a, min(n, m.max_size)) for a, n in (("height", h), ("width", w))]
        lines.append(f"design's size {h}×{w} does not build under {label}: {f.where}: {f.operands[0]} is "
                     f"{format_shape(f.shapes[0])} but {f.operands[1]} is {format_shape(f.shapes[1])}"
                     + (f"; nearest that builds: {near[0]}×{near[1]}" if all(near) else ""))
    if aspect is not None:
        ah, aw = aspect_of
        if aspect:
            options = ", ".join(f"{s['height']}×{s['width']}" for s in aspect)
            lines.append(f"nearest sizes keeping {ah}×{aw}'s aspect ratio (within 1 %) under {label}: {options}")
        else:
            lines.append(f"no size up to {m.max_size} keeps {ah}×{aw}'s aspect ratio within 1 % under {label}")
    return "\n".join(lines)
