from pathlib import Path

import pytest

from resfpn import Config
from scripts import serve  # how tests, bench and load test start the app

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
# The documented endpoints, which are also the MCP tools: nothing else may be listed.
DOCUMENTED = ("analyze", "receptive_field", "compare", "sizes", "sweep")


@pytest.fixture
def tiny() -> Config:
    """A configuration small enough for real forwards everywhere: widths 8–16, one block per stage."""
    return Config(widths=(8, 8, 16, 16), blocks=(1, 1, 1, 1), stem_width=8, fpn_width=8)


SERVED_LOG = ARTIFACTS / "app-server-session.log"  # the log of ``served_app``


def launch_app(log: Path | None = None, **env_extra: str):
    """`python app.py` as a user starts it, on a free port of 127.0.0.1 (a context manager; yields its URL)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return serve.serving(log or ARTIFACTS / f"app-server-{serve.free_port()}.log", **env_extra)


@pytest.fixture(scope="session")
def served_app(tmp_path_factory):
    """The app, offline with empty weight caches: tests never need the internet, and a published
    source's download fails the same way everywhere."""
    caches = tmp_path_factory.mktemp("caches")
    with launch_app(SERVED_LOG, HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(caches / "hub"), TORCH_HOME=str(caches / "torch")) as url:
        yield url
