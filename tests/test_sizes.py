"""The size program against the meta trace: every size it answers for must be what the trace says."""

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from resfpn import Config, ConfigError, trace
from resfpn.shapes.sizes import MAX_SIZE, aspect_sizes, compact, costs, program, size_map, structure_key
from strategies import small_designs


def _config(d: dict) -> Config:
    try:
        return Config(**d)
    except ConfigError:
        assume(False)


def _assert_matches_trace(m, config: Config, h: int, w: int) -> None:
    """The map's answer at h×w (builds, or the first failing addition and both shapes) is the trace's."""
    t = trace(config.replace(input_height=h, input_width=w))
    failure = m.failure_at(config.policy, h, w)
    assert m.builds(config.policy, h, w) == t.ok, (h, w, t.mismatch)
    if t.ok:
        assert failure is None
        for level, v in m.programs[config.policy].levels.items():
            assert t.levels[level].shape[2:] == (m.axes[config.policy]["height"].sizes[v, h - 1],
                                                 m.axes[config.policy]["width"].sizes[v, w - 1]), level
    else:
        assert (failure.where, failure.operands, failure.shapes) == (
            t.mismatch.where, t.mismatch.operands, t.mismatch.shapes)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_designs(max_size=MAX_SIZE), st.integers(1, 160), st.integers(1, 160))
def test_the_map_equals_the_meta_trace_for_random_designs_and_sizes(d, small_h, small_w):
    """The central property: random designs (every option), one random size up to 2048 and one small."""
    config = _config(d)
    m = size_map(config, policies=(config.policy,))
    _assert_matches_trace(m, config, config.input_height, config.input_width)
    _assert_matches_trace(m, config, small_h, small_w)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_designs(max_size=MAX_SIZE))
def test_costs_equal_the_trace(d):
    """MACs, parameters, level bytes and the peak estimate, analytically, equal the trace's counts."""
    config = _config(d)
    t = trace(config)
    c = costs(config, [config.input_height], [config.input_width])
    assert c.builds[0] == t.ok
    assert c.params == t.params.total
    if t.ok:
        assert c.macs[0] == t.macs.total
        assert c.level_bytes[0] == t.activation_bytes["total"]
        assert c.peak_bytes[0] == t.activation_bytes["peak_estimate"]


def _residues(valid: list[int]) -> list[int]:
    return sorted({n % 32 for n in valid})


def test_reference_under_x2_builds_at_29_to_0_mod_32():
    m = size_map(Config())
    for axis in ("height", "width"):
        assert m.valid["x2"][axis] == [n for n in range(1, MAX_SIZE + 1) if n % 32 in (29, 30, 31, 0)]
        assert m.valid["match"][axis] == m.valid["pad"][axis] == list(range(1, MAX_SIZE + 1))
    assert compact(m.valid["x2"]["height"]) == "29–32 (mod 32)"


def test_retinanet_style_c3_to_c5_under_x2_builds_at_25_to_0_mod_32():
    m = size_map(Config.preset("retinanet", policy="x2"))
    assert _residues(m.valid["x2"]["width"]) == [0, 25, 26, 27, 28, 29, 30, 31]
    assert compact(m.valid["x2"]["height"]) == "25–32 (mod 32)"


DESIGNS = {
    "reference": Config(),
    "resnet50": Config.preset("resnet50", policy="x2"),
    "retinanet-c3-p7": Config.preset("retinanet", policy="x2"),
    "resnet-d": Config(skip="D"),
    "option-a": Config(skip="A"),
    "bottleneck-v1": Config(block="bottleneck", stride_in="1x1", widths=(64, 128, 256, 512), policy="x2"),
    "odd-stem": Config(stem_width=37, widths=(40, 80, 160, 320)),
    "p6-maxpool-bilinear": Config(p6="maxpool", upsample="bilinear"),
    "option-a-shrinking": Config(skip="A", stem_width=128, widths=(64, 128, 256, 512)),
}
# Edges of the mod-32 pattern, the smallest sizes and a few large ones: each checked against the trace.
CHECKED = [1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 24, 25, 28, 29, 31, 32, 33, 63, 64, 65, 100, 224, 225, 511, 800, 1333, 2047, 2048]


@pytest.mark.parametrize("policy", ["x2", "match", "pad"])
@pytest.mark.parametrize("name", list(DESIGNS))
def test_named_designs_equal_meta_traces(name, policy):
    config = DESIGNS[name].replace(policy=policy)
    m = size_map(config, policies=(policy,))
    heavy = config.block == "bottleneck" and config.blocks != (1, 1, 1, 1)  # ResNet-50 traces take ~0.3 s here
    for n in CHECKED if not heavy else [1, 4, 24, 25, 28, 29, 31, 32, 33, 225, 1333]:
        _assert_matches_trace(m, config, n, 224)
        _assert_matches_trace(m, config, 800, n)


def test_a_channel_mismatch_builds_at_no_size_and_names_the_residual_add():
    m = size_map(DESIGNS["option-a-shrinking"])
    assert all(not m.valid[p][a] for p in m.valid for a in m.valid[p])
    assert m.first_failure("match", "height", 224).where == "layer1.0 residual add"
    assert compact([]) == "none"


def test_failure_names_the_addition_and_both_shapes():
    f = size_map(Config()).first_failure("x2", "height", 225)
    assert f.where == "FPN merge into P4"
    assert f.shapes == ((1, 256, 15, 14), (1, 256, 16, 14))  # width at the design's 224


def test_the_program_is_read_from_the_model_not_assumed():
    """The stem's ops carry their own kernel, stride and padding; ResNet-D's pool its ceil mode."""
    prog = program(structure_key(Config(skip="D")))
    stem_conv, stem_pool = prog.ops[0], prog.ops[1]
    assert stem_conv.axes[0] == (7, 2, 3, 1, False) and stem_pool.axes[0] == (3, 2, 1, 1, False)
    assert any(op.kind == "window" and op.axes[0][4] for op in prog.ops)  # AvgPool2d(2, 2, ceil_mode=True)
    pad = program(structure_key(Config(policy="pad")))
    assert pad.ops[0].kind == "pad" and pad.ops[0].axes[0] == (32,)
    match = program(structure_key(Config(policy="match")))
    assert sum(op.kind == "match" for op in match.ops) == 3


def test_one_recording_serves_every_width_of_a_structure():
    a, b = Config(widths=(16, 32, 64, 128), stem_width=16), Config(widths=(24, 48, 96, 192), stem_width=24)
    assert structure_key(a) == structure_key(b)
    assert structure_key(a) != structure_key(Config(widths=(32, 32, 64, 128), stem_width=16))  # identity shortcut


def test_compact_writes_runs_when_there_is_no_period():
    assert compact([3, 4, 5, 9], max_size=16) == "3–5, 9"
    assert compact(list(range(1, 2049))) == "every size"


def test_nearest_sizes_that_keep_a_photos_aspect_ratio():
    m = size_map(Config())
    sizes = aspect_sizes(m, "x2", 750, 1000)  # a 1000×750 (width × height) photo
    assert sizes and all(m.builds("x2", s["height"], s["width"]) for s in sizes)
    assert all(abs(s["height"] / s["width"] / 0.75 - 1) <= 0.01 for s in sizes)
    scales = [abs(np.log(s["scale"])) for s in sizes]
    assert scales == sorted(scales)
    assert {(s["height"], s["width"]) for s in sizes} >= {(736, 989), (766, 1021)}


def test_sizes_beyond_the_map_are_answered_by_the_same_program():
    m = size_map(Config())
    for h, w in ((4096, 4096), (4097, 224), (8192, 8161)):
        t = trace(Config(input_height=h, input_width=w))
        f = m.failure_at("x2", h, w)
        assert (f is None) == t.ok
        if f is not None:
            assert (f.where, f.shapes) == (t.mismatch.where, t.mismatch.shapes)
