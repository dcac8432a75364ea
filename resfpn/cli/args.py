"""The design flags every subcommand shares, their parsing, and the exit statuses."""

from __future__ import annotations

import argparse

from ..model.config import BLOCKS, FPN_FROM, P6_SOURCES, POLICIES, PRESETS, SKIP_OPTIONS, STRIDE_IN, UPSAMPLE, Config
from ..share.design_file import read_design

EXIT_OK, EXIT_MISMATCH, EXIT_USAGE = 0, 1, 2


def input_size(text: str) -> tuple[int, int]:
    parts = text.lower().replace("×", "x").split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected 224 or 224x320 (height x width)") from None
    if len(values) == 1:
        return values[0], values[0]
    if len(values) == 2:
        return values[0], values[1]
    raise argparse.ArgumentTypeError(f"{text!r}: expected 224 or 224x320 (height x width)")


def _four(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected four comma-separated whole numbers") from None
    if len(values) != 4:
        raise argparse.ArgumentTypeError(f"{text!r}: expected four values, one per stage, got {len(values)}")
    return values


def add_design_arguments(p: argparse.ArgumentParser) -> None:
    """``--preset``, ``--config`` and one flag per configuration field."""
    p.add_argument("--preset", default="reference", choices=list(PRESETS), help="starting point (default: reference)")
    p.add_argument("--config", metavar="DESIGN.json",
                   help="read the design from a JSON file (a report's config, or a whole --json report); "
                   "fields it leaves out come from --preset, and the other design flags override it")
    p.add_argument("--input", type=input_size, help="input size: 224 or HxW such as 224x320")
    p.add_argument("--widths", type=_four, help="stage output widths, e.g. 64,128,256,512")
    p.add_argument("--blocks", type=_four, help="blocks per stage, e.g. 2,2,2,2")
    p.add_argument("--block", choices=BLOCKS)
    p.add_argument("--stride-in", choices=STRIDE_IN, help="bottleneck: stride in the 3×3 (v1.5) or first 1×1 (v1)")
    p.add_argument("--skip", choices=list(SKIP_OPTIONS), help="; ".join(f"{k}: {v}" for k, v in SKIP_OPTIONS.items()))
    p.add_argument("--fpn-width", type=int)
    p.add_argument("--upsample", choices=UPSAMPLE)
    p.add_argument("--policy", choices=list(POLICIES), help="; ".join(f"{k}: {v}" for k, v in POLICIES.items()))
    p.add_argument("--p6", choices=P6_SOURCES)
    p.add_argument("--p7", action=argparse.BooleanOptionalAction, default=None, help="add P7 on ReLU(P6)")
    p.add_argument("--fpn-from", choices=FPN_FROM)
    p.add_argument("--stem-width", type=int)
    p.add_argument("--batch", type=int)


def config_from_args(args: argparse.Namespace) -> Config:
    """The design the flags describe: the preset, then ``--config``'s file, then the design flags."""
    start = Config.preset(args.preset)
    if getattr(args, "config", None):
        start = read_design(args.config, start=start)
    return start.replace(**overrides_from_args(args))


def overrides_from_args(args: argparse.Namespace) -> dict:
    """The configuration fields the design flags set, e.g. ``{"skip": "A", "input_height": 225, ..}``."""
    overrides = {}
    if args.input:
        overrides["input_height"], overrides["input_width"] = args.input
    for attr in ("widths", "blocks", "block", "stride_in", "skip", "fpn_width", "upsample", "policy", "p6",
                 "p7", "fpn_from", "stem_width", "batch"):
        value = getattr(args, attr)
        if value is not None:
            overrides[attr] = value
    return overrides
