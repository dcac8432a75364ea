import itertools

import pytest
import torch

from resfpn import build_model
from resfpn.weights.fold import fold_batchnorm


def _randomise_bn(model):
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5, generator=g)
            m.bias.data.normal_(0, 0.1, generator=g)
            m.running_mean.normal_(0, 0.1, generator=g)
            m.running_var.uniform_(0.5, 1.5, generator=g)


@pytest.mark.parametrize("block, skip", list(itertools.product(["basic", "bottleneck"], "ABCD")))
def test_folded_model_computes_the_same_levels(tiny, block, skip):
    config = tiny.replace(block=block, skip=skip, input_height=64, input_width=96)
    model = build_model(config)
    _randomise_bn(model)
    folded = fold_batchnorm(model).to(memory_format=torch.channels_last)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())  # the original is untouched
    x = torch.randn(config.input_shape)
    with torch.inference_mode():
        expected, got = model(x), folded(x.to(memory_format=torch.channels_last))
    assert list(got) == list(expected)
    for k in expected:
        torch.testing.assert_close(got[k], expected[k], rtol=1e-4, atol=1e-5 * expected[k].abs().max().item())
