"""Forward latency against input size, measured on this machine through the served path and fitted.

A few sizes are run through ``Engine.run`` (the path the page and the API serve: BN folded, packed
FPN where it applies, channels-last, inference mode) on a plain grey image, each once to warm up and
then timed; ``seconds ≈ a + b · MACs`` is fitted by least squares, so every size of the cost curve
gets an estimate. Results are cached per architecture, weights and precision (not input size).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from PIL import Image

from ..model.config import Config
from ..shapes.sizes import costs, size_map
from .fastpath import cpu_name

TARGET_SIDES = (160, 256, 352, 448)  # square sizes to time (each moved to the nearest size that builds)

_cache: dict[Any, dict[str, Any]] = {}
_lock = threading.Lock()


def sizes_to_time(config: Config, sides: tuple[int, ...] = TARGET_SIDES) -> list[tuple[int, int]]:
    """Square sizes near ``sides`` at which ``config``'s design builds under its own policy."""
    m = size_map(config, policies=(config.policy,))
    out = []
    for side in sides:
        h, w = m.nearest_valid(config.policy, "height", side), m.nearest_valid(config.policy, "width", side)
        if h and w and (h, w) not in out:
            out.append((h, w))
    return out


def measure(engine, config: Config, weights=None, precision: str = "fp32", sizes: list[tuple[int, int]] | None = None,
            repeats: int = 2) -> dict[str, Any]:
    """Time ``config``'s forward at ``sizes`` (default ``sizes_to_time``) through ``engine.run`` and fit
    ``seconds = a + b·MACs``. Returns ``{"points": [{"height", "width", "seconds", "macs"}], "fit": [a, b],
    "device": ...}``; cached, so a second call for the same architecture answers at once."""
    from .engine import Weights, architecture_key

    weights = weights or Weights()
    key = (architecture_key(config), weights.key, precision, tuple(sizes) if sizes else None)
    with _lock:
        if key in _cache:
            return _cache[key]
    sizes = sizes or sizes_to_time(config)
    points = []
    for i, (h, w) in enumerate(sizes):
        c = config.replace(input_height=h, input_width=w, batch=1)
        best = float("inf")
        for r in range(repeats + (1 if i == 0 else 0)):  # the first size also pays for building the model
            image = Image.new("RGB", (w, h), (100 + 7 * r, 110, 120 + i))  # new content: the engine caches by image
            run = engine.run(c, image, weights, precision)
            if r or i:
                best = min(best, run.forward_seconds)
        points.append({"height": h, "width": w, "seconds": best, "macs": int(costs(c, [h], [w]).macs[0])})
    result = {"points": points, "fit": list(fit(points)), "device": f"{cpu_name()}, {engine.device.type}"}
    with _lock:
        _cache[key] = result
    return result


def cached(config: Config, weights=None, precision: str = "fp32") -> dict[str, Any] | None:
    """The measurement of ``config``'s architecture if one was made, else None (nothing runs)."""
    from .engine import Weights, architecture_key

    key = (architecture_key(config), (weights or Weights()).key, precision, None)
    with _lock:
        return _cache.get(key)


def fit(points: list[dict[str, Any]]) -> tuple[float, float]:
    """Least-squares ``(a, b)`` of ``seconds = a + b·macs``; with one point, ``a = 0``."""
    macs = np.array([p["macs"] for p in points], dtype=np.float64)
    secs = np.array([p["seconds"] for p in points], dtype=np.float64)
    if len(points) < 2 or np.ptp(macs) == 0:
        return 0.0, float(secs.mean() / max(macs.mean(), 1))
    b, a = np.polyfit(macs, secs, 1)
    return float(a), float(b)
