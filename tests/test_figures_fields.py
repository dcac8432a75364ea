"""The clicked-point figure (resfpn.figures.fields), tested by structure: traces, shapes, axes, titles."""

import numpy as np
import pytest
import torch
from PIL import Image

from resfpn import build_model, trace
from resfpn.analysis.effective import PointError, cell_at, effective_fields
from resfpn.figures import receptive_field_figure
from resfpn.serving.images import to_tensor

LABEL = "random (seed 0)"


def photo(w: int, h: int) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def clicked(config, x: int, y: int, levels: list[str]):
    """(image, trace, effective_fields result) for a click on a seeded random-weight model."""
    torch.manual_seed(0)
    t = trace(config.replace(batch=1))
    image = photo(config.input_width, config.input_height)
    fields = effective_fields(build_model(config).eval(), to_tensor(image), (x, y), levels, t)
    return image, t, fields


@pytest.fixture
def nonsquare(tiny):
    """64 high, 96 wide: boxes of deep levels reach far outside on both axes."""
    return tiny.replace(input_height=64, input_width=96)


def shapes_named(fig, name: str) -> list:
    return [s for s in fig.layout.shapes if s.name == name]


def rect(shape) -> list[float]:
    """[top, left, bottom, right] of a rectangle shape, as the boxes are written."""
    return [shape.y0, shape.x0, shape.y1, shape.x1]


def heatmaps(fig) -> list:
    return [tr for tr in fig.data if tr.type == "heatmap"]


def main_axes(fig) -> tuple:
    return fig.layout.xaxis, fig.layout.yaxis


def test_selected_level_shows_its_boxes_erf_and_point_on_the_main_panel(nonsquare):
    image, t, fields = clicked(nonsquare, 40, 30, ["P3"])
    fig = receptive_field_figure(image, (40, 30), t, fields, "P3", weights_label=LABEL)
    f = fields["P3"]
    assert len(heatmaps(fig)) == 1 and heatmaps(fig)[0].xaxis == "x"
    (theory,) = [s for s in shapes_named(fig, "P3 theoretical field") if s.xref == "x"]
    assert rect(theory) == f["box"] == t.fields["P3"].box(*f["cell"]) and theory.line.dash == "dash"
    main, thumb = sorted(shapes_named(fig, "P3 effective field (95% box)"), key=lambda s: s.xref != "x")
    assert main.xref == "x" and thumb.xref != "x"  # drawn large, and again in its thumbnail
    assert rect(main) == rect(thumb) == f["erf_box"] and main.line.dash in (None, "solid")
    row, col = f["cell"]
    (cell,) = [s for s in shapes_named(fig, "P3 cell (8×8 px tile)") if s.xref == "x"]
    assert rect(cell) == [row * 8, col * 8, (row + 1) * 8, (col + 1) * 8]
    points = [tr for tr in fig.data if tr.type == "scatter" and tr.name == "point (40, 30)"]
    assert len(points) == 1 and (points[0].x[0], points[0].y[0]) == (40.5, 30.5)
    assert "<b>P3</b> cell [" + f"{row}, {col}] · stride 8" in fig.layout.annotations[0].text
    size = f"{f['box'][2] - f['box'][0]}×{f['box'][3] - f['box'][1]} px"
    assert f"theoretical field {size}" in fig.layout.annotations[0].text


def test_one_thumbnail_per_level_with_that_levels_exact_box_and_the_selected_one_framed(nonsquare):
    image, t, fields = clicked(nonsquare, 95, 63, ["C4"])
    fig = receptive_field_figure(image, (95, 63), t, fields, "C4", weights_label=LABEL)
    titles = [a.text for a in fig.layout.annotations[1:len(t.levels) + 1]]
    for name in t.levels:
        row, col = cell_at(t, name, 95, 63)
        box = t.fields[name].box(row, col)
        (thumb,) = [s for s in shapes_named(fig, f"{name} theoretical field") if s.xref != "x"]
        assert rect(thumb) == box
        (title,) = [s for s in titles if f"<b>{name}</b> [{row}, {col}]" in s]
        assert f"{box[2] - box[0]}×{box[3] - box[1]} px" in title
    assert sum("▶" in s for s in titles) == 1 and "▶ <b>C4</b>" in next(s for s in titles if "▶" in s)
    (frame,) = shapes_named(fig, "selected level")
    (c4,) = [s for s in shapes_named(fig, "C4 theoretical field") if s.xref != "x"]
    assert frame.xref == f"{c4.xref} domain"
    assert len(fig.layout.images) == 1 + len(t.levels)


def test_axes_reach_the_part_of_the_box_outside_the_image_and_shade_it(nonsquare):
    image, t, fields = clicked(nonsquare, 0, 0, ["P5"])
    fig = receptive_field_figure(image, (0, 0), t, fields, "P5", weights_label=LABEL)
    top, left, bottom, right = fields["P5"]["box"]
    assert top < 0 and left < 0 and bottom > 64 and right > 96  # the premise: it sticks out on every side
    xaxis, yaxis = main_axes(fig)
    assert xaxis.range[0] < left and xaxis.range[1] > right
    assert yaxis.range[0] > bottom and yaxis.range[1] < top  # reversed: image rows grow downward
    assert yaxis.scaleanchor == "x"
    shaded = [tr for tr in fig.data if tr.name == "outside the image" and tr.xaxis == "x"]
    assert len(shaded) == 1 and shaded[0].fill == "toself" and "outside the image" in shaded[0].text
    xs = [v for v in shaded[0].x if v is not None]
    assert min(xs) == xaxis.range[0] and max(xs) == xaxis.range[1]
    # Every thumbnail shares one view that holds every level's box.
    boxes = [t.fields[n].box(*cell_at(t, n, 0, 0)) for n in t.levels]
    for i in range(2, len(t.levels) + 2):
        xa, ya = fig.layout[f"xaxis{i}"], fig.layout[f"yaxis{i}"]
        assert xa.range[0] < min(b[1] for b in boxes) and xa.range[1] > max(b[3] for b in boxes)
        assert ya.range[1] < min(b[0] for b in boxes) and ya.range[0] > max(b[2] for b in boxes)


def test_image_and_erf_sit_on_input_pixels_for_a_nonsquare_input(nonsquare):
    image, t, fields = clicked(nonsquare, 50, 20, ["C3"])
    fig = receptive_field_figure(image, (50, 20), t, fields, "C3", weights_label=LABEL)
    main_image = next(im for im in fig.layout.images if im.xref == "x")
    assert (main_image.x, main_image.y, main_image.sizex, main_image.sizey) == (0, 0, 96, 64)
    top, left, bottom, right = fields["C3"]["box"]
    (hm,) = heatmaps(fig)
    assert hm.z.dtype == np.uint8 and hm.z.max() <= 100
    # Cropped to the theoretical box inside the image, one cell per pixel at this size.
    assert list(hm.x) == list(range(max(0, left), min(96, right) + 1))
    assert list(hm.y) == list(range(max(0, top), min(64, bottom) + 1))


def test_erf_colours_the_smallest_pixel_set_holding_95_percent(nonsquare):
    image, t, fields = clicked(nonsquare, 48, 32, ["P2"])
    fig = receptive_field_figure(image, (48, 32), t, fields, "P2", weights_label=LABEL)
    (hm,) = heatmaps(fig)
    top, left = max(0, fields["P2"]["box"][0]), max(0, fields["P2"]["box"][1])
    erf = fields["P2"]["erf"]
    crop = erf[top:top + hm.z.shape[0], left:left + hm.z.shape[1]]
    assert crop.sum() == pytest.approx(erf.sum())  # nothing of the field lies outside its theoretical box
    coloured = hm.z <= 95
    assert crop[coloured].sum() / crop.sum() >= 0.95
    assert hm.z.flat[np.argmax(crop)] == hm.z.min()  # the strongest pixel is the darkest
    assert coloured.sum() < crop.size  # and the weak tail is left transparent


def test_weights_label_and_the_note_on_weights_are_shown(nonsquare):
    image, t, fields = clicked(nonsquare, 10, 10, ["C2"])
    fig = receptive_field_figure(image, (10, 10), t, fields, "C2", weights_label="ImageNet (torchvision)")
    title = fig.layout.title.text.replace("<br>", " ")  # the subtitle wraps between words
    assert "weights: ImageNet (torchvision)" in title
    assert "depends on the weights" in title and "random" in title and "trained" in title
    assert fig.layout.paper_bgcolor == "#ffffff" and fig.layout.height >= 300


def test_other_levels_in_fields_get_their_95_percent_box_in_the_thumbnail(nonsquare):
    image, t, fields = clicked(nonsquare, 30, 30, ["C2", "P4"])
    fig = receptive_field_figure(image, (30, 30), t, fields, "C2", weights_label=LABEL)
    (p4,) = shapes_named(fig, "P4 effective field (95% box)")
    assert p4.xref != "x" and rect(p4) == fields["P4"]["erf_box"]
    assert not shapes_named(fig, "P3 effective field (95% box)")


def test_an_all_zero_effective_field_is_said_not_drawn(nonsquare):
    image, t, fields = clicked(nonsquare, 30, 30, ["C5"])
    fields["C5"] = fields["C5"] | {"erf": np.zeros_like(fields["C5"]["erf"]), "erf_box": None,
                                   "erf_mass_in_box": 0.0}
    fig = receptive_field_figure(image, (30, 30), t, fields, "C5", weights_label=LABEL)
    assert not heatmaps(fig) and not shapes_named(fig, "C5 effective field (95% box)")
    assert "zero everywhere" in fig.layout.annotations[0].text


def test_levels_absent_from_the_design_get_no_thumbnail(tiny):
    config = tiny.replace(fpn_from="C3", input_height=64, input_width=64)
    image, t, fields = clicked(config, 5, 5, ["P3"])
    fig = receptive_field_figure(image, (5, 5), t, fields, "P3", weights_label=LABEL)
    texts = " ".join(a.text for a in fig.layout.annotations)
    assert "<b>P2</b>" not in texts and "<b>P6</b>" in texts and "<b>P7</b>" not in texts
    assert len(fig.layout.images) == 1 + len(t.levels) == 9


def test_bad_requests_get_clear_messages(nonsquare):
    image, t, fields = clicked(nonsquare, 10, 10, ["P3"])
    with pytest.raises(ValueError, match=r"level 'P7' is not in this design; allowed: C2, C3, C4, C5, P2, .*P6"):
        receptive_field_figure(image, (10, 10), t, fields, "P7", weights_label=LABEL)
    with pytest.raises(ValueError, match=r"no effective field for C2 in `fields` \(it has: P3\); .*levels=\['C2'\]"):
        receptive_field_figure(image, (10, 10), t, fields, "C2", weights_label=LABEL)
    with pytest.raises(ValueError, match=r"image is 64×64 \(W×H\); expected the resized input 96×64"):
        receptive_field_figure(photo(64, 64), (10, 10), t, fields, "P3", weights_label=LABEL)
    with pytest.raises(PointError, match=r"point \(x=96, y=10\) is outside the 96×64 input"):
        receptive_field_figure(image, (96, 10), t, fields, "P3", weights_label=LABEL)


def test_payload_stays_small_at_512(tiny):
    config = tiny.replace(input_height=512, input_width=512, p7=True)
    t = trace(config)
    rng = np.random.default_rng(0)
    erf = rng.random((512, 512)).astype(np.float32)
    fields = {"P4": {"cell": list(cell_at(t, "P4", 300, 200)), "box": t.fields["P4"].box(*cell_at(t, "P4", 300, 200)),
                     "erf": erf, "erf_box": [100, 100, 400, 400], "erf_mass_in_box": 0.95}}
    fig = receptive_field_figure(photo(512, 512), (300, 200), t, fields, "P4", weights_label=LABEL)
    out = fig.to_json()
    assert len(out) < 120_000
    assert out.count("jpeg;base64,") == 1  # one image for the main panel and all ten thumbnails
    assert max(heatmaps(fig)[0].z.shape) <= 128
