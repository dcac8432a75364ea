"""resfpn explorer: a Gradio page over the resfpn library (layout and wiring only)."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from resfpn import runtime

runtime.tune_process()  # before torch loads its OpenMP runtime

import gradio as gr
from gradio.utils import get_upload_folder

from resfpn.config import LABELS, PRESET_NOTES, PRESETS, REDUCTIONS, SKIP_OPTIONS, Config, ConfigError
from resfpn.formatting import format_count, format_mib, format_shape
from resfpn.limits import LimitError, Limits, serving_overhead
from resfpn.precision import PRECISIONS, bf16_slow_reason

if TYPE_CHECKING:
    from resfpn.add import ShapeMismatchError
    from resfpn.engine import Weights


class _Library:
    """resfpn's torch-backed modules, imported by a start-up thread so the page serves before
    torch has loaded. Handlers reach them as ``lib.figures`` etc., waiting for the thread if needed."""

    def __init__(self):
        self._ready = threading.Event()
        self._error: BaseException | None = None
        threading.Thread(target=self._load, name="load-resfpn", daemon=True).start()

    def _load(self) -> None:
        try:
            from resfpn import activations, engine, figures, images, weights

            runtime.set_torch_threads()
            self.activations, self.figures, self.images, self.weights = activations, figures, images, weights
            self.Weights, self.cached_trace, self.engine = engine.Weights, engine.cached_trace, engine.Engine()
        except BaseException as err:  # re-raised in the handler that needs the library
            self._error = err
        finally:
            self._ready.set()
        if self._error is None:
            self.cached_trace(Config())  # warm the trace path: its first run imports much of torch

    def __getattr__(self, name: str):
        self._ready.wait()
        if self._error is not None:
            raise RuntimeError("resfpn failed to load") from self._error
        return self.__getattribute__(name)


ASSETS = Path(__file__).resolve().parent / "assets"
EXAMPLES = sorted((ASSETS / "examples").glob("*.jpg"))
MAX_FIXES = 4
COLORSCALES = ["Viridis", "Inferno", "Cividis", "RdBu", "Greys"]

# Controls in the order every handler receives them; each maps to a Config field.
CONTROLS = (
    ["input_height", "input_width"]
    + [f"widths.{i}" for i in range(4)]
    + [f"blocks.{i}" for i in range(4)]
    + ["block", "stride_in", "skip", "stem_width", "fpn_from", "fpn_width", "upsample", "policy", "p6", "p7"]
)

LIMITS = Limits.from_env()
QUEUE_SIZE = int(os.environ.get("RESFPN_QUEUE_SIZE", "16"))
lib = _Library()


def Slider(*args, **kwargs) -> gr.Slider:
    """A gr.Slider whose empty value (from an API caller) reaches the handler's readable check.

    (Wrapping the instance, not subclassing: a subclass makes Gradio write an app.pyi stub.)
    """
    slider = gr.Slider(*args, **kwargs)
    preprocess = slider.preprocess
    slider.preprocess = lambda payload: None if payload is None else preprocess(payload)
    return slider


# ---------------------------------------------------------------------------------------------
# Plain functions: controls <-> Config, and the text the page shows.


def _choices(field: str) -> list[tuple[str, str]]:
    """(label, value) pairs of a field's allowed values, from the configuration's one list."""
    return list((label, value) for value, label in LABELS[field].items())


def _control_label(name: str) -> str:
    if "." in name:
        field, i = name.split(".")
        return f"layer{int(i) + 1} {'width' if field == 'widths' else 'blocks'}"
    return name.replace("_", " ")


def config_from_controls(values: list[Any]) -> Config:
    d: dict[str, Any] = {"widths": [0] * 4, "blocks": [0] * 4}
    for name, value in zip(CONTROLS, values):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if value is None:
            raise gr.Error(f"{_control_label(name)} is empty: enter a value", title="Configuration refused")
        if "." in name:
            field, i = name.split(".")
            d[field][int(i)] = value
        else:
            d[name] = value
    return _checked_config(d)


def _checked_config(d: dict[str, Any]) -> Config:
    """A Config from plain values, within this server's caps, or a readable gr.Error."""
    try:
        config = Config.from_dict(d)
        LIMITS.check_architecture(config)
    except (ConfigError, LimitError) as err:
        raise gr.Error(str(err), title="Configuration refused") from None
    except TypeError as err:
        raise gr.Error(f"configuration not understood: {err}", title="Configuration refused") from None
    return config


def _check_run(t) -> None:
    if t.mismatch:
        raise gr.Error(f"{t.mismatch.headline} See the fixes above the diagram.", title="Cannot run: shape mismatch")
    if t.config.input_channels != 3:
        raise gr.Error("Images have 3 channels; set input channels to 3 to run one.", title="Cannot run")
    try:
        return LIMITS.check_run(t)
    except LimitError as err:
        raise gr.Error(str(err), title="Run refused") from None


# --- serving (issue 13): real runs hold the engine's slot from decoding to statistics; traces never do.
def _admit(t, estimate: int, decoded) -> None:
    """Make room in the memory budget for this request: the forward's estimate plus what the forward
    leaves out (decoded image, statistics, bf16 copies); cached models and activations go first."""
    w, h = decoded.original_size
    lib.engine.make_room(estimate + serving_overhead(t, w * h), LIMITS.memory_budget)


def _precision(value: str | None) -> str:
    if value not in PRECISIONS:
        raise gr.Error(f"precision={value!r}: choose one of {', '.join(map(repr, PRECISIONS))}", title="Run refused")
    return value


def precision_note(value: str | None) -> str:
    """The page's note under the precision control: bf16's accuracy, and whether it is slow here."""
    if value != "bf16":
        return "fp32: the reference arithmetic."
    slow = bf16_slow_reason(lib.engine.device.type)
    return ("bf16: about 2× faster on this CPU (bench item 1); levels differ from fp32 by ~1e-2 (relative), shown after a run "
            "once the fp32 run of the same image is cached." if slow is None else f"bf16 would be slow here: {slow}.")


def _difference_text(run) -> str:
    if run.precision != "bf16":
        return ""
    if run.difference is None:
        return " · bf16: difference to fp32 not measured yet (run fp32 with this image, then bf16 again)"
    return " · bf16 relative difference to fp32: " + ", ".join(f"{k} {v:.1e}" for k, v in run.difference.items())
# --- end serving


def controls_from_config(config: Config) -> list[Any]:
    d = config.to_dict()
    return [d[n.split(".")[0]][int(n.split(".")[1])] if "." in n else d[n] for n in CONTROLS]


def shape_summary(t) -> str:
    c = t.config
    parts = [
        f"**{c.input_height}×{c.input_width} input** · parameters **{format_count(t.params.total)}** "
        f"(backbone {format_count(t.params.backbone)}, FPN {format_count(t.params.fpn)})",
        f"MACs **{format_count(t.macs.total)}** (FLOPs = 2×MACs = {format_count(t.flops.total)})",
        f"activations {format_mib(t.activation_bytes['total'])}",
    ]
    if t.backbone_input_shape and tuple(t.backbone_input_shape[-2:]) != (c.input_height, c.input_width):
        parts.append(f"padded to {t.backbone_input_shape[2]}×{t.backbone_input_shape[3]}")
    return " · ".join(parts)


def mismatch_markdown(err: ShapeMismatchError | None) -> str:
    if err is None:
        return "**Every addition holds**: each ⊕ has operands of identical shape."
    return (
        f"### Shape mismatch at {err.where}\n"
        f"`{err.operands[0]}` is **{format_shape(err.shapes[0])}** but `{err.operands[1]}` is "
        f"**{format_shape(err.shapes[1])}**: dimension **{err.dim_name}** differs "
        f"({err.shapes[0][err.dim]} vs {err.shapes[1][err.dim]}). An element-wise addition needs identical shapes.\n\n"
        f"**Why:** {err.cause}\n\n**Fix** with one click below, or change the controls."
    )


def _architecture_outputs(config: Config) -> tuple:
    t = lib.cached_trace(config)
    fixes = t.mismatch.fixes[:MAX_FIXES] if t.mismatch else []
    buttons = [gr.update(visible=i < len(fixes), value=fixes[i].label if i < len(fixes) else "") for i in range(MAX_FIXES)]
    return (
        lib.figures.architecture_figure(t),
        lib.figures.block_figure(t),
        lib.figures.level_bars_figure(t),
        shape_summary(t),
        mismatch_markdown(t.mismatch),
        skip_explanation(config.skip),
        [f.to_dict() for f in fixes],
        t.to_dict() | {"modules": f"{len(t.modules)} module calls (see python -m resfpn --json)"},
        *buttons,
    )


# ---------------------------------------------------------------------------------------------
# Event handlers.


def on_architecture(*values):
    """Any architecture control changed: re-trace on the meta device (no image, no forward)."""
    return _architecture_outputs(config_from_controls(list(values)))


def on_preset(name: str):
    try:
        config = Config.preset(name)
    except ConfigError as err:
        raise gr.Error(str(err), title="Unknown preset") from None
    return [*controls_from_config(config), PRESET_NOTES[name], *_architecture_outputs(config)]


def on_fix(index: int, fixes: list[dict], *values):
    if index >= len(fixes):
        raise gr.Error("That fix no longer applies: the configuration changed.", title="Nothing to fix")
    config = config_from_controls(list(values)).replace(**fixes[index]["changes"])
    return [*controls_from_config(config), *_architecture_outputs(config)]


def skip_explanation(skip: str) -> str:
    return f"**{skip}** — {SKIP_OPTIONS[skip]}"


def _weights(mode: str, seed: float | None, checkpoint: str | None) -> Weights:
    if mode == "checkpoint":
        if not checkpoint:
            raise gr.Error("Upload a torchvision checkpoint (.pth) first, or choose seeded random weights.",
                           title="No checkpoint")
        return lib.Weights.from_file(checkpoint)
    seed = int(seed or 0)
    if not 0 <= seed < 2**32:
        raise gr.Error(f"seed={seed}: choose a whole number from 0 to {2**32 - 1}", title="Seed refused")
    return lib.Weights(seed=seed)


def _decode(image_path: str | None):
    if not image_path:
        raise gr.Error("Choose an example image or upload one first.", title="No image")
    try:
        return lib.images.decode_image(image_path)
    except lib.images.ImageError as err:
        raise gr.Error(f"This file cannot be used: {err}.", title="Image refused") from None


def _heatmaps(run, t, reduction: str, channel: float | None, overlay: bool, opacity: float, colorscale: str,
              shared: bool):
    if reduction not in REDUCTIONS:
        raise gr.Error(f"reduction={reduction!r}: choose one of {', '.join(REDUCTIONS)}", title="Display refused")
    if colorscale not in COLORSCALES:
        raise gr.Error(f"colorscale={colorscale!r}: choose one of {', '.join(COLORSCALES)}", title="Display refused")
    maps, skipped = {}, []
    for name, x in run.levels.items():
        try:
            maps[name] = lib.activations.reduce_channels(x, reduction, int(channel or 0))
        except ValueError:
            skipped.append(f"{name} has {x.shape[1]} channels")
    if not maps:
        raise gr.Error(f"Channel {int(channel or 0)} does not exist at any level ({'; '.join(skipped)}).",
                       title="No such channel")
    fig = lib.figures.heatmap_grid_figure(maps, t, colorscale=colorscale, shared_scale=bool(shared),
                              image=run.image if overlay else None, opacity=0.6 if opacity is None else opacity,
                              reduction_label=REDUCTIONS[reduction])
    note = f" Channel {int(channel or 0)} is not shown where it does not exist ({'; '.join(skipped)})." if skipped else ""
    return fig, note


def _stats_rows(run) -> list[list]:
    rows = []
    for name, x in run.levels.items():
        s = lib.activations.level_stats(x)
        top = ", ".join(f"{i} ({e:.3g})" for i, e in s["top_channels"])
        rows.append([name, format_shape(tuple(x.shape)), round(s["mean"], 4), round(s["std"], 4),
                     f"{100 * s['zeros']:.1f} %", top])
    return rows


def _run_status(run, decoded, t) -> str:
    w, h = decoded.original_size
    c = t.config
    how = f"resized {w}×{h} → {c.input_width}×{c.input_height} (bilinear, aspect ratio not kept), ImageNet-normalised"
    forward = "cached, no forward" if run.cached else f"forward {run.forward_seconds * 1e3:.0f} ms"
    build = f"build {run.build_seconds * 1e3:.0f} ms" if run.build_seconds else "model reused"
    loaded = f" ({run.load.summary()})" if run.load else ""
    notes = ("; " + "; ".join(decoded.notes)) if decoded.notes else ""
    return (
        f"parameters {format_count(t.params.total)} · MACs {format_count(t.macs.total)} · {build} · {forward} · "
        f"weights: **{run.weights}**{loaded} · image: {how}{notes}"
    )


def on_run(*args):
    """Run the image through the model (reusing a built model and cached activations)."""
    # precision comes last (optional) so existing callers keep their argument order
    values, (image_path, mode, seed, checkpoint, reduction, channel, overlay, opacity, colorscale, shared,
             *precision) = (list(args[: len(CONTROLS)]), args[len(CONTROLS):])
    precision = precision[0] if precision else "fp32"
    config = config_from_controls(values)
    t = lib.cached_trace(config)
    estimate = _check_run(t)
    precision = _precision(precision)
    with lib.engine.slot():
        decoded = _decode(image_path)
        _admit(t, estimate, decoded)
        try:
            run = lib.engine.run(config, decoded.image, _weights(mode, seed, checkpoint), precision)
        except lib.weights.WeightsError as err:
            raise gr.Error(str(err), title="Checkpoint refused") from None
        fig, note = _heatmaps(run, t, reduction, channel, overlay, opacity, colorscale, shared)
        rows = _stats_rows(run)
    status = _run_status(run, decoded, t) + _difference_text(run) + note
    return fig, rows, status, {"key": run.key, "config": config}


def on_display(state: dict | None, reduction, channel, overlay, opacity, colorscale, shared):
    """A display option changed: re-render from the activations already computed."""
    if not state:
        return gr.update(), gr.update()
    run = lib.engine.cached_run(state["key"])
    if run is None:
        return gr.update(), "The activations left the cache; press Run again."
    fig, note = _heatmaps(run, lib.cached_trace(state["config"]), reduction, channel, overlay, opacity, colorscale, shared)
    return fig, gr.update() if not note else note


def analyze(config: dict, image: gr.FileData | None = None, precision: str = "fp32") -> dict:
    """Trace a configuration and, given an image, run it and return per-level activation statistics.

    Args:
        config: configuration fields, the same keys as ``config`` in the report (missing keys take
            the reference design's defaults), e.g. {"input_height": 512, "input_width": 512, "skip": "A"}.
        image: optional image file (gradio_client.handle_file(path)).
        precision: "fp32" (default) or "bf16" (fast on CPUs with bf16 instructions; statistics stay
            float32; `run.relative_difference` per level once the fp32 run of the image is cached).
    Returns:
        The JSON report of `python -m resfpn --json`; with an image also `stats` per level and `run`.
    """
    if not isinstance(config, dict):
        raise gr.Error("config must be a JSON object of configuration fields", title="Configuration refused")
    cfg = _checked_config(dict(config))
    t = lib.cached_trace(cfg)
    report = t.to_dict()
    if image is None:
        return report
    estimate = _check_run(t)
    precision = _precision(precision)
    with lib.engine.slot():
        decoded = _decode(_uploaded_path(image))
        _admit(t, estimate, decoded)
        run = lib.engine.run(cfg, decoded.image, lib.Weights(), precision)
        report["stats"] = {k: lib.activations.level_stats(v) for k, v in run.levels.items()}
    report["run"] = {"forward_seconds": run.forward_seconds, "cached": run.cached, "weights": run.weights,
                     "image_size": list(decoded.original_size), "precision": run.precision,
                     "relative_difference": run.difference}
    return report


def _uploaded_path(image: Any) -> str:
    """gr.api hands inputs over unprocessed: accept only files uploaded to this server."""
    path = image.get("path") if isinstance(image, dict) else None
    if not isinstance(path, str):
        raise gr.Error("image must be a file sent with gradio_client.handle_file(path)", title="Image refused")
    resolved = Path(path).resolve()
    if not resolved.is_relative_to(Path(get_upload_folder()).resolve()) or not resolved.is_file():
        raise gr.Error("image was not uploaded to this server", title="Image refused")
    return str(resolved)


# ---------------------------------------------------------------------------------------------
# Layout.

_ref = Config()
with gr.Blocks(title="resfpn — ResNet + FPN shape explorer") as demo:
    gr.Markdown(
        "# resfpn — see every shape of a ResNet + FPN\n"
        "`y = F(x) + S(x)` and every FPN merge are **element-wise additions**: both operands must have "
        "identical shapes. Change the design on the left; the shapes update from a shape-only trace "
        "(no image, no memory). Where an addition's operands disagree, the explorer says where, why and how to fix it."
    )
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=330):
            preset = gr.Dropdown([(f"{n} — {PRESET_NOTES[n]}", n) for n in PRESETS], value="reference",
                                 label="Preset", elem_id="preset")
            preset_note = gr.Markdown(PRESET_NOTES["reference"])
            with gr.Accordion("Input", open=True):
                input_height = Slider(1, 2048, value=_ref.input_height, step=1, label="Input height H",
                                         elem_id="input-height")
                input_width = Slider(1, 2048, value=_ref.input_width, step=1, label="Input width W",
                                        elem_id="input-width")
            with gr.Accordion("Backbone", open=True):
                block = gr.Radio(_choices("block"),
                                 value=_ref.block, label="Block type")
                stride_in = gr.Radio(_choices("stride_in"),
                                     value=_ref.stride_in, label="Bottleneck: stride sits in")
                skip = gr.Radio(_choices("skip"), value=_ref.skip,
                                label="Skip connection S(x) (ResNet paper options)", elem_id="skip")
                skip_note = gr.Markdown(skip_explanation(_ref.skip))
                stem_width = gr.Number(_ref.stem_width, precision=0, minimum=1, label="Stem width")
                widths, blocks = [], []
                for i in range(4):
                    with gr.Row():
                        widths.append(gr.Number(_ref.widths[i], precision=0, minimum=1, min_width=90,
                                                label=f"layer{i + 1} → C{i + 2} width", elem_id=f"width-{i}"))
                        blocks.append(gr.Number(_ref.blocks[i], precision=0, minimum=1, min_width=90,
                                                label=f"layer{i + 1} blocks", elem_id=f"blocks-{i}"))
            with gr.Accordion("FPN", open=True):
                fpn_from = gr.Radio(_choices("fpn_from"), value=_ref.fpn_from,
                                    label="FPN input levels")
                fpn_width = gr.Number(_ref.fpn_width, precision=0, minimum=1, label="FPN width d")
                upsample = gr.Radio(["nearest", "bilinear"], value=_ref.upsample, label="Upsampling")
                policy = gr.Radio(_choices("policy"),
                                  value=_ref.policy, label="Top-down size policy", elem_id="policy")
                p6 = gr.Dropdown(_choices("p6"), value=_ref.p6, label="P6")
                p7 = gr.Checkbox(_ref.p7, label="P7 (3×3 s2 conv on ReLU(P6))")
        with gr.Column(scale=3):
            summary = gr.Markdown(elem_id="summary")
            mismatch = gr.Markdown(elem_id="mismatch")
            with gr.Row():
                fix_buttons = [gr.Button(visible=False, size="sm", elem_id=f"fix-{i}") for i in range(MAX_FIXES)]
            with gr.Tabs():
                with gr.Tab("Architecture", id="arch"):
                    arch_plot = gr.Plot(label="Architecture map", show_label=False, elem_id="arch-plot")
                with gr.Tab("Residual blocks", id="blocks"):
                    block_plot = gr.Plot(label="F(x) and S(x) at each stage transition", show_label=False, elem_id="block-plot")
                with gr.Tab("Per-level numbers", id="bars"):
                    bars_plot = gr.Plot(label="Per level and part", show_label=False, elem_id="bars-plot")
                with gr.Tab("Feature heatmaps", id="heat"):
                    with gr.Row():
                        with gr.Column(scale=1, min_width=260):
                            image = gr.Image(type="filepath", label="Image", elem_id="image", height=240,
                                             sources=["upload", "clipboard"])
                            gr.Examples([[str(p)] for p in EXAMPLES], inputs=[image], label="Example photos",
                                        cache_examples=False, elem_id="examples")
                        with gr.Column(scale=1, min_width=260):
                            weights_mode = gr.Radio([("seeded random", "random"), ("torchvision checkpoint", "checkpoint")],
                                                    value="random", label="Weights")
                            seed = gr.Number(0, precision=0, label="Seed")
                            checkpoint = gr.File(label="Checkpoint (.pth, torchvision layout)",
                                                 file_types=[".pth", ".pt"], type="filepath")
                            precision = gr.Radio([(v, k) for k, v in PRECISIONS.items()], value="fp32",
                                                 label="Precision", elem_id="precision")
                            precision_md = gr.Markdown(precision_note("fp32"))
                            run_button = gr.Button("Run", variant="primary", elem_id="run")
                        with gr.Column(scale=1, min_width=260):
                            reduction = gr.Radio(_choices("reduction"), value="mean",
                                                 label="Channel reduction")
                            channel = gr.Number(0, precision=0, minimum=0, label="Channel (for 'one chosen channel')")
                            overlay = gr.Checkbox(True, label="Overlay on the image")
                            opacity = Slider(0.1, 1.0, value=0.6, step=0.05, label="Heatmap opacity")
                            colorscale = gr.Dropdown(COLORSCALES, value="Viridis", label="Colour scale")
                            shared = gr.Checkbox(False, label="One colour scale for all maps")
                    run_status = gr.Markdown(elem_id="run-status")
                    heat_plot = gr.Plot(label="C2–C5 (top) and P2–P7 (bottom)", show_label=False, elem_id="heat-plot")
                    stats = gr.Dataframe(headers=["level", "shape C×H×W", "mean", "std", "zeros", "top channels (energy)"],
                                         interactive=False, label="Per-level activation statistics")
                with gr.Tab("Report (JSON)", id="json"):
                    report = gr.JSON(label="Trace report")
    fixes_state = gr.State([])
    run_state = gr.State(None)

    # -----------------------------------------------------------------------------------------
    # Wiring.
    controls = [input_height, input_width, *widths, *blocks, block, stride_in, skip, stem_width, fpn_from,
                fpn_width, upsample, policy, p6, p7]
    arch_outputs = [arch_plot, block_plot, bars_plot, summary, mismatch, skip_note, fixes_state, report, *fix_buttons]
    display = [reduction, channel, overlay, opacity, colorscale, shared]

    gr.on([c.input for c in controls], on_architecture, controls, arch_outputs, api_name="trace",
          trigger_mode="always_last", show_progress="minimal", concurrency_id="trace", concurrency_limit=4)
    demo.load(on_architecture, controls, arch_outputs, api_visibility="private")
    preset.input(on_preset, preset, [*controls, preset_note, *arch_outputs], api_name="preset",
                 concurrency_id="trace")
    for i, button in enumerate(fix_buttons):
        button.click(lambda fixes, *values, i=i: on_fix(i, fixes, *values), [fixes_state, *controls],
                     [*controls, *arch_outputs], api_visibility="private", concurrency_id="trace")
    run_button.click(on_run, [*controls, image, weights_mode, seed, checkpoint, *display, precision],
                     [heat_plot, stats, run_status, run_state], api_name="run", concurrency_id="model",
                     concurrency_limit=1)
    gr.on([c.input for c in display], on_display, [run_state, *display], [heat_plot, run_status],
          api_visibility="private", trigger_mode="always_last", concurrency_id="display", concurrency_limit=2)
    precision.input(precision_note, precision, precision_md, api_visibility="private", concurrency_id="display")
    # Not the "model" group: a trace-only call answers at once; runs queue on the engine's slot.
    gr.api(analyze, api_name="analyze", concurrency_id="analyze", concurrency_limit=4)

demo.queue(max_size=QUEUE_SIZE)

if __name__ == "__main__":
    demo.launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        max_file_size="25mb",
    )
