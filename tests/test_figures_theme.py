"""Dark theme, download settings and file names of figures (resfpn.figures.theme / .export)."""

import functools
import json
import re
from dataclasses import fields
from pathlib import Path

import plotly.graph_objects as go
import pytest
import torch

from resfpn import Config, trace
from resfpn.model.config import PRESETS
from resfpn.figures import (
    BAD,
    OK,
    apply_theme,
    architecture_figure,
    block_figure,
    design_filename,
    heatmap_grid_figure,
    level_bars_figure,
    plot_json,
)
from resfpn.figures._style import DARK, INK, LEVEL_COLOR, MUTED, OFF, ON_MARK, PAPER

CONFIGS = {
    "reference": Config(),
    "mismatch": Config(input_height=225, input_width=225),  # stops at the FPN merge into P4
    "option-a": Config(skip="A"),
    "retinanet": Config.preset("retinanet"),
}
HEX = re.compile(r"#[0-9a-fA-F]{6}\b")


@functools.lru_cache(maxsize=None)
def traced(name: str):
    return trace(CONFIGS[name])


def heatmaps(name: str = "reference"):
    t = traced(name)
    g = torch.Generator().manual_seed(0)
    maps = {n: torch.randn(lv.shape[2], lv.shape[3], generator=g) for n, lv in t.levels.items()}
    return heatmap_grid_figure(maps, t, colorscale="Cividis")


FAMILIES = {
    "architecture": lambda name: architecture_figure(traced(name)),
    "blocks": lambda name: block_figure(traced(name)),
    "bars": lambda name: level_bars_figure(traced(name)),
    "heatmaps": lambda name: heatmaps(name),
}
CASES = [(family, name) for family in FAMILIES for name in CONFIGS]


def colours(node, path=""):
    """(path, colour) for every hex colour in the figure's JSON, also inside label text."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from colours(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from colours(v, f"{path}[{i}]")
    elif isinstance(node, str):
        for c in HEX.findall(node):
            yield path, c.lower()


def spec(fig) -> dict:
    return json.loads(fig.to_json())


# -- theme ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("family, name", CASES)
def test_light_theme_is_the_figure_itself_unchanged(family, name):
    fig = FAMILIES[family](name)
    before = fig.to_json()
    out = apply_theme(fig, "light")
    assert out is fig and out.to_json() == before


@pytest.mark.parametrize("family, name", CASES)
def test_dark_theme_recolours_card_and_text_and_leaves_the_input_alone(family, name):
    fig = FAMILIES[family](name)
    before = fig.to_json()
    dark = apply_theme(fig, "dark")
    assert fig.to_json() == before  # the light figure is still there for a light page
    lay = dark.layout
    assert lay.paper_bgcolor == lay.plot_bgcolor == DARK[PAPER] != PAPER
    assert lay.font.color == lay.title.font.color == DARK[INK] != INK
    assert lay.hoverlabel.bgcolor == DARK[PAPER] and lay.hoverlabel.font.color == DARK[INK]
    assert f"color:{DARK[MUTED]}" in lay.title.text  # the subtitle's span
    # No light structural colour is left anywhere, except the "+" drawn on ⊕ nodes.
    left = [(p, c) for p, c in colours(spec(dark)) if c in DARK]
    assert all(c == ON_MARK and p.endswith("textfont.color") for p, c in left), left[:5]
    assert [c for _, c in colours(spec(dark))] != [c for _, c in colours(spec(fig))]


def test_dark_architecture_keeps_the_ok_and_mismatch_colours():
    light, dark = (apply_theme(architecture_figure(traced("mismatch")), th) for th in ("light", "dark"))
    def semantic(fig):
        nodes = [c for tr in fig.data if tr.mode == "markers+text" for c in tr.marker.color]
        notes = [a.font.color for a in fig.layout.annotations if a.font and a.font.color in (OK, BAD)]
        return nodes, notes
    (light_nodes, light_notes), (dark_nodes, dark_notes) = semantic(light), semantic(dark)
    assert OK in light_nodes and BAD in light_nodes and BAD in light_notes
    assert [c for c in dark_nodes if c in (OK, BAD)] == [c for c in light_nodes if c in (OK, BAD)]
    assert dark_notes == light_notes
    plus = [tr.textfont.color for tr in dark.data if tr.mode == "markers+text"]
    assert plus and set(plus) == {ON_MARK}  # white "+" on green/red stays white
    rings = {tr.marker.line.color for tr in dark.data if tr.mode == "markers+text"}
    assert rings == {DARK[PAPER]}  # the ring that separates a node from the arrows matches the card


def test_dark_bars_keep_level_colours_and_grey_out_unreached_ticks_in_the_dark_grey():
    fig = level_bars_figure(traced("mismatch"))
    dark = apply_theme(fig, "dark")
    bar_colours = {c for tr in dark.data for c in tr.marker.color}
    assert {LEVEL_COLOR["C"], LEVEL_COLOR["P"]} <= bar_colours
    assert OFF not in bar_colours and DARK[OFF] in bar_colours  # unreached levels recede on the dark card
    ticks = " ".join(t for ax in (dark.layout.xaxis, dark.layout.xaxis2) for t in ax.ticktext)
    assert f"color:{DARK[OFF]}" in ticks and f"color:{OFF}" not in ticks
    assert dark.layout.yaxis.gridcolor == DARK[fig.layout.yaxis.gridcolor]


def test_dark_heatmaps_keep_the_colour_scale_and_the_data():
    fig = heatmaps()
    dark = apply_theme(fig, "dark")
    assert dark.layout.coloraxis.colorscale == fig.layout.coloraxis.colorscale
    assert [spec(dark)["data"][i]["z"] for i in range(len(fig.data))] == [spec(fig)["data"][i]["z"]
                                                                         for i in range(len(fig.data))]
    assert dark.layout.template.layout.xaxis.type == "category"  # the figure's own template is kept


def test_dark_theme_covers_what_a_figure_leaves_to_plotly_defaults():
    fig = go.Figure(go.Scatter(x=[0, 1], y=[1, 0]), layout=dict(annotations=[dict(x=0, y=0, text="a")]))
    dark = apply_theme(fig, "dark")
    assert dark.layout.paper_bgcolor == DARK[PAPER] and dark.layout.font.color == DARK[INK]
    axis = dark.layout.template.layout.xaxis
    assert axis.gridcolor == DARK["#e5e7eb"] and axis.linecolor == axis.zerolinecolor == DARK[MUTED]
    assert dark.layout.template.layout.annotationdefaults.arrowcolor == DARK[MUTED]


def test_rgba_colours_keep_their_alpha():
    fig = go.Figure(layout=dict(annotations=[dict(text="x", bgcolor="rgba(255,255,255,0.8)")]))
    r, g, b = (int(DARK[PAPER][i:i + 2], 16) for i in (1, 3, 5))
    assert apply_theme(fig, "dark").layout.annotations[0].bgcolor == f"rgba({r},{g},{b},0.8)"


def test_unknown_theme_is_refused_with_the_allowed_values():
    with pytest.raises(ValueError, match=r"theme='sepia': unknown theme; allowed: 'light', 'dark'"):
        apply_theme(go.Figure(), "sepia")


def test_figure_modules_keep_their_colours_in_style():
    """The palette has one home: figure modules name colours from _style, so each has a dark pair."""
    package = Path(__file__).resolve().parents[1] / "resfpn" / "figures"
    for path in package.glob("*.py"):
        if path.name != "_style.py":
            assert not HEX.findall(path.read_text()), f"{path.name} writes a colour literal; name it in _style.py"


# -- export -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt, scale", [("svg", None), ("png", 2)])
def test_plot_json_carries_the_download_config_and_the_name(fmt, scale):
    fig = apply_theme(architecture_figure(traced("reference")), "dark")
    name = design_filename(CONFIGS["reference"], "architecture")
    out = json.loads(plot_json(fig, name, fmt))
    options = out["config"]["toImageButtonOptions"]
    assert options["format"] == fmt and options["filename"] == name and options.get("scale") == scale
    assert out["config"]["displaylogo"] is False
    assert out["config"]["displayModeBar"] is False  # the page's own SVG/PNG buttons sit above the figure
    assert out["layout"]["meta"] == spec(fig)["layout"]["meta"] | {"filename": name}  # min_width kept
    assert out["data"] == spec(fig)["data"]
    assert {k: v for k, v in out["layout"].items() if k != "meta"} == {
        k: v for k, v in spec(fig)["layout"].items() if k != "meta"}


def test_plot_json_refuses_unknown_formats_and_unsafe_names():
    fig = go.Figure()
    with pytest.raises(ValueError, match=r"fmt='jpeg': unknown image format; allowed: 'svg', 'png'"):
        plot_json(fig, "resfpn-x", "jpeg")
    for bad in ("", "../etc/passwd", "a b", "a.svg"):
        with pytest.raises(ValueError, match="letters, digits and '-' only"):
            plot_json(fig, bad)


def test_design_filename_names_presets_after_the_preset():
    assert design_filename(Config.preset("resnet50", input_height=224, input_width=224),
                           "architecture") == "resfpn-resnet50-224x224-skipB-architecture"
    assert design_filename(Config.preset("retinanet", input_height=512, input_width=640),
                           "Feature maps") == "resfpn-retinanet-512x640-skipB-feature-maps"


def _variants() -> list[Config]:
    """The presets and one change of every field of the reference design."""
    base = Config()
    changes = dict(input_height=225, input_width=256, input_channels=1, batch=2, widths=(16, 32, 64, 128),
                   blocks=(1, 1, 1, 1), block="bottleneck", stride_in="1x1", skip="A", fpn_width=128,
                   fpn_from="C3", upsample="bilinear", policy="pad", p6="maxpool", p7=True, stem_width=32,
                   expansion=2)
    out = list(PRESETS.values())
    for f in fields(Config):
        assert f.name in changes, f"{f.name}: add a changed value here"
        out.append(base.replace(**{f.name: changes[f.name]}))
    return out


def test_design_filenames_are_safe_and_distinct_for_distinct_designs():
    designs = _variants()
    assert len(set(designs)) == len(designs) >= 20
    names = [design_filename(c, "blocks") for c in designs]
    assert len(set(names)) == len(names), names
    assert all(re.fullmatch(r"resfpn-[A-Za-z0-9-]+-blocks", n) and "--" not in n for n in names), names
    assert all(len(n) <= 80 for n in names)
    assert design_filename(Config(skip="A"), "blocks") == design_filename(Config(skip="A"), "blocks")
    custom = design_filename(Config(skip="A", widths=(16, 32, 64, 128)), "blocks")
    assert re.fullmatch(r"resfpn-basic-16-32-64-128-224x224-skipA-[0-9a-f]{8}-blocks", custom), custom


def test_design_filename_needs_a_figure_name():
    with pytest.raises(ValueError, match=r"figure_name='  ': needs at least one letter or digit"):
        design_filename(Config(), "  ")


def test_dark_theme_overrides_a_light_template_but_not_the_figure_s_own_colours():
    fig = go.Figure(go.Bar(x=["a"], y=[1]), layout=dict(template="plotly", yaxis=dict(gridcolor="#123456")))
    dark = apply_theme(fig, "dark")
    assert dark.layout.template.layout.plot_bgcolor == DARK[PAPER]  # plotly's #E5ECF6 is gone
    assert dark.layout.template.layout.xaxis.gridcolor == DARK["#e5e7eb"]
    assert dark.layout.yaxis.gridcolor == "#123456"
