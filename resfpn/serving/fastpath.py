"""The CPU serving form of a folded model: every convolution picks, by measurement, its fastest kernel.

Each convolution of the folded model (BatchNorm folded, channels-last) becomes a ``PackedConv``
that can run three ways, all giving the same result up to float rounding:

- ``plain``: ``F.conv2d`` on the channels-last weight, then the epilogue (add, ReLU) in place:
  what the plain tuned model does.
- ``onednn``: the weight prepacked once (on first use) into oneDNN's blocked layout
  (``mkldnn._reorder_convolution_weight``) and run through oneDNN's pointwise-fused kernel
  (``mkldnn._convolution_pointwise``, the op torch.compile's CPU backend emits), so ``relu(conv(x))``,
  ``relu(conv(x) + S(x))`` (a residual block's last conv) and ``lateral(c) + upsampled`` (an FPN
  merge) are each one kernel.
- ``winograd``: Winograd F(4×4, 3×3) (``resfpn.winograd``), for wide 3×3 stride-1 convs.

Which one is fastest depends on the CPU, its instruction set and the input shape: the fused oneDNN
kernel is faster than the plain one on AVX-512, and several times slower on AVX2 at small maps.
So, like ``torch.backends.cudnn.benchmark``, the first forward that meets a new input shape times
every candidate on that very input, keeps the fastest for that shape, and passes its output on (the
timed runs are the forward: a first run costs about the candidates' sum, not a separate search).
Choices are kept per process for every conv of the same geometry at the same input shape (on this
CPU and torch version), so repeated blocks, rebuilt models and other designs reuse them.

``self_check(dtype)`` runs every op form the kernels use against ``F.conv2d`` once per process;
where it fails (another build, ARM, a CPU without native bf16 for the bf16 forms) the engine serves
the plain folded model and says why. Inference only (no autograd through these ops). The additions
it fuses are the ones the meta trace already checked, and each is checked again for exact shapes.
"""

from __future__ import annotations

import functools
import hashlib
import platform
import time
from collections import Counter

import torch
import torch.nn.functional as F
from torch import nn

from . import winograd
from ..model.add import ShapeMismatchError
from ..model.blocks import _Residual
from ..model.fpn import FPN

KERNELS = ("plain", "onednn", "winograd")
PRIVATE_OPS = ("_convolution_pointwise", "_reorder_convolution_weight")  # torch.ops.mkldnn's, used by "onednn"
# A conv whose fastest candidate took less than this on its first (cold) run is timed once more (the
# min of two filters one run slowed by a neighbour on a shared machine, and the cold start):
# oneDNN creates each kernel on first use, which can cost more than the run of a small conv.
RETIME_SECONDS = 0.005
# Choices shared by every conv of the same geometry at the same input shape, in any design and any
# model of this process: (CPU, torch version, geometry, input shape, dtype, epilogue, candidates) → kernel.
_measured: dict[tuple, str] = {}


@functools.lru_cache(maxsize=1)
def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), else what ``platform`` says."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.lru_cache(maxsize=None)
def self_check(dtype: torch.dtype = torch.float32) -> str | None:
    """None where every op form the packed kernels use runs here and matches ``F.conv2d`` in ``dtype``;
    otherwise one sentence saying why the plain model serves instead.

    The forms: 1×1, 3×3 and 7×7 convs at stride 1 and 2, each alone, with ReLU, with an add and with
    add + ReLU, through each kernel, and Winograd (float32). The ops are private to PyTorch, so any
    exception, not only the expected ones, means "not available".
    """
    if not torch.backends.mkldnn.is_available():
        return "this PyTorch build has no oneDNN"
    missing = [op for op in PRIVATE_OPS if not hasattr(torch.ops.mkldnn, op)]
    if missing:
        return f"this PyTorch build lacks the private op(s) {', '.join('mkldnn.' + m for m in missing)}"
    try:
        wrong = _check_forms(dtype)
    except Exception as err:  # noqa: BLE001  (any failure of a private op means: do not use it)
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        return f"the packed {_dtype_name(dtype)} kernels fail here ({type(err).__name__}: {first[:160]})"
    if wrong:
        return f"the packed {_dtype_name(dtype)} kernels give wrong results here ({wrong})"
    return None


def available(dtype: torch.dtype = torch.float32) -> bool:
    """Whether the packed kernels pass ``self_check`` in ``dtype`` on this CPU and build."""
    return self_check(dtype) is None


def _dtype_name(dtype: torch.dtype) -> str:
    return {torch.float32: "float32", torch.bfloat16: "bfloat16"}.get(dtype, str(dtype))


def _check_forms(dtype: torch.dtype) -> str:
    """'' if every form matches ``F.conv2d`` (computed in float64 from the same rounded values), else
    the first form that does not."""
    tolerance = 1e-4 if dtype == torch.float32 else 3e-2
    g = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        for k, stride in ((1, 1), (1, 2), (3, 1), (3, 2), (7, 2)):
            conv = nn.Conv2d(8, 16, k, stride=stride, padding=k // 2).to(dtype)
            with torch.no_grad():
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=g))
                conv.bias.copy_(torch.randn(16, generator=g))
            x = torch.randn(1, 8, 11, 9, generator=g).to(dtype, memory_format=torch.channels_last)
            reference = F.conv2d(x.double(), conv.weight.double(), conv.bias.double(), stride, k // 2)
            other = torch.randn(reference.shape, generator=g).to(dtype, memory_format=torch.channels_last)
            for kernel in ("plain", "onednn"):
                for relu in (False, True):
                    packed = PackedConv(conv, relu=relu, kernels=(kernel,))
                    for add in (None, other):
                        want = reference if add is None else reference + add.double()
                        want = want.relu() if relu else want
                        got = packed(x, add=add)
                        scale = float(want.abs().max())
                        if got.shape != want.shape or float((got.double() - want).abs().max()) > tolerance * scale:
                            return f"{kernel} {k}×{k} stride {stride}{' + add' if add is not None else ''}" \
                                   f"{' + ReLU' if relu else ''}"
        if dtype == torch.float32:
            w = torch.randn(16, 8, 3, 3, generator=g)
            x = torch.randn(1, 8, 13, 10, generator=g).to(memory_format=torch.channels_last)
            got = winograd.winograd_conv(x, winograd.transform_weight(w), None)
            want = F.conv2d(x.double(), w.double(), padding=1)
            if float((got.double() - want).abs().max()) > tolerance * float(want.abs().max()):
                return "Winograd 3×3"
    return ""


class PackedConv(nn.Module):
    """A 2-D convolution that runs whichever kernel was measured fastest at its input's shape.

    ``forward(x)`` is ``conv(x)``, then ReLU if ``relu``; ``forward(x, add=y)`` is ``conv(x) + y``,
    then ReLU if ``relu``, with ``y`` of exactly the output's shape (anything else raises
    ``ShapeMismatchError``, never broadcasts). ``kernels`` limits the candidates; with
    ``measure=False`` the first of them that applies runs, untimed (for tests and benchmarks).
    """

    def __init__(self, conv: nn.Conv2d, relu: bool = False, use_winograd: bool = True,
                 kernels: tuple[str, ...] = KERNELS, where: str = "fused add", measure: bool = True):
        super().__init__()
        if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise ValueError(f"{conv}: only explicit zero padding is packed")
        unknown = set(kernels) - set(KERNELS)
        if unknown or not kernels:
            raise ValueError(f"kernels={kernels!r}: choose from {', '.join(map(repr, KERNELS))}")
        self.padding, self.stride = list(conv.padding), list(conv.stride)
        self.dilation, self.groups, self.relu = list(conv.dilation), conv.groups, relu
        self.out_channels, self.kernel_size, self.where = conv.out_channels, conv.kernel_size, where
        self.measure = measure
        weight = conv.weight.detach()
        self.kernels = tuple(k for k in kernels if k != "winograd" or (use_winograd and winograd.eligible(conv)))
        if not self.kernels:
            raise ValueError(f"{conv}: no kernel of {kernels!r} can run it")
        # The plain kernel's weight, also the source of the Winograd form (made on first use, at most
        # EXPANSION× this weight; packed_bytes counts it from the start).
        self.register_buffer("dense_weight", weight.contiguous(memory_format=torch.channels_last).clone())
        # oneDNN's packed weight, made when the oneDNN kernel first runs (a conv that never tries it,
        # or a shape whose choice is already known, skips the reorder); counted from the start.
        self.weight = None
        self.weight_bytes = weight.numel() * weight.element_size() if "onednn" in self.kernels else 0
        self._digest: torch.Tensor | None = None
        self.register_buffer("bias", None if conv.bias is None else conv.bias.detach().clone())
        self.register_buffer("winograd_weight", None)
        self.choice: dict[tuple, str] = {}  # input shape, dtype, with add → kernel
        self.timings: dict[tuple, dict[str, float]] = {}  # what the choice was made from (seconds)
        self.last: str | None = None  # the kernel of the latest forward, for kernel_counts

    def forward(self, x: torch.Tensor, add: torch.Tensor | None = None) -> torch.Tensor:
        if add is not None:
            expected = (x.shape[0], self.out_channels, *self.output_size(*x.shape[-2:]))
            if tuple(add.shape) != expected:
                raise ShapeMismatchError(self.where, ("conv output", "added operand"), (expected, tuple(add.shape)))
        key = (tuple(x.shape), x.dtype, add is not None)
        kernel = self.choice.get(key)
        if kernel is None:
            shared = self._shared_key(key, x)
            kernel = _measured.get(shared) if self.measure else None
            if kernel is None:
                kernel, y = self._choose(key, x, add)
                if self.measure:
                    _measured[shared] = kernel
            else:
                self.choice[key] = kernel
                y = self.run(kernel, x, add)
        else:
            y = self.run(kernel, x, add)
        self.last = kernel
        return y

    def _shared_key(self, key: tuple, x: torch.Tensor) -> tuple:
        geometry = (self.dense_weight.shape, self.bias is not None, *map(tuple, (self.padding, self.stride, self.dilation)),
                    self.groups, self.relu)
        return (cpu_name(), torch.__version__, geometry, *key, tuple(self.candidates(x)))

    def output_size(self, h: int, w: int) -> tuple[int, int]:
        return tuple((n + 2 * p - d * (k - 1) - 1) // s + 1 for n, p, d, k, s in
                     zip((h, w), self.padding, self.dilation, self.kernel_size, self.stride))

    def candidates(self, x: torch.Tensor) -> list[str]:
        """The kernels worth timing on ``x``: Winograd only with enough output tiles to amortise it."""
        return [k for k in self.kernels if k != "winograd" or winograd.tiles(*x.shape[-2:]) >= winograd.MIN_TILES]

    def _choose(self, key: tuple, x: torch.Tensor, add: torch.Tensor | None) -> tuple[str, torch.Tensor]:
        candidates = self.candidates(x)
        if len(candidates) == 1 or not self.measure:
            self.choice[key] = candidates[0]
            return candidates[0], self.run(candidates[0], x, add)
        times: dict[str, float] = {}
        best_y = None  # the output of the fastest run so far: it is this forward's result
        for _ in range(2):
            for kernel in candidates:
                start = time.perf_counter()
                y = self.run(kernel, x, add)
                seconds = time.perf_counter() - start
                times[kernel] = min(seconds, times.get(kernel, seconds))
                if best_y is None or seconds <= min(times.values()):
                    best_y = y
                del y  # at most two outputs alive at once (the guard counts both)
            if min(times.values()) >= RETIME_SECONDS:  # cold-run overhead is small beside the conv itself
                break
        best = min(times, key=times.get)
        self.choice[key], self.timings[key] = best, times
        return best, best_y

    def run(self, kernel: str, x: torch.Tensor, add: torch.Tensor | None = None) -> torch.Tensor:
        """The conv (+ add) (+ ReLU) through ``kernel`` (one of ``self.kernels``)."""
        if kernel == "onednn":
            geometry = (self.padding, self.stride, self.dilation, self.groups)
            if self.weight is None:
                self.weight = torch.ops.mkldnn._reorder_convolution_weight(self.dense_weight.contiguous(), *geometry)
            if add is None:
                return torch.ops.mkldnn._convolution_pointwise(
                    x, self.weight, self.bias, *geometry, "relu" if self.relu else "none", [], "")
            return torch.ops.mkldnn._convolution_pointwise.binary(
                x, add, self.weight, self.bias, *geometry, "add", None, "relu" if self.relu else None, [], "")
        if kernel == "winograd":
            if self.winograd_weight is None:
                self.winograd_weight = winograd.transform_weight(self.dense_weight)
            y = winograd.winograd_conv(x, self.winograd_weight, self.bias)
        elif kernel == "plain":
            y = F.conv2d(x, self.dense_weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        else:
            raise ValueError(f"kernel={kernel!r}: this conv runs {', '.join(map(repr, self.kernels))}")
        if add is not None:
            y.add_(add)  # shapes checked in forward: never broadcasts
        return y.relu_() if self.relu else y

    def weight_digest(self) -> torch.Tensor:
        """sha256 of the weight, as uint8 (computed once, when first asked)."""
        if self._digest is None:
            raw = self.dense_weight.contiguous().view(-1).view(torch.uint8).numpy()
            self._digest = torch.frombuffer(bytearray(hashlib.sha256(raw).digest()), dtype=torch.uint8)
        return self._digest

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        # The packed weight is opaque to state_dict; its digest stands beside the dense weight, so two
        # modules compare equal (``resfpn.analysis.differences``) only when their weights are equal.
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination[prefix + "weight_sha256"] = self.weight_digest()

    def _apply(self, fn, recurse=True):
        # .to(), .float(), .cpu(), .half() ... would convert the buffers but not the opaque packed weight,
        # and the choices were measured for this dtype and device: refuse instead of half-moving.
        raise TypeError("a packed model cannot be moved or cast (.to(), .float(), .cuda(), ...): its oneDNN "
                        "weights and measured kernel choices belong to this CPU and dtype; build the model "
                        "again for another device or dtype (Engine.model does)")

    def extra_repr(self) -> str:
        return (f"out_channels={self.out_channels}, kernel_size={self.kernel_size}, stride={tuple(self.stride)}, "
                f"relu={self.relu}, kernels={self.kernels}")


class PackedBlock(nn.Module):
    """``relu(F(x) + S(x))`` with F's convs packed: ReLU fused into each but the last, which also
    takes the add of S(x) and the block's ReLU.

    Raises:
        ValueError: the block holds a module the packer does not know (e.g. an unfolded BatchNorm):
            dropping it would silently change the result.
    """

    def __init__(self, block: _Residual, use_winograd: bool = True, kernels: tuple[str, ...] = KERNELS,
                 measure: bool = True):
        super().__init__()
        convs = block.residual_convs()
        for name, child in block.named_children():
            if name == "shortcut" or any(child is c for c in convs):
                continue
            if not isinstance(child, (nn.Identity, nn.ReLU)):
                raise ValueError(f"{block.site}.{name} is a {type(child).__name__}, which the packed block would "
                                 f"drop: fold BatchNorm first (resfpn.fold.fold_batchnorm) or serve the model unpacked")
        self.kind, self.site = block.kind, block.site
        self.convs = nn.ModuleList(PackedConv(c, relu=True, use_winograd=use_winograd, kernels=kernels,
                                              where=f"{block.site} residual add", measure=measure) for c in convs)
        self.shortcut = pack(block.shortcut, use_winograd, kernels, measure)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.shortcut(x)
        for conv in self.convs[:-1]:
            x = conv(x)
        return self.convs[-1](x, add=shortcut)


class PackedFPN(FPN):
    """The FPN with packed convs; each top-down merge is fused into its lateral 1×1 conv."""

    def merge(self, level: str, feature: torch.Tensor, coarser: torch.Tensor) -> torch.Tensor:
        top_down = self.upsample["P" + level[1:]](coarser, feature.shape[-2:])  # a 1×1 lateral keeps H, W
        return self.lateral[level](feature, add=top_down)


def pack(module: nn.Module, use_winograd: bool = True, kernels: tuple[str, ...] = KERNELS,
         measure: bool = True) -> nn.Module:
    """``module`` (BatchNorm already folded, eval mode) rewritten in place for CPU inference, returned.

    Residual blocks become ``PackedBlock``; a conv followed by a ReLU in a ``Sequential`` (the stem)
    takes the ReLU in; every other conv becomes a ``PackedConv``; the FPN fuses its merges.
    ``kernels`` are the candidates each conv may choose from (``measure=False``: the first that
    applies, untimed); ``use_winograd=False`` drops Winograd.
    Refuses (ValueError) a BatchNorm it meets outside the pairs folding removes: it has no fused form.
    """
    if isinstance(module, _Residual):
        return PackedBlock(module, use_winograd, kernels, measure)
    if isinstance(module, nn.Conv2d):
        return PackedConv(module, use_winograd=use_winograd, kernels=kernels, measure=measure)
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.training:
        raise ValueError(f"{module} is in training mode: pack an eval-mode, BatchNorm-folded model")
    if isinstance(module, FPN):
        module.__class__ = PackedFPN  # same state, fused merge (PackedFPN adds no attributes)
        for name, lateral in module.lateral.items():
            module.lateral[name] = PackedConv(lateral, use_winograd=use_winograd, kernels=kernels,
                                              where=f"FPN merge into P{name[1:]}", measure=measure)
    previous = None  # the last non-identity child so far, for a Sequential's conv → ReLU
    for name, child in list(module.named_children()):
        if (isinstance(module, nn.Sequential) and isinstance(child, nn.ReLU)
                and isinstance(previous, PackedConv) and not previous.relu):
            previous.relu = True
            setattr(module, name, nn.Identity())
            continue
        setattr(module, name, pack(child, use_winograd, kernels, measure))
        if not isinstance(child, nn.Identity):
            previous = getattr(module, name)
    return module


def packed_bytes(module: nn.Module) -> int:
    """Bytes ``module`` holds in tensors, and those its convs make when they first run a kernel: the
    dense and oneDNN-packed weights, the Winograd weights of eligible convs (EXPANSION× their weight),
    all counted from the start, so the cache budget never grows."""
    total = sum(t.numel() * t.element_size() for t in [*module.parameters(), *module.buffers()])
    for m in module.modules():
        if isinstance(m, PackedConv):
            total += m.weight_bytes
            if "winograd" in m.kernels and m.winograd_weight is None:
                total += m.dense_weight.numel() * m.dense_weight.element_size() * winograd.EXPANSION
    return total


def kernel_counts(module: nn.Module) -> dict[str, int]:
    """How many convs ran each kernel in the forwards since the last call (then forgets them)."""
    counts = Counter()
    for m in module.modules():
        if isinstance(m, PackedConv) and m.last is not None:
            counts[m.last] += 1
            m.last = None
    return {k: counts[k] for k in KERNELS if counts[k]}


def choices(module: nn.Module) -> dict[str, dict[tuple, str]]:
    """Every packed conv's measured choices, by module name: {name: {(shape, dtype, add): kernel}}."""
    return {name: dict(m.choice) for name, m in module.named_modules() if isinstance(m, PackedConv) and m.choice}
