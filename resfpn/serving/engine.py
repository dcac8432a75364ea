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
from contextlib import nullcontext
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from . import fastpath
from ..model.config import Config
from ..weights.fold import fold_batchnorm
from .images import resize_for_input, to_tensor
from ..model.network import ResFPN, build_model
from .runtime import release_free_memory, set_torch_threads, usable_cores  # noqa: F401  (re-exported)
from .precision import Precision, check_precision
from ..weights.loading import load_source
from ..weights.pretrained import describe, get_source
from ..shapes.tracing import Trace, trace
from ..weights.loading import LoadResult, load_checkpoint, load_torchvision_weights


@functools.lru_cache(maxsize=256)
def cached_trace(config: Config) -> Trace:
    """``trace(config)``, memoised per configuration (configs are frozen and hashable)."""
    return trace(config)


@dataclass(frozen=True)
class Weights:
    """Which weights a model gets: seeded random, a published source (``resfpn.weights.pretrained.SOURCES``,
    e.g. "imagenet-resnet50"), or a checkpoint file identified by content. Parts a source or file
    does not fill keep the seeded random weights of ``seed``."""

    seed: int = 0
    checkpoint: str | None = None  # path of a torchvision checkpoint file (.pth or .safetensors)
    digest: str = ""  # sha256 of the checkpoint file, filled in by ``Weights.from_file``
    source: str | None = None  # a published source's name

    @classmethod
    def from_file(cls, path: str | Path, seed: int = 0) -> "Weights":
        return cls(seed=seed, checkpoint=str(path), digest=hashlib.sha256(Path(path).read_bytes()).hexdigest())

    @property
    def key(self) -> tuple:
        if self.source:
            return ("source", self.source, self.seed)
        return ("file", self.digest, self.seed) if self.checkpoint else ("seed", self.seed)

    @property
    def label(self) -> str:
        """Which parts are trained and from where, and the licence, e.g. 'backbone: ImageNet,
        timm/resnet50.tv_in1k · FPN: seeded random, seed 0 · licence BSD-3-Clause'."""
        if self.source:
            return describe(get_source(self.source), self.seed)
        if self.checkpoint:
            return f"checkpoint {Path(self.checkpoint).name} (sha256 {self.digest[:12]}…)"
        return describe(None, self.seed)


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
    precision: Precision = "fp32"  # the forward's arithmetic; levels are float32 either way
    # bf16 runs: per level, ||bf16 - fp32|| / ||fp32|| against the fp32 run of the same image, when
    # one is cached (measured, never estimated); None until such a run exists.
    difference: dict[str, float] | None = None
    packed: bool = False  # True when the forward ran the packed, fused CPU model (resfpn.serving.fastpath)


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
    return fastpath.packed_bytes(entry[0])


def _run_bytes(run: "Run") -> int:
    return _tensor_bytes(run.levels.values())


def relative_difference(levels: dict[str, torch.Tensor], reference: dict[str, torch.Tensor]) -> dict[str, float]:
    """Per level, ``||levels - reference|| / ||reference||`` (L2 over all elements; 0 where both are 0)."""
    out = {}
    for name, ref in reference.items():
        norm = ref.double().norm().item()
        diff = (levels[name].double() - ref.double()).norm().item()
        out[name] = diff / norm if norm else float(diff != 0)
    return out


class Engine:
    """Builds and runs models with bounded caches; one forward at a time.

    Two locks: ``_lock`` guards the caches for moments; ``_work`` (re-entrant) serialises real work
    (builds and forwards), so a caller can hold ``slot()`` across decoding, the run and its
    statistics, while shape-only callers and cache readers never wait behind a forward.
    """

    def __init__(self, max_models: int = 3, max_runs: int = 4, max_bytes: int = 1 << 30, device: str | None = None,
                 pack: bool | None = None):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        # On CPU the served models are packed (resfpn.serving.fastpath): prepacked weights, ReLU and adds
        # fused into the convolutions. Models asked for gradients stay plain folded modules.
        # RESFPN_PACK=0 serves the plain folded model instead (to compare, or where packing fails).
        if pack is None:
            pack = self.device.type == "cpu" and fastpath.available() and os.environ.get("RESFPN_PACK", "1") != "0"
        self.pack = pack
        # Each cache keeps at least its newest entry, and drops older ones past max_bytes.
        self._models = _LRU(max_models, max_bytes, _model_bytes)
        self._runs = _LRU(max_runs, max_bytes, _run_bytes)
        self._lock = threading.Lock()
        self._work = threading.RLock()
        self.forwards = 0
        self.builds = 0

    def cached_bytes(self) -> int:
        """Bytes held by cached models and activations."""
        with self._lock:
            return self._cached_bytes()

    def _cached_bytes(self) -> int:
        return self._models.total_bytes() + self._runs.total_bytes()

    def slot(self) -> threading.RLock:
        """The lock that serialises real work; hold it (``with engine.slot():``) to keep a whole
        request's memory (decoding, forward, statistics) one at a time."""
        return self._work

    def make_room(self, need: int, budget: int) -> None:
        """Drop cached activations, then cached models (oldest first), until ``need`` bytes of new
        work plus what stays cached fit in ``budget``."""
        evicted = False
        with self._lock:
            for cache in (self._runs, self._models):
                while cache and need + self._cached_bytes() > budget:
                    cache.popitem(last=False)
                    evicted = True
        if evicted:  # near the budget: what was dropped goes back to the OS, not to the heap's free lists
            release_free_memory()

    def _dtype(self, precision: Precision) -> torch.dtype:
        # On CUDA the fp32 model runs under bf16 autocast; on CPU the model itself is cast.
        return torch.bfloat16 if precision == "bf16" and self.device.type == "cpu" else torch.float32

    def model(self, config: Config, weights: Weights, precision: Precision = "fp32",
              grad: bool = False) -> tuple[ResFPN, LoadResult | None, float]:
        """The inference model for ``config`` with ``weights``: (model, what was loaded, build seconds; 0 if cached).

        BatchNorm is folded into the convolutions after the weights are loaded; a bf16 model on CPU
        is cast after folding (folding in float32 keeps the fold exact). On CPU the model is then
        packed (``resfpn.serving.fastpath``) unless ``grad``: a model for backward passes stays a plain
        folded module (and is cached apart from the packed one).
        """
        dtype = self._dtype(check_precision(precision))
        packed = self.pack and not grad
        key = (architecture_key(config), weights.key, str(dtype), packed)

        def make():
            start = time.perf_counter()
            model = build_model(architecture_key(config), seed=weights.seed)
            load = None
            if weights.source:  # fetched (or downloaded without progress: prefetch with download.fetch)
                load = load_source(model, get_source(weights.source))
            elif weights.checkpoint:
                load = load_torchvision_weights(model, load_checkpoint(weights.checkpoint))
            # The served copy: BN folded into the convs, NHWC memory (oneDNN's fast path on CPU).
            model = fold_batchnorm(model, inplace=True).to(self.device, dtype, memory_format=torch.channels_last)
            if packed:
                model = fastpath.pack(model)
            self.builds += 1
            return model, load, time.perf_counter() - start

        with self._work:
            with self._lock:
                hit = self._models.get(key)
                if hit is not None:
                    self._models.move_to_end(key)
                    return hit[0], hit[1], 0.0
            entry = make()  # outside the cache lock: readers of the caches do not wait for a build
            release_free_memory()  # the build's garbage, before a forward needs the room
            with self._lock:
                self._models.get_or(key, lambda: entry)
        return entry

    def run(self, config: Config, image: Image.Image, weights: Weights = Weights(),
            precision: Precision = "fp32", shared: dict[str, torch.Tensor] | None = None) -> Run:
        """Resize ``image`` to the input size, run it, and return every level (cached by content).

        ``precision="bf16"`` runs the forward in bfloat16 (CPU: model and input cast; CUDA: autocast);
        the levels come back as float32 either way, with ``difference`` set when the fp32 run of the
        same image is cached (see ``Run.difference``).
        ``shared``: backbone levels (a prefix of C2..C5) that another design computed with the same
        stem, stages, weights and input, so this forward starts after them (``resfpn.analysis.compare``).
        """
        check_precision(precision)
        resized = resize_for_input(image, config.input_height, config.input_width)
        base = (architecture_key(config), weights.key, config.input_shape, image_digest(resized))
        key = base if precision == "fp32" else (*base, precision)  # fp32 keys as before

        with self._work:
            with self._lock:
                hit = self._runs.get(key)
                if hit is not None:
                    self._runs.move_to_end(key)
            if hit is not None:
                return self._with_difference(dataclasses.replace(hit, cached=True, build_seconds=0.0), base)
            model, load, build_seconds = self.model(config, weights, precision)
            dtype = self._dtype(precision)
            x = to_tensor(resized, config.batch).to(self.device, dtype, memory_format=torch.channels_last)
            autocast = (torch.autocast("cuda", torch.bfloat16) if precision == "bf16" and self.device.type == "cuda"
                        else nullcontext())
            start = time.perf_counter()
            with torch.inference_mode(), autocast:
                if shared:
                    known = {k: v.to(self.device, dtype) for k, v in shared.items()}
                    out = model.forward_from(known, (config.input_height, config.input_width))
                else:
                    out = model(x)
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            self.forwards += 1
            levels = {k: v.float().cpu() for k, v in out.items()}
            del out, x
            run = Run(levels, resized, build_seconds, time.perf_counter() - start, weights.label, key, load,
                      precision=precision, packed=isinstance(model.fpn, fastpath.PackedFPN))
            with self._lock:
                self._runs.get_or(key, lambda: run)
            return self._with_difference(run, base)

    def _with_difference(self, run: Run, base: tuple) -> Run:
        """``run`` with its measured difference to the cached fp32 run of the same image, if any."""
        if run.precision == "fp32" or run.difference is not None:
            return run
        with self._lock:
            reference = self._runs.get(base)
        if reference is None:
            return run
        run.difference = relative_difference(run.levels, reference.levels)
        with self._lock:  # remember it on the cached entry too
            if run.key in self._runs:
                self._runs[run.key].difference = run.difference
        return run

    def cached_run(self, key: tuple) -> Run | None:
        """A previous run by its key, or None once it has left the cache."""
        with self._lock:
            run = self._runs.get(key)
        return dataclasses.replace(run, cached=True, build_seconds=0.0) if run else None
