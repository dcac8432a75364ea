"""The design space ("Space" tab): valid input sizes, cost against input size and the width/depth
sweep, each a click away from the design. Layout and wiring only; the numbers come from
resfpn.shapes.sizes, resfpn.shapes.sweep and resfpn.serving.latency."""

from __future__ import annotations

import json
from typing import Any

import gradio as gr

from resfpn import Config

from .controls import config_from_controls, controls_from_config
from .library import LIMITS, check_run, engine, follower, plot, refuse, themed, trace

NOTE = ("Every input size 1–2048 per top-down policy and axis, from a size program recorded from the model's own "
        "meta forward (not one trace per size). **Click** a cell of the map, a size on a strip, or a design of the "
        "sweep to use it.")
# A click on a point of the sizes map or the sweep writes what it applies into the hidden pick box.
CLICK_JS = """() => {
  if (window.__resfpnSpaceClicks) return;
  window.__resfpnSpaceClicks = true;
  const send = (payload) => {
    const box = document.querySelector('#space-pick textarea, #space-pick input');
    if (!box) return;
    box.value = JSON.stringify({...payload, nonce: Date.now()});
    box.dispatchEvent(new Event('input', {bubbles: true}));
  };
  const attach = () => {
    for (const [id, kind] of [['space-sizes', 'size'], ['space-sweep', 'design']]) {
      const gd = document.querySelector('#' + id + ' .js-plotly-plot');
      if (!gd || gd.__resfpnClick === gd.data || !gd.on) continue;
      if (gd.removeAllListeners) gd.removeAllListeners('plotly_click');
      gd.__resfpnClick = gd.data;
      gd.on('plotly_click', (e) => {
        const p = e.points && e.points[0];
        if (!p) return;
        if (kind === 'design' && typeof p.customdata === 'number') send({design: p.customdata});
        else if (kind === 'size' && p.data.name === 'size-map') send({height: p.customdata[0], width: p.customdata[1]});
        else if (kind === 'size' && p.data.name === 'height-strip') send({height: p.x});
        else if (kind === 'size' && p.data.name === 'width-strip') send({width: p.x});
      });
    }
  };
  new MutationObserver(attach).observe(document.body, {childList: true, subtree: true});
  attach();
}"""
COMMON = [(224, 224, "224"), (512, 512, "512"), (800, 1333, "800×1333"), (1024, 1024, "1024")]


def space_outputs(config: Config) -> tuple:
    """The three figures, the aspect-ratio note and the sweep's designs (for clicks) for ``config``."""
    from resfpn.figures import cost_figure, sizes_figure, sweep_figure
    from resfpn.shapes.sizes import MAX_SIZE, costs, size_map
    from resfpn.shapes.sweep import sweep

    m = size_map(config)
    curve_sides = list(range(1, MAX_SIZE + 1))
    curve = costs(config, curve_sides, curve_sides)
    marks, labels = [], []
    for h, w, label in [(config.input_height, config.input_width, "current"), *COMMON]:
        nh, nw = (m.nearest_valid(config.policy, a, n) for a, n in (("height", min(h, MAX_SIZE)), ("width", min(w, MAX_SIZE))))
        if not (nh and nw):
            continue
        text = label if (nh, nw) == (h, w) else f"≈{label}"  # moved to the nearest size that builds
        if (nh, nw) in marks:  # the design's own size is a common one
            labels[marks.index((nh, nw))] += f" = {text}"
        else:
            marks.append((nh, nw))
            labels.append(text)
    mark_costs = costs(config, [h for h, _ in marks], [w for _, w in marks])
    from resfpn.serving import latency

    s = sweep(config, allowed=LIMITS.allows)
    return (sizes_figure(m), cost_figure(curve, mark_costs, labels, latency.cached(config)), sweep_figure(s),
            [d.config.to_dict() for d in s.designs])


def drawn_key(config: Config) -> str:
    """What the tab was last drawn for: a design redraws the tab only when this changes."""
    return json.dumps(config.to_dict(), sort_keys=True)


def on_space(seen: bool, drawn: str | None, *values: Any) -> tuple:
    """Redraw the tab for the current design: only once the tab has been opened, and only when the
    design differs from the one it was drawn for (a click on the map sets height and width, each a
    change of its own, after its own event has already redrawn the tab)."""
    config = config_from_controls(list(values)) if seen else None
    if config is None or drawn_key(config) == drawn:
        return (gr.update(),) * 5
    return (*space_outputs(config), drawn_key(config))


def on_open(*values: Any) -> tuple:
    config = config_from_controls(list(values))
    return (True, *space_outputs(config), drawn_key(config))


def on_pick(pick: str, designs: list[dict], *values: Any) -> list:
    """A click on the map, a strip or the sweep: the design with that size, or that design at the current size."""
    try:
        payload = json.loads(pick or "{}")
    except ValueError:
        raise refuse("That click could not be read; click the point again.", "Nothing applied") from None
    config = config_from_controls(list(values))
    if "design" in payload:
        i = payload["design"]
        if not isinstance(i, int) or not 0 <= i < len(designs or []):
            raise refuse("That design is no longer in the sweep; the design changed since it was drawn.", "Nothing applied")
        config = Config.from_dict(designs[i]).replace(input_height=config.input_height, input_width=config.input_width)
    else:
        changes = {f"input_{axis}": int(payload[axis]) for axis in ("height", "width") if axis in payload}
        if not changes:
            raise refuse("That click named no size.", "Nothing applied")
        config = config.replace(**changes)
    return controls_from_config(config)



def on_pick_redraw(pick: str, designs: list[dict], *values: Any) -> list:
    """``on_pick`` and the tab redrawn for what it applied, in one event: the controls, the three
    figures, the sweep's designs and what the tab is drawn for (so the controls' own change events
    that follow redraw nothing)."""
    controls = on_pick(pick, designs, *values)
    config = config_from_controls(controls)
    return [*controls, *space_outputs(config), drawn_key(config)]


ASPECT_CHOICES = 3


def on_aspect(image_path: str | None, *values: Any) -> tuple:
    """For the image chosen in the heatmaps tab: the nearest sizes that build under the design's
    policy and keep its aspect ratio, as a note and up to three buttons that apply them."""
    from resfpn.shapes.sizes import aspect_sizes, size_map

    from .library import decode

    hidden = [gr.update(visible=False)] * ASPECT_CHOICES
    if not image_path:
        return ("Choose or upload an image in the **Feature heatmaps** tab to see the nearest sizes that build and "
                "keep its aspect ratio.", [], *hidden)
    config = config_from_controls(list(values))
    w, h = decode(image_path).original_size
    options = aspect_sizes(size_map(config, policies=(config.policy,)), config.policy, h, w, count=ASPECT_CHOICES)
    if not options:
        return (f"No size up to 2048 builds under this policy and keeps the image's {w}×{h} aspect ratio within 1 %.",
                [], *hidden)
    note = (f"The image is {w}×{h} (width × height). Nearest input sizes that build under this design's policy "
            f"and keep its aspect ratio (within 1 %):")
    buttons = [gr.update(visible=i < len(options), value=f"use {o['height']}×{o['width']} (H×W)" if i < len(options) else "")
               for i, o in enumerate(options + [{}] * (ASPECT_CHOICES - len(options)))]
    return (note, [[o["height"], o["width"]] for o in options], *buttons)


def on_aspect_pick(i: int, options: list, *values: Any) -> list:
    if i >= len(options or []):
        raise refuse("That size no longer applies: the image or the design changed.", "Nothing applied")
    h, w = options[i]
    return controls_from_config(config_from_controls(list(values)).replace(input_height=int(h), input_width=int(w)))


def on_measure(*values: Any) -> Any:
    """Time a few sizes of the design on this machine (served path), fit, and redraw the cost curves."""
    from resfpn.serving import latency

    config = config_from_controls(list(values))
    for h, w in latency.sizes_to_time(config):
        check_run(trace(config.replace(input_height=h, input_width=w, batch=1)))  # caps and memory, as for a run
    with engine().slot():
        latency.measure(engine(), config)
    return space_outputs(config)[1]


def space_tab() -> dict[str, Any]:
    """The "Space" tab (call inside ``gr.Tabs``); returns its components by name."""
    c: dict[str, Any] = {}
    with gr.Tab("Space", id="space") as tab:
        gr.Markdown(NOTE)
        c["aspect_note"] = gr.Markdown(elem_id="space-aspect")
        with gr.Row():
            c["aspect_buttons"] = [gr.Button(visible=False, size="sm", elem_id=f"space-aspect-{i}")
                                   for i in range(ASPECT_CHOICES)]
        c["sizes"] = plot("space-sizes", label="Valid input sizes")
        with gr.Row():
            c["measure"] = gr.Button("Measure latency", size="sm", elem_id="space-measure", scale=0)
        c["costs"] = plot("space-costs", label="Cost against input size")
        c["sweep"] = plot("space-sweep", label="Width × depth sweep")
        c["pick"] = gr.Textbox(visible="hidden", elem_id="space-pick", show_label=False)
        # Inside the tab: Gradio numbers tabs by their place among gr.Tabs' children (see app.py).
        c["seen"] = gr.State(False)
        c["designs"] = gr.State([])
        c["drawn"] = gr.State(None)  # what the figures were last drawn for (see on_space)
        c["aspect"] = gr.State([])
    c["tab"] = tab
    return c


def wire(c: dict[str, Any], design: list, seen, theme, apply, image=None) -> None:
    """Events of the tab. ``apply(event)`` chains the shape views' refresh after the controls change;
    ``image`` is the heatmaps tab's image (a file path), for the aspect-ratio suggestions; ``seen``
    (a State) changes once per new design."""
    names = {0: "sizes", 1: "costs", 2: "sweep"}

    outputs = [c["sizes"], c["costs"], c["sweep"], c["designs"], c["drawn"]]
    c["tab"].select(themed(on_open, {1: "sizes", 2: "costs", 3: "sweep"}, lambda args, out: config_from_controls(list(args))),
                    [*design, theme], [c["seen"], *outputs], api_visibility="private", concurrency_id="space",
                    concurrency_limit=2).then(None, None, None, js=CLICK_JS)
    # After every new design, however set (a control, a preset, a fix, a link, an aspect button). A
    # change to what the tab already shows (a click's own redraw) redraws nothing, and shows no
    # progress: a progress overlay alone blanks the plots and swallows clicks on them.
    seen.change(follower(themed(on_space, names, lambda args, out: config_from_controls(list(args[2:])))),
                [c["seen"], c["drawn"], *design, theme], outputs, api_visibility="private",
                trigger_mode="always_last", concurrency_id="space", show_progress="hidden")
    n = len(design)
    apply(c["pick"].change(themed(on_pick_redraw, {n: "sizes", n + 1: "costs", n + 2: "sweep"},
                                  lambda args, out: config_from_controls(out[:n])),
                           [c["pick"], c["designs"], *design, theme], [*design, *outputs], api_visibility="private",
                           concurrency_id="trace"))
    if image is not None:
        aspect_out = [c["aspect_note"], c["aspect"], *c["aspect_buttons"]]
        gr.on([image.change, c["tab"].select], on_aspect, [image, *design], aspect_out, api_visibility="private",
              concurrency_id="space")
        for i, button in enumerate(c["aspect_buttons"]):
            apply(button.click(lambda options, *values, i=i: on_aspect_pick(i, options, *values), [c["aspect"], *design],
                               design, api_visibility="private", concurrency_id="trace"))
    c["measure"].click(themed(on_measure, {0: "costs"}, lambda args, out: config_from_controls(list(args))),
                       [*design, theme], c["costs"], api_visibility="private", concurrency_id="model",
                       concurrency_limit=1)
