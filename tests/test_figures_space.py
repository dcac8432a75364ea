"""The Space figures by structure: traces, what a click applies, marks, and the dark theme."""

import plotly.graph_objects as go

from resfpn import Config
from resfpn.figures import apply_theme, design_filename, plot_json
from resfpn.figures.space import cost_figure, sizes_figure, sweep_figure
from resfpn.shapes.sizes import costs, size_map
from resfpn.shapes.sweep import sweep


def test_sizes_figure_strips_map_and_current_size():
    m = size_map(Config(input_height=225, input_width=224))
    fig = sizes_figure(m)
    names = [t.name for t in fig.data]
    assert names == ["height-strip", "width-strip", "size-map", "current size"]
    strip = fig.data[0]
    assert len(strip.x) == 2048 and len(strip.z) == 3
    x2 = list(strip.y).index("×2")
    assert strip.z[x2][223] == 1 and strip.z[x2][224] == 0  # 224 builds, 225 does not
    assert strip.text[x2][224] == "✗ merge into P4 15≠16"
    cell = fig.data[2]
    row, col = list(cell.y).index(224), list(cell.x).index(224)
    assert list(cell.customdata[row][col]) == [224, 224] and cell.z[row][col] == 1
    assert "height: C2 56 · C3 28 · C4 14 · C5 7 · P2 56" in cell.text[row][col]
    assert (fig.data[3].x[0], fig.data[3].y[0]) == (224, 225)


def test_cost_figure_marks_and_latency_fit():
    config = Config()
    curve = costs(config, range(1, 2049), range(1, 2049))
    marks = costs(config, [224, 800], [224, 1344])
    fig = cost_figure(curve, marks, ["current", "800×1333→800×1344"])
    assert "14,373,696 parameters at every size" in fig.layout.title.text
    macs = fig.data[0]
    assert len(macs.x) == 256  # the x2 sizes that build: 4 of every 32
    latency = {"points": [{"height": 224, "width": 224, "seconds": 0.05, "macs": int(marks.macs[0])}],
               "fit": [0.01, 2e-11], "device": "test"}
    fig = cost_figure(curve, marks, ["current", "800"], latency)
    assert any(t.hovertext and "measured" in t.hovertext[0] for t in fig.data if isinstance(t, go.Scatter))


def test_sweep_figure_points_carry_their_index_and_the_theme_applies():
    s = sweep(Config())
    fig = sweep_figure(s)
    designs = fig.data[1]
    assert list(designs.customdata) == list(range(len(s.designs)))
    assert any(a.text == "current" for a in fig.layout.annotations)
    dark = apply_theme(fig, "dark")
    assert dark.layout.paper_bgcolor != fig.layout.paper_bgcolor
    assert "sweep" in plot_json(dark, design_filename(Config(), "sweep"))
