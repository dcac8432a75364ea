"""The shape views: architecture map, residual blocks, per-level numbers, JSON report, one-click fixes.

Every handler here traces on the meta device only (no image, no forward), so none waits for a run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gradio as gr

from resfpn import Config, ConfigError
from resfpn.model.config import PRESET_NOTES, SKIP_OPTIONS
from resfpn.formatting import format_count, format_mib, format_shape

from .controls import config_from_controls, controls_from_config
from .library import narrow, plot, refuse, themed, trace

if TYPE_CHECKING:
    from resfpn.model.add import ShapeMismatchError

MAX_FIXES = 4


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


def skip_explanation(skip: str) -> str:
    return f"**{skip}** — {SKIP_OPTIONS[skip]}"


def architecture_outputs(config: Config, theme: str = "light") -> tuple:
    """Everything the shape views show for ``config``, in the order of ``outputs``."""
    from resfpn import figures

    t = trace(config)
    fixes = t.mismatch.fixes[:MAX_FIXES] if t.mismatch else []
    buttons = [gr.update(visible=i < len(fixes), value=fixes[i].label if i < len(fixes) else "")
               for i in range(MAX_FIXES)]
    return (
        figures.architecture_figure(t, compact=narrow()),
        figures.block_figure(t, compact=narrow()),
        figures.level_bars_figure(t, compact=narrow()),
        shape_summary(t),
        mismatch_markdown(t.mismatch),
        skip_explanation(config.skip),
        [f.to_dict() for f in fixes],
        t.to_dict() | {"modules": f"{len(t.modules)} module calls (see python -m resfpn --json)"},
        *buttons,
    )


def on_architecture(*values: Any) -> tuple:
    """Any architecture control changed: re-trace on the meta device (no image, no forward)."""
    return architecture_outputs(config_from_controls(list(values)))


def design_check(noted: str | None, *values: Any) -> list:
    """After any change of design: a design that cannot be built says why under the control at
    fault (in the labels on screen) and in the summary and figures, in place of the views it
    replaced; ``noted`` is the control that carries such a note now (cleared once the design holds).

    Returns ``[noted, design, *controls, *architecture outputs]`` (updates only where something
    changes). ``design`` is the controls' values, for a ``gr.State`` whose ``.change`` the views that
    follow the design listen to: Gradio fires a State's change from the server, once per new value,
    whereas a Slider's own ``.change`` re-fires in the browser with its value unchanged (measured: an
    endless stream of identical events after a link set the input size).
    """
    from .controls import CONTROLS
    from .errors import explain, note

    keep = [gr.update()] * (len(CONTROLS) + 8 + MAX_FIXES)
    try:
        config_from_controls(list(values))
    except gr.Error as err:
        control, text = explain(str(err.message))
        out = [control, list(values), *keep]
        if noted and noted != control:
            out[2 + CONTROLS.index(noted)] = gr.update(info="")
        if control:
            out[2 + CONTROLS.index(control)] = gr.update(info=f"⚠ {text}")
        from resfpn.figures import message_figure

        card = message_figure("This design cannot be built", text)
        arch = [card, card, card, note("This design cannot be built", text + ". Change the control marked ⚠."),
                "", gr.update(), [], {"refused": text}, *[gr.update(visible=False)] * MAX_FIXES]
        return out[:2 + len(CONTROLS)] + arch
    out = [None, list(values), *keep]
    if noted:
        out[2 + CONTROLS.index(noted)] = gr.update(info="")
    return out


def on_preset(name: str) -> list:
    try:
        config = Config.preset(name)
    except ConfigError as err:
        raise refuse(str(err), "Unknown preset") from None
    return [*controls_from_config(config), PRESET_NOTES[name], *architecture_outputs(config)]


def on_fix(index: int, fixes: list[dict], *values: Any) -> list:
    if index >= len(fixes):
        raise refuse("That fix no longer applies: the configuration changed.", "Nothing to fix")
    config = config_from_controls(list(values)).replace(**fixes[index]["changes"])
    return [*controls_from_config(config), *architecture_outputs(config)]


def shape_tabs() -> dict[str, gr.components.Component]:
    """The tabs of the shape views (call inside ``gr.Tabs``); returns their components by name."""
    with gr.Tab("Architecture", id="arch"):
        arch = plot("arch-plot", label="Architecture map")
    with gr.Tab("Residual blocks", id="blocks"):
        blocks = plot("block-plot", label="F(x) and S(x) at each stage transition")
    with gr.Tab("Levels", id="bars"):
        bars = plot("bars-plot", label="Per level and part")
    return {"arch": arch, "blocks": blocks, "bars": bars}


def themed_outputs(fn, offset: int = 0, named: bool = True):
    """``fn`` returning ``architecture_outputs`` from index ``offset``, drawn in the page's theme
    (``named``: the figures' download names come from the report's design)."""
    names = {offset: "architecture", offset + 1: "blocks", offset + 2: "levels"}
    if not named:
        return themed(fn, names, lambda args, out: None)
    return themed(fn, names, lambda args, out: Config.from_dict(out[offset + 7]["config"]))
