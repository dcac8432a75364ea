"""Exact receptive fields (resfpn.shapes.receptive) and effective fields (resfpn.analysis.effective)."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from resfpn import Config, ShapeMismatchError, build_model, trace
from resfpn.analysis.effective import PointError, effective_fields, mass_box, receptive_field_report
from resfpn.serving.limits import LimitError, Limits, backward_memory_estimate
from resfpn.shapes.receptive import _resize_parents, _Resize

TINY = Config(widths=(8, 8, 16, 16), blocks=(1, 1, 1, 1), stem_width=8, fpn_width=8)


# -- published anchors and the claim -------------------------------------------------------

@pytest.mark.parametrize("preset, expected", [
    ("resnet50-v1", {"C2": 35, "C3": 99, "C4": 291, "C5": 483}),  # Araujo et al., Distill 2019
    ("resnet18", {"C2": 43, "C3": 99, "C4": 211, "C5": 435}),
])
def test_backbone_fields_match_published_figures(preset, expected):
    t = trace(Config.preset(preset))
    for level, rf in expected.items():
        assert t.levels[level].receptive_field_range == (rf, rf)


def test_reference_p2_p3_are_435_or_467_by_position_never_443_or_451():
    t = trace(Config())
    for level in ("P2", "P3"):
        extents = set(t.fields[level].h.extent.tolist()) | set(t.fields[level].w.extent.tolist())
        assert extents == {435, 467}, level
        assert t.levels[level].to_dict()["receptive_field_range"] == [435, 467]
    assert {k: t.levels[k].receptive_field_range for k in ("C5", "P4", "P5", "P6")} == {
        "C5": (435, 435), "P4": (467, 467), "P5": (499, 499), "P6": (563, 563)}
    modules = {m.name: m for m in t.modules}
    assert modules["fpn.output.P2"].to_dict()["receptive_field_range"] == [435, 467]
    assert modules["backbone.stem.conv"].receptive_field_range == (7, 7)


def test_cli_table_shows_ranges(capsys):
    from resfpn.cli.main import main

    assert main([]) == 0
    out = capsys.readouterr().out
    assert "435–467 px" in out and "C5     512×7×7                32         435 px" in out


# -- upsampling parents: the cheap probe equals the one-hot identity run through F.interpolate ------

@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
@pytest.mark.parametrize("n_in, n_out, factor", [(7, 14, 2.0), (1, 2, 2.0), (8, 15, None), (15, 29, None),
                                                  (4, 7, None), (57, 113, None), (13, 13, None), (1, 1, None)])
def test_resize_parents_equal_a_one_hot_interpolation(mode, n_in, n_out, factor):
    eye = torch.eye(n_in).reshape(1, n_in, n_in, 1)
    y = (F.interpolate(eye, scale_factor=factor, mode=mode) if factor
         else F.interpolate(eye, size=(n_out, 1), mode=mode))[0, :, :, 0]
    nz = (y != 0).numpy()
    first, last = nz.argmax(0), n_in - 1 - nz[::-1].argmax(0)
    plo, phi = _resize_parents(_Resize(mode, factor), n_in, n_out, 0, n_out)
    # Inside the image the parents are PyTorch's; at a clamped border the unclipped formula goes one beyond.
    assert np.array_equal(np.clip(plo, 0, n_in - 1), first) and np.array_equal(np.clip(phi, 0, n_in - 1), last)
    assert (plo >= first - 1).all() and (phi <= last + 1).all()


# -- the measurement: which input rows each cell depends on, on the real model --------------------

def _positive(config: Config) -> nn.Module:
    """The real model with every weight positive (convs average their window) and BN the identity."""
    model = build_model(config)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.fill_(1.0 / m.weight[0].numel())
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.fill_(1.0), m.bias.zero_(), m.running_mean.zero_(), m.running_var.fill_(1.0)
    return model


def _dependencies(config: Config, axis: int) -> dict[str, np.ndarray]:
    """Per level, a boolean ``(input index, cell index)`` along ``axis``: does the cell depend on it.

    All weights are positive, biases zero and BN the identity, so every layer is a nonnegative map and
    a cell's response to one lit input row is positive exactly where its input gradient is nonzero:
    these are the columns of the Jacobian's support. (Max-pool is the one exception: its gradient
    goes to one argmax, its forward response to any lit element of the window — the theoretical
    support, which is what the field describes.)
    """
    model = _positive(config)
    n = config.input_height if axis == 0 else config.input_width
    found: dict[str, list[torch.Tensor]] = {}
    for start in range(0, n, 96):
        idx = torch.arange(start, min(n, start + 96))
        x = torch.zeros(len(idx), *config.input_shape[1:])
        if axis == 0:
            x[torch.arange(len(idx)), :, idx, :] = 1.0
        else:
            x[torch.arange(len(idx)), :, :, idx] = 1.0
        with torch.no_grad():
            out = model(x)
        for level, a in out.items():
            found.setdefault(level, []).append(a.sum(dim=(1, 3 if axis == 0 else 2)) > 0)
    return {k: torch.cat(v).numpy() for k, v in found.items()}


def _tape(config: Config):
    """The field tape of one trace (the recorder builds it; tap it as the trace solves it)."""
    from resfpn.shapes import tracing

    seen = []
    original = tracing._Recorder.fill_receptive_fields

    def keep(self):
        seen.append(self.tape)
        return original(self)

    tracing._Recorder.fill_receptive_fields = keep
    try:
        trace(config)
    finally:
        tracing._Recorder.fill_receptive_fields = original
    return seen[0]


LONG = 448
CASES = [  # (overrides, long side, axis, periodic)
    ({}, LONG, 0, True),
    (dict(upsample="bilinear"), LONG, 0, True),
    (dict(p7=True), 576, 0, True),
    (dict(block="bottleneck"), LONG, 0, True),
    (dict(block="bottleneck", stride_in="1x1", skip="A"), LONG, 0, True),
    (dict(block="bottleneck", skip="D", upsample="bilinear"), LONG, 0, True),
    (dict(skip="A"), LONG, 0, True),
    (dict(skip="C", p6="maxpool"), LONG, 0, True),
    (dict(skip="D", p6="c5-conv", p7=True, fpn_from="C3"), 576, 0, True),
    (dict(p6="none", fpn_from="C3", upsample="bilinear"), LONG, 0, True),
    (dict(policy="match"), LONG, 0, True),  # a multiple of 32: the same as x2
    (dict(policy="match"), 333, 0, False),
    (dict(policy="match", upsample="bilinear"), 301, 1, False),
    (dict(policy="pad"), 421, 0, True),
    (dict(policy="pad", upsample="bilinear", skip="D"), 421, 1, True),
]


@pytest.mark.parametrize("overrides, long, axis, periodic", CASES, ids=[
    f"{'-'.join(f'{k}={v}' for k, v in o.items()) or 'default'}-{n}-{'HW'[a]}" for o, n, a, _ in CASES])
def test_fields_equal_the_measured_support(overrides, long, axis, periodic):
    """Interior cells (unclipped field inside the input): the field equals the support exactly; every
    cell's support lies within its clipped field; over all phases, min/max of the interior extents is
    the reported range."""
    size = dict(input_height=long, input_width=32) if axis == 0 else dict(input_height=32, input_width=long)
    config = TINY.replace(**overrides, **size)
    t = trace(config)
    assert t.ok
    tape = _tape(config)
    assert tape.gaps == 0  # every union is contiguous: a field is an interval, not a set with holes
    deps = _dependencies(config, axis)
    n = long
    checked = 0
    for level, dep in deps.items():
        f = t.fields[level].h if axis == 0 else t.fields[level].w
        assert dep.shape[1] == len(f.lo)
        # Cells over the 'pad' policy's padding depend on no input pixel; every other cell does.
        reached = dep.any(0)
        assert np.array_equal(reached, f.lo <= n - 1), level
        lo = dep.argmax(0)
        hi = n - 1 - dep[::-1].argmax(0)
        assert (lo >= np.maximum(f.lo, 0))[reached].all() and (hi <= np.minimum(f.hi, n - 1))[reached].all(), level
        interior = (f.lo >= 0) & (f.hi <= n - 1)
        assert np.array_equal(lo[interior], f.lo[interior]), level
        assert np.array_equal(hi[interior], f.hi[interior]), level
        if interior.any():
            checked += 1
            if periodic:
                extent = hi[interior] - lo[interior] + 1
                assert (int(extent.min()), int(extent.max())) == f.range, level
    assert checked == len(deps) or not periodic, "the input is too small to check every level"


def test_autograd_gradient_support_of_p2_cells_at_every_phase():
    """A direct input-gradient check (max-pool swapped for an average pool of the same geometry, so
    the gradient reaches the whole window): P2 cells at eight consecutive rows, one backward."""
    config = TINY.replace(input_height=LONG, input_width=32)
    model = _positive(config).double()
    model.backbone.stem.pool = nn.AvgPool2d(3, 2, 1)
    f = trace(config).fields["P2"].h
    rows = [r for r in range(len(f.lo)) if f.lo[r] >= 0 and f.hi[r] < LONG][:8]
    assert len(rows) == 8
    x = torch.rand(len(rows), 3, LONG, 32, dtype=torch.float64) + 0.5
    x.requires_grad_(True)
    out = model(x)["P2"]
    sum(out[i, :, r, 4].sum() for i, r in enumerate(rows)).backward()
    support = x.grad.abs().sum(dim=(1, 3)) > 0  # (cell, input row)
    for i, r in enumerate(rows):
        nz = support[i].nonzero()[:, 0]
        assert (int(nz.min()), int(nz.max())) == (f.lo[r], f.hi[r])
    assert len({int(f.hi[r] - f.lo[r] + 1) for r in rows}) == 2  # both phases of the field occur


def test_traces_at_8192_stay_fast_enough_to_solve():
    t = trace(Config(input_height=8192, input_width=8192))
    assert t.levels["P2"].receptive_field_range == (435, 467) and len(t.fields["P2"].h.lo) == 2048


# -- effective receptive field ----------------------------------------------------------------------

def test_effective_field_lies_within_the_theoretical_box():
    config = TINY.replace(input_height=96, input_width=128, p7=True)
    model = build_model(config)
    image = torch.randn(1, 3, 96, 128)
    result = effective_fields(model, image, (70, 40))
    assert list(result) == list(config.levels)
    for level, r in result.items():
        stride = trace(config).levels[level].stride
        assert r["cell"] == [min(40 // stride, trace(config).levels[level].shape[2] - 1),
                             min(70 // stride, trace(config).levels[level].shape[3] - 1)]
        top, left, bottom, right = r["box"]
        erf = r["erf"]
        assert erf.shape == (96, 128) and erf.dtype == np.float32 and erf.sum() > 0
        outside = erf.copy()
        outside[max(top, 0):bottom, max(left, 0):right] = 0
        assert outside.max() == 0, level  # the gradient never leaves the theoretical field
        t0, l0, b0, r0 = r["erf_box"]
        assert 0 <= t0 < b0 <= 96 and 0 <= l0 < r0 <= 128
        assert r["erf_mass_in_box"] >= 0.95 - 1e-9
        assert abs(erf[t0:b0, l0:r0].sum() / erf.sum() - r["erf_mass_in_box"]) < 1e-5
    assert not any(p.requires_grad is False for p in model.parameters())  # left as it was


def test_report_is_json_with_the_api_fields():
    config = TINY.replace(input_height=64, input_width=64)
    report = receptive_field_report(build_model(config), torch.randn(1, 3, 64, 64), 10, 20, levels=["C3", "P2"])
    assert report["point"] == [10, 20] and list(report["levels"]) == ["C3", "P2"]
    assert set(report["levels"]["P2"]) >= {"cell", "box", "erf_box", "erf_mass_in_box"}
    assert report["levels"]["C3"]["cell"] == [2, 1]
    json.dumps(report)


@pytest.mark.parametrize("point, message", [
    ((64, 0), r"point \(x=64, y=0\) is outside the 64×48 input \(allowed: 0 ≤ x < 64, 0 ≤ y < 48"),
    ((-1, 5), r"outside"),
    ((1.5, 2), r"expected whole pixel coordinates"),
    (("a", 2), r"expected whole pixel coordinates"),
])
def test_points_outside_the_image_are_refused(point, message):
    config = TINY.replace(input_height=48, input_width=64)
    with pytest.raises(PointError, match=message):
        effective_fields(build_model(config), torch.randn(1, 3, 48, 64), point)


def test_a_design_with_a_mismatch_gives_the_diagnosis():
    config = TINY.replace(input_height=225, input_width=225)
    with pytest.raises(ShapeMismatchError, match=r"FPN merge into P4.*\n.*225"):
        effective_fields(build_model(config), torch.randn(1, 3, 225, 225), (3, 3))


def test_mass_box_is_the_least_area_box_on_small_maps():
    rng = np.random.default_rng(0)
    for _ in range(20):
        h, w = rng.integers(1, 12, 2)
        m = rng.random((h, w)) ** 6
        box, mass = mass_box(m)
        share = m / m.sum()
        best = min((b - t) * (r - l) for t in range(h) for b in range(t + 1, h + 1) for l in range(w)
                   for r in range(l + 1, w + 1) if share[t:b, l:r].sum() >= 0.95 - 1e-12)
        assert (box[2] - box[0]) * (box[3] - box[1]) == best and mass >= 0.95 - 1e-12
    assert mass_box(np.zeros((5, 5))) == (None, 0.0)


def test_backward_memory_estimate_bounds_what_autograd_saves():
    config = TINY.replace(input_height=128, input_width=160)
    model = build_model(config)
    saved: dict[int, int] = {}

    def pack(t):
        saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    x = torch.randn(config.input_shape, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x)
    measured = sum(saved.values())
    estimate = backward_memory_estimate(trace(config))
    assert measured < estimate < 4 * measured + 4 * sum(p.numel() for p in model.parameters()) + 2**20
    with pytest.raises(LimitError, match=r"effective receptive field at 128×160 would need about"):
        Limits(memory_budget=estimate - 1).check_backward(trace(config))
    assert Limits(memory_budget=estimate).check_backward(trace(config)) == estimate


def test_level_bars_label_ranges():
    from resfpn.figures import level_bars_figure

    fig = level_bars_figure(trace(Config()))
    rf_bars = next(tr for tr in fig.data if list(tr.x)[:1] == ["C2"] and "435" in list(tr.text))
    labels = dict(zip(rf_bars.x, rf_bars.text))
    assert labels["P2"] == labels["P3"] == "435–467" and labels["C5"] == "435" and labels["P4"] == "467"


def test_tape_on_a_bare_conv_stack_and_its_gap_count():
    from resfpn.shapes.receptive import FieldTape

    tape = FieldTape()
    x = torch.empty(1, 1, 20, 10, device="meta")
    tape.set_input(x)
    conv = nn.Conv2d(1, 1, 3, stride=2, padding=1, dilation=(3, 1), device="meta")
    y = conv(x)
    tape.module(conv, (x,), y)
    f = tape.solve()[id(y)]
    # height: dilation 3 reads rows 2o-1-... : o·2 - 1 + 3j for j < 3, so a 7-row span with holes
    assert f.box(0, 0) == [-1, -1, 6, 2] and f.h.range == (7, 7) and f.w.range == (3, 3)
    assert tape.gaps == 2 * (y.shape[2])  # two holes per output row, none along the width
