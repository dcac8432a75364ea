import pytest
import torch

from resfpn import ShapeMismatchError, checked_add


def test_adds_equal_shapes():
    a, b = torch.ones(1, 2, 3, 3), torch.full((1, 2, 3, 3), 2.0)
    assert torch.equal(checked_add(a, b, "x", ("a", "b")), torch.full((1, 2, 3, 3), 3.0))


@pytest.mark.parametrize(
    "sa, sb, dim",
    [((1, 8, 1, 1), (1, 8, 8, 8), "H"), ((1, 1, 4, 4), (1, 8, 4, 4), "C"), ((1, 8, 4, 4), (1, 8, 4, 1), "W"),
     ((2, 8, 4, 4), (1, 8, 4, 4), "N")],
)
def test_never_broadcasts(sa, sb, dim):
    """torch would broadcast each of these pairs without a word."""
    torch.broadcast_shapes(sa, sb)
    with pytest.raises(ShapeMismatchError) as info:
        checked_add(torch.zeros(sa), torch.zeros(sb), "FPN merge into P2", ("lateral(C2)", "upsampled P3"))
    err = info.value
    assert isinstance(err, ValueError) and err.dim_name == dim
    assert err.shapes == (sa, sb)
    assert str(err).startswith(f"FPN merge into P2: lateral(C2) is ")
