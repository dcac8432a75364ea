"""Receptive fields on the image: click a pixel of the input (as the network saw it) and see, for
each level, the cell covering it, that cell's exact theoretical field and, for the chosen level, its
effective field (the input gradient of the cell, one forward and one backward per click)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from .errors import in_place, remember
from .library import check_run, engine, plot, refuse, themed, trace

NOTE = ("Click a point of the image (after a run). Dashed: the cell's theoretical receptive field, exact "
        "for its position (it may reach outside the image). Heatmap: the effective field, |∂ cell / ∂ input|, "
        "with the smallest box holding 95 % of it (solid). The effective field depends on the weights: "
        "with seeded random weights it is a wide, smooth blob; trained weights concentrate it.")


def fields_figure(state: dict, point: tuple[int, int], level: str):
    """The figure for ``point`` with the effective field of ``level`` (one forward + one backward)."""
    from resfpn import figures
    from resfpn.analysis.effective import PointError, check_point, image_fields

    config = state["config"].replace(batch=1)
    t = trace(config)
    if level not in t.levels:
        raise refuse(f"level {level!r} is not in this design; it has {', '.join(t.levels)}", "No such level")
    check_run(t, backward=True)  # a mismatch is refused with its diagnosis first
    try:
        check_point(t, *point)
    except PointError as err:
        raise refuse(str(err), "Point refused") from None
    fields, resized = image_fields(engine(), config, state["image"], point, state["weights"], [level])
    return figures.receptive_field_figure(resized, point, t, fields, level, weights_label=state["weights"].label)


def on_select(state: dict | None, level: str, evt: gr.SelectData) -> tuple:
    """A click on the input image: its pixel ``(x, y)`` is ``evt.index``."""
    if not state:
        raise refuse("Run an image first (press Run above), then click a point of it.", "No run yet")
    point = (int(evt.index[0]), int(evt.index[1]))
    return fields_figure(state, point, level), point, f"point (x={point[0]}, y={point[1]}) · level {level}"


def on_level(state: dict | None, point: Any, level: str) -> tuple:
    if not state or not point:
        return gr.update(), gr.update()
    point = (int(point[0]), int(point[1]))
    return fields_figure(state, point, level), f"point (x={point[0]}, y={point[1]}) · level {level}"


def on_new_run(state: dict | None) -> tuple:
    """After a run: show the input as the network saw it, ready for a click."""
    if not state:
        return gr.update(), gr.update()
    levels = list(trace(state["config"]).levels)
    return state["image"], gr.update(choices=levels, value="P3" if "P3" in levels else levels[-1])


def fields_section() -> dict[str, gr.components.Component]:
    """The receptive-field section (inside the heatmaps tab); returns its components by name."""
    c: dict[str, gr.components.Component] = {}
    with gr.Accordion("Receptive fields: click a point of the image", open=True, elem_id="fields"):
        gr.Markdown(NOTE)
        with gr.Row():
            c["image"] = gr.Image(type="pil", label="Input as the network sees it (click a point)",
                                  interactive=False, elem_id="fields-image", height=300, scale=1)
            with gr.Column(scale=2):
                c["level"] = gr.Radio(["C2", "C3", "C4", "C5", "P2", "P3", "P4", "P5", "P6"], value="P3",
                                      label="Effective field of level", elem_id="fields-level")
                c["status"] = gr.Markdown(elem_id="fields-status")
        c["plot"] = plot("fields-plot")
    c["point"] = gr.State(None)
    return c


def wire(c: dict[str, gr.components.Component], run_event, run_state: gr.State, theme) -> None:
    def config_of(args, out):
        return args[0]["config"] if args[0] else None

    def select(state: dict | None, level: str, theme: str, evt: gr.SelectData):
        return themed(lambda s, lv: on_select(s, lv, evt), {0: "receptive-fields"}, config_of)(state, level, theme)

    run_event.then(on_new_run, run_state, [c["image"], c["level"]], api_visibility="private",
                   concurrency_id="display")
    picked = c["image"].select(remember("fields", select), [run_state, c["level"], theme],
                               [c["plot"], c["point"], c["status"]], api_visibility="private",
                               concurrency_id="model", concurrency_limit=1)
    level = c["level"].input(remember("fields", themed(on_level, {0: "receptive-fields"}, config_of)),
                             [run_state, c["point"], c["level"], theme], [c["plot"], c["status"]],
                             api_visibility="private", concurrency_id="model", concurrency_limit=1)
    for event in (picked, level):
        in_place(event, "fields", c["status"], [c["plot"]], theme=theme)
