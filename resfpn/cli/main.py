"""``python -m resfpn``: trace a configuration and print its levels, additions and costs."""

from __future__ import annotations

import argparse
import json
import sys

from ..formatting import format_count, format_mib, format_range, format_shape
from ..model.config import Config, ConfigError
from ..share.design_file import DesignFileError, write_design
from ..share.export import ExportError, export_code
from ..shapes.tracing import Trace, trace
from . import weights as cli_weights
from .args import EXIT_MISMATCH, EXIT_OK, EXIT_USAGE, add_design_arguments, config_from_args
from .compare import add_compare_arguments, compare_main, comparing


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m resfpn",
        description="Trace a ResNet + FPN on the meta device and print every level's shape, "
        "every addition, parameters, MACs and activation memory.",
        epilog="Exit status: 0 when every addition holds; 1 when a shape mismatch is diagnosed (then "
        "--export-code writes nothing and prints the diagnosis); 2 for bad arguments or an unusable "
        "--config file, or a file that cannot be written. `python -m resfpn sizes --help`: the input "
        "sizes a design builds at.",
    )
    add_design_arguments(p)
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    cli_weights.add_run_arguments(p)  # --image, --weights, --seed
    p.add_argument("--save-config", metavar="DESIGN.json", help="write the design as a JSON file for --config")
    p.add_argument("--export-code", metavar="MODEL.py",
                   help="write the design as one standalone PyTorch file (imports only torch) whose "
                   "build_model() loads resfpn's state_dict; refused, with exit status 1, for a design "
                   "with a shape mismatch")
    add_compare_arguments(p)  # --vs, --vs-preset
    return p


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
        lines.append(f"{name:<6} {format_shape(lv.shape):<18} {lv.stride:>6} {format_range(*lv.receptive_field_range):>11} px "
                     f"{format_mib(lv.bytes):>12}")
    lines += ["", "additions (element-wise: both operands must have identical shapes)"]
    for a in t.additions:
        mark = "ok " if a.ok else "MISMATCH"
        lines.append(f"  {mark:<8} {a.where:<26} {format_shape(a.shapes[0])} + {format_shape(a.shapes[1])}")
    lines += ["", f"{'part':<12} {'params':>12} {'MACs':>12}"]
    for part, n in t.params.parts.items():
        lines.append(f"{part:<12} {n:>12,} {format_count(t.macs.parts[part]):>12}")
    lines.append(f"{'backbone':<12} {t.params.backbone:>12,} {format_count(t.macs.backbone):>12}")
    lines.append(f"{'fpn':<12} {t.params.fpn:>12,} {format_count(t.macs.fpn):>12}")
    lines.append(f"{'total':<12} {t.params.total:>12,} {format_count(t.macs.total):>12}   "
                 f"(FLOPs = 2 × MACs = {format_count(t.flops.total)}; the ResNet paper's 'FLOPs' are MACs)")
    act = t.activation_bytes
    lines.append(f"activation memory: levels {format_mib(act['total'])}, estimated peak {format_mib(act['peak_estimate'])} (float32)")
    if t.mismatch:
        lines += ["", "SHAPE MISMATCH — the trace stopped here:", str(t.mismatch)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["download"]:
        return cli_weights.download_main(argv[1:])
    if argv[:1] == ["sizes"]:
        from .sizes import sizes_main

        return sizes_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)  # exits with status 2 and a message on bad arguments
    if comparing(args):
        return compare_main(args, parser)
    try:
        config = config_from_args(args)
    except DesignFileError as err:  # one line naming the file; the usage would not help
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as err:
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    t = trace(config)
    if args.image or args.weights != "random":  # a real run: weights and per-level statistics
        if not args.image:
            print(f"{parser.prog}: error: --weights applies to a run: add --image PATH", file=sys.stderr)
            return EXIT_USAGE
        try:
            return cli_weights.run_image(args, config, t, format_report)
        except cli_weights.run_errors() as err:
            print(f"{parser.prog}: error: {err}", file=sys.stderr)
            return EXIT_USAGE
    print(json.dumps(t.to_dict(), indent=2) if args.json else format_report(t))
    return _write_files(args, parser.prog, config, EXIT_OK if t.ok else EXIT_MISMATCH)


def _write_files(args: argparse.Namespace, prog: str, config: Config, status: int) -> int:
    """``--save-config`` and ``--export-code``; notes go to stderr so that stdout stays the report."""
    sys.stdout.flush()
    try:
        if args.save_config:
            write_design(config, args.save_config)
            print(f"{prog}: wrote the design to {args.save_config}", file=sys.stderr)
        if args.export_code:
            code = export_code(config)
            try:
                with open(args.export_code, "w", encoding="utf-8") as f:
                    f.write(code)
            except OSError as err:
                print(f"{prog}: error: {args.export_code}: cannot write it: {err.strerror or err}", file=sys.stderr)
                return EXIT_USAGE
            print(f"{prog}: wrote {args.export_code} ({code.count(chr(10))} lines; build_model() needs only torch)",
                  file=sys.stderr)
    except DesignFileError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except ExportError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return EXIT_MISMATCH
    return status
