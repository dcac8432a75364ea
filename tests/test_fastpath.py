"""The packed CPU serving form (resfpn.serving.fastpath) and its Winograd convolutions (resfpn.serving.winograd).

References: ``F.conv2d`` for the Winograd kernel, the folded eager model for the packed model.
Nothing here is skipped where oneDNN's private ops are missing or wrong: the packed models are then
tested with the kernels that do run (``RUNNABLE``), and the engine's fallback is tested by forcing it.
"""

import copy

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from resfpn import Config, ConfigError, ShapeMismatchError, build_model
from resfpn.serving import fastpath, winograd
from resfpn.analysis.differences import shared_levels
from resfpn.serving.engine import Engine, Weights
from resfpn.weights.fold import fold_batchnorm
from resfpn.shapes.tracing import trace
from strategies import small_designs

# The kernels this machine can run: all three where oneDNN's packed ops pass their self-check.
RUNNABLE = fastpath.KERNELS if fastpath.available() else ("plain", "winograd")


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


# Each kernel forced (the first that applies runs, untimed), and the measured choice among all.
FORCED = {"plain": (("plain",), False), "onednn": (("onednn",), False),
          "winograd, else onednn": (("winograd", "onednn"), False), "measured": (fastpath.KERNELS, True)}


@pytest.mark.parametrize("kernels", FORCED)
@pytest.mark.parametrize("name", DESIGNS)
def test_packed_model_equals_the_folded_eager_model(name, kernels):
    config = DESIGNS[name]
    kernels, measure = FORCED[kernels]
    kernels = tuple(k for k in kernels if k in RUNNABLE) or ("plain",)
    eager = fold_batchnorm(build_model(config, seed=1)).to(memory_format=torch.channels_last)
    packed = fastpath.pack(copy.deepcopy(eager), kernels=kernels, measure=measure)
    kinds = {type(m) for m in packed.modules()}
    assert fastpath.PackedBlock in kinds and fastpath.PackedConv in kinds and torch.nn.Conv2d not in kinds
    assert isinstance(packed.fpn, fastpath.PackedFPN)
    x = torch.randn(config.batch, 3, config.input_height, config.input_width, generator=torch.Generator().manual_seed(0))
    x = x.to(memory_format=torch.channels_last)
    with torch.inference_mode():
        want, got = eager(x), packed(x)
    ran = fastpath.kernel_counts(packed)
    if "winograd" in kernels and not measure:  # the wide FPN output conv at P2 meets enough tiles
        assert any(m.winograd_weight is not None for m in packed.modules() if isinstance(m, fastpath.PackedConv))
    if not measure:
        assert set(ran) == set(kernels), ran  # each forced kernel really ran
    assert sum(ran.values()) == sum(isinstance(m, fastpath.PackedConv) for m in packed.modules())
    assert list(got) == list(want)
    for level in want:
        assert got[level].shape == want[level].shape, level
        assert _relative(got[level], want[level]) < 2e-5, level


@pytest.mark.parametrize("kernels", [("plain",), ("onednn",), fastpath.KERNELS])
def test_packed_bf16_model_matches_the_eager_bf16_model(kernels):
    if "onednn" in kernels and not fastpath.available(torch.bfloat16):
        # Where oneDNN's bf16 kernels fail here the engine serves bf16 plain (test_engine_serves_the_plain_...).
        pytest.skip(fastpath.self_check(torch.bfloat16))
    config = Config(input_height=128, input_width=128)
    eager = fold_batchnorm(build_model(config, seed=2)).to(torch.bfloat16, memory_format=torch.channels_last)
    packed = fastpath.pack(copy.deepcopy(eager), kernels=kernels)
    assert all("winograd" not in m.kernels for m in packed.modules() if isinstance(m, fastpath.PackedConv))
    x = torch.randn(1, 3, 128, 128).to(torch.bfloat16, memory_format=torch.channels_last)
    with torch.inference_mode():
        want, got = eager(x), packed(x)
    for level in want:
        assert _relative(got[level].float(), want[level].float()) < 2e-2, level


def test_packed_modules_differ_when_their_weights_differ():
    """The packed weight is opaque; its digest in state_dict keeps compare from sharing levels of
    models whose stems only look alike."""
    config = Config(input_height=64, input_width=64)
    a, b, a_again = (fastpath.pack(fold_batchnorm(build_model(config, seed=s)), kernels=RUNNABLE) for s in (0, 1, 0))
    t = trace(config)
    assert shared_levels(a, a_again, t, t) == ("C2", "C3", "C4", "C5")
    assert shared_levels(a, b, t, t) == ()


def test_winograd_weights_are_made_on_the_first_large_input_and_counted_from_the_start(monkeypatch):
    monkeypatch.setattr(fastpath, "_measured", {})  # choices made by earlier tests would skip the timing
    config = Config()
    model = fold_batchnorm(build_model(config))
    dense = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    packed = fastpath.pack(model, kernels=RUNNABLE)
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
    if not engine.pack:
        pytest.skip(f"the packed kernels fail here ({engine.unpacked_reason}); the fallback is tested below")
    config = Config(input_height=96, input_width=96)
    run = engine.run(config, Image.new("RGB", (120, 90), "teal"))
    assert run.packed and run.serving.startswith("packed model")
    convs = sum(isinstance(m, fastpath.PackedConv) for m in engine.model(config, Weights())[0].modules())
    assert sum(run.kernels.values()) == convs and set(run.kernels) <= set(fastpath.KERNELS)
    served, _, _ = engine.model(config, Weights())
    for_grad, _, _ = engine.model(config, Weights(), grad=True)
    assert isinstance(served.fpn, fastpath.PackedFPN)
    assert not any(isinstance(m, fastpath.PackedConv) for m in for_grad.modules())
    plain = Engine(device="cpu", pack=False).run(config, Image.new("RGB", (120, 90), "teal"))
    assert not plain.packed
    for level in run.levels:
        assert _relative(run.levels[level], plain.levels[level]) < 2e-5


@pytest.fixture
def fresh_self_check():
    fastpath.self_check.cache_clear()
    yield
    fastpath.self_check.cache_clear()


def _wrong(self, kernel, x, add=None):
    return F.conv2d(x, self.dense_weight, None, self.stride, self.padding) * 2  # a wrong result


def _raising(self, kernel, x, add=None):
    raise KeyError("an unexpected failure inside a private op")


@pytest.mark.parametrize("break_it, why", [
    (lambda mp: mp.setattr(fastpath.PackedConv, "run", _wrong), r"give wrong results here \(plain 1×1 stride 1\)"),
    (lambda mp: mp.setattr(fastpath.PackedConv, "run", _raising), r"fail here \(KeyError: 'an unexpected"),
    (lambda mp: mp.setattr(fastpath, "PRIVATE_OPS", ("_convolution_pointwise", "_no_such_op")),
     r"lacks the private op\(s\) mkldnn._no_such_op"),
    (lambda mp: mp.setattr(torch.backends.mkldnn, "is_available", lambda: False), "has no oneDNN"),
])
def test_where_the_ops_are_missing_or_wrong_the_engine_serves_the_plain_model_and_says_why(
        monkeypatch, fresh_self_check, break_it, why):
    break_it(monkeypatch)
    assert not fastpath.available()
    engine = Engine(device="cpu")
    assert not engine.pack
    run = engine.run(Config(input_height=64, input_width=64), Image.new("RGB", (64, 64), "teal"))
    assert not run.packed and run.kernels == {}
    assert run.serving.startswith("plain folded model: ")
    import re
    assert re.search(why, run.serving), run.serving
    monkeypatch.undo()
    fastpath.self_check.cache_clear()
    assert fastpath.available() == (RUNNABLE == fastpath.KERNELS)


def test_the_self_check_covers_every_form_the_kernels_use(monkeypatch, fresh_self_check):
    """Each form is checked: breaking only stride 2, only the add, or only Winograd is caught."""
    real_run = fastpath.PackedConv.run
    if not fastpath.available():
        pytest.skip(fastpath.self_check())
    for broken, name in [(lambda self, k, x, add: self.stride == [2, 2], "1×1 stride 2"),
                         (lambda self, k, x, add: add is not None, "plain 1×1 stride 1 + add"),
                         (lambda self, k, x, add: k == "onednn" and self.relu, "onednn 1×1 stride 1 + ReLU")]:
        def run(self, kernel, x, add=None, broken=broken):
            y = real_run(self, kernel, x, add)
            return y + 1 if broken(self, kernel, x, add) else y
        monkeypatch.setattr(fastpath.PackedConv, "run", run)
        fastpath.self_check.cache_clear()
        assert name in (fastpath.self_check() or ""), (name, fastpath.self_check())
    monkeypatch.undo()
    monkeypatch.setattr(winograd, "winograd_conv", lambda x, u, b: torch.zeros(1))
    fastpath.self_check.cache_clear()
    assert "Winograd" in (fastpath.self_check() or "")


def test_a_packed_block_refuses_a_module_it_would_drop():
    block = build_model(Config(widths=(8, 8, 16, 16), blocks=(1, 1, 1, 1), stem_width=8, fpn_width=8)).eval()
    first = block.backbone.layer1[0]  # BatchNorm not folded: packing would drop it
    with pytest.raises(ValueError, match=r"layer1.0.bn1 is a BatchNorm2d, which the packed block would drop: fold"):
        fastpath.PackedBlock(first)


def test_a_fused_add_never_broadcasts():
    conv = torch.nn.Conv2d(256, 256, 3, padding=1).requires_grad_(False)
    x = torch.randn(1, 256, 64, 64).to(memory_format=torch.channels_last)
    for kernels in [("winograd",), ("plain",), ("onednn",)]:
        if not set(kernels) <= set(RUNNABLE):
            continue
        packed = fastpath.PackedConv(conv, relu=True, kernels=kernels, where="layer9.0 residual add")
        with pytest.raises(ShapeMismatchError, match=r"layer9.0 residual add"):
            packed(x, add=torch.randn(1, 256, 1, 1))  # would broadcast
        with pytest.raises(ShapeMismatchError):
            packed(x, add=torch.randn(1, 256, 64, 1))
        y = packed(x, add=torch.zeros(1, 256, 64, 64))
        assert packed.last == kernels[0] and y.shape == (1, 256, 64, 64)


def test_a_packed_model_refuses_to_be_moved_or_cast():
    model = fastpath.pack(fold_batchnorm(build_model(Config(widths=(8, 8, 16, 16), blocks=(1, 1, 1, 1),
                                                            stem_width=8, fpn_width=8))), kernels=RUNNABLE)
    for move in (lambda m: m.to(torch.bfloat16), lambda m: m.to("cpu"), lambda m: m.float(),
                 lambda m: m.to(memory_format=torch.channels_last)):
        with pytest.raises(TypeError, match=r"a packed model cannot be moved or cast .*build the model again"):
            move(model)
    with torch.inference_mode():  # still whole after the refusals
        assert model(torch.randn(1, 3, 64, 64))["P2"].shape == (1, 8, 16, 16)


def test_choices_are_measured_once_per_shape_and_shared_by_equal_convs(monkeypatch):
    timed = []
    real = fastpath.PackedConv._choose
    monkeypatch.setattr(fastpath.PackedConv, "_choose", lambda self, *a: timed.append(self) or real(self, *a))
    monkeypatch.setattr(fastpath, "_measured", {})
    config = Config(widths=(16, 16, 16, 16), blocks=(2, 2, 2, 2), stem_width=16, fpn_width=16)
    model = fastpath.pack(fold_batchnorm(build_model(config)), kernels=RUNNABLE)
    x = torch.randn(1, 3, 64, 64).to(memory_format=torch.channels_last)
    convs = [m for m in model.modules() if isinstance(m, fastpath.PackedConv)]
    with torch.inference_mode():
        model(x)
        first = len(timed)
        assert 0 < first < len(convs)  # layer1's second block repeats its first: measured once
        model(x)
        assert len(timed) == first  # the same shape again: nothing timed
        again = fastpath.pack(fold_batchnorm(build_model(config, seed=5)), kernels=RUNNABLE)
        again(x)
        assert len(timed) == first  # a rebuilt model of the same design reuses the choices
        model(torch.randn(1, 3, 96, 96).to(memory_format=torch.channels_last))
        assert len(timed) > first  # a new shape is measured
    assert all(set(c.choice.values()) <= set(RUNNABLE) for c in convs)
    assert all(set(c.kernels) >= set(t) and len(t) >= 2 for c in timed for t in c.timings.values())


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(256, 300), st.integers(256, 300), st.sampled_from(["x2", "match", "pad"]),
       st.sampled_from(["nearest", "bilinear"]))
def test_designs_that_reach_winograd_pack_to_the_same_levels(h, w, policy, upsample):
    """Inputs above Winograd's tile threshold, with a 256-wide FPN, Winograd forced where it applies."""
    try:
        config = Config(widths=(8, 16, 16, 32), blocks=(1, 1, 1, 1), stem_width=8, input_height=h, input_width=w,
                        policy=policy, upsample=upsample)
    except ConfigError:
        return
    if trace(config).mismatch is not None:
        event("mismatch")
        return
    eager = fold_batchnorm(build_model(config, seed=3)).to(memory_format=torch.channels_last)
    packed = fastpath.pack(copy.deepcopy(eager), kernels=("winograd",) + tuple(k for k in RUNNABLE if k != "winograd"),
                           measure=False)
    x = torch.randn(config.input_shape, generator=torch.Generator().manual_seed(1)).to(memory_format=torch.channels_last)
    with torch.inference_mode():
        want, got = eager(x), packed(x)
    assert fastpath.kernel_counts(packed).get("winograd", 0) >= 1
    for level in want:
        assert got[level].shape == want[level].shape
        assert _relative(got[level], want[level]) < 2e-5, level


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
    # oneDNN's fused kernels forced where they run (the odd shapes are their risk), untimed: 300 examples
    packed = fastpath.pack(copy.deepcopy(eager), kernels=tuple(k for k in ("onednn", "plain") if k in RUNNABLE),
                           measure=False)
    x = torch.randn(config.input_shape, generator=torch.Generator().manual_seed(1))
    x = x.to(dtype, memory_format=torch.channels_last)
    with torch.inference_mode():
        want, got = eager(x), packed(x)
    assert list(got) == list(want)
    for level in want:
        assert got[level].shape == want[level].shape
        scale = want[level].float().abs().max().clamp_min(1e-6)
        assert float((got[level].float() - want[level].float()).abs().max() / scale) < 2e-5, level


@pytest.mark.parametrize("design", ["reference", "resnet50"])
def test_the_memory_guard_counts_what_the_packed_model_holds(design, monkeypatch):
    """Dense and packed weights of every conv and the Winograd weights made while choosing, after a
    forward that tried every candidate: all within the parameters + the guard's serving overhead."""
    from resfpn.serving.limits import serving_overhead

    monkeypatch.setattr(fastpath, "_measured", {})  # every candidate tried, Winograd weights made
    config = Config.preset(design, input_height=256, input_width=256)
    packed = fastpath.pack(fold_batchnorm(build_model(config)), kernels=RUNNABLE)
    with torch.inference_mode():
        packed(torch.randn(1, 3, 256, 256).to(memory_format=torch.channels_last))
    t = trace(config)
    held = sum(x.numel() * x.element_size() for x in [*packed.parameters(), *packed.buffers()])
    held += sum(m.weight_bytes for m in packed.modules() if isinstance(m, fastpath.PackedConv))
    assert held > 2 * 4 * t.params.total  # the dense copies beside the packed weights are really there
    assert held <= fastpath.packed_bytes(packed)  # counted: made, and to be made on larger inputs
    assert fastpath.packed_bytes(packed) <= 4 * t.params.total + serving_overhead(t) - sum(
        t.activation_bytes["levels"].values())
