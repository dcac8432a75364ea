"""The named API endpoints (also MCP tools, see README): their docstrings are what a client or an
assistant reads about each argument and what comes back."""

from __future__ import annotations

from typing import Any

import gradio as gr

from .library import (
    LIMITS, admit, check_precision, check_run, checked_config, decode, engine, refuse, run_admitted, trace, uploaded_path,
    weights_errors, weights_for,
)


def _weights_mode(weights: Any) -> str:
    if weights is None or weights == "random":
        return "random"
    if not isinstance(weights, str) or weights in ("upload", "checkpoint"):
        raise refuse(f"weights={weights!r}: choose 'random', 'imagenet', 'coco' or a published source name "
                     "(python -m resfpn download list)", "Weights refused")
    return weights


def analyze(config: dict, image: gr.FileData | None = None, precision: str = "fp32", weights: str = "random") -> dict:
    """Trace a ResNet + FPN design (every tensor shape, before running) and, given an image, run it.

    Args:
        config: design fields, the keys of the report's `config` (missing keys take the reference
            design's values), e.g. {"input_height": 512, "input_width": 512, "skip": "A",
            "widths": [64, 128, 256, 512], "block": "basic", "fpn_width": 256, "policy": "x2"}.
        image: optional image file; without it nothing runs and only shapes are reported.
        precision: "fp32" (default) or "bf16" (fast on CPUs with bf16 instructions); statistics stay float32.
        weights: "random" (default: seeded random, offline), "imagenet" (the published torchvision
            ImageNet backbone that fits the design), "coco" (a torchvision COCO detection backbone + FPN
            that fits), or a source name such as "imagenet-resnet50" or "coco-faster-rcnn".
    Returns:
        The JSON report of `python -m resfpn --json`: `levels` (shape, stride, exact receptive field
        and its [min, max] range over positions, bytes), `additions` (every element-wise add with both
        operand shapes), `mismatch` (null, or where/why/fixes), `params`, `macs`, `modules`. With an
        image also `stats` per level (mean, std, zeros, top channels) and `run` (weights: the exact
        source, precision, timings).
    """
    cfg = checked_config(config)
    t = trace(cfg)
    report = t.to_dict()
    if image is None:
        return report
    estimate = check_run(t)
    precision = check_precision(precision)
    w = weights_for(cfg, _weights_mode(weights))
    from resfpn.analysis import activations

    with engine().slot():
        run, decoded = run_admitted(cfg, t, estimate, uploaded_path(image), w, precision)
        report["stats"] = {k: activations.level_stats(v) for k, v in run.levels.items()}
    report["run"] = {"forward_seconds": run.forward_seconds, "cached": run.cached, "weights": run.weights,
                     "image_size": list(decoded.original_size), "precision": run.precision,
                     "relative_difference": run.difference, "packed": run.packed}
    return report


def receptive_field(config: dict, image: gr.FileData, x: int, y: int, weights: str = "random") -> dict:
    """Where one point of the input image is seen: per level, the cell covering the point, its exact
    theoretical receptive field and its effective receptive field (Luo et al., 2016).

    Args:
        config: design fields as for /analyze.
        image: the image file; it is resized to the design's input size first.
        x: column of the point, in pixels of the resized image (0 <= x < input_width).
        y: row of the point, in pixels of the resized image (0 <= y < input_height).
        weights: "random" (default), "imagenet", "coco" or a source name, as for /analyze; the
            effective field depends on the weights, the theoretical one does not.
    Returns:
        {"point": [x, y], "weights": "...", "levels": {"C2": {"cell": [row, col], "box": [top, left,
        bottom, right], "erf_box": [top, left, bottom, right], "erf_mass_in_box": 0.95, "stride": 4,
        "receptive_field_range": [min, max]}, ...}}. Boxes are in input pixels, bottom and right
        exclusive; `box` is unclipped (it may reach outside the image), `erf_box` is the smallest box
        within the image holding 95 % of the input-gradient magnitude.
    """
    from resfpn.analysis.effective import PointError, check_point, image_fields

    cfg = checked_config(config).replace(batch=1)
    t = trace(cfg)
    if image is None:
        raise refuse("an image is needed: the effective field is measured on it", "No image")
    estimate = check_run(t, backward=True)  # a mismatch is refused with its diagnosis first
    try:
        check_point(t, x, y)
    except PointError as err:
        raise refuse(str(err), "Point refused") from None
    w = weights_for(cfg, _weights_mode(weights))
    decoded = decode(uploaded_path(image))
    with engine().slot():
        admit(t, estimate, decoded)
        try:
            fields, _ = image_fields(engine(), cfg, decoded.image, (int(x), int(y)), w)
        except weights_errors() as err:
            raise refuse(str(err), "Weights refused") from None
    levels = {name: {k: v for k, v in f.items() if k != "erf"} | {
        "stride": t.levels[name].stride, "receptive_field_range": list(t.levels[name].receptive_field_range)}
        for name, f in fields.items()}
    return {"point": [int(x), int(y)], "weights": w.label, "levels": levels}


def compare(a: dict, b: dict, image: gr.FileData | None = None, weights: str = "random") -> dict:
    """Compare two designs A and B: every level's shape on both sides, what differs, and (with an
    image) how different their activations are.

    Args:
        a: design A's fields, as for /analyze.
        b: design B's fields, as for /analyze.
        image: optional image file; both designs run on it.
        weights: "random" (default; the same seed gives both designs the same weights in every
            module they share), "imagenet", "coco" or a source name; it must fit both designs.
    Returns:
        {"a": report, "b": report, "levels": {"C2": {"a": shape or null, "b": shape or null,
        "same_shape": bool, "difference": relative L2 ||A-B|| / max(||A||, ||B||) or null, ...}, ...},
        "params": {"a": n, "b": n}, "macs": {"a": n, "b": n}, "errors": {"a": message or null, "b": ...},
        "changed": fields that differ, "blocks" and "additions" that differ}. One side's invalid
        design is reported in `errors` (naming the side and the field); the other side still reports.
    """
    from resfpn.analysis import compare as compare_module

    for side, d in (("A", a), ("B", b)):
        if not isinstance(d, dict):
            raise refuse(f"{side}: config must be a JSON object of configuration fields", "Configuration refused")
    if image is None:
        return compare_module.compare(a, b, limits=LIMITS).to_dict()  # traces only: no engine, no weights
    pil = decode(uploaded_path(image)).image
    w = weights_for(checked_config(a), _weights_mode(weights))
    # Both runs take the engine's slot themselves.
    return compare_module.compare(a, b, pil, engine=engine(), weights=w, limits=LIMITS).to_dict()


def sizes(config: dict, failures: int = 8, image_width: int = 0, image_height: int = 0) -> dict:
    """List the input sizes from 1 to 2048 at which a design builds, for each top-down policy and each axis, from a size program recorded from the model's own meta forward.

    Args:
        config: design fields as for /analyze (missing keys take the reference design's values); its
            input size is reported as "current".
        failures: how many of the sizes that do not build to explain, per policy and axis (default 8,
            spread over 1 to 2048).
        image_width: optional width of a photo, with image_height; the answer then lists the nearest
            sizes that build under the design's policy and keep the photo's aspect ratio within 1 %.
        image_height: optional height of that photo (0, the default, means no photo).
    Returns:
        {"policies": {"x2": {"height": {"valid": [29, 30, 31, 32, 61, ...], "summary": "29–32 (mod 32)",
        "failures": [{"size": 225, "where": "FPN merge into P4", "operands": [...], "shapes": [[N, C, H, W],
        [N, C, H, W]]}, ...]}, "width": {...}}, "match": {...}, "pad": {...}}, "current": {"height", "width",
        "policy", "builds", "failure"}, "aspect": [{"height", "width", "aspect_error", "scale"}, ...]}.
        A failure's shapes are taken with the other axis at the design's own size (or the nearest that builds).
    """
    from resfpn.shapes.sizes import aspect_sizes, size_map

    cfg = checked_config(config)
    failures = _whole(failures, "failures", 0, 100, default=8)
    image_width, image_height = _whole(image_width, "image_width", 0, 65535), _whole(image_height, "image_height", 0, 65535)
    m = size_map(cfg)
    report = m.to_dict(failures)
    h, w = cfg.input_height, cfg.input_width
    failure = m.failure_at(cfg.policy, h, w)  # sizes beyond 2048 too
    report["current"] = {"height": h, "width": w, "policy": cfg.policy, "builds": failure is None,
                         "failure": failure.to_dict() if failure else None}
    if image_width and image_height:
        report["aspect"] = aspect_sizes(m, cfg.policy, image_height, image_width)
    return report


def sweep(config: dict, level: str = "P5") -> dict:
    """Price about a hundred variants of a design, shape-only: width multipliers from 0.25 to 2, the presets' blocks per stage and their neighbours, and both block types.

    Args:
        config: design fields as for /analyze; the variants keep its input size, skip option, FPN and
            policy, and the current design is always among them. Variants above this server's caps
            (e.g. 2048 channels) are left out.
        level: the pyramid level whose exact theoretical receptive field is reported (default "P5").
    Returns:
        {"designs": [{"config": {...}, "label": "basic [2, 2, 2, 2] ×1", "params": n, "macs": n,
        "receptive_field": pixels, "builds": bool, "pareto": bool, "preset": name or null,
        "current": bool}, ...], "level": "P5", "seconds": time taken}. A design is on the Pareto front
        when no other has at most its parameters and MACs and at least its receptive field.
    """
    from resfpn.shapes.sweep import sweep as run_sweep

    cfg = checked_config(config)
    try:
        result = run_sweep(cfg, level="P5" if level is None else level, limits=LIMITS)
    except ValueError as err:
        raise refuse(str(err), "Sweep refused") from None
    return result.to_dict()


def _whole(value, name: str, lo: int, hi: int, default: int = 0) -> int:
    """A whole-number argument; None (an API caller left it out) takes ``default``."""
    if value is None:
        return default
    try:
        n = int(value)
        if n != value and not (isinstance(value, str) and value.strip().isdigit()):
            raise ValueError
    except (TypeError, ValueError):
        raise refuse(f"{name}={value!r}: expected a whole number from {lo} to {hi}", "Argument refused") from None
    if not lo <= n <= hi:
        raise refuse(f"{name}={n}: expected a whole number from {lo} to {hi}", "Argument refused")
    return n
