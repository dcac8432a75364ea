"""Every module path the trace's accessors (and so the figures) use exists in the built model."""

import itertools

import pytest

from resfpn import Config, build_model, trace
from resfpn.figures import architecture_figure, block_figure

TINY = dict(widths=(8, 16, 16, 16), blocks=(1, 1, 1, 1), stem_width=8, fpn_width=8, input_height=64, input_width=64)


@pytest.mark.parametrize("block,skip,p6", itertools.product(["basic", "bottleneck"], "ABCD", ["p5-conv", "none"]))
def test_every_mapped_path_is_a_module_of_the_model(block, skip, p6):
    cfg = Config(**TINY, block=block, skip=skip, p6=p6)
    modules = dict(build_model(cfg, device="meta").named_modules())
    m = trace(cfg).map
    used = [m.stem, *(s.module for s in m.levels.values()), *m.part]
    used += [p for paths in (*m.stages.values(), *m.residual.values(), *m.shortcut_steps.values(), *m.sources.values())
             for p in paths]
    used += list(m.shortcut.values())
    missing = sorted(p for p in used if p not in modules)
    assert not missing, f"paths not in the model: {missing}"
    assert m.residual and all(m.residual.values())  # every block has its F(x) convs mapped


def test_an_unknown_path_is_refused_not_shown_as_not_reached():
    t = trace(Config(**TINY))
    with pytest.raises(KeyError, match="is not a module of this model"):
        t.module("backbone.layer9")


@pytest.mark.parametrize("skip", "AD")
def test_figures_find_the_shortcut_and_residual_modules(skip):
    t = trace(Config(**TINY, skip=skip))
    block = t.transition_block("C3")
    assert t.shortcut(block).kind == {"A": "shortcut-zero-pad", "D": "shortcut-avg-down"}[skip]
    assert [m.kind for m in t.residual_convs(block)] == ["conv", "conv"]
    assert t.additions_in(block)[0].where == t.map.site[block] + " residual add"
    architecture_figure(t), block_figure(t)


def test_blocks_come_in_execution_order_with_their_sites_and_modules():
    t = trace(Config(**{**TINY, "blocks": (1, 2, 1, 1)}, skip="B"))
    assert list(t.blocks.values()) == ["layer1.0", "layer2.0", "layer2.1", "layer3.0", "layer4.0"]
    block = t.transition_block("C3")
    inside = [m.name for m in t.inside(block)]
    assert block not in inside and t.shortcut(block).name in inside
    assert {m.name for m in (*t.residual_convs(block), *t.shortcut_steps(block))} <= set(inside)
    assert sum(m.macs for m in t.inside(block)) == sum(m.macs for m in (*t.residual_convs(block), *t.shortcut_steps(block)))
