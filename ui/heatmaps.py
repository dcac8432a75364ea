"""The heatmaps tab: an image through the model (weights and precision chosen by the user), every
level as a heatmap, per-level statistics, and display options that re-render without a forward."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gradio as gr

from resfpn import Config
from resfpn.model.config import REDUCTIONS
from resfpn.formatting import format_count, format_shape
from resfpn.serving.precision import PRECISIONS

from .controls import CONTROLS, Slider, choices, config_from_controls
from .errors import in_place, remember
from .library import (
    EXAMPLES, check_precision, check_run, engine, follower, narrow, plot, refuse, run_admitted, themed, trace, weights_for,
)

if TYPE_CHECKING:
    from resfpn.serving.engine import Run
    from resfpn.serving.images import Decoded
    from resfpn.shapes.records import Trace

# The phases of a run after the weights are ready (a download reports its own bytes); the page names
# the one it is in, with no time estimate.
PHASES = ("build the model and run the forward", "draw the heatmaps and statistics")
COLORSCALES = ["Viridis", "Inferno", "Cividis", "RdBu", "Greys"]
DISPLAY = ("reduction", "channel", "overlay", "opacity", "colorscale", "shared")


def weights_offer(config: Config) -> tuple[list[tuple[str, str]], str]:
    """The weights control's entries for ``config`` (only those that fit it, plus random and upload),
    and a note naming published weights that would fit after a change of design."""
    from resfpn.weights.pretrained import weight_choices

    choices = weight_choices(config)
    others = [c for c in choices if not c.fits][:2]
    note = "Not for this design: " + "; ".join(f"{c.label} ({c.reason})" for c in others) if others else ""
    return [(c.label, c.value) for c in choices if c.fits], note


def precision_note(value: str | None) -> str:
    """The note under the precision control: for bf16 the speed measured on this machine and its
    accuracy, or the one sentence saying why it is not offered here."""
    from resfpn.serving import bf16

    offer = bf16.offer(engine().device.type)
    if value != "bf16":
        return "fp32: the reference arithmetic." + ("" if offer.offered else " " + offer.note())
    return offer.note()


def precision_offer() -> tuple:
    """At page load: the precision control, enabled only where bf16 is offered, and its note."""
    from resfpn.serving import bf16

    offered = bf16.offer(engine().device.type).offered
    return gr.update(interactive=offered, value="fp32"), precision_note("fp32")


def difference_text(run: Run) -> str:
    if run.precision != "bf16":
        return ""
    if run.difference is None:
        return " · bf16: difference to fp32 not measured yet (run fp32 with this image, then bf16 again)"
    return " · bf16 relative difference to fp32: " + ", ".join(f"{k} {v:.1e}" for k, v in run.difference.items())


def heatmaps(run: Run, t: Trace, reduction: str, channel: float | None, overlay: bool, opacity: float | None,
             colorscale: str, shared: bool):
    from resfpn import figures
    from resfpn.analysis import activations

    if reduction not in REDUCTIONS:
        raise refuse(f"reduction={reduction!r}: choose one of {', '.join(REDUCTIONS)}", "Display refused")
    if colorscale not in COLORSCALES:
        raise refuse(f"colorscale={colorscale!r}: choose one of {', '.join(COLORSCALES)}", "Display refused")
    channel = int(channel or 0)
    maps, skipped = activations.reduce_levels(run.levels, reduction, channel)
    if not maps:
        raise refuse(f"Channel {channel} does not exist at any level ({'; '.join(skipped)}).", "No such channel")
    fig = figures.heatmap_grid_figure(maps, t, colorscale=colorscale, shared_scale=bool(shared),
                                      image=run.image if overlay else None,
                                      opacity=0.6 if opacity is None else opacity,
                                      reduction_label=REDUCTIONS[reduction], columns=2 if narrow() else None)
    note = f" Channel {channel} is not shown where it does not exist ({'; '.join(skipped)})." if skipped else ""
    return fig, note


def stats_rows(run: Run) -> list[list]:
    from resfpn.analysis import activations

    rows = []
    for name, x in run.levels.items():
        s = activations.level_stats(x)
        top = ", ".join(f"{i} ({e:.3g})" for i, e in s["top_channels"])
        rows.append([name, format_shape(tuple(x.shape)), round(s["mean"], 4), round(s["std"], 4),
                     f"{100 * s['zeros']:.1f} %", top])
    return rows


def run_status(run: Run, decoded: Decoded, t: Trace) -> str:
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


def on_run(*args: Any, progress: gr.Progress = gr.Progress()) -> tuple:
    """Run the image through the model (reusing a built model and cached activations).

    Arguments: the controls, then image, weights, seed, checkpoint, the display options and
    (optional, last) precision.
    """
    values, (image_path, mode, seed, checkpoint, reduction, channel, overlay, opacity, colorscale, shared,
             *rest) = list(args[: len(CONTROLS)]), args[len(CONTROLS):]
    config = config_from_controls(values)
    t = trace(config)
    estimate = check_run(t)
    precision = check_precision(rest[0] if rest else "fp32")
    weights = weights_for(config, mode, seed, checkpoint, progress)  # a download happens outside the slot
    progress((0, len(PHASES)), desc=PHASES[0], unit="steps")  # while waiting for the run slot too
    with engine().slot():  # held from decoding to the statistics: the memory admitted covers all of it
        run, decoded = run_admitted(config, t, estimate, image_path, weights, precision)
        progress((1, len(PHASES)), desc=PHASES[1], unit="steps")
        fig, note = heatmaps(run, t, reduction, channel, overlay, opacity, colorscale, shared)
        rows = stats_rows(run)
    status = run_status(run, decoded, t) + difference_text(run) + note
    return fig, rows, status, {"key": run.key, "config": config, "weights": weights, "image": run.image}


def on_prepare_weights(request: gr.Request, *args: Any):
    """Before a Run: fetch published weights outside the model queue (shared with anyone asking for
    the same file); the status line shows bytes, total, rate and time left; Cancel stops waiting.

    Arguments: the controls, then the weights choice (Gradio fills ``request``, which comes first
    because it injects only parameters that precede ``*args``).
    """
    from .library import download_steps, published_source

    *values, mode = args
    if not mode or mode in ("random", "upload", "checkpoint"):
        yield gr.update()
        return
    config = config_from_controls(list(values))
    source = published_source(config, mode)
    who = getattr(request, "session_hash", None) or "page"
    steps = download_steps(source, who)
    while True:
        try:
            _, _, status = next(steps)
        except StopIteration as finished:
            path = finished.value
            break
        yield f"{status} · **Cancel download** stops it."
    yield f"Weights ready: {source.name} ({path.stat().st_size / 1e6:.0f} MB, checked). Running…"


def on_cancel(request: gr.Request) -> str:
    from .library import cancel_downloads

    return cancel_downloads(getattr(request, "session_hash", None) or "page")


def on_display(state: dict | None, reduction: str, channel: float | None, overlay: bool, opacity: float | None,
               colorscale: str, shared: bool) -> tuple:
    """A display option changed: re-render from the activations already computed."""
    if not state:
        return gr.update(), gr.update()
    run = engine().cached_run(state["key"])
    if run is None:
        return gr.update(), "The activations left the cache; press Run again."
    fig, note = heatmaps(run, trace(state["config"]), reduction, channel, overlay, opacity, colorscale, shared)
    return fig, gr.update() if not note else note


def on_design(*args: Any) -> tuple:
    """The design changed: offer the weights that fit it (keeps the page honest about what loads);
    a chosen source that no longer fits falls back to seeded random weights."""
    *values, current = args
    try:
        config = config_from_controls(list(values))
    except gr.Error:
        return gr.update(), gr.update()
    fitting, note = weights_offer(config)
    if current in {v for _, v in fitting}:  # leave the value alone: a stale event must not undo a fresh choice
        return gr.update(choices=fitting), note
    return gr.update(choices=fitting, value="random"), note


def heatmaps_tab(below=None) -> dict[str, Any]:
    """The heatmaps tab's layout (call inside ``gr.Tabs``); returns its components by name.

    ``below()`` lays out more of the tab under the statistics; what it returns is under "below".
    """
    c: dict[str, Any] = {}
    fitting, note = weights_offer(Config())
    with gr.Tab("Feature heatmaps", id="heat"):
        with gr.Row():
            with gr.Column(scale=1, min_width=260):
                c["image"] = gr.Image(type="filepath", label="Image", elem_id="image", height=240,
                                      sources=["upload", "clipboard"])
                gr.Examples([[str(p)] for p in EXAMPLES], inputs=[c["image"]], label="Example photos",
                            cache_examples=False, elem_id="examples")
            with gr.Column(scale=1, min_width=260):
                c["weights"] = gr.Dropdown(fitting, value="random", label="Weights",
                                           elem_id="weights", allow_custom_value=True)  # names are checked on Run
                c["weights_note"] = gr.Markdown(note, elem_id="weights-note")
                c["seed"] = gr.Number(0, precision=0, label="Seed (random parts)")
                c["checkpoint"] = gr.File(label="Checkpoint (.pth or .safetensors, torchvision layout)",
                                          file_types=[".pth", ".pt", ".safetensors"], type="filepath")
                c["precision"] = gr.Radio([(v, k) for k, v in PRECISIONS.items()], value="fp32",
                                          label="Precision", elem_id="precision")
                c["precision_note"] = gr.Markdown("fp32: the reference arithmetic.", elem_id="precision-note")
                c["run"] = gr.Button("Run", variant="primary", elem_id="run")
                c["cancel"] = gr.Button("Cancel download", size="sm", elem_id="cancel-download")
            with gr.Column(scale=1, min_width=260):
                c["reduction"] = gr.Radio(choices("reduction"), value="mean", label="Channel reduction")
                c["channel"] = gr.Number(0, precision=0, minimum=0, label="Channel (for 'one chosen channel')")
                c["overlay"] = gr.Checkbox(True, label="Overlay on the image")
                c["opacity"] = Slider(0.1, 1.0, value=0.6, step=0.05, label="Heatmap opacity")
                c["colorscale"] = gr.Dropdown(COLORSCALES, value="Viridis", label="Colour scale")
                c["shared"] = gr.Checkbox(False, label="One colour scale for all maps")
        c["status"] = gr.Markdown(elem_id="run-status")
        c["plot"] = plot("heat-plot", label="C2–C5 (top) and P2–P7 (bottom)")
        c["stats"] = gr.Dataframe(headers=["level", "shape C×H×W", "mean", "std", "zeros", "top channels (energy)"],
                                  interactive=False, label="Per-level activation statistics")
        if below is not None:
            c["below"] = below()
        c["state"] = gr.State(None)  # inside the Tab: see app.py on what gr.Tabs may hold
    return c


def wire(c: dict[str, Any], controls: list[gr.components.Component], seen: gr.State,
         theme: gr.components.Component):
    """Wire the tab; returns the run event (for what follows a run). ``seen`` changes once per new
    design (app.py: the design check sets it)."""
    display = [c[k] for k in DISPLAY]
    run_fn = themed(on_run, {0: "heatmaps"}, lambda args, out: out[3]["config"])
    display_fn = themed(on_display, {0: "heatmaps"}, lambda args, out: args[0]["config"] if args[0] else None)
    # Published weights are fetched first, in their own concurrency group: a download never holds
    # the model's queue, so other users' Runs go on meanwhile.
    prepare = c["run"].click(remember("run", on_prepare_weights), [*controls, c["weights"]], c["status"],
                             api_name="prepare_weights", api_visibility="undocumented", concurrency_id="download",
                             concurrency_limit=None, show_progress="minimal")
    in_place(prepare, "run", c["status"], [c["plot"]], clear=[c["stats"]], theme=theme)  # a failed download
    c["cancel"].click(on_cancel, None, c["status"], api_name="cancel_download", api_visibility="undocumented",
                      concurrency_id="cancel", concurrency_limit=None)
    run = prepare.success(remember("run", run_fn), [*controls, c["image"], c["weights"], c["seed"], c["checkpoint"], *display,
                                  c["precision"], theme],
                   [c["plot"], c["stats"], c["status"], c["state"]], api_name="run", api_visibility="undocumented",
                   concurrency_id="model",
                   concurrency_limit=1)
    in_place(run, "run", c["status"], [c["plot"]], clear=[c["stats"]], theme=theme)
    in_place(gr.on([d.input for d in display], remember("display", display_fn), [c["state"], *display, theme],
                   [c["plot"], c["status"]], api_visibility="private", trigger_mode="always_last",
                   concurrency_id="display", concurrency_limit=2),
             "display", c["status"], [c["plot"]], theme=theme)
    c["precision"].input(precision_note, c["precision"], c["precision_note"], api_visibility="private",
                         concurrency_id="display")
    gr.on(None, precision_offer, None, [c["precision"], c["precision_note"]], api_visibility="private",
          concurrency_id="display")  # at page load: bf16 only where this machine's probe offers it
    seen.change(follower(on_design), [*controls, c["weights"]], [c["weights"], c["weights_note"]],
                api_visibility="private", trigger_mode="always_last", concurrency_id="trace",
                show_progress="hidden")  # a background refresh: no overlay over the weights control while it runs
    return run
