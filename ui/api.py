"""The named API endpoints (also MCP tools, see docs): their docstrings are what a client or an
assistant reads about each argument and what comes back.

Gradio reads each argument's description from one docstring line and joins the lines after
``Returns:`` with commas, so every argument is described on one line and ``Returns:`` is one
line too (they run past the usual width on purpose). ``request`` is Gradio's own and not part
of the API. Images are typed ``gr.FileData | None`` so Gradio hands them over as sent and
``uploaded_path`` accepts only files uploaded here (Gradio would otherwise download any URL).
"""

from __future__ import annotations

import functools
import json
from typing import Any

import gradio as gr

from .library import (
    LIMITS, admit, check_precision, check_run, checked_config, decode, engine, published_source, refuse, run_admitted,
    trace, uploaded_path, weights_errors, weights_for,
)

# MCP's streamable-HTTP clients send this header on every call after the handshake; Gradio's MCP
# server forwards the client's headers when it runs a tool through the queue.
MCP_HEADER = "mcp-protocol-version"
WEIGHT_NAMES = "'random', 'imagenet', 'coco' or a published source name"


def _weights_mode(weights: Any) -> str:
    if weights is None or weights == "random":
        return "random"
    if not isinstance(weights, str) or weights in ("upload", "checkpoint"):
        raise refuse(f"weights={weights!r}: choose {WEIGHT_NAMES} (python -m resfpn download list)", "Weights refused")
    return weights


def _required(why: str = "", **values: Any) -> None:
    """Refuse a call that left out a required argument, naming it (plain REST may send fewer values)."""
    missing = [name for name, value in values.items() if value is None]
    if missing:
        raise refuse(f"missing required argument(s): {', '.join(missing)}.{why} See /gradio_api/info for each "
                     "argument's meaning and default.", "Argument missing")


def _whole(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise refuse(f"{name}={value!r}: expected a whole number of pixels", "Point refused")
    return int(value)


def _via_mcp(request: gr.Request | None) -> bool:
    headers = getattr(request, "headers", None)
    return headers is not None and MCP_HEADER in headers


def _reply(full: dict, summarize, detail: str | None, request: gr.Request | None) -> dict | str:
    """The answer in the detail asked for: 'full' by default over REST and gradio_client, 'summary'
    by default for MCP tools, whose answer is JSON text (MCP carries text, and Gradio would write
    Python's repr of a dict)."""
    from resfpn.analysis.report_summary import check_detail

    mcp = _via_mcp(request)
    try:
        detail = check_detail(detail or ("summary" if mcp else "full"))
    except ValueError as err:
        raise refuse(str(err), "Detail refused") from None
    answer = summarize(full) if detail == "summary" else full | {"detail": "full"}
    return json.dumps(answer, ensure_ascii=False) if mcp else answer


def answers(fn):
    """An endpoint that always answers with a message: an error nobody anticipated becomes a
    ``gr.Error`` naming its type, instead of Gradio's bare ``{"error": null}``."""

    @functools.wraps(fn)
    def endpoint(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (TypeError, ValueError, KeyError, AttributeError) as err:
            raise refuse(f"{fn.__name__}: arguments not understood ({type(err).__name__}: {err})",
                         "Request refused") from None

    return endpoint


@answers
def analyze(config: dict, image: gr.FileData | None = None, precision: str = "fp32", weights: str = "random",
            detail: str | None = None, request: gr.Request = None) -> dict | str:
    """Trace a ResNet + FPN design (every tensor shape, before running) and, given an image, run it.

    Args:
        config: Required. The design's fields as a JSON object, e.g. {"input_height": 512, "input_width": 512, "skip": "A", "widths": [64, 128, 256, 512], "block": "basic", "fpn_width": 256, "policy": "x2"}; fields left out take the reference design's values, so {} is the reference design.
        image: Optional image file; without it nothing runs and only shapes are reported.
        precision: "fp32" (the default) or "bf16", offered only where this machine runs bf16 convolutions natively and measured faster than fp32 (elsewhere refused with the reason); statistics stay float32. Checked with or without an image.
        weights: "random" (the default: seeded random, offline), "imagenet" (the published torchvision ImageNet backbone that fits the design), "coco" (a torchvision COCO detection backbone and FPN that fit), or a source name such as "imagenet-resnet50" or "coco-faster-rcnn". Checked with or without an image; a name that does not fit the design is refused with the names that do.
        detail: "full" (every module and addition) or "summary" (levels, mismatch and fixes, costs, and a run's statistics). The default is "full" over REST and the Python client, and "summary" for MCP tools.
    Returns:
        The report of `python -m resfpn --json`: `levels` (shape, stride, exact receptive field and its [min, max] range over positions, bytes), `additions` (every element-wise add with both operand shapes), `mismatch` (null, or where, why and fixes), `params`, `macs` and `modules`; with an image also `stats` per level (mean, std, zeros, top channels) and `run` (the exact weights source, precision and timings, `serving`: which model served and why, `kernels`: how many convs ran each kernel, "plain", "onednn" or "winograd", chosen by measurement on this CPU); MCP tools get it as JSON text.
    """
    _required(config=config)
    cfg = checked_config(config)
    precision = check_precision(precision)
    mode = _weights_mode(weights)
    if mode != "random":
        published_source(cfg, mode)  # refused now, with or without an image; fetched only for a run
    t = trace(cfg)
    report = t.to_dict()
    if image is not None:
        _run_into(report, cfg, t, image, precision, mode)
    from resfpn.analysis.report_summary import summarize

    return _reply(report, summarize, detail, request)


def _run_into(report: dict, cfg, t, image, precision: str, mode: str) -> None:
    from resfpn.analysis import activations

    estimate = check_run(t)
    w = weights_for(cfg, mode)
    with engine().slot():
        run, decoded = run_admitted(cfg, t, estimate, uploaded_path(image), w, precision)
        report["stats"] = {k: activations.level_stats(v) for k, v in run.levels.items()}
    report["run"] = {"forward_seconds": run.forward_seconds, "cached": run.cached, "weights": run.weights,
                     "image_size": list(decoded.original_size), "precision": run.precision,
                     "relative_difference": run.difference, "packed": run.packed, "kernels": run.kernels,
                     "serving": run.serving}


@answers
def receptive_field(config: dict, image: gr.FileData | None, x: int, y: int, weights: str = "random",
                    request: gr.Request = None) -> dict | str:
    """Where one point of the input image is seen: per level, the cell covering the point, its exact theoretical receptive field and its effective receptive field (Luo et al., 2016).

    Args:
        config: Required. The design's fields as a JSON object, as for /analyze.
        image: Required. The image file (uploaded to this server); it is resized to the design's input size first.
        x: Required. The point's column in pixels of the resized image (0 <= x < input_width).
        y: Required. The point's row in pixels of the resized image (0 <= y < input_height).
        weights: "random" (the default), "imagenet", "coco" or a source name, as for /analyze; the effective field depends on the weights, the theoretical one does not.
    Returns:
        {"point": [x, y], "weights": "...", "levels": {"C2": {"cell": [row, col], "box": [top, left, bottom, right], "erf_box": [top, left, bottom, right], "erf_mass_in_box": 0.95, "stride": 4, "receptive_field_range": [min, max]}, ...}}. Boxes are in input pixels, bottom and right exclusive; `box` is unclipped (it may reach outside the image), and `erf_box` is the smallest box within the image that holds 95 % of the input-gradient magnitude. MCP tools get it as JSON text.
    """
    from resfpn.analysis.effective import PointError, check_point, image_fields

    _required(" An image is needed: the effective field is measured on it." if image is None else "",
              config=config, image=image, x=x, y=y)
    x, y = _whole("x", x), _whole("y", y)
    cfg = checked_config(config).replace(batch=1)
    mode = _weights_mode(weights)
    if mode != "random":
        published_source(cfg, mode)
    t = trace(cfg)
    estimate = check_run(t, backward=True)  # a mismatch is refused with its diagnosis first
    try:
        check_point(t, x, y)
    except PointError as err:
        raise refuse(str(err), "Point refused") from None
    w = weights_for(cfg, mode)
    decoded = decode(uploaded_path(image))
    with engine().slot():
        admit(t, estimate, decoded)
        try:
            fields, _ = image_fields(engine(), cfg, decoded.image, (x, y), w)
        except weights_errors() as err:
            raise refuse(str(err), "Weights refused") from None
    levels = {name: {k: v for k, v in f.items() if k != "erf"} | {
        "stride": t.levels[name].stride, "receptive_field_range": list(t.levels[name].receptive_field_range)}
        for name, f in fields.items()}
    return _reply({"point": [x, y], "weights": w.label, "levels": levels}, lambda r: r | {"detail": "summary"},
                  None, request)


@answers
def compare(a: dict, b: dict, image: gr.FileData | None = None, weights: str = "random", detail: str | None = None,
            request: gr.Request = None) -> dict | str:
    """Compare two designs A and B: every level's shape on both sides, what differs, and (with an image) how different their activations are.

    Args:
        a: Required. Design A's fields as a JSON object, as for /analyze.
        b: Required. Design B's fields as a JSON object, as for /analyze.
        image: Optional image file; both designs run on it.
        weights: "random" (the default; the same seed gives both designs the same weights in every module they share), "imagenet", "coco" or a source name; it must fit both designs.
        detail: "full" (both reports in full) or "summary" (both reports summarised, with the per-level table). The default is "full" over REST and the Python client, and "summary" for MCP tools.
    Returns:
        {"a": report, "b": report, "levels": {"C2": {"a": shape or null, "b": shape or null, "same_shape": true or false, "difference": the relative L2 difference ||A-B|| / max(||A||, ||B||) or null}, ...}, "params": {"a": n, "b": n}, "macs": {"a": n, "b": n}, "errors": {"a": message or null, "b": message or null}, "changed": the fields that differ}. One side's invalid design is reported in `errors`, naming the side and the field, and the other side still reports. MCP tools get it as JSON text.
    """
    from resfpn.analysis import compare as compare_module
    from resfpn.analysis.report_summary import summarize_comparison

    _required(a=a, b=b)
    for side, d in (("A", a), ("B", b)):
        if not isinstance(d, dict):
            raise refuse(f"{side}: config must be a JSON object of configuration fields", "Configuration refused")
    mode = _weights_mode(weights)
    if image is None:
        if mode != "random":
            published_source(checked_config(a, "A"), mode)
        report = compare_module.compare(a, b, limits=LIMITS).to_dict()  # traces only: no engine, no weights
        return _reply(report, summarize_comparison, detail, request)
    pil = decode(uploaded_path(image)).image
    w = weights_for(checked_config(a, "A"), mode)
    # Both runs take the engine's slot themselves.
    report = compare_module.compare(a, b, pil, engine=engine(), weights=w, limits=LIMITS).to_dict()
    return _reply(report, summarize_comparison, detail, request)


@answers
def sizes(config: dict, failures: int = 8, image_width: int = 0, image_height: int = 0, detail: str | None = None,
          request: gr.Request = None) -> dict | str:
    """List the input sizes from 1 to 2048 at which a design builds, for each top-down policy ("x2", "match", "pad") and each axis, computed by a size program recorded from the model's own meta forward.

    Args:
        config: Required. The design's fields as a JSON object, as for /analyze; its own input size is reported as "current".
        failures: How many of the sizes that do not build to explain per policy and axis, spread over 1 to 2048 (default 8, at most 100).
        image_width: Width in pixels of a photo (with image_height); the answer then lists the nearest sizes that build under the design's policy and keep the photo's aspect ratio within 1 %. The default 0 means no photo.
        image_height: Height in pixels of that photo (default 0: no photo).
        detail: "full" (with the sorted list of every size that builds) or "summary" (each list as compact ranges such as "29–32 (mod 32)"). The default is "full" over REST and the Python client, and "summary" for MCP tools.
    Returns:
        {"policies": {"x2": {"height": {"valid": [29, 30, 31, 32, 61, ...], "summary": "29–32 (mod 32)", "failures": [{"size": 225, "where": "FPN merge into P4", "operands": [...], "shapes": [[N, C, H, W], [N, C, H, W]]}, ...]}, "width": {...}}, "match": {...}, "pad": {...}}, "current": {"height", "width", "policy", "builds", "failure"}, "aspect": [{"height", "width", "aspect_error", "scale"}, ...]}. A failure's shapes are taken with the other axis at the design's own size, or the nearest that builds. MCP tools get it as JSON text.
    """
    from resfpn.shapes.sizes import aspect_sizes, size_map

    _required(config=config)
    cfg = checked_config(config)
    failures = _bounded(failures, "failures", 0, 100, default=8)
    image_width = _bounded(image_width, "image_width", 0, 65535)
    image_height = _bounded(image_height, "image_height", 0, 65535)
    m = size_map(cfg)
    report = m.to_dict(failures)
    h, w = cfg.input_height, cfg.input_width
    failure = m.failure_at(cfg.policy, h, w)  # sizes beyond 2048 too
    report["current"] = {"height": h, "width": w, "policy": cfg.policy, "builds": failure is None,
                         "failure": failure.to_dict() if failure else None}
    if image_width and image_height:
        report["aspect"] = aspect_sizes(m, cfg.policy, image_height, image_width)
    return _reply(report, _sizes_summary, detail, request)


def _sizes_summary(report: dict) -> dict:
    policies = {policy: {axis: {k: v for k, v in a.items() if k != "valid"} for axis, a in axes.items()}
                for policy, axes in report["policies"].items()}
    return report | {"policies": policies, "detail": "summary"}


@answers
def sweep(config: dict, level: str = "P5", request: gr.Request = None) -> dict | str:
    """Price about a hundred variants of a design, shape-only: width multipliers from 0.25 to 2, the presets' blocks per stage and their neighbours, and both block types, with the Pareto front of parameters, MACs and receptive field.

    Args:
        config: Required. The design's fields as a JSON object, as for /analyze; the variants keep its input size, skip option, FPN and policy, the current design is always among them, and variants above this server's caps (e.g. 2048 channels) are left out.
        level: The pyramid level whose exact theoretical receptive field is reported (default "P5").
    Returns:
        {"designs": [{"config": {...}, "label": "basic [2, 2, 2, 2] ×1", "params": n, "macs": n, "receptive_field": pixels, "builds": true or false, "pareto": true or false, "preset": a preset's name or null, "current": true or false}, ...], "level": "P5", "seconds": the time taken}. A design is on the Pareto front when no other has at most its parameters and MACs and at least its receptive field. MCP tools get it as JSON text.
    """
    from resfpn.shapes.sweep import sweep as run_sweep

    _required(config=config)
    cfg = checked_config(config)
    try:
        result = run_sweep(cfg, level="P5" if level is None else level, allowed=LIMITS.allows)
    except ValueError as err:
        raise refuse(str(err), "Sweep refused") from None
    return _reply(result.to_dict(), lambda r: r, "full", request)


def _bounded(value, name: str, lo: int, hi: int, default: int = 0) -> int:
    """A whole-number argument within [lo, hi]; None (a caller left it out) takes ``default``."""
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


ENDPOINTS = {"analyze": analyze, "receptive_field": receptive_field, "compare": compare, "sizes": sizes,
             "sweep": sweep}
