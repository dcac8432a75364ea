"""Start a Gradio script (``app.py`` by default) on a free port of 127.0.0.1 and stop it again.

Shared by the tests, the benchmark and the load test, so all three launch the app the way a user
does: ``python app.py`` with GRADIO_SERVER_PORT set.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(log_path: Path, script: str = "app.py", env: dict[str, str] | None = None, timeout: float = 180.0,
          poll: float = 0.05) -> tuple[subprocess.Popen, str, float]:
    """Run ``python script`` from the repository root; returns (process, url, seconds to first HTTP 200).

    Raises:
        RuntimeError: the process exited, or did not answer within ``timeout`` (its log is named).
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = (os.environ if env is None else env) | {
        "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_ANALYTICS_ENABLED": "False",
        "PYTHONUNBUFFERED": "1"}
    with open(log_path, "w") as log:
        began = time.perf_counter()
        proc = subprocess.Popen([sys.executable, script], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return proc, url, time.perf_counter() - began
        except OSError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"{script} exited with status {proc.returncode}; see {log_path}")
        if time.perf_counter() - began > timeout:
            stop(proc)
            raise RuntimeError(f"{script} did not answer HTTP 200 on {url} within {timeout:.0f} s; see {log_path}")
        time.sleep(poll)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@contextlib.contextmanager
def serving(log_path: Path, script: str = "app.py", **env_extra: str):
    """``start`` as a context manager that always stops the server; yields its URL."""
    proc, url, _ = start(log_path, script, os.environ | env_extra)
    try:
        yield url
    finally:
        stop(proc)
