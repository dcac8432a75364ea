"""``python -m resfpn``: trace a configuration and print its levels, additions and costs."""

from __future__ import annotations

import argparse
import json
import sys

from .add import format_shape
from .compare_cli import add_compare_arguments, compare_main, comparing
from .config import P6_SOURCES, POLICIES, PRESETS, SKIP_OPTIONS, Config, ConfigError
from .tracing import Trace, trace

EXIT_OK, EXIT_MISMATCH, EXIT_USAGE = 0, 1, 2


def _size(text: str) -> tuple[int, int]:
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m resfpn",
        description="Trace a ResNet + FPN on the meta device and print every level's shape, "
        "every addition, parameters, MACs and activation memory.",
    )
    p.add_argument("--preset", default="reference", choices=list(PRESETS), help="starting point (default: reference)")
    p.add_argument("--input", type=_size, help="input size: 224 or HxW such as 224x320")
    p.add_argument("--widths", type=_four, help="stage output widths, e.g. 64,128,256,512")
    p.add_argument("--blocks", type=_four, help="blocks per stage, e.g. 2,2,2,2")
    p.add_argument("--block", choices=["basic", "bottleneck"])
    p.add_argument("--stride-in", choices=["3x3", "1x1"], help="bottleneck: stride in the 3×3 (v1.5) or first 1×1 (v1)")
    p.add_argument("--skip", choices=list(SKIP_OPTIONS), help="; ".join(f"{k}: {v}" for k, v in SKIP_OPTIONS.items()))
    p.add_argument("--fpn-width", type=int)
    p.add_argument("--upsample", choices=["nearest", "bilinear"])
    p.add_argument("--policy", choices=list(POLICIES), help="; ".join(f"{k}: {v}" for k, v in POLICIES.items()))
    p.add_argument("--p6", choices=list(P6_SOURCES))
    p.add_argument("--p7", action=argparse.BooleanOptionalAction, default=None, help="add P7 on ReLU(P6)")
    p.add_argument("--fpn-from", choices=["C2", "C3"])
    p.add_argument("--stem-width", type=int)
    p.add_argument("--batch", type=int)
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    add_compare_arguments(p)
    return p


def config_from_args(args: argparse.Namespace) -> Config:
    return Config.preset(args.preset, **overrides_from_args(args))


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


def _human(n: float, unit: str = "") -> str:
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {suffix}{unit}"
    return f"{n:.0f} {unit}".rstrip()


def _mib(n: int) -> str:
    return f"{n / 2**20:.2f} MiB"


def format_report(t: Trace) -> str:
    """The human-readable table printed by the command line."""
    c = t.config
    lines = [
        f"input {c.input_height}×{c.input_width} ({c.input_channels} channels, batch {c.batch}); "
        f"{c.block} blocks {list(c.blocks)}, widths {list(c.widths)}, skip {c.skip}; "
        f"FPN d={c.fpn_width} on {c.fpn_levels[0]}–C5, upsample {c.upsample}, policy {c.policy}, P6 {c.p6}, P7 {c.p7}",
    ]
    if t.backbone_input_shape and tuple(t.backbone_input_shape) != tuple(t.input_shape):
        lines.append(f"padded to {t.backbone_input_shape[2]}×{t.backbone_input_shape[3]} before the backbone")
    lines += ["", f"{'level':<6} {'shape C×H×W':<18} {'stride':>6} {'recept. field':>13} {'memory':>12}"]
    for name in c.levels:
        lv = t.levels.get(name)
        if lv is None:
            lines.append(f"{name:<6} {'(not reached)':<18}")
            continue
        lines.append(f"{name:<6} {format_shape(lv.shape):<18} {lv.stride:>6} {lv.receptive_field:>11} px "
                     f"{_mib(lv.bytes):>12}")
    lines += ["", "additions (element-wise: both operands must have identical shapes)"]
    for a in t.additions:
        mark = "ok " if a.ok else "MISMATCH"
        lines.append(f"  {mark:<8} {a.where:<26} {format_shape(a.shapes[0])} + {format_shape(a.shapes[1])}")
    lines += ["", f"{'part':<12} {'params':>12} {'MACs':>12}"]
    for part, n in t.params.parts.items():
        lines.append(f"{part:<12} {n:>12,} {_human(t.macs.parts[part]):>12}")
    lines.append(f"{'backbone':<12} {t.params.backbone:>12,} {_human(t.macs.backbone):>12}")
    lines.append(f"{'fpn':<12} {t.params.fpn:>12,} {_human(t.macs.fpn):>12}")
    lines.append(f"{'total':<12} {t.params.total:>12,} {_human(t.macs.total):>12}   "
                 f"(FLOPs = 2 × MACs = {_human(t.flops.total)}; the ResNet paper's 'FLOPs' are MACs)")
    act = t.activation_bytes
    lines.append(f"activation memory: levels {_mib(act['total'])}, estimated peak {_mib(act['peak_estimate'])} (float32)")
    if t.mismatch:
        lines += ["", "SHAPE MISMATCH — the trace stopped here:", str(t.mismatch)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits with status 2 and a message on bad arguments
    if comparing(args):
        return compare_main(args, parser)
    try:
        config = config_from_args(args)
    except ConfigError as err:
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    t = trace(config)
    print(json.dumps(t.to_dict(), indent=2) if args.json else format_report(t))
    return EXIT_OK if t.ok else EXIT_MISMATCH
