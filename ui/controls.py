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
    make: Callable[[Any], gr.components.Component]  # from the reference value

    @property
    def label(self) -> str:
        if "." in self.name:
            field, i = self.name.split(".")
            return f"layer{int(i) + 1} {'width' if field == 'widths' else 'blocks'}"
        return self.name.replace("_", " ")

    def value(self, config: Config) -> Any:
        field, _, i = self.name.partition(".")
        value = getattr(config, field)
        return value[int(i)] if i else value


def _stage(field: str, i: int) -> Control:
    label = f"layer{i + 1} → C{i + 2} width" if field == "widths" else f"layer{i + 1} blocks"
    return Control(f"{field}.{i}", "stages", lambda v: gr.Number(
        v, precision=0, minimum=1, min_width=90, label=label, elem_id=f"{'width' if field == 'widths' else 'blocks'}-{i}"))


TABLE: tuple[Control, ...] = (
    Control("input_height", "Input", lambda v: Slider(1, 2048, value=v, step=1, label="Input height H",
                                                      elem_id="input-height")),
    Control("input_width", "Input", lambda v: Slider(1, 2048, value=v, step=1, label="Input width W",
                                                     elem_id="input-width")),
    *(_stage("widths", i) for i in range(4)),
    *(_stage("blocks", i) for i in range(4)),
    Control("block", "Backbone", lambda v: gr.Radio(choices("block"), value=v, label="Block type", elem_id="block")),
    Control("stride_in", "Backbone", lambda v: gr.Radio(choices("stride_in"), value=v,
                                                        label="Bottleneck: stride sits in", elem_id="stride-in")),
    Control("skip", "Backbone", lambda v: gr.Radio(choices("skip"), value=v,
                                                   label="Skip connection S(x) (ResNet paper options)", elem_id="skip")),
    Control("stem_width", "Backbone", lambda v: gr.Number(v, precision=0, minimum=1, label="Stem width",
                                                          elem_id="stem-width")),
    Control("fpn_from", "FPN", lambda v: gr.Radio(choices("fpn_from"), value=v, label="FPN input levels",
                                                  elem_id="fpn-from")),
    Control("fpn_width", "FPN", lambda v: gr.Number(v, precision=0, minimum=1, label="FPN width d", elem_id="fpn-width")),
    Control("upsample", "FPN", lambda v: gr.Radio(choices("upsample"), value=v, label="Upsampling", elem_id="upsample")),
    Control("policy", "FPN", lambda v: gr.Radio(choices("policy"), value=v, label="Top-down size policy",
                                                elem_id="policy")),
    Control("p6", "FPN", lambda v: gr.Dropdown(choices("p6"), value=v, label="P6", elem_id="p6")),
    Control("p7", "FPN", lambda v: gr.Checkbox(v, label="P7 (3×3 s2 conv on ReLU(P6))", elem_id="p7")),
)
CONTROLS: list[str] = [c.name for c in TABLE]


_BY_NAME = {c.name: c for c in TABLE}


def component(name: str) -> gr.components.Component:
    """The component of one control, at the reference design's value (call inside the layout)."""
    c = _BY_NAME[name]
    return c.make(c.value(_REF))


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
            raise refuse(f"{control.label} is empty: enter a value", "Configuration refused")
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
