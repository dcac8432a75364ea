"""The width/depth sweep: every variant's numbers are the trace's, and the front is a real front."""

import pytest
from hypothesis import HealthCheck, assume, given, settings

from resfpn import Config, ConfigError, trace
from resfpn.shapes.sizes import program, structure_key
from resfpn.shapes.sweep import field_extent, sweep
from strategies import small_designs


def test_about_a_hundred_variants_with_the_presets_and_the_current_design_labelled():
    s = sweep(Config())
    assert 90 <= len(s.designs) <= 140  # without a server's caps: every multiplier of both block types
    current = [d for d in s.designs if d.current]
    assert len(current) == 1 and current[0].config == Config()
    presets = {d.preset for d in s.designs if d.preset}
    assert {"reference / resnet18", "resnet34", "resnet50-v1"} <= presets
    assert any("resnet50" in p for p in presets)


def test_sampled_variants_equal_their_traces():
    s = sweep(Config(input_height=256, input_width=256))
    for d in s.designs[::9]:
        t = trace(d.config)
        assert (d.params, d.macs, d.builds) == (t.params.total, t.macs.total, t.ok), d.label
        assert d.receptive_field == t.levels["P5"].receptive_field, d.label


def test_the_pareto_front_is_exactly_the_undominated_designs():
    designs = sweep(Config()).designs
    for d in designs:
        beaten = any(o.params <= d.params and o.macs <= d.macs and o.receptive_field >= d.receptive_field
                     and (o.params, o.macs, o.receptive_field) != (d.params, d.macs, d.receptive_field)
                     for o in designs)
        assert d.pareto == (not beaten), d.label
    assert sum(d.pareto for d in designs) >= 2


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_designs(max_size=300))
def test_the_affine_field_equals_the_traces_exact_field(d):
    try:
        config = Config(**d)
    except ConfigError:
        assume(False)
    t = trace(config)
    prog = program(structure_key(config))
    for level in ("C2", "C3", "C4", "C5", "P5", "P6", "P7"):
        if level in t.levels:
            got = field_extent(prog, level)
            assert got == t.levels[level].receptive_field, level


def test_unknown_level_is_refused():
    with pytest.raises(ValueError, match="level='P9': not a level of this design"):
        sweep(Config(), level="P9")
