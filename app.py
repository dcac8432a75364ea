"""resfpn explorer: a Gradio page over the resfpn library (layout and wiring only).

The page's parts live in ``ui/`` (one module per view); the logic lives in ``resfpn/``.
"""

from __future__ import annotations

import os
import threading

from resfpn.serving import runtime

runtime.tune_process()  # before torch loads its OpenMP runtime

import gradio as gr

from resfpn.model.config import PRESET_NOTES, PRESETS
from ui import api, compare, controls, explore, fields, heatmaps, page, share, space
from ui.controls import CONTROLS, config_from_controls, controls_from_config  # noqa: F401  (tests call these)
from ui.explore import on_architecture, on_fix, on_preset  # noqa: F401
from ui.heatmaps import on_display, on_run  # noqa: F401
from ui.library import EXAMPLES, MAX_UPLOAD_BYTES, QUEUE_SIZE, THEME_JS, engine, follower, warm_up  # noqa: F401

analyze = api.analyze
threading.Thread(target=warm_up, name="warm-up", daemon=True).start()  # the page serves while torch loads

with gr.Blocks(title="resfpn — ResNet + FPN shape explorer") as demo:
    gr.Markdown(
        "# resfpn — see every shape of a ResNet + FPN\n"
        "`y = F(x) + S(x)` and every FPN merge are **element-wise additions**: both operands must have "
        "identical shapes. Change the design on the left; the shapes update from a shape-only trace "
        "(no image, no memory). Where an addition's operands disagree, the explorer says where, why and how to fix it.",
        elem_id="intro",
    )
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=330, elem_id="controls"):  # below the results on a phone (ui/page.py)
            preset = gr.Dropdown([(f"{n} — {PRESET_NOTES[n]}", n) for n in PRESETS], value="reference",
                                 label="Preset", elem_id="preset")
            preset_note = gr.Markdown(PRESET_NOTES["reference"])
            comps: dict[str, gr.components.Component] = {}
            with gr.Accordion("Input", open=True):
                comps |= {n: controls.component(n) for n in controls.group("Input")}
            with gr.Accordion("Backbone", open=True):
                for n in controls.group("Backbone"):
                    comps[n] = controls.component(n)
                    if n == "skip":
                        skip_note = gr.Markdown(explore.skip_explanation("B"))
                for i in range(4):
                    with gr.Row():
                        comps |= {n: controls.component(n) for n in (f"widths.{i}", f"blocks.{i}")}
            with gr.Accordion("FPN", open=True):
                comps |= {n: controls.component(n) for n in controls.group("FPN")}
        with gr.Column(scale=3, elem_id="results"):
            link_note = gr.Markdown(elem_id="link-note")
            summary = gr.Markdown(elem_id="summary")
            mismatch = gr.Markdown(elem_id="mismatch")
            with gr.Row():
                fix_buttons = [gr.Button(visible=False, size="sm", elem_id=f"fix-{i}") for i in range(explore.MAX_FIXES)]
            # Only gr.Tab directly inside gr.Tabs, not even a gr.State: Gradio 6.31's page numbers each tab
            # by its place among all the children, so a State between two tabs made a visited tab's button
            # overwrite (or repeat) another's ("Compare, Compare, Report"). tests/test_app.py guards it.
            with gr.Tabs(overflow_behavior="wrap", elem_id="views"):
                shape_views = explore.shape_tabs()
                space_view = space.space_tab()
                heat = heatmaps.heatmaps_tab(below=fields.fields_section)
                pair = compare.compare_tab()
                shared = share.share_tab()
                with gr.Tab("Report", id="json"):
                    report = gr.JSON(label="Trace report")
    fixes_state = gr.State([])
    noted = gr.State(None)  # the control whose note says why the design cannot be built
    # The controls' values as of the last design check: the views that follow the design (weights
    # offer, Compare, Space) listen to its .change, never to the controls' own (see design_check).
    seen = gr.State(None)
    theme = gr.Textbox("light", visible=False, elem_id="theme")  # "light" or "dark", read from the browser at load

    # -----------------------------------------------------------------------------------------
    # Wiring.
    design = [comps[n] for n in CONTROLS]
    arch_outputs = [shape_views["arch"], shape_views["blocks"], shape_views["bars"], summary, mismatch, skip_note,
                    fixes_state, report, *fix_buttons]

    def checked(event):
        """Chain the design check: a design that cannot be built says why, where it happened."""
        check = explore.themed_outputs(follower(explore.design_check), 2 + len(design), named=False)
        for after in (event.success, event.failure):  # Gradio 6.31 runs no .then() after a failure
            after(check, [noted, *design, theme], [noted, seen, *design, *arch_outputs], api_visibility="private",
                  concurrency_id="trace")
        return event

    checked(gr.on([c.input for c in design], explore.themed_outputs(on_architecture), [*design, theme],
                  arch_outputs, api_name="trace",
                  api_visibility="undocumented",  # the page's event: callable, not in the docs or MCP
                  trigger_mode="always_last", show_progress="minimal", concurrency_id="trace", concurrency_limit=4))

    def refresh(event):
        return checked(event.then(explore.themed_outputs(on_architecture), [*design, theme], arch_outputs,
                                  api_visibility="private", concurrency_id="trace"))

    refresh(demo.load(None, None, theme, js=THEME_JS).then(
        share.on_link, None, [*design, preset, preset_note, link_note], api_visibility="private",
                      concurrency_id="trace"))
    checked(preset.input(explore.themed_outputs(on_preset, len(design) + 1), [preset, theme],
                         [*design, preset_note, *arch_outputs], api_name="preset", api_visibility="undocumented",
                         concurrency_id="trace"))
    for i, button in enumerate(fix_buttons):
        fix = explore.themed_outputs(lambda fixes, *values, i=i: on_fix(i, fixes, *values), len(design))
        checked(button.click(fix, [fixes_state, *design, theme],
                             [*design, *arch_outputs], api_visibility="private", concurrency_id="trace"))
    fields.wire(heat["below"], heatmaps.wire(heat, design, seen, theme), heat["state"], theme)
    share.wire(shared, preset, design, refresh)
    compare.wire(pair, design, seen, heat, theme, refresh)
    space.wire(space_view, design, seen, theme, refresh, heat["image"])
    # Not the "model" group: a trace-only call answers at once; runs queue on the engine's slot.
    gr.api(api.analyze, api_name="analyze", concurrency_id="analyze", concurrency_limit=4)
    gr.api(api.receptive_field, api_name="receptive_field", concurrency_id="model", concurrency_limit=1)
    gr.api(api.compare, api_name="compare", concurrency_id="analyze", concurrency_limit=4)
    gr.api(api.sizes, api_name="sizes", concurrency_id="analyze", concurrency_limit=4)
    gr.api(api.sweep, api_name="sweep", concurrency_id="analyze", concurrency_limit=4)

demo.queue(max_size=QUEUE_SIZE)
page.no_time_estimates(demo)

if __name__ == "__main__":
    from starlette.middleware import Middleware

    from ui.rest import FillDefaults

    from ui.library import log_to_stderr

    log_to_stderr()  # refusals one line each; Gradio prints unexpected exceptions' tracebacks
    demo.launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        max_file_size=MAX_UPLOAD_BYTES,  # real checkpoints: torchvision's Faster R-CNN file is 160 MB
        show_error=True,  # an error Gradio raises before our code (e.g. a malformed file) keeps its message
        app_kwargs={"middleware": [Middleware(FillDefaults, endpoints=api.ENDPOINTS)]},
        css=page.CSS,
        js=page.FIT_JS,
        mcp_server=os.environ.get("GRADIO_MCP_SERVER", "1").lower() not in ("0", "false"),
    )
