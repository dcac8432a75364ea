"""The oneDNN-fused graph gives the eager model's levels, for every kind of configuration, or is refused."""

import pytest
import torch
from PIL import Image

from resfpn.compiled import TOLERANCE, FusionRefused, fused_graph
from resfpn.engine import Engine


def _image():
    return Image.new("RGB", (80, 60), (30, 160, 90)).rotate(20, fillcolor=(250, 20, 0))


@pytest.mark.parametrize("changes", [
    {},
    {"block": "bottleneck", "widths": (16, 16, 32, 32), "skip": "B", "p7": True},
    {"skip": "A", "upsample": "bilinear", "policy": "match", "input_height": 70, "input_width": 90},
    {"skip": "C", "p6": "maxpool", "fpn_from": "C3"},
    {"skip": "D", "p6": "none", "stride_in": "1x1", "block": "bottleneck", "widths": (16, 16, 32, 32)},
    {"policy": "pad", "input_height": 50, "input_width": 70, "p6": "c5-conv"},
])
def test_engine_levels_are_the_same_with_the_fused_graph(tiny, changes):
    config = tiny.replace(**{"input_height": 64, "input_width": 96, **changes})
    eager = Engine(fuse=False).run(config, _image())
    engine = Engine(fuse=True)
    first = engine.run(config, _image())
    assert engine.fusion == {}  # one forward at this shape: not worth a graph yet
    second = engine.run(config, _image().rotate(3))
    engine.wait_for_fusion()
    assert list(engine.fusion.values()) == ["ready"], engine.fusion
    fused = engine.run(config, _image().rotate(5))  # a new image: a real forward, through the graph
    again = Engine(fuse=False).run(config, _image().rotate(5))
    assert not first.fused and not second.fused and fused.fused and engine.forwards == 3
    for name in eager.levels:
        assert torch.equal(first.levels[name], eager.levels[name])
        scale = again.levels[name].abs().max().clamp_min(1e-12)
        assert ((fused.levels[name] - again.levels[name]).abs().max() / scale).item() <= TOLERANCE, name


def test_a_graph_that_cannot_be_built_is_refused_and_eager_keeps_serving(tiny):
    engine = Engine(fuse=True)
    model, _, _ = engine.model(tiny, engine_weights())
    with pytest.raises(FusionRefused, match="float32 on CPU only"):
        fused_graph(model, torch.zeros(1, 3, 64, 64, dtype=torch.bfloat16))

    class Opaque(torch.nn.Module):  # returns a tensor, not the levels dict
        def forward(self, x):
            return x * 2

    with pytest.raises(FusionRefused, match="returned Tensor"):
        fused_graph(Opaque().eval(), torch.zeros(1, 3, 8, 8))
    with pytest.raises(FusionRefused, match="tracing or fusing failed: RuntimeError: Freezing"):
        fused_graph(Opaque().train(), torch.zeros(1, 3, 8, 8))


def test_bf16_runs_never_use_the_fused_graph(tiny):
    engine = Engine(fuse=True)
    engine.run(tiny, _image(), precision="bf16")
    engine.run(tiny, _image().rotate(3), precision="bf16")
    engine.wait_for_fusion()
    assert engine.fusion == {}


def engine_weights():
    from resfpn.engine import Weights

    return Weights()
