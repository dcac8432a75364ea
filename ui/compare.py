"""Compare two designs: pin the current design as A, change the controls (or pick a preset), and B,
the current design, appears beside it, with what differs marked; with an image, both run on it."""

from __future__ import annotations

from typing import Any

import gradio as gr

from resfpn import Config

from .controls import CONTROLS, controls_from_config, design_dict
from .errors import in_place, remember
from .library import LIMITS, checked_config, decode, engine, follower, narrow, plot, refuse, themed, weights_for

NOT_PINNED = ("**Pin the current design as A**, then change the controls (or choose a preset): the current "
              "design is B and appears beside A, with the levels, additions and blocks that differ marked (≠).")


COLUMN_PX = 760  # about an architecture map's measured width


def _comparison(pinned: dict, values: list[Any], image=None, weights=None):
    from resfpn.analysis import compare

    extra = {"weights": weights} if weights is not None else {}
    return compare.compare(pinned, design_dict(values), image, engine=engine() if image is not None else None,
                           limits=LIMITS, **extra)


def _summary(report: dict) -> str:
    lines = []
    changed = report.get("changed") or {}
    if changed:
        lines.append("**B changes** " + ", ".join(f"`{k}`: {v['a']} → {v['b']}" for k, v in changed.items()))
    else:
        lines.append("**A and B are the same design.**")
    for side in ("a", "b"):
        error = (report.get("errors") or {}).get(side)
        mismatch = (report.get("mismatch") or {}).get(side)
        if error:
            lines.append(f"**{side.upper()} refused:** {error}")
        elif mismatch:
            lines.append(f"**{side.upper()} has a shape mismatch:** {mismatch}")
    return "\n\n".join(lines)


def _table(report: dict) -> dict:
    from resfpn.figures.compare import COMPARE_TABLE_HEADERS, compare_table_rows

    return {"headers": COMPARE_TABLE_HEADERS, "data": compare_table_rows(report)}


def on_compare(pinned: dict | None, *values: Any) -> tuple:
    """The design changed (or A was pinned): compare the two traces (no image, no forward)."""
    from resfpn import figures

    if not pinned:
        return gr.update(value=None), gr.update(value=None), [], NOT_PINNED
    result = _comparison(pinned, list(values))
    report = result.to_dict()
    fig_a, fig_b = figures.compare_architecture_figures(result, compact=narrow())
    return fig_a, fig_b, _table(report), _summary(report)


def on_pin(*values: Any) -> tuple:
    config = checked_config(design_dict(list(values)))
    return config.to_dict(), "**A** is pinned: " + _design_name(config)


def on_swap(pinned: dict | None, *values: Any) -> list:
    """A becomes the current design (the controls), and the current design becomes A."""
    if not pinned:
        raise refuse("Pin a design as A first.", "Nothing to swap")
    current = checked_config(design_dict(list(values)))
    a = Config.from_dict(pinned)
    return [current.to_dict(), "**A** is pinned: " + _design_name(current), *controls_from_config(a)]


def on_clear() -> tuple:
    return None, "No design pinned."


def on_run_both(pinned: dict | None, image_path: str | None, mode: str | None, seed: Any, checkpoint: str | None,
                *values: Any, progress: gr.Progress = gr.Progress()) -> tuple:
    """Run the image through A and B (cached models and shared backbone levels reused)."""
    from resfpn import figures

    if not pinned:
        raise refuse("Pin a design as A first.", "Nothing to compare")
    decoded = decode(image_path)
    current = checked_config(design_dict(list(values)))
    weights = weights_for(current, mode, seed, checkpoint, progress)
    result = _comparison(pinned, list(values), decoded.image, weights)
    report = result.to_dict()
    fig = figures.compare_heatmaps_figure(result, image=decoded.image)
    note = " · ".join(f"{k} {v:.3g}" for k, v in result.differences().items())
    return fig, _table(report), _summary(report) + (f"\n\nrelative L2 ‖A−B‖/max: {note}" if note else "")


def _design_name(config: Config) -> str:
    return (f"{config.block} {list(config.blocks)} widths {list(config.widths)}, skip {config.skip}, "
            f"FPN {config.fpn_from}–, d={config.fpn_width}, {config.policy}, {config.input_height}×{config.input_width}")


def compare_tab() -> dict[str, Any]:
    """The compare tab (call inside ``gr.Tabs``); returns its components by name."""
    c: dict[str, Any] = {}
    with gr.Tab("Compare", id="compare"):
        with gr.Row():
            c["pin"] = gr.Button("Pin current design as A", variant="primary", elem_id="pin")
            c["swap"] = gr.Button("Swap A and B", elem_id="swap")
            c["clear"] = gr.Button("Clear pin", elem_id="clear-pin")
            c["run"] = gr.Button("Run both on the heatmaps tab's image", elem_id="run-both")
        c["pinned_note"] = gr.Markdown("No design pinned.", elem_id="pinned-note")
        c["summary"] = gr.Markdown(NOT_PINNED, elem_id="compare-summary")
        with gr.Row():  # side by side where both fit at their measured width, else one above the other
            with gr.Column(min_width=COLUMN_PX):
                c["arch_a"] = plot("compare-arch-a")
            with gr.Column(min_width=COLUMN_PX):
                c["arch_b"] = plot("compare-arch-b")
        c["table"] = gr.Dataframe(interactive=False, label="Per-level and per-part differences", elem_id="compare-table")
        c["heat"] = plot("compare-heat")
        c["pinned"] = gr.State(None)  # inside the Tab: see app.py on what gr.Tabs may hold
    return c


def _b_config(args: tuple, out: Any) -> Config | None:
    """Design B (the controls, the last inputs of every compare event) for the figures' file names."""
    try:
        return Config.from_dict(design_dict(list(args[-len(CONTROLS):])))
    except Exception:  # an invalid B draws no figure of its own: the name is not used
        return None


def wire(c: dict[str, Any], design: list, seen, heat: dict[str, Any], theme, refresh) -> None:
    """``refresh(event)`` chains the shape views' update after an event that set the controls;
    ``seen`` (a State) changes once per new design."""
    compare_fn = themed(on_compare, {0: "compare-a", 1: "compare-b"}, _b_config)
    outputs = [c["arch_a"], c["arch_b"], c["table"], c["summary"]]
    pin = c["pin"].click(remember("pin", on_pin), design, [c["pinned"], c["pinned_note"]], api_visibility="private",
                         concurrency_id="trace")
    in_place(pin, "pin", c["pinned_note"])
    pin.then(compare_fn, [c["pinned"], *design, theme], outputs, api_visibility="private", concurrency_id="trace")
    swap = c["swap"].click(remember("swap", on_swap), [c["pinned"], *design], [c["pinned"], c["pinned_note"], *design],
                           api_visibility="private", concurrency_id="trace")
    in_place(swap, "swap", c["pinned_note"])
    refresh(swap)
    c["clear"].click(on_clear, None, [c["pinned"], c["pinned_note"]], api_visibility="private").then(
        compare_fn, [c["pinned"], *design, theme], outputs, api_visibility="private", concurrency_id="trace")
    seen.change(follower(compare_fn), [c["pinned"], *design, theme], outputs, api_visibility="private",
                trigger_mode="always_last", concurrency_id="trace")
    run = c["run"].click(remember("run-both", themed(on_run_both, {0: "compare-heatmaps"}, _b_config)),
                         [c["pinned"], heat["image"], heat["weights"], heat["seed"], heat["checkpoint"], *design,
                          theme],
                         [c["heat"], c["table"], c["summary"]], api_visibility="private", concurrency_id="model",
                         concurrency_limit=1)
    in_place(run, "run-both", c["summary"], [c["heat"]], theme=theme)
