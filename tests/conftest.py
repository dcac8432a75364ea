import pytest

from resfpn import Config


@pytest.fixture
def tiny() -> Config:
    """A configuration small enough for real forwards everywhere: widths 8–16, one block per stage."""
    return Config(widths=(8, 8, 16, 16), blocks=(1, 1, 1, 1), stem_width=8, fpn_width=8)
