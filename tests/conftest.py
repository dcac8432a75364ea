from pathlib import Path

import pytest

from resfpn import Config
from scripts import serve  # how tests, bench and load test start the app

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.fixture
def tiny() -> Config:
    """A configuration small enough for real forwards everywhere: widths 8–16, one block per stage."""
    return Config(widths=(8, 8, 16, 16), blocks=(1, 1, 1, 1), stem_width=8, fpn_width=8)


def launch_app(**env_extra: str):
    """`python app.py` as a user starts it, on a free port of 127.0.0.1 (a context manager; yields its URL)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return serve.serving(ARTIFACTS / f"app-server-{serve.free_port()}.log", **env_extra)


@pytest.fixture(scope="session")
def served_app():
    with launch_app() as url:
        yield url
