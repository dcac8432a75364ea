"""Figures are tested by structure: traces, labels, colours, sizes — never by pixels."""

import functools
import json
import re

import numpy as np
import pytest
import torch
from PIL import Image

from resfpn import Config, trace
from resfpn.model.add import format_shape
from resfpn.figures import (
    BAD,
    OFF,
    OK,
    architecture_figure,
    block_figure,
    compare_architecture_figures,
    heatmap_grid_figure,
    level_bars_figure,
)

CONFIGS = {
    "reference": Config(),
    "retinanet": Config.preset("retinanet"),
    "resnet50": Config.preset("resnet50"),
    "odd-225": Config(input_height=225, input_width=225),
    "option-a": Config(skip="A"),
    "option-a-shrinks": Config(skip="A", widths=(64, 128, 64, 512)),
}


@functools.lru_cache(maxsize=None)
def traced(name: str):
    return trace(CONFIGS[name])


def annotation_texts(fig) -> list[str]:
    return [a.text or "" for a in fig.layout.annotations]


def node_marker(fig, where: str) -> tuple[str, int]:
    """Colour and size of the ⊕ marker whose hover names ``where``."""
    for tr in fig.data:
        if tr.type == "scatter" and tr.hovertext is not None and not isinstance(tr.hovertext, str):
            for i, text in enumerate(tr.hovertext):
                if where in text:
                    return tr.marker.color[i], tr.marker.size[i]
    raise AssertionError(f"no ⊕ node for {where!r}")


def box_trace(fig, name: str):
    """The filled box whose hover starts with the bold level name."""
    matches = [tr for tr in fig.data if tr.type == "scatter" and tr.fill == "toself"
               and isinstance(tr.text, str) and tr.text.startswith(f"<b>{name}</b>")]
    assert len(matches) == 1, f"{name}: {len(matches)} boxes"
    return matches[0]


def maps_for(t, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {n: torch.randn(lv.shape[2], lv.shape[3], generator=g) for n, lv in t.levels.items()}


# -- every figure -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["reference", "retinanet", "resnet50", "odd-225", "option-a-shrinks"])
@pytest.mark.parametrize("make", [architecture_figure, block_figure, level_bars_figure])
def test_figure_has_title_explicit_height_and_a_light_card(make, name):
    fig = make(traced(name))
    assert fig.layout.title.text and fig.layout.height >= 300
    assert fig.layout.paper_bgcolor == "#ffffff" and fig.layout.font.color == "#111827"
    assert len(json.dumps(fig.to_plotly_json()["layout"]["template"])) < 200  # not the 6.5 kB default


def test_heatmap_figure_has_title_and_explicit_height():
    t = traced("reference")
    fig = heatmap_grid_figure(maps_for(t), t)
    assert fig.layout.title.text.startswith("Feature maps (mean over channels)")
    # The height follows from the measured column width: two rows of square maps and the titles'
    # gap, so no empty band opens between the C row and the P row at the figure's width.
    from resfpn.figures.heatmaps import COLORBAR_PX

    cols = len({name[1:] for name in t.levels})  # Ck above Pk
    col_px = (fig.layout.meta["min_width"] - 20 - COLORBAR_PX) * (1 - 0.02) / cols
    rows_px = fig.layout.height - fig.layout.margin.t - fig.layout.margin.b
    assert 2 * col_px <= rows_px <= 2 * col_px + 60


# -- architecture map ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["reference", "retinanet", "resnet50"])
def test_architecture_labels_every_level_with_shape_and_stride(name):
    t = traced(name)
    texts = annotation_texts(architecture_figure(t))
    for level, lv in t.levels.items():
        label = f"<b>{level}</b> · {format_shape(lv.shape)}<br>stride {lv.stride}"
        assert label in texts, label


def test_architecture_reference_p2_is_256x56x56_and_merges_are_green():
    fig = architecture_figure(traced("reference"))
    assert "<b>P2</b> · 256×56×56<br>stride 4" in annotation_texts(fig)
    for p in ("P4", "P3", "P2"):
        assert node_marker(fig, f"FPN merge into {p}")[0] == OK
    assert "parameters" in box_trace(fig, "C3").text and "receptive field 99 px" in box_trace(fig, "C3").text


def test_architecture_marks_the_failed_merge_and_levels_never_reached():
    t = traced("odd-225")
    fig = architecture_figure(t)
    color, size = node_marker(fig, "FPN merge into P4")
    assert color == BAD and size > node_marker(fig, "FPN merge into P3")[1]
    assert node_marker(fig, "FPN merge into P3")[0] == OFF
    texts = annotation_texts(fig)
    assert any("Shape mismatch" in s and "FPN merge into P4" in s for s in texts)
    assert "<b>✗ P4: H 15 vs 16</b>" in texts
    for level in ("P2", "P3", "P4", "P6"):
        assert f"<b>{level}</b> · not reached<br>256 ch · stride {t.declared[level][1]}" in texts
        assert box_trace(fig, level).line.dash == "dash"
    assert box_trace(fig, "P5").line.dash == "solid"


def test_architecture_fpn_from_c3_has_no_c2_lateral_and_p6_from_c5():
    fig = architecture_figure(traced("retinanet"))
    texts = annotation_texts(fig)
    assert texts.count("1×1 conv") == 3
    assert "3×3 conv on C5, stride 2" in texts and "ReLU, 3×3 conv, stride 2" in texts
    assert not any("P2" in s for s in texts)
    with pytest.raises(AssertionError):
        node_marker(fig, "FPN merge into P2")


def test_architecture_marks_a_failed_residual_stage():
    fig = architecture_figure(traced("option-a-shrinks"))
    color, _ = node_marker(fig, "layer3.0 residual add")
    assert color == BAD
    assert node_marker(fig, "layer2.1 residual add")[0] == OK
    texts = annotation_texts(fig)
    assert "<b>layer3</b> · 2× basic<br>✗ layer3.0: C 64 vs 128" in texts
    assert "<b>layer4</b> · 2× basic<br>not reached" in texts
    assert box_trace(fig, "C4").line.dash == "dash" and box_trace(fig, "C3").line.dash == "solid"


# -- residual blocks ----------------------------------------------------------------------------


def test_block_figure_shows_each_transition_with_shapes():
    texts = annotation_texts(block_figure(traced("reference")))
    assert "<b>layer2.0</b><br>64×56×56 → 128×28×28" in texts
    assert "<b>conv1 3×3, /2</b><br>128×28×28" in texts
    assert "<b>1×1 conv, /2</b><br>128×28×28" in texts
    assert texts.count("identity") == 1  # only layer1.0 keeps its shape
    assert not any("zero channels" in s for s in texts)


def test_block_figure_draws_option_a_zero_channels():
    fig = block_figure(traced("option-a"))
    texts = annotation_texts(fig)
    assert "64 real | +64 zero channels" in texts
    assert "128 real | +128 zero channels" in texts and "256 real | +256 zero channels" in texts
    hatched = [tr for tr in fig.data if tr.type == "scatter" and tr.fillpattern.shape == "/"]
    assert len(hatched) == 3
    # the zero part is drawn to scale: half of layer2.0's 128 output channels
    xs = [tr.x for tr in hatched if "64 zero channels" in tr.text][0]
    assert max(xs) - min(xs) == pytest.approx(10.4 / 2)


def test_block_figure_marks_the_failed_add_and_unreached_stage():
    fig = block_figure(traced("option-a-shrinks"))
    assert node_marker(fig, "layer3.0 residual add")[0] == BAD
    assert node_marker(fig, "layer2.0 residual add")[0] == OK
    texts = annotation_texts(fig)
    assert "<b>✗ layer3.0: C 64 vs 128</b>" in texts
    assert "+0 zero channels:<br>A cannot remove channels" in texts
    assert "not reached" in texts and "<b>layer4.0</b>" in texts


def test_block_figure_bottleneck_has_three_convs_per_block():
    texts = annotation_texts(block_figure(traced("resnet50")))
    assert sum(s.startswith("<b>conv3 1×1</b>") for s in texts) == 4
    assert "<b>conv2 3×3, /2</b><br>128×28×28" in texts  # v1.5: the stride sits in the 3×3


# -- level bars ---------------------------------------------------------------------------------


def test_level_bars_has_six_panels_with_real_values():
    t = traced("reference")
    fig = level_bars_figure(t)
    bars = [tr for tr in fig.data if tr.type == "bar"]
    assert len(bars) == 6
    titles = annotation_texts(fig)
    for title in ("Channels per level", "Spatial size H×W per level (log)",
                  "Receptive field per level, px (dashed: input, 224 px)"):
        assert title in titles
    channels, spatial = bars[0], bars[1]
    assert list(channels.x) == list(t.config.levels)
    assert list(channels.y) == [64, 128, 256, 512, 256, 256, 256, 256, 256]
    assert spatial.text[0] == "56×56" and spatial.y[0] == 56 * 56
    params = [b for b in bars if "parameters" in b.hovertext[0]][0]
    assert sum(params.y) == t.params.total
    assert fig.layout.yaxis2.type == "log" and fig.layout.yaxis.type != "log"


def test_level_bars_grey_out_unreached_levels():
    fig = level_bars_figure(traced("odd-225"))
    channels = fig.data[0]
    colors = dict(zip(channels.x, channels.marker.color))
    assert colors["P4"] == OFF and colors["P5"] != OFF and colors["C2"] != OFF
    memory = fig.data[2]
    assert dict(zip(memory.x, memory.y))["P4"] is None
    assert "grey levels were not reached" in " ".join(re.sub(r"<[^>]+>", " ", fig.layout.title.text).split())


# -- heatmap grid -------------------------------------------------------------------------------


def test_heatmap_has_one_trace_per_given_level_in_its_row():
    t = traced("reference")
    maps = {k: v for k, v in maps_for(t).items() if k in ("C3", "C5", "P3", "P6")}
    fig = heatmap_grid_figure(maps, t)
    heatmaps = [tr for tr in fig.data if tr.type == "heatmap"]
    assert len(heatmaps) == 4
    names = [tr.hovertemplate.split("</b>")[0].removeprefix("<b>") for tr in heatmaps]
    assert names == ["C3", "C5", "P3", "P6"]
    # C3 sits above P3 (same column), C in row 1 and P in row 2
    axes = {n: (tr.xaxis, tr.yaxis) for n, tr in zip(names, heatmaps)}
    x3 = fig.layout[axes["C3"][0].replace("x", "xaxis")].domain
    assert fig.layout[axes["P3"][0].replace("x", "xaxis")].domain == x3
    assert fig.layout[axes["C3"][1].replace("y", "yaxis")].domain[0] > fig.layout[axes["P3"][1].replace("y", "yaxis")].domain[1]


def test_heatmap_sends_uint8_binary_and_keeps_the_true_range():
    t = traced("reference")
    m = np.zeros((56, 56))
    m[0, :2], m[1, 0] = (-2.0, 6.0), 2.0
    fig = heatmap_grid_figure({"C2": m}, t, shared_scale=True)
    z = fig.data[0].z
    assert z.dtype == np.uint8 and z[0, 0] == 0 and z[0, 1] == 100 and z[1, 0] == 50 and z[5, 5] == 25
    out = fig.to_json()
    assert '"dtype":"u1"' in out and '"bdata"' in out
    bar = fig.layout.coloraxis.colorbar
    assert list(bar.ticktext) == ["-2", "0", "2", "4", "6"] and list(bar.tickvals) == [0, 25, 50, 75, 100]
    assert "from -2 to 6" in fig.data[0].hovertemplate


@pytest.mark.parametrize("label, title", [("mean", "Feature maps (mean over channels)"),
                                          ("L2 norm over channels", "Feature maps (L2 norm over channels)"),
                                          ("channel 7", "Feature maps (channel 7)")])
def test_heatmap_title_names_the_reduction(label, title):
    t = traced("reference")
    fig = heatmap_grid_figure({"C5": np.ones((7, 7))}, t, reduction_label=label, shared_scale=True)
    assert fig.layout.title.text.startswith(title + "<br>")


def test_heatmap_own_ranges_are_named_in_titles_and_hover():
    t = traced("reference")
    fig = heatmap_grid_figure({"P3": np.linspace(-1, 3, 28 * 28).reshape(28, 28)}, t)
    assert "range -1 … 3" in annotation_texts(fig)[0]
    assert "from -1 to 3" in fig.data[0].hovertemplate
    assert list(fig.layout.coloraxis.colorbar.ticktext) == ["min", "mid", "max"]


def test_heatmap_hover_names_each_cells_stride_window():
    t = traced("reference")
    fig = heatmap_grid_figure(maps_for(t), t)
    p3 = [tr for tr in fig.data if tr.hovertemplate.startswith("<b>P3</b>")][0]
    assert list(p3.x[:3]) == ["0-7", "8-15", "16-23"] and p3.y[-1] == "216-223"
    assert "8×8 input px" in p3.hovertemplate and "rows %{y}, cols %{x}" in p3.hovertemplate


def test_heatmap_is_image_oriented_with_square_cells():
    t = traced("reference")
    fig = heatmap_grid_figure(maps_for(t), t)
    assert fig.layout.template.layout.yaxis.autorange == "reversed"
    heatmaps = [tr for tr in fig.data if tr.type == "heatmap"]
    for tr in heatmaps:
        y_axis = fig.layout[tr.yaxis.replace("y", "yaxis")]
        assert y_axis.scaleanchor == tr.xaxis and y_axis.scaleratio == 1


def noise_image(size: int) -> Image.Image:
    """The worst case for JPEG: pure noise."""
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


@pytest.mark.parametrize("size", [512, 1024])
@pytest.mark.parametrize("with_image", [False, True])
def test_heatmap_payload_stays_under_100_kb(size, with_image):
    t = trace(Config(input_height=size, input_width=size))
    maps = maps_for(t)
    assert maps["P2"].shape == (size // 4, size // 4)
    image = noise_image(size) if with_image else None
    fig = heatmap_grid_figure(maps, t, image=image, opacity=0.6)
    out = fig.to_json()
    assert len(out) < 100_000
    assert out.count("jpeg;base64,") == (1 if with_image else 0)  # one image shared by all nine maps
    assert len(fig.layout.images) == (9 if with_image else 0)
    assert all(tr.opacity == (0.6 if with_image else 1.0) for tr in fig.data)


def test_heatmap_large_input_is_pooled_alike_and_says_so():
    t = trace(Config(input_height=1024, input_width=1024))
    fig = heatmap_grid_figure(maps_for(t), t)
    shapes = {tr.hovertemplate.split("</b>")[0][3:]: tr.z.shape for tr in fig.data}
    assert shapes["P2"] == (128, 128) and shapes["C3"] == (64, 64) and shapes["P6"] == (8, 8)
    assert "shown at 1/2 resolution" in fig.layout.title.text
    assert "<b>P2</b> 256×256 · stride 4" in annotation_texts(fig)[4]


def test_heatmap_takes_1x1_maps_and_a_leading_batch_dim():
    t = trace(Config(input_height=128, input_width=128, p7=True))
    maps = {n: torch.rand(1, 1, lv.shape[2], lv.shape[3]) for n, lv in t.levels.items()}
    assert maps["P7"].shape == (1, 1, 1, 1)
    fig = heatmap_grid_figure(maps, t)
    assert [tr.z.shape for tr in fig.data][-1] == (1, 1) and list(fig.data[-1].x) == ["0-127"]


def test_heatmap_rejects_maps_that_are_not_2d():
    t = traced("reference")
    with pytest.raises(ValueError, match=r"must be 2-D \(H, W\); got shape \(3, 56, 56\)"):
        heatmap_grid_figure({"C2": torch.zeros(3, 56, 56)}, t)


def test_heatmap_without_maps_says_so():
    fig = heatmap_grid_figure({}, traced("reference"))
    assert not fig.data and "no feature maps to show" in annotation_texts(fig)


PHONE_PLOT_PX = 324  # the architecture map's box at 390×844 in Chromium (tests/test_browser_page.py)


@pytest.mark.parametrize("config", [
    Config(), Config.preset("resnet50"), Config.preset("retinanet").replace(p7=True),
    Config.preset("resnet50").replace(input_height=800, input_width=1333, policy="match"),
    Config(input_height=100, input_width=100),  # an FPN mismatch: its note and red merge
    Config(skip="A", widths=(64, 32, 256, 512)),  # a backbone mismatch
    Config(p6="c5-conv", input_height=97, input_width=131, policy="pad"),
], ids=["reference", "resnet50", "retinanet-p7", "r50-800x1333", "fpn-mismatch", "backbone-mismatch", "c5-conv-pad"])
def test_compact_architecture_map_fits_a_phone(config):
    """The phone layout holds every box, label and note within a phone's plot width, where the full
    map needs 800+ px; it says the same things (every level's shape) in fewer words."""
    t = trace(config)
    full, compact = architecture_figure(t), architecture_figure(t, compact=True)
    assert full.layout.meta["min_width"] > 700
    assert compact.layout.meta["min_width"] <= PHONE_PLOT_PX, compact.layout.meta["min_width"]
    texts = " ".join(annotation_texts(compact))
    for name, level in t.levels.items():
        assert format_shape(level.shape) in texts, name
    assert all(a.font.size is None or a.font.size >= 10 for a in compact.layout.annotations)


def test_compact_comparison_maps_fit_a_phone():
    from resfpn.analysis.compare import compare

    for a, b in [(Config(), Config(skip="A")), (Config(), Config(input_height=100, input_width=100)),
                 (Config(), Config.preset("retinanet"))]:
        for fig in compare_architecture_figures(compare(a, b), compact=True):
            assert fig.layout.meta["min_width"] <= PHONE_PLOT_PX


@pytest.mark.parametrize("name", ["reference", "resnet50", "option-a", "option-a-shrinks"])
def test_compact_block_view_fits_a_phone(name):
    """On a phone the four stage transitions stand one above the other, each as wide as the screen."""
    t = traced(name)
    full, compact = block_figure(t), block_figure(t, compact=True)
    assert full.layout.meta["min_width"] > 700
    assert compact.layout.meta["min_width"] <= PHONE_PLOT_PX, compact.layout.meta["min_width"]
    words = [[" ".join(re.sub("<br>", " ", x).split()) for x in annotation_texts(f)] for f in (full, compact)]
    assert sorted(words[0]) == sorted(words[1])  # the same words, on more lines
    assert all(a.font.size is None or a.font.size >= 10 for a in compact.layout.annotations)


@pytest.mark.parametrize("name", ["reference", "resnet50", "retinanet", "option-a-shrinks"])
def test_compact_level_bars_run_across_on_a_phone(name):
    """On a phone the bars run across, levels and parts down the side: every level and part still
    has its bar and its label, within a phone's width."""
    t = traced(name)
    full, compact = level_bars_figure(t), level_bars_figure(t, compact=True)
    assert full.layout.meta["min_width"] > 550
    assert compact.layout.meta["min_width"] <= PHONE_PLOT_PX, compact.layout.meta["min_width"]
    for a, b in zip(full.data, compact.data):
        assert b.orientation == "h" and list(a.text) == list(b.text)
        assert list(a.y) == list(b.x) and [x.replace("<br>", " ") for x in a.x] == list(b.y)
