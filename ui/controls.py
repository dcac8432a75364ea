"""The design controls: one table gives each control's name (a Config field, or ``widths.i`` /
``blocks.i`` for one stage) and how to make its component, so names and components cannot drift."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from resfpn import Config
from resfpn.model.config import LABELS

from .library import checked_config, refuse

_REF = Config()


def Slider(*args: Any, **kwargs: Any) -> gr.Slider:
    """A gr.Slider whose empty value (from an API caller) reaches the handler's readable check.

    (Wrapping the instance, not subclassing: a subclass makes Gradio write an app.pyi stub.)
    """
    slider = gr.Slider(*args, **kwargs)
    preprocess = slider.preprocess
    slider.preprocess = lambda payload: None if payload is None else preprocess(payload)
    return slider


def choices(field: str) -> list[tuple[str, str]]:
    """(label, value) pairs of a field's allowed values, from the configuration's one list."""
    return [(label, value) for value, label in LABELS[field].items()]


@dataclass(frozen=True)
class Control:
    name: str  # a Config field, or "widths.0" .. "blocks.3"
    group: str  # the accordion it sits in
    label: str  # the words on screen, also in messages about this control
    make: Callable[[Any, str], gr.components.Component]  # from the reference value and the label

    def value(self, config: Config) -> Any:
        field, _, i = self.name.partition(".")
        value = getattr(config, field)
        return value[int(i)] if i else value


def _stage(field: str, i: int) -> Control:
    label = f"layer{i + 1} → C{i + 2} width" if field == "widths" else f"layer{i + 1} blocks"
    return Control(f"{field}.{i}", "stages", label, lambda v, label: gr.Number(
        v, precision=0, minimum=1, min_width=90, label=label, elem_id=f"{'width' if field == 'widths' else 'blocks'}-{i}"))


def _radio(name: str, group: str, label: str, elem_id: str) -> Control:
    return Control(name, group, label, lambda v, label: gr.Radio(choices(name), value=v, label=label, elem_id=elem_id))


TABLE: tuple[Control, ...] = (
    Control("input_height", "Input", "Input height H",
            lambda v, label: Slider(1, 2048, value=v, step=1, label=label, elem_id="input-height")),
    Control("input_width", "Input", "Input width W",
            lambda v, label: Slider(1, 2048, value=v, step=1, label=label, elem_id="input-width")),
    *(_stage("widths", i) for i in range(4)),
    *(_stage("blocks", i) for i in range(4)),
    _radio("block", "Backbone", "Block type", "block"),
    _radio("stride_in", "Backbone", "Bottleneck: stride sits in", "stride-in"),
    _radio("skip", "Backbone", "Skip connection S(x) (ResNet paper options)", "skip"),
    Control("stem_width", "Backbone", "Stem width",
            lambda v, label: gr.Number(v, precision=0, minimum=1, label=label, elem_id="stem-width")),
    _radio("fpn_from", "FPN", "FPN input levels", "fpn-from"),
    Control("fpn_width", "FPN", "FPN width d",
            lambda v, label: gr.Number(v, precision=0, minimum=1, label=label, elem_id="fpn-width")),
    _radio("upsample", "FPN", "Upsampling", "upsample"),
    _radio("policy", "FPN", "Top-down size policy", "policy"),
    Control("p6", "FPN", "P6", lambda v, label: gr.Dropdown(choices("p6"), value=v, label=label, elem_id="p6")),
    Control("p7", "FPN", "P7 (3×3 s2 conv on ReLU(P6))", lambda v, label: gr.Checkbox(v, label=label, elem_id="p7")),
)
CONTROLS: list[str] = [c.name for c in TABLE]


_BY_NAME = {c.name: c for c in TABLE}


def component(name: str) -> gr.components.Component:
    """The component of one control, at the reference design's value (call inside the layout)."""
    c = _BY_NAME[name]
    return c.make(c.value(_REF), c.label)


def group(name: str) -> list[str]:
    """The controls of one accordion, in table order."""
    return [c.name for c in TABLE if c.group == name]


def design_dict(values: list[Any]) -> dict[str, Any]:
    """The controls' values as configuration fields (not yet checked; an empty control is refused)."""
    d: dict[str, Any] = {"widths": [0] * 4, "blocks": [0] * 4}
    for control, value in zip(TABLE, values):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if value is None:
            raise refuse(f"{control.label} is empty: enter a value", "Configuration refused", toast=False)
        field, _, i = control.name.partition(".")
        if i:
            d[field][int(i)] = value
        else:
            d[field] = value
    return d


def config_from_controls(values: list[Any]) -> Config:
    return checked_config(design_dict(values))


def controls_from_config(config: Config) -> list[Any]:
    return [c.value(config) for c in TABLE]
