"""The command line's real runs and weights: ``--image``/``--weights``/``--seed``, and
``python -m resfpn download`` to pre-download published weights for offline use."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..weights.pretrained import FAMILIES, SOURCES, Source, get_source
from .args import EXIT_MISMATCH, EXIT_OK, EXIT_USAGE

WEIGHT_NAMES = ("random", *FAMILIES, *SOURCES)


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--image", help="run this image through the model and report per-level statistics (with --vs: "
                   "both designs, and each level's relative L2 difference ||A-B|| / max(||A||, ||B||))")
    p.add_argument("--weights", default="random",
                   help=f"with --image: {', '.join(WEIGHT_NAMES)}, or a .pth/.safetensors file in torchvision's "
                        "layout ('imagenet' and 'coco' pick the published weights that fit the design)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights (and of parts the weights leave random)")


def _progress(done: int, total: int | None, what: str, state: dict = {}) -> None:  # noqa: B006 (per process)
    step = done * 20 // total if total else done >> 24
    if state.get(what) != step:
        state[what] = step
        of = f" of {total / 1e6:.0f} MB" if total else ""
        print(f"{what}: {done / 1e6:.0f} MB{of}", file=sys.stderr)


def _weights(name: str, seed: int, config):
    """The engine's Weights for a CLI name or file, refused unless the published weights fit."""
    from ..serving.engine import Weights
    from ..weights.pretrained import require_fit, resolve

    if not 0 <= seed < 2**32:
        raise ValueError(f"--seed {seed}: choose a whole number from 0 to {2**32 - 1}")
    if name == "random":
        return Weights(seed=seed)
    if name.lower().endswith((".pth", ".pt", ".safetensors", ".bin")):
        if not Path(name).is_file():
            raise ValueError(f"--weights {name}: no such file")
        return Weights.from_file(name, seed=seed)
    source = resolve(name, config)
    require_fit(config, source)
    from ..weights.download import fetch

    fetch(source, _progress)  # downloads (with progress on stderr) before the engine builds
    return Weights(seed=seed, source=source.name)


def run_image(args: argparse.Namespace, config, t, format_report) -> int:
    """Run ``args.image`` with ``args.weights``; print the report with per-level statistics and ``run``."""
    from ..analysis.activations import level_stats
    from ..formatting import format_shape
    from ..serving.engine import Engine
    from ..serving.images import decode_image

    if not t.ok:
        print(json.dumps(t.to_dict(), indent=2) if args.json else format_report(t))
        return EXIT_MISMATCH
    weights = _weights(args.weights, args.seed, config)
    decoded = decode_image(args.image)
    run = Engine().run(config, decoded.image, weights)
    report = t.to_dict()
    report["stats"] = {k: level_stats(v) for k, v in run.levels.items()}
    report["run"] = {"weights": run.weights, "build_seconds": run.build_seconds,
                     "forward_seconds": run.forward_seconds, "image_size": list(decoded.original_size),
                     "loaded": run.load.summary() if run.load else None}
    if args.json:
        print(json.dumps(report, indent=2))
        return EXIT_OK
    lines = [format_report(t), "", f"weights: {run.weights}",
             f"image {Path(args.image).name} {decoded.original_size[0]}×{decoded.original_size[1]} → "
             f"{config.input_width}×{config.input_height}; build {run.build_seconds * 1e3:.0f} ms, "
             f"forward {run.forward_seconds * 1e3:.0f} ms", "",
             f"{'level':<6} {'shape':<18} {'mean':>10} {'std':>10} {'zeros':>7}  top channels (mean x²)"]
    for name, s in report["stats"].items():
        top = ", ".join(f"{i} ({e:.3g})" for i, e in s["top_channels"])
        lines.append(f"{name:<6} {format_shape(tuple(run.levels[name].shape)):<18} {s['mean']:>10.4f} "
                     f"{s['std']:>10.4f} {100 * s['zeros']:>6.1f}%  {top}")
    print("\n".join(lines))
    return EXIT_OK


def run_errors() -> tuple[type[Exception], ...]:
    """What a real run can refuse with a message (exit 2) rather than a traceback."""
    from ..weights.download import CorruptFile, WeightsUnavailable
    from ..serving.images import ImageError

    return (ValueError, WeightsUnavailable, CorruptFile, ImageError, OSError)


def download_main(argv: list[str]) -> int:
    """``python -m resfpn download imagenet resnet50 [...]``, ``download coco faster-rcnn``, ``download all``."""
    p = argparse.ArgumentParser(
        prog="python -m resfpn download",
        description="Pre-download published weights into the Hugging Face cache (ImageNet) or torch's hub "
        "cache (COCO), for offline use (HF_HUB_OFFLINE=1).",
        epilog="weights: " + "; ".join(f"{s.family} {s.name[len(s.family) + 1:]} ({s.bytes / 1e6:.0f} MB)"
                                        for s in SOURCES.values()),
    )
    p.add_argument("family", choices=[*FAMILIES, "all", "list"], help="imagenet, coco, all, or list (what is cached)")
    p.add_argument("models", nargs="*", help="e.g. resnet18 resnet50 (imagenet), faster-rcnn retinanet (coco); "
                   "none: every file of the family")
    args = p.parse_args(argv)
    from ..weights.download import CorruptFile, WeightsUnavailable, cached_path, fetch

    if args.family in ("all", "list"):
        sources = list(SOURCES.values())
    else:
        names = [f"{args.family}-{m}" for m in args.models] or [n for n, s in SOURCES.items() if s.family == args.family]
        unknown = [n for n in names if n not in SOURCES]
        if unknown:
            known = [n[len(args.family) + 1:] for n, s in SOURCES.items() if s.family == args.family]
            print(f"{p.prog}: error: unknown {args.family} weights {', '.join(u[len(args.family) + 1:] for u in unknown)}; "
                  f"known: {', '.join(known)}", file=sys.stderr)
            return EXIT_USAGE
        sources = [get_source(n) for n in names]
    status = EXIT_OK
    for source in sources:
        try:
            path = cached_path(source) if args.family == "list" else _fetch_replacing_corrupt(source, fetch, cached_path)
            state = f"{path}" if path else "not cached"
        except (WeightsUnavailable, CorruptFile) as err:
            state, status = f"error: {err}", EXIT_USAGE
        print(f"{source.name:<22} {source.where:<46} {source.bytes / 1e6:>5.0f} MB  {state}")
    return status


def _fetch_replacing_corrupt(source: Source, fetch, cached_path):
    """The download command is the repair the error messages name: a cached file that fails its check
    is deleted (saying so) and fetched again, once."""
    from ..weights.download import CorruptFile

    try:
        return fetch(source, _progress)
    except CorruptFile as err:
        if not err.paths:
            raise
        print(f"{source.name}: the cached file failed its check; deleting {', '.join(map(str, err.paths))} "
              f"and downloading again", file=sys.stderr)
        for path in err.paths:
            Path(path).unlink(missing_ok=True)
        return fetch(source, _progress)
