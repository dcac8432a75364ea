import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from resfpn import Config


@pytest.fixture
def tiny() -> Config:
    """A configuration small enough for real forwards everywhere: widths 8–16, one block per stage."""
    return Config(widths=(8, 8, 16, 16), blocks=(1, 1, 1, 1), stem_width=8, fpn_width=8)


@contextlib.contextmanager
def launch_app(**env_extra: str):
    """`python app.py` as a user starts it, on a free port of 127.0.0.1; yields its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = Path(__file__).resolve().parents[1]
    env = os.environ | {"GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False"} | env_extra
    (root / "test-artifacts").mkdir(exist_ok=True)
    log = open(root / "test-artifacts" / f"app-server-{port}.log", "w")
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    try:
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"app.py did not start on {url}; see {log.name}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="session")
def served_app():
    with launch_app() as url:
        yield url
