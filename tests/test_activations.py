import pytest
import torch

from resfpn.analysis.activations import level_stats, reduce_channels


def test_reductions():
    x = torch.tensor([[[1.0, -2.0]], [[3.0, 2.0]]]).unsqueeze(0)  # (1, 2, 1, 2)
    assert reduce_channels(x, "mean").tolist() == [[2.0, 0.0]]
    assert reduce_channels(x, "mean-abs").tolist() == [[2.0, 2.0]]
    assert reduce_channels(x, "max").tolist() == [[3.0, 2.0]]
    assert reduce_channels(x, "channel", 1).tolist() == [[3.0, 2.0]]
    torch.testing.assert_close(reduce_channels(x, "l2"), torch.tensor([[10.0**0.5, 8.0**0.5]]))


def test_bad_reduction_and_channel_are_refused():
    x = torch.zeros(1, 4, 2, 2)
    with pytest.raises(ValueError, match=r"channel=4: this level has channels 0\.\.3"):
        reduce_channels(x, "channel", 4)
    with pytest.raises(ValueError, match=r"reduction='median': unknown"):
        reduce_channels(x, "median")


def test_level_stats():
    x = torch.zeros(1, 3, 2, 2)
    x[0, 2] = 2.0
    x[0, 1, 0, 0] = 1.0
    s = level_stats(x, top=2)
    assert s["top_channels"][0] == (2, 4.0) and s["top_channels"][1][0] == 1
    assert s["zeros"] == pytest.approx(7 / 12)
    assert s["mean"] == pytest.approx(9 / 12)
