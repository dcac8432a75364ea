"""Build, cache and run models for an interactive explorer (no UI code here).

Models are cached by architecture and weights (input size does not change a model), activations
by architecture, weights, input size and image content, so a display-only change or a repeated
run costs no forward. ``forwards`` counts the real forwards, for tests and benchmarks.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from .config import Config
from .fold import fold_batchnorm
from .images import resize_for_input, to_tensor
from .model import ResFPN, build_model
from .tracing import Trace, trace
from .weights import LoadResult, load_checkpoint, load_torchvision_weights


def usable_cores() -> int:
    """Cores this process may use: ``CPU_CORES`` (set on Hugging Face Spaces), else the affinity mask."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        affinity = os.cpu_count() or 1
    try:
        declared = int(os.environ.get("CPU_CORES", "0"))
    except ValueError:
        declared = 0
    return max(1, min(declared, affinity) if declared > 0 else affinity)


def set_torch_threads() -> int:
    """Set torch's intra-op threads once, from the cores this process may use; returns the count."""
    cores = usable_cores()
    if torch.get_num_threads() != cores:
        torch.set_num_threads(cores)
    return cores


@functools.lru_cache(maxsize=256)
def cached_trace(config: Config) -> Trace:
    """``trace(config)``, memoised per configuration (configs are frozen and hashable)."""
    return trace(config)


@dataclass(frozen=True)
class Weights:
    """Which weights a model gets: seeded random, or a checkpoint file identified by content."""

    seed: int = 0
    checkpoint: str | None = None  # path of a torchvision checkpoint file
    digest: str = ""  # sha256 of the checkpoint file, filled in by ``Weights.from_file``

    @classmethod
    def from_file(cls, path: str | Path) -> "Weights":
        return cls(checkpoint=str(path), digest=hashlib.sha256(Path(path).read_bytes()).hexdigest())

    @property
    def key(self) -> tuple:
        return ("file", self.digest) if self.checkpoint else ("seed", self.seed)

    @property
    def label(self) -> str:
        if self.checkpoint:
            return f"checkpoint {Path(self.checkpoint).name} (sha256 {self.digest[:12]}…)"
        return f"seeded random weights (seed {self.seed})"


@dataclass
class Run:
    """One forward's result: every level's activations ``(N, C, H_k, W_k)`` and its timings."""

    levels: dict[str, torch.Tensor]
    image: Image.Image  # the image as the network saw it (resized to the input size)
    build_seconds: float
    forward_seconds: float
    weights: str
    key: tuple = ()
    load: LoadResult | None = None
    cached: bool = False  # True when served from the cache without a forward


def architecture_key(config: Config) -> Config:
    """The part of a configuration a model depends on: everything but input size and batch."""
    return config.replace(input_height=1, input_width=1, batch=1)


def image_digest(image: Image.Image) -> str:
    return hashlib.sha256(image.tobytes() + repr((image.size, image.mode)).encode()).hexdigest()


class _LRU(OrderedDict):
    """Least-recently-used cache bounded by entry count and by total bytes (as ``nbytes`` measures)."""

    def __init__(self, size: int, max_bytes: int, nbytes):
        super().__init__()
        self.size, self.max_bytes, self.nbytes = size, max_bytes, nbytes

    def total_bytes(self) -> int:
        return sum(map(self.nbytes, self.values()))

    def get_or(self, key, make):
        if key in self:
            self.move_to_end(key)
            return self[key], False
        value = make()
        self[key] = value
        while len(self) > 1 and (len(self) > self.size or self.total_bytes() > self.max_bytes):
            self.popitem(last=False)
        return value, True


def _tensor_bytes(tensors: Iterable[torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def _model_bytes(entry) -> int:
    return _tensor_bytes(entry[0].state_dict().values())


def _run_bytes(run: "Run") -> int:
    return _tensor_bytes(run.levels.values())


class Engine:
    """Builds and runs models with bounded caches; one forward at a time."""

    def __init__(self, max_models: int = 3, max_runs: int = 4, max_bytes: int = 1 << 30, device: str | None = None):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        # Each cache keeps at least its newest entry, and drops older ones past max_bytes.
        self._models = _LRU(max_models, max_bytes, _model_bytes)
        self._runs = _LRU(max_runs, max_bytes, _run_bytes)
        self._lock = threading.Lock()
        self.forwards = 0
        self.builds = 0

    def cached_bytes(self) -> int:
        """Bytes held by cached models and activations."""
        with self._lock:
            return self._cached_bytes()

    def _cached_bytes(self) -> int:
        return self._models.total_bytes() + self._runs.total_bytes()

    def make_room(self, need: int, budget: int) -> None:
        """Drop cached activations, then cached models (oldest first), until ``need`` bytes of new
        work plus what stays cached fit in ``budget``."""
        with self._lock:
            for cache in (self._runs, self._models):
                while cache and need + self._cached_bytes() > budget:
                    cache.popitem(last=False)

    def model(self, config: Config, weights: Weights) -> tuple[ResFPN, LoadResult | None, float]:
        """The inference model for ``config`` with ``weights``: (model, what was loaded, build seconds; 0 if cached).

        BatchNorm is folded into the convolutions after the weights are loaded.
        """
        key = (architecture_key(config), weights.key)

        def make():
            start = time.perf_counter()
            model = build_model(architecture_key(config), seed=weights.seed)
            load = None
            if weights.checkpoint:
                load = load_torchvision_weights(model, load_checkpoint(weights.checkpoint))
            # The served copy: BN folded into the convs, NHWC memory (oneDNN's fast path on CPU).
            model = fold_batchnorm(model, inplace=True).to(self.device, memory_format=torch.channels_last)
            self.builds += 1
            return model, load, time.perf_counter() - start

        with self._lock:
            (model, load, seconds), fresh = self._models.get_or(key, make)
        return model, load, seconds if fresh else 0.0

    def run(self, config: Config, image: Image.Image, weights: Weights = Weights(),
            shared: dict[str, torch.Tensor] | None = None) -> Run:
        """Resize ``image`` to the input size, run it, and return every level (cached by content).

        ``shared``: backbone levels (a prefix of C2..C5) that another design computed with the same
        stem, stages, weights and input, so this forward starts after them (``resfpn.compare``).
        """
        resized = resize_for_input(image, config.input_height, config.input_width)
        key = (architecture_key(config), weights.key, config.input_shape, image_digest(resized))
        model, load, build_seconds = self.model(config, weights)

        def make():
            x = to_tensor(resized, config.batch).to(self.device, memory_format=torch.channels_last)
            start = time.perf_counter()
            with torch.inference_mode():
                if shared:
                    known = {k: v.to(self.device) for k, v in shared.items()}
                    out = model.forward_from(known, (config.input_height, config.input_width))
                else:
                    out = model(x)
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            self.forwards += 1
            levels = {k: v.float().cpu() for k, v in out.items()}
            return Run(levels, resized, build_seconds, time.perf_counter() - start, weights.label, key, load)

        with self._lock:
            run, fresh = self._runs.get_or(key, make)
        return run if fresh else dataclasses.replace(run, cached=True, build_seconds=0.0)

    def cached_run(self, key: tuple) -> Run | None:
        """A previous run by its key, or None once it has left the cache."""
        with self._lock:
            run = self._runs.get(key)
        return dataclasses.replace(run, cached=True, build_seconds=0.0) if run else None
