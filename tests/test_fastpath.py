"""The packed CPU serving form (resfpn.serving.fastpath) and its Winograd convolutions (resfpn.serving.winograd).

References: ``F.conv2d`` for the Winograd kernel, the folded eager model for the packed model.
"""

import copy

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, event, given, settings
from PIL import Image

from resfpn import Config, ConfigError, build_model
from resfpn.serving import fastpath, winograd
from resfpn.analysis.differences import shared_levels
from resfpn.serving.engine import Engine, Weights
from resfpn.weights.fold import fold_batchnorm
from resfpn.shapes.tracing import trace
from strategies import small_designs

pytestmark = pytest.mark.skipif(not fastpath.available(), reason="this PyTorch build has no oneDNN pointwise ops")


def _relative(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got - want).abs().max() / want.abs().max())


@pytest.mark.parametrize("shape", [(1, 256, 64, 64), (2, 256, 33, 70), (1, 256, 5, 3), (1, 256, 130, 17),
                                   (1, 256, 7, 1030)])  # wider than one block of tiles
@pytest.mark.parametrize("bias", [True, False])
def test_winograd_equals_direct_convolution(shape, bias):
    torch.manual_seed(0)
    x = torch.randn(shape).to(memory_format=torch.channels_last)
    conv = torch.nn.Conv2d(shape[1], 256, 3, padding=1, bias=bias).requires_grad_(False)
    got = winograd.winograd_conv(x, winograd.transform_weight(conv.weight), conv.bias)
    want = F.conv2d(x, conv.weight, conv.bias, padding=1)
    assert got.shape == want.shape
    assert got.is_contiguous(memory_format=torch.channels_last)
    assert _relative(got, want) < 2e-5


def test_a_wrong_transform_is_caught():
    """The comparison above can fail: a filter flipped before the transform gives another result."""
    torch.manual_seed(0)
    x = torch.randn(1, 256, 16, 16)
    conv = torch.nn.Conv2d(256, 256, 3, padding=1).requires_grad_(False)
    got = winograd.winograd_conv(x, winograd.transform_weight(conv.weight.flip(-1)), conv.bias)
    assert _relative(got, F.conv2d(x, conv.weight, conv.bias, padding=1)) > 1e-2


@pytest.mark.parametrize("conv, expected", [
    (torch.nn.Conv2d(256, 256, 3, padding=1), True),
    (torch.nn.Conv2d(256, 256, 3, padding=1, stride=2), False),
    (torch.nn.Conv2d(128, 256, 3, padding=1), False),  # too few channels to pay
    (torch.nn.Conv2d(512, 512, 3, padding=1), False),  # transformed weight over the memory cap
    (torch.nn.Conv2d(256, 256, 1), False),
    (torch.nn.Conv2d(256, 256, 3, padding=1, dilation=2), False),
    (torch.nn.Conv2d(256, 256, 3, padding=1).to(torch.bfloat16), False),
])
def test_which_convolutions_get_a_winograd_form(conv, expected):
    assert winograd.eligible(conv) is expected


# Designs covering every part the packer rewrites; sizes large enough that the FPN's 3×3 output
# convs (256 wide) take the Winograd path at P2 (≥ MIN_TILES tiles) and the direct one at P5.
DESIGNS = {
    "reference": Config(input_height=260, input_width=260, policy="match"),
    "skip A": Config(skip="A", input_height=256, input_width=256),
    "skip C": Config(skip="C", input_height=256, input_width=256),
    "skip D, v1 bottleneck": Config(block="bottleneck", skip="D", stride_in="1x1", blocks=(1, 1, 1, 1),
                                    widths=(256, 256, 512, 512), input_height=256, input_width=256),
    "c5 P6, P7, fpn_from C3": Config(p6="c5-conv", p7=True, fpn_from="C3", input_height=512, input_width=512),
    "bilinear, match, odd, batch 2": Config(upsample="bilinear", policy="match", input_height=271, input_width=263,
                                            batch=2),
    "pad policy": Config(policy="pad", input_height=250, input_width=250),
    "maxpool P6, stage widths 256": Config(p6="maxpool", widths=(64, 256, 256, 256), input_height=256,
                                           input_width=256),
}


@pytest.mark.parametrize("name", DESIGNS)
def test_packed_model_equals_the_folded_eager_model(name):
    config = DESIGNS[name]
    eager = fold_batchnorm(build_model(config, seed=1)).to(memory_format=torch.channels_last)
    packed = fastpath.pack(copy.deepcopy(eager))
    kinds = {type(m) for m in packed.modules()}
    assert fastpath.PackedBlock in kinds and fastpath.PackedConv in kinds and torch.nn.Conv2d not in kinds
    assert isinstance(packed.fpn, fastpath.PackedFPN)
    x = torch.randn(config.batch, 3, config.input_height, config.input_width, generator=torch.Generator().manual_seed(0))
    x = x.to(memory_format=torch.channels_last)
    with torch.inference_mode():
        want, got = eager(x), packed(x)
    assert any(m.winograd_weight is not None for m in packed.modules() if isinstance(m, fastpath.PackedConv))
    assert list(got) == list(want)
    for level in want:
        assert got[level].shape == want[level].shape, level
        assert _relative(got[level], want[level]) < 2e-5, level


def test_packed_bf16_model_matches_the_eager_bf16_model():
    config = Config(input_height=128, input_width=128)
    eager = fold_batchnorm(build_model(config, seed=2)).to(torch.bfloat16, memory_format=torch.channels_last)
    packed = fastpath.pack(copy.deepcopy(eager))
    assert all(m.dense_weight is None for m in packed.modules() if isinstance(m, fastpath.PackedConv))
    x = torch.randn(1, 3, 128, 128).to(torch.bfloat16, memory_format=torch.channels_last)
    with torch.inference_mode():
        want, got = eager(x), packed(x)
    for level in want:
        assert _relative(got[level].float(), want[level].float()) < 2e-2, level


def test_packed_modules_differ_when_their_weights_differ():
    """The packed weight is opaque; its digest in state_dict keeps compare from sharing levels of
    models whose stems only look alike."""
    config = Config(input_height=64, input_width=64)
    a, b, a_again = (fastpath.pack(fold_batchnorm(build_model(config, seed=s))) for s in (0, 1, 0))
    t = trace(config)
    assert shared_levels(a, a_again, t, t) == ("C2", "C3", "C4", "C5")
    assert shared_levels(a, b, t, t) == ()


def test_winograd_weights_are_made_on_the_first_large_input_and_counted_from_the_start():
    config = Config()
    model = fold_batchnorm(build_model(config))
    dense = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    packed = fastpath.pack(model)
    before = fastpath.packed_bytes(packed)
    assert before >= dense
    p2 = packed.fpn.output["P2"]
    with torch.inference_mode():
        packed(torch.randn(1, 3, 224, 224).to(memory_format=torch.channels_last))  # P2 56×56: 196 tiles
        assert p2.winograd_weight is None
        packed(torch.randn(1, 3, 256, 256).to(memory_format=torch.channels_last))  # P2 64×64: 256 tiles
    assert p2.winograd_weight is not None and packed.fpn.output["P5"].winograd_weight is None
    assert fastpath.packed_bytes(packed) == before  # counted from the start: the cache budget never grows
    assert p2.winograd_weight.numel() == 4 * p2.dense_weight.numel()


def test_the_engine_serves_packed_and_keeps_a_plain_model_for_gradients():
    engine = Engine(device="cpu")
    config = Config(input_height=96, input_width=96)
    run = engine.run(config, Image.new("RGB", (120, 90), "teal"))
    assert run.packed
    served, _, _ = engine.model(config, Weights())
    for_grad, _, _ = engine.model(config, Weights(), grad=True)
    assert isinstance(served.fpn, fastpath.PackedFPN)
    assert not any(isinstance(m, fastpath.PackedConv) for m in for_grad.modules())
    plain = Engine(device="cpu", pack=False).run(config, Image.new("RGB", (120, 90), "teal"))
    assert not plain.packed
    for level in run.levels:
        assert _relative(run.levels[level], plain.levels[level]) < 2e-5


def test_where_the_ops_misbehave_the_engine_serves_the_plain_model(monkeypatch):
    fastpath.available.cache_clear()
    try:
        monkeypatch.setattr(fastpath.PackedConv, "forward", lambda self, x, add=None: x * 2)  # a wrong result
        assert not fastpath.available()
        assert not Engine(device="cpu").pack
        monkeypatch.undo()
        fastpath.available.cache_clear()
        assert fastpath.available() and Engine(device="cpu").pack
    finally:
        fastpath.available.cache_clear()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_designs(max_size=96))
def test_any_design_without_a_mismatch_packs_to_the_same_levels(d):
    """Odd channel counts, 1-pixel maps, every option: the packed model gives the eager model's levels.

    float32 only: in bf16 the fused epilogue rounds once where eager rounds twice, which on these tiny
    random nets can move a near-cancelled value by several percent of a level's (tiny) largest value;
    bf16 is compared on a real-sized design above.
    """
    dtype = torch.float32
    try:
        config = Config(**d)
    except ConfigError:
        event("refused")
        return
    if trace(config).mismatch is not None:
        event("mismatch")
        return
    event("compared")
    eager = fold_batchnorm(build_model(config, seed=4)).to(dtype, memory_format=torch.channels_last)
    packed = fastpath.pack(copy.deepcopy(eager))
    x = torch.randn(config.input_shape, generator=torch.Generator().manual_seed(1))
    x = x.to(dtype, memory_format=torch.channels_last)
    with torch.inference_mode():
        want, got = eager(x), packed(x)
    assert list(got) == list(want)
    for level in want:
        assert got[level].shape == want[level].shape
        scale = want[level].float().abs().max().clamp_min(1e-6)
        assert float((got[level].float() - want[level].float()).abs().max() / scale) < 2e-5, level
