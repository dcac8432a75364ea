import itertools

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from resfpn import Config, ShapeMismatchError, build_model, trace

SIZES = [(1, 1), (4, 4), (31, 31), (225, 225), (500, 500), (513, 769), (224, 320)]
BLOCKS = [("basic", "3x3"), ("bottleneck", "3x3"), ("bottleneck", "1x1")]
NECKS = [(p6, p7) for p6 in ("p5-conv", "c5-conv", "maxpool", "none") for p7 in (False, True) if not (p7 and p6 == "none")]
GRID = [
    pytest.param(block, stride_in, skip, p6, p7, policy, id=f"{block}-{stride_in}-{skip}-{p6}-p7{int(p7)}-{policy}")
    for (block, stride_in), skip, (p6, p7), policy in itertools.product(BLOCKS, "ABCD", NECKS, ("x2", "match", "pad"))
]


def _real_forward(config: Config):
    model = build_model(config)
    with torch.inference_mode():
        return model(torch.randn(config.input_shape))


@pytest.mark.parametrize("block, stride_in, skip, p6, p7, policy", GRID)
def test_trace_equals_real_forward(tiny, block, stride_in, skip, p6, p7, policy):
    """The central property: for every size, the meta trace predicts the real forward exactly,
    and where it diagnoses a mismatch the real forward raises the same error at the same place."""
    base = tiny.replace(block=block, stride_in=stride_in, skip=skip, p6=p6, p7=p7, policy=policy)
    for h, w in SIZES:
        config = base.replace(input_height=h, input_width=w)
        t = trace(config)
        if t.ok:
            out = _real_forward(config)
            assert list(out) == list(config.levels)
            assert {k: tuple(v.shape) for k, v in out.items()} == {k: v.shape for k, v in t.levels.items()}
            for name, (channels, stride) in t.declared.items():
                assert t.levels[name].shape[1] == channels and t.levels[name].stride == stride
        else:
            assert policy == "x2", f"only the ×2 policy can mismatch here, got {t.mismatch}"
            with pytest.raises(ShapeMismatchError) as info:
                _real_forward(config)
            assert info.value.where == t.mismatch.where
            assert info.value.shapes == t.mismatch.shapes
            assert str(info.value) == str(t.mismatch)
            assert t.additions[-1].where == t.mismatch.where and not t.additions[-1].ok


def test_every_addition_goes_through_the_checked_add(tiny):
    t = trace(tiny.replace(blocks=(2, 1, 3, 1)))
    merges = [a.where for a in t.additions if a.where.startswith("FPN")]
    assert merges == ["FPN merge into P4", "FPN merge into P3", "FPN merge into P2"]
    assert len(t.additions) == 7 + 3 and all(a.ok for a in t.additions)


def test_a_4x4_input_is_diagnosed_not_broadcast(tiny):
    """A naive FPN silently broadcasts the 1×1 lateral against the 2×2 upsampled map here."""
    t = trace(tiny.replace(input_height=4, input_width=4))
    assert t.mismatch.where == "FPN merge into P4"
    assert t.mismatch.shapes == ((1, 8, 1, 1), (1, 8, 2, 2))
    assert "P2" not in t.levels and "C5" in t.levels


def test_225_mismatch_names_place_shapes_dimension_cause_and_fixes():
    t = trace(Config(input_height=225, input_width=225))
    err = t.mismatch
    assert (err.where, err.operands) == ("FPN merge into P4", ("lateral(C4)", "upsampled P5"))
    assert err.shapes == ((1, 256, 15, 15), (1, 256, 16, 16)) and err.dim_name == "H"
    assert "225 → 113 → 57 → 29 → 15 → 8" in err.cause
    assert [f.changes for f in err.fixes] == [
        {"input_height": 224, "input_width": 224},
        {"input_height": 253, "input_width": 253},
        {"policy": "match"},
        {"policy": "pad"},
    ]
    # Levels before the failure are still reported; the trace stopped cleanly there.
    assert list(t.levels) == ["C2", "C3", "C4", "C5", "P5"]
    d = t.to_dict()
    assert d["mismatch"]["where"] == "FPN merge into P4" and d["mismatch"]["dim"] == 2
    assert "224" in d["mismatch"]["hint"]


def test_every_suggested_fix_traces_cleanly():
    for config in (Config(input_height=225, input_width=301), Config(input_height=1, input_width=64),
                   Config(fpn_from="C3", input_height=100, input_width=100),
                   Config(skip="A", widths=(64, 128, 64, 32), stem_width=128)):
        err = trace(config).mismatch
        assert err is not None and err.fixes
        for fix in err.fixes:
            assert trace(config.replace(**fix.changes)).ok, (config, fix)


def test_option_a_shrinking_widths_is_diagnosed_with_a_hint(tiny):
    t = trace(tiny.replace(skip="A", widths=(16, 8, 16, 16), stem_width=8))
    err = t.mismatch
    assert err.where == "layer2.0 residual add" and err.dim_name == "C"
    assert err.shapes == ((1, 8, 28, 28), (1, 16, 28, 28))
    assert "can add channels but not remove them" in err.cause
    with pytest.raises(ShapeMismatchError, match=r"layer2\.0 residual add: F\(x\) is 8×28×28 but S\(x\) is 16×28×28"):
        _real_forward(tiny.replace(skip="A", widths=(16, 8, 16, 16), stem_width=8))


def test_option_a_pads_out_minus_in_channels_not_a_fixed_half(tiny):
    t = trace(tiny.replace(skip="A", widths=(8, 20, 24, 64), stem_width=8))
    assert t.ok and t.params.parts["layer2"] == 8 * 20 * 9 + 20 * 20 * 9 + 4 * 20  # no shortcut parameters
    assert t.levels["C3"].shape[1] == 20 and t.levels["C4"].shape[1] == 24


# Published reference figures. Parameters: torchvision's model table less the 1000-class fc layer.
# MACs: torchvision's table ("GFLOPS", which are MACs) and the ResNet paper's Table 1 for v1.
@pytest.mark.parametrize(
    "preset, params, gmacs, tolerance",
    [
        ("resnet18", 11_689_512 - 513_000, 1.81, 0.005),
        ("resnet34", 21_797_672 - 513_000, 3.66, 0.005),
        ("resnet50", 25_557_032 - 2_049_000, 4.09, 0.005),
        ("resnet50-v1", 25_557_032 - 2_049_000, 3.8, 0.05 + 0.01),  # Table 1 rounds to 0.1 G
    ],
)
def test_params_and_macs_match_published_figures(preset, params, gmacs, tolerance):
    t = trace(Config.preset(preset, input_height=224, input_width=224))
    fc_macs = 512 * 1000 if preset in ("resnet18", "resnet34") else 2048 * 1000
    assert t.params.backbone == params
    assert abs((t.macs.backbone + fc_macs) / 1e9 - gmacs) <= tolerance
    assert t.flops.total == 2 * t.macs.total


def test_macs_agree_with_torch_flop_counter_on_a_real_forward(tiny):
    config = tiny.replace(input_height=96, input_width=160, p7=True)
    model = build_model(config)
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(torch.randn(config.input_shape))
    assert counter.get_total_flops() == 2 * trace(config).macs.total


def test_receptive_fields_of_the_reference_design():
    # Exact fields (resfpn.shapes.receptive, checked against gradient supports in test_receptive.py).
    # C5 = 435 is the commonly quoted ResNet-18 figure. Nearest upsampling makes P2 and P3 depend on
    # where the cell sits: 435 inside one C5 parent, 467 straddling two (the old recurrence said 443/451).
    t = trace(Config())
    rf = {k: v.receptive_field for k, v in t.levels.items()}
    assert rf == {"C2": 43, "C3": 99, "C4": 211, "C5": 435, "P2": 467, "P3": 467, "P4": 467, "P5": 499, "P6": 563}
    assert t.levels["P2"].receptive_field_range == t.levels["P3"].receptive_field_range == (435, 467)


def test_bilinear_upsampling_widens_the_receptive_field():
    nearest = trace(Config()).levels["P4"].receptive_field
    assert trace(Config(upsample="bilinear")).levels["P4"].receptive_field == nearest + 32


def test_trace_reports_modules_in_execution_order_with_kinds():
    t = trace(Config(policy="pad", input_height=200, input_width=300))
    names = [m.name for m in t.modules]
    assert names[0] == "pad" and names[1] == "backbone.stem"
    assert names.index("backbone.layer1.0.conv1") < names.index("backbone.layer4.1.bn2") < names.index("fpn.lateral.C5")
    assert t.backbone_input_shape == (1, 3, 224, 320)
    kinds = {m.name: m.kind for m in t.modules}
    assert kinds["backbone.layer2.0.shortcut"] == "shortcut-projection"
    assert kinds["fpn.upsample.P4"] == "upsample" and kinds["backbone.stem.pool"] == "maxpool"
    conv = next(m for m in t.modules if m.name == "backbone.stem.conv")
    assert conv.in_shape == (1, 3, 224, 320) and conv.out_shape == (1, 64, 112, 160) and conv.params == 3 * 64 * 49
    assert (conv.kernel, conv.stride) == (7, 2)
    assert next(m for m in t.modules if m.name == "backbone.layer2.0.shortcut.conv").stride == 2


def test_traces_any_size_without_allocating():
    t = trace(Config(input_height=8192, input_width=8192))
    assert t.ok and t.levels["P2"].shape == (1, 256, 2048, 2048)
    assert t.activation_bytes["levels"]["P2"] == 256 * 2048 * 2048 * 4


def test_params_per_part_add_up():
    t = trace(Config.preset("retinanet"))
    assert t.params.total == t.params.backbone + t.params.fpn == sum(t.params.parts.values())
    assert t.params.parts["fpn.extra"] == (2048 * 256 * 9 + 256) + (256 * 256 * 9 + 256)  # P6 from C5, P7
