"""The compare view's figures and table, tested by structure: traces, titles, ranges, marks."""

import json

import pytest
import torch
from PIL import Image

from resfpn import Config
from resfpn.analysis.compare import compare, compare_traces
from resfpn.figures import (
    COMPARE_TABLE_HEADERS,
    architecture_figure,
    compare_architecture_figures,
    compare_heatmaps_figure,
    compare_highlight,
    compare_table_rows,
)
from resfpn.figures._style import DIFF


def _image(w=64, h=64):
    g = torch.Generator().manual_seed(0)
    return Image.fromarray(torch.randint(0, 256, (h, w, 3), generator=g, dtype=torch.uint8).numpy())


@pytest.fixture
def small(tiny) -> Config:
    return tiny.replace(input_height=64, input_width=64)


def marked(fig) -> dict[str, list]:
    """Everything drawn in the highlight colour: outlines, rings, pills and ≠ badges."""
    return {
        "outlines": [s for s in fig.layout.shapes if s.line.color == DIFF],
        "rings": [tr for tr in fig.data if tr.type == "scatter" and tr.marker.color == DIFF],
        "pills": [a for a in fig.layout.annotations if a.bordercolor == DIFF],
        "notes": [a.text for a in fig.layout.annotations if a.font.color == DIFF],
    }


def heatmaps(fig) -> dict[tuple[str, str], object]:
    return {(tr.meta["side"], tr.meta["level"]): tr for tr in fig.data if tr.type == "heatmap"}


# -- architecture maps ------------------------------------------------------------------------------


def test_skip_a_vs_b_marks_the_stages_whose_shortcuts_differ_and_nothing_else(small):
    c = compare(small.replace(skip="A"), small.replace(skip="B"))
    fa, fb = compare_architecture_figures(c)
    assert fa.layout.title.text.startswith("A: Architecture map")
    assert fb.layout.title.text.startswith("B: Architecture map")
    for fig in (fa, fb):
        m = marked(fig)
        (ring,) = m["rings"]
        assert len(ring.x) == 3  # layer2..layer4: the first block of each changes width and stride
        assert all("shortcut" in h for h in ring.hovertext)
        assert not m["outlines"] and not m["pills"]  # same levels, same FPN
        stage_labels = [a.text for a in fig.layout.annotations if "residual adds" in (a.text or "")]
        assert sorted(t.split("<b>")[-1].split("</b>")[0] for t in stage_labels if "≠" in t) == [
            "layer2", "layer3", "layer4"]
        assert any("differs from the other design (" in n for n in m["notes"])


def test_identical_designs_mark_nothing_but_say_so(small):
    fa, fb = compare_architecture_figures(compare(small, small))
    for fig in (fa, fb):
        m = marked(fig)
        assert not m["outlines"] and not m["rings"] and not m["pills"]
        assert m["notes"] == ["≠ nothing differs from the other design"]
    plain = architecture_figure(compare(small, small).a.trace)
    assert not any(marked(plain).values()) and plain.layout.title.text.startswith("Architecture map")


def test_fpn_changes_mark_levels_pills_and_merges_on_the_side_that_has_them(small):
    c = compare(small, small.replace(fpn_from="C3", p6="c5-conv", p7=True))
    fa, fb = compare_architecture_figures(c)
    ma, mb = marked(fa), marked(fb)
    assert len(ma["outlines"]) == 2 and len(mb["outlines"]) == 2  # A: P2, P6 · B: P6, P7
    assert {a.text for a in ma["pills"]} >= {"≠ 1×1 conv", "≠ 3×3 conv"}  # C2's lateral and P2's output
    assert any("FPN merge into P2" in h for h in ma["rings"][0].hovertext)
    assert not mb["rings"] and all(a.text.startswith("≠ ") for a in mb["pills"])


def test_compare_highlight_lists_levels_modules_additions_and_input(small):
    c = compare(small, small.replace(input_height=96, fpn_from="C3"))
    r = compare_traces(c.a.trace, c.b.trace)
    a, b = compare_highlight(r, "a"), compare_highlight(r, "b")
    assert {"P2", "C2", "FPN merge into P2", "fpn.lateral.C2", "input"} <= set(a)
    assert "P2" not in b and "input" in b
    with pytest.raises(ValueError, match="side='c'"):
        compare_highlight(r, "c")


def test_a_refused_side_gets_a_card_with_its_error(small):
    fa, fb = compare_architecture_figures(compare(small, {"widths": [0, 8, 16, 16]}))
    assert fa.layout.title.text.startswith("A: ")
    assert fb.layout.title.text.startswith("B: ") and "widths" in fb.layout.annotations[0].text


# -- feature maps side by side ------------------------------------------------------------------


def test_a_and_b_share_one_range_per_level_and_the_difference_is_titled(small):
    c = compare(small.replace(skip="A"), small.replace(skip="B"), image=_image())
    fig = compare_heatmaps_figure(c)
    maps = heatmaps(fig)
    levels = list(c.a.run.levels)
    assert {k[1] for k in maps} == set(levels)
    for name in levels:
        a, b, d = maps["A", name], maps["B", name], maps["A−B", name]
        assert a.meta["range"] == b.meta["range"]
        assert a.coloraxis == b.coloraxis == "coloraxis" and d.coloraxis == "coloraxis2"
        assert a.xaxis != b.xaxis != d.xaxis
    titles = [a.text for a in fig.layout.annotations]
    differences = c.differences()
    assert differences["C2"] == 0 and differences["C3"] > 0
    assert any(t.startswith("<b>|A−B| · C2</b> rel. L2 0<") for t in titles)
    assert any(t.startswith(f"<b>|A−B| · C3</b> rel. L2 {differences['C3']:.3g}") for t in titles)
    assert fig.layout.coloraxis.cmax == fig.layout.coloraxis2.cmax == 100


def test_the_difference_column_exists_only_where_shapes_agree(small):
    c = compare(small, small.replace(widths=(8, 16, 16, 32), fpn_from="C3"), image=_image())
    fig = compare_heatmaps_figure(c)
    diffs = {k[1] for k in heatmaps(fig) if k[0] == "A−B"}
    same = {n for n, lv in c.traces["levels"].items() if lv["same_shape"]}
    assert diffs == same and {"C2", "C4", "P3"} <= diffs and not {"C3", "C5", "P2"} & diffs
    cells = [a.text for a in fig.layout.annotations if a.bgcolor == "#f9fafb"]
    assert "<b>shapes differ</b><br>A 8×8×8<br>B 16×8×8<br>no element-wise difference" in cells
    assert "<b>only A has P2</b><br>no difference map" in cells
    assert ("B", "P2") not in heatmaps(fig) and ("A", "P2") in heatmaps(fig)


def test_a_side_that_did_not_run_is_named(small):
    c = compare(small, small.replace(input_height=70, input_width=70), image=_image())  # ×2 fails at 70
    assert c.b.run is None
    fig = compare_heatmaps_figure(c)
    assert "B did not run: shape mismatch" in fig.layout.title.text
    assert not any(k[0] in ("B", "A−B") for k in heatmaps(fig))


def test_overlay_image_is_sent_once_and_json_stays_small(small):
    c = compare(small.replace(skip="A"), small.replace(skip="B"), image=_image())
    fig = compare_heatmaps_figure(c, image=_image(), reduction="channel", channel=3)
    assert fig.layout.title.text.startswith("A vs B: feature maps (channel 3)<br>")
    assert len(fig.layout.images) == len(heatmaps(fig)) and fig.layout.template.layout.imagedefaults.source
    payload = json.dumps(fig.to_plotly_json(), default=str)
    assert payload.count("data:image/jpeg") == 1 and len(payload) < 60_000
    assert all(tr.z.dtype.name == "uint8" for tr in heatmaps(fig).values())


# -- the differences table ----------------------------------------------------------------------


def test_table_rows_mark_levels_and_parts_that_differ(small):
    report = compare(small, small.replace(widths=(8, 16, 16, 32)), image=_image()).to_dict()
    rows = compare_table_rows(report)
    assert all(len(r) == len(COMPARE_TABLE_HEADERS) and all(isinstance(x, str) for x in r) for r in rows)
    by = {r[1]: r for r in rows}
    assert by["C3"][:4] == ["≠", "C3", "8×8×8", "16×8×8"] and by["C3"][8].startswith("channels")
    assert by["C2"][0] == "" and by["C2"][8] == f"rel. L2 {report['levels']['C2']['difference']:.3g}"
    assert by["parameters · layer1"][0] == "" and by["parameters · layer2"][0] == "≠"
    pa, pb = report["params"]["a"], report["params"]["b"]
    assert by["parameters · total"][2:4] == [f"{pa:,}", f"{pb:,}"] and by["parameters · total"][8].startswith("+")
    assert "MACs · total" in by and "activation memory · total" in by


def test_table_of_a_design_against_itself_marks_nothing(small):
    rows = compare_table_rows(compare(small, small).to_dict())
    assert rows and not any(r[0] for r in rows) and not any(r[8] for r in rows)
