"""``python -m resfpn [design flags] --vs FIELD=VALUE ..``: two designs' levels in one table.

Design A is what the ordinary flags describe; B is A changed by each ``--vs FIELD=VALUE`` (or
started from ``--vs-preset NAME`` at A's input size). Exit status: 0 when both trace cleanly,
1 when either has a shape mismatch, 2 when either configuration is refused.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

from ..model.config import PRESETS, Config, ConfigError
from ..formatting import format_count, format_mib, format_shape
from .args import EXIT_MISMATCH, EXIT_OK, EXIT_USAGE, input_size, overrides_from_args

FIELDS = {f.name: f.default for f in dataclasses.fields(Config)}
INPUT_FIELDS = ("input_height", "input_width", "input_channels", "batch")  # kept by --vs-preset


def _field_value(text: str) -> tuple[str, Any]:
    """``"skip=A"`` -> ``("skip", "A")``, with the value converted to the field's type."""
    name, sep, raw = text.partition("=")
    name = name.strip().replace("-", "_")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r}: expected FIELD=VALUE, e.g. skip=A or widths=64,128,256,512")
    if name == "input":
        return "input", input_size(raw)
    if name not in FIELDS:
        raise argparse.ArgumentTypeError(
            f"{text!r}: unknown field {name!r}; known: input, {', '.join(sorted(FIELDS))}")
    default = FIELDS[name]
    try:
        if isinstance(default, bool):
            if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return name, raw.lower() in ("true", "1", "yes")
        if isinstance(default, int):
            return name, int(raw)
        if isinstance(default, tuple):
            return name, tuple(int(v) for v in raw.split(","))
    except ValueError:
        kind = {bool: "true or false", int: "a whole number", tuple: "comma-separated whole numbers"}[type(default)]
        raise argparse.ArgumentTypeError(f"{text!r}: {name} takes {kind}") from None
    return name, raw


def add_compare_arguments(p: argparse.ArgumentParser) -> None:
    """The compare flags, in one group of their own."""
    g = p.add_argument_group("compare with a second design B (the design above is A)")
    g.add_argument("--vs", action="append", type=_field_value, metavar="FIELD=VALUE",
                   help="B = A with this field changed; repeat for more, e.g. --vs skip=A --vs fpn_width=128 "
                        "(also --vs input=225 for the input size)")
    g.add_argument("--vs-preset", choices=list(PRESETS), help="B starts from this preset at A's input size")


def comparing(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "vs", None) or getattr(args, "vs_preset", None))


def design_dicts(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both designs as field dicts (not yet checked: ``compare`` reports each side's errors)."""
    a_over = overrides_from_args(args)
    start = PRESETS[args.preset]
    if getattr(args, "config", None):
        from ..share.design_file import read_design

        start = read_design(args.config, start=start)
    a = start.to_dict() | a_over
    if args.vs_preset:
        b = PRESETS[args.vs_preset].to_dict() | {k: v for k, v in a_over.items() if k in INPUT_FIELDS}
    else:
        b = dict(a)
    for name, value in args.vs or ():
        if name == "input":
            b["input_height"], b["input_width"] = value
        else:
            b[name] = value
    return a, b


def _cell(value: Any, fmt=str) -> str:
    return "—" if value is None else fmt(value)


def format_comparison(report: dict[str, Any]) -> str:
    """The human-readable side-by-side table of a ``/compare`` report (``Comparison.to_dict()``)."""
    lines = []
    for side in ("a", "b"):
        r = report[side]
        if r is None:
            lines.append(f"{report['errors'][side]} (refused)")
            continue
        c = r["config"]
        lines.append(f"{side.upper()}: input {c['input_height']}×{c['input_width']}; {c['block']} blocks {c['blocks']}, "
                     f"widths {c['widths']}, skip {c['skip']}; FPN d={c['fpn_width']} from {c['fpn_from']}, "
                     f"{c['upsample']}, policy {c['policy']}, P6 {c['p6']}, P7 {c['p7']}")
    if report["changed"]:
        lines.append("changed: " + ", ".join(f"{k} {v['a']} → {v['b']}" for k, v in report["changed"].items()))
    image = any(report[s] is not None and "run" in report[s] for s in ("a", "b"))

    def shape(s):
        return _cell(s, format_shape)

    header = f"  {'level':<6} {'A shape C×H×W':<16} {'B shape C×H×W':<16} {'RF A':>6} {'RF B':>6} {'memory A':>11} {'memory B':>11}"
    lines += ["", header + (f" {'rel. L2':>8}" if image else "")]
    for name, lv in report["levels"].items():
        row = (f"{'≠' if lv['differs'] else ' '} {name:<6} {shape(lv['a']):<16} {shape(lv['b']):<16} "
               f"{_cell(lv['receptive_field']['a']):>6} {_cell(lv['receptive_field']['b']):>6} "
               f"{_cell(lv['bytes']['a'], format_mib):>11} {_cell(lv['bytes']['b'], format_mib):>11}")
        if image:
            row += f" {_cell(lv['difference'], lambda d: f'{d:.3g}'):>8}"
        lines.append(row)
    lines.append("≠: shape, receptive field or memory differ" + ("; rel. L2 = ||A−B|| / max(||A||, ||B||)" if image else ""))
    if report.get("shared_levels"):
        lines.append(f"B reused A's forward for {', '.join(report['shared_levels'])}")

    both = report["a"] is not None and report["b"] is not None  # else every block and addition "differs"
    blocks = [b for b in report["blocks"] if b["differs"] and both]
    if blocks:
        lines += ["", "residual blocks that differ"]
        for b in blocks:
            def describe(x):
                return "absent" if x is None else (f"{x['kind']}, shortcut {x['shortcut']}, "
                                                   f"{x['params']:,} params, {format_count(x['macs'], 'MACs')}")
            lines.append(f"  {b['site']:<10} A: {describe(b['a'])}")
            lines.append(f"  {'':<10} B: {describe(b['b'])}")
    additions = [a for a in report["additions"] if a["differs"] and both]
    if additions:
        lines += ["", "additions that differ"]
        for a in additions:
            def describe(x):
                if x is None:
                    return "absent"
                return f"{'ok' if x['ok'] else 'MISMATCH'} {' + '.join(format_shape(s) for s in x['shapes'])}"
            lines.append(f"  {a['where']:<26} A: {describe(a['a']):<32} B: {describe(a['b'])}")

    lines += ["", f"  {'part':<12} {'params A':>12} {'params B':>12} {'MACs A':>11} {'MACs B':>11}"]
    costs = report["costs"]
    for part in ("backbone", "fpn", "total"):
        p, m = costs["params"][part], costs["macs"][part]
        mark = "≠" if p["a"] != p["b"] or m["a"] != m["b"] else " "
        lines.append(f"{mark} {part:<12} {_cell(p['a'], '{:,}'.format):>12} {_cell(p['b'], '{:,}'.format):>12} "
                     f"{_cell(m['a'], format_count):>11} {_cell(m['b'], format_count):>11}")
    for side in ("a", "b"):
        mismatch = report["mismatch"][side]
        if mismatch:
            lines += ["", f"{side.upper()}: SHAPE MISMATCH — the trace stopped here:", mismatch]
    return "\n".join(lines)


def compare_main(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Compare the two designs the flags describe; print the table (or ``--json``), return the exit status."""
    from ..analysis.compare import compare

    try:
        a, b = design_dicts(args)
    except ConfigError as err:  # --config's file: one line naming it
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    image = None
    if args.image:
        from ..serving.images import ImageError, decode_image

        try:
            image = decode_image(args.image).image
        except (ImageError, OSError) as err:
            print(f"{parser.prog}: error: --image {args.image}: {err}", file=sys.stderr)
            return EXIT_USAGE
    comparison = compare(a, b, image=image)
    report = comparison.to_dict()
    print(json.dumps(report, indent=2) if args.json else format_comparison(report))
    for error in comparison.errors:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
    if comparison.errors:
        return EXIT_USAGE
    return EXIT_OK if comparison.ok else EXIT_MISMATCH
