"""The Space tab's handlers, called directly: clicks apply sizes and designs; a photo gets sizes that keep its shape."""

import json

import pytest
from PIL import Image

import app  # noqa: F401  (the page's modules, as the server loads them)
from resfpn import Config
from ui import space
from ui.controls import config_from_controls, controls_from_config


def test_a_click_on_the_map_or_a_strip_applies_the_size():
    values = controls_from_config(Config(input_height=225))
    config = config_from_controls(space.on_pick(json.dumps({"height": 224, "width": 253, "nonce": 1}), [], *values))
    assert (config.input_height, config.input_width) == (224, 253)
    config = config_from_controls(space.on_pick(json.dumps({"width": 61}), [], *values))
    assert (config.input_height, config.input_width) == (225, 61)


def test_a_click_on_the_sweep_applies_that_design_at_the_current_size():
    values = controls_from_config(Config(input_height=256, input_width=320))
    *_, designs = space.space_outputs(Config(input_height=256, input_width=320))
    i = next(k for k, d in enumerate(designs) if d["block"] == "bottleneck")
    config = config_from_controls(space.on_pick(json.dumps({"design": i}), designs, *values))
    assert config.block == "bottleneck" and (config.input_height, config.input_width) == (256, 320)
    with pytest.raises(Exception, match="no longer in the sweep"):
        space.on_pick(json.dumps({"design": len(designs)}), designs, *values)


def test_a_photo_gets_the_nearest_sizes_that_build_and_keep_its_shape(tmp_path):
    photo = tmp_path / "photo.png"
    Image.new("RGB", (1000, 750)).save(photo)
    values = controls_from_config(Config())
    note, options, *buttons = space.on_aspect(str(photo), *values)
    assert "1000×750" in note and len(options) == 3
    assert all(abs(h / w - 0.75) <= 0.0075 for h, w in options)
    config = config_from_controls(space.on_aspect_pick(0, options, *values))
    assert [config.input_height, config.input_width] == options[0]
    assert "Feature heatmaps" in space.on_aspect(None, *values)[0]


def test_a_click_redraws_the_tab_once():
    """The click's event draws the tab for what it applied; the controls' change events that follow
    (height, then width) find the tab drawn for that design and redraw nothing."""
    values = controls_from_config(Config(input_height=225))
    out = space.on_pick_redraw(json.dumps({"height": 224, "width": 253}), [], *values)
    controls, (sizes, costs, sweep, designs, drawn) = out[:len(values)], out[len(values):]
    assert "near 224×253" in " ".join(a.text for a in sizes.layout.annotations)
    assert sweep.layout.yaxis.title.text == "MACs at 224×253" and designs
    assert space.on_space(True, drawn, *controls) == (space.gr.update(),) * 5
    assert space.on_space(False, None, *controls) == (space.gr.update(),) * 5
    redrawn = space.on_space(True, drawn, *values)  # another design (a preset, a link) is drawn
    assert redrawn[-1] == space.drawn_key(Config(input_height=225)) != drawn
