"""Every input size at once: a per-axis shape program recorded from the model's own meta forward.

One meta forward of the real model (hooks on every module, an observer on ``checked_add``) records,
in execution order, what each op does to a size along one axis, read from the op itself:

- a convolution or pool: kernel, stride, padding, dilation and ceil mode (PyTorch's output-size rule);
- Option A's subsample ``x[..., ::s]``: ``ceil(n / s)``;
- the 'pad' policy's ``PadToMultiple``: up to its multiple;
- a top-down resize: ×``scale`` (floored, as ``F.interpolate`` does) or, under 'match', the size of
  the lateral it is added to;
- an element-wise op (BN, ReLU, identity): the size it was given;
- every checked addition, with its site, operand names and channels.

Evaluating that program on integer arrays answers "does it build, and where does it first fail" for
every size 1..2048 of both axes and every policy in milliseconds, where the meta trace takes tens of
milliseconds per size. Since every op acts on height and width separately, a size (H, W) builds
exactly when H builds on the height axis and W on the width axis, and its first failing addition is
the earlier of the two axes' (tests/test_sizes.py holds all of this against ``resfpn.trace``).

Channels are recorded as symbols (which configuration field a channel count comes from), so one
recording serves every design of the same *structure* (block type, depths, skip option, neck) with
any widths: ``resfpn.shapes.sweep`` prices a hundred designs from a handful of recordings.

    >>> m = size_map(Config())
    >>> compact(m.valid["x2"]["height"])
    '29–32 (mod 32)'
    >>> m.first_failure("x2", "height", 225).where
    'FPN merge into P4'
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ..model import add as add_module
from ..model.add import ShapeMismatchError
from ..model.blocks import ZeroPadShortcut
from ..model.config import POLICIES, Config, Policy
from ..model.fpn import TopDownResize
from ..model.network import PadToMultiple, build_model

MAX_SIZE = 2048  # the map covers input sizes 1..MAX_SIZE on each axis
AXES = ("height", "width")
POLICY_NAMES: tuple[Policy, ...] = tuple(POLICIES)  # ("x2", "match", "pad")
COMMON_SIZES = {"224": (224, 224), "512": (512, 512), "800×1333": (800, 1333), "1024": (1024, 1024)}
ELEMENT_BYTES = 4  # float32, as the trace counts activations

# Probe channel counts for the recording: every channel count the model makes is one of these (or a
# width divided by the bottleneck expansion), and none equals another, so each observed count names
# the field it came from. Widths get primes in 67..127 (times the expansion), so a width, an inner
# width, the input's channels and the FPN width can never be confused.
_RANK_PRIMES = (67, 71, 73, 79, 83)
_PROBE_INPUT_CHANNELS = 61
_PROBE_FPN_WIDTH = 4093
_WIDTH_FIELDS = ("stem_width", "widths.0", "widths.1", "widths.2", "widths.3")


# -- the program ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Op:
    """One step of the per-axis program: value ``out`` from values ``ins``.

    ``kind`` is ``"window"`` (conv or pool: ``axes[i] = (kernel, stride, padding, dilation, ceil_mode)``),
    ``"pad"`` (``axes[i] = (multiple,)``), ``"scale"`` (``axes[i] = (factor,)``), ``"match"`` (the size
    of ``ins[1]``), or ``"add"`` (a checked addition of ``ins[0]`` and ``ins[1]``).
    """

    kind: str
    out: int
    ins: tuple[int, ...]
    axes: tuple[tuple, tuple] | None = None
    module: str = ""  # the module path, or for an addition its site ("FPN merge into P4")
    operands: tuple[str, str] = ("", "")  # an addition's operand names, as the error gives them


@dataclass(frozen=True)
class Conv:
    """A convolution's cost: channels as symbols, kernel, groups, bias; its output is value ``out``."""

    out: int
    in_channels: Any
    out_channels: Any
    kernel: tuple[int, int]
    groups: int
    bias: bool


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: one recording per structure
class Program:
    """The per-axis shape program of one structure (see the module docstring)."""

    ops: tuple[Op, ...]
    values: int  # value 0 is the input
    channels: tuple[Any, ...]  # per value, a channel symbol
    levels: dict[str, int]  # level -> value, C2..C5 then P2..P7
    convs: tuple[Conv, ...]  # the convolutions that ran, in execution order (their MACs)
    weights: tuple[Conv, ...]  # every convolution of the model, run or not (``out`` -1): parameters
    norms: tuple[Any, ...]  # channel symbols of the BatchNorms (2 parameters per channel)
    complete: bool  # False where the recording stopped at a channel mismatch (then no size builds)

    def evaluate(self, n: np.ndarray, axis: int) -> np.ndarray:
        """Sizes of every value along ``axis`` for input sizes ``n``: ``(values, len(n))`` int64."""
        v = np.zeros((self.values, len(n)), dtype=np.int64)
        v[0] = n
        for op in self.ops:
            if op.kind == "add":
                v[op.out] = v[op.ins[0]]
                continue
            x = v[op.ins[0]]
            if op.kind == "window":
                k, s, p, d, ceil = op.axes[axis]
                span = x + 2 * p - d * (k - 1) - 1
                if ceil:  # PyTorch's pooling rule: round up, but the last window must start inside
                    out = -(-span // s) + 1
                    out = np.where((out - 1) * s >= x + p, out - 1, out)
                else:
                    out = span // s + 1
                v[op.out] = out
            elif op.kind == "pad":
                (m,) = op.axes[axis]
                v[op.out] = x + (-x % m)
            elif op.kind == "scale":
                (factor,) = op.axes[axis]
                v[op.out] = np.floor(x * float(factor)).astype(np.int64)
            elif op.kind == "match":
                v[op.out] = v[op.ins[1]]
            else:
                raise ValueError(f"unknown op kind {op.kind!r}")
        return v

    @property
    def additions(self) -> tuple[Op, ...]:
        return tuple(op for op in self.ops if op.kind == "add")


class _Recorder:
    """Forward hooks that write the program while the meta model runs once."""

    def __init__(self) -> None:
        self.value_of: dict[int, int] = {}  # id(tensor) -> value
        self.channels: list[int] = []
        self.shapes: list[tuple[int, int]] = []  # observed (H, W) per value: the self-check
        self.ops: list[Op] = []
        self.convs: list[Conv] = []
        self.levels: dict[str, int] = {}
        self.level_at: dict[str, str] = {}  # module path -> level
        self.keep: list[Any] = []  # keeps tensor ids unique while recording
        self.pending_match: dict[int, int] = {}  # value made by a 'match' resize -> op index

    def new_value(self, t) -> int:
        self.keep.append(t)
        self.value_of[id(t)] = len(self.channels)
        self.channels.append(int(t.shape[1]))
        self.shapes.append((int(t.shape[-2]), int(t.shape[-1])))
        return len(self.channels) - 1

    def read(self, t, name: str) -> int:
        if id(t) not in self.value_of:
            raise RuntimeError(f"size program: {name} read a tensor no recorded op produced")
        return self.value_of[id(t)]

    def post(self, name: str, module, args: tuple, out: Any) -> None:
        if isinstance(out, torch.Tensor) and next(module.children(), None) is None:
            self._leaf(name, module, args, out)
        # containers: their output is some op's output, recorded there
        if name in self.level_at and isinstance(out, torch.Tensor):
            self.levels[self.level_at[name]] = self.read(out, name)

    def _leaf(self, name: str, module, args: tuple, out: Any) -> None:
        x = self.read(args[0], name)
        if isinstance(module, nn.Conv2d):
            if not isinstance(module.padding, tuple):
                raise ValueError(f"{name}: padding={module.padding!r}; the size program needs numeric padding")
            axes = tuple((module.kernel_size[i], module.stride[i], module.padding[i], module.dilation[i], False)
                         for i in range(2))
            y = self._op("window", out, x, axes, name)
            self.convs.append(Conv(y, module.in_channels, module.out_channels, tuple(module.kernel_size),
                                   module.groups, module.bias is not None))
        elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
            k, s, p = (_pair(getattr(module, a)) for a in ("kernel_size", "stride", "padding"))
            d = _pair(getattr(module, "dilation", 1))
            self._op("window", out, x, tuple((k[i], s[i], p[i], d[i], bool(module.ceil_mode)) for i in range(2)), name)
        elif isinstance(module, ZeroPadShortcut):
            self._op("window", out, x, ((1, module.stride, 0, 1, False),) * 2, name)
        elif isinstance(module, PadToMultiple):
            self._op("pad", out, x, ((module.multiple,),) * 2, name)
        elif isinstance(module, TopDownResize):
            if module.policy == "match":  # F.interpolate(size=lateral's size): resolved at its addition
                y = self._op("match", out, x, None, name)
                self.pending_match[y] = len(self.ops) - 1
            else:
                self._op("scale", out, x, ((2.0,),) * 2, name)
        elif isinstance(module, (_ElementWise, nn.ReLU, nn.Identity)):
            if id(out) not in self.value_of:  # not in place: a new tensor of the same size
                self.keep.append(out)
                self.value_of[id(out)] = x
        else:
            raise NotImplementedError(
                f"{name} ({type(module).__name__}): the size program has no size rule for this module; add one "
                "to resfpn.shapes.sizes")

    def _op(self, kind: str, out, x: int, axes, name: str) -> int:
        # A new value even when the module returned its input (PadToMultiple at a multiple of 32):
        # the rule must hold at every size, not only the one recorded.
        y = self.new_value(out)
        self.ops.append(Op(kind, y, (x,), axes, name))
        return y

    def on_add(self, record, a, b, out) -> None:
        ia, ib = self.read(a, record.where), self.read(b, record.where)
        if ib in self.pending_match:
            i = self.pending_match.pop(ib)
            self.ops[i] = Op("match", ib, (self.ops[i].ins[0], ia), None, self.ops[i].module)
        y = self.new_value(out if out is not None else a)
        self.ops.append(Op("add", y, (ia, ib), None, record.where, tuple(record.operands)))


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


# -- structures and channel symbols ---------------------------------------------------------------

def structure_key(config: Config) -> Config:
    """``config`` with everything the program does not depend on normalised away: input size, batch,
    input channels and the widths' values (only their order and equalities matter, since they decide
    identity shortcuts and Option A's padding)."""
    values = [config.stem_width, *config.widths]
    ranks = sorted(set(values))
    e = config.expansion if config.block == "bottleneck" else 1
    probe = [e * _RANK_PRIMES[ranks.index(v)] for v in values]
    return config.replace(input_height=256, input_width=256, batch=1, input_channels=_PROBE_INPUT_CHANNELS,
                          stem_width=probe[0], widths=tuple(probe[1:]), fpn_width=_PROBE_FPN_WIDTH)


def _symbol(c: int, probe: Config) -> Any:
    """The field a probe channel count comes from: ``"in"``, ``"fpn"``, ``("rank", r)`` or ``("inner", r)``."""
    e = probe.expansion if probe.block == "bottleneck" else 1
    if c == _PROBE_INPUT_CHANNELS:
        return "in"
    if c == _PROBE_FPN_WIDTH:
        return "fpn"
    for r, p in enumerate(_RANK_PRIMES):
        if c == e * p:
            return ("rank", r)
        if c == p:
            return ("inner", r)
    raise RuntimeError(f"size program: channel count {c} comes from no configuration field")


def _symbolic(c: Conv, probe: Config) -> Conv:
    return Conv(c.out, _symbol(c.in_channels, probe), _symbol(c.out_channels, probe), c.kernel, c.groups, c.bias)


SYMBOLS = ("in", "fpn", *(("rank", r) for r in range(len(_RANK_PRIMES))),
           *(("inner", r) for r in range(len(_RANK_PRIMES))))


def channel_table(config: Config) -> np.ndarray:
    """``config``'s channel count for each of ``SYMBOLS`` (0 for a rank the design does not have)."""
    ranks = sorted({config.stem_width, *config.widths})
    ranks += [0] * (len(_RANK_PRIMES) - len(ranks))
    return np.array([config.input_channels, config.fpn_width, *ranks, *(r // config.expansion for r in ranks)],
                    dtype=np.int64)


@functools.lru_cache(maxsize=128)
def _codes(prog: "Program") -> dict[str, np.ndarray]:
    """The program's channel symbols as indices into ``SYMBOLS``, and its conv facts, as arrays."""
    index = {s: i for i, s in enumerate(SYMBOLS)}

    def convs(cs):
        return {"out": np.array([c.out for c in cs], dtype=np.int64),
                "cin": np.array([index[c.in_channels] for c in cs], dtype=np.int64),
                "cout": np.array([index[c.out_channels] for c in cs], dtype=np.int64),
                "kk": np.array([c.kernel[0] * c.kernel[1] for c in cs], dtype=np.int64),
                "groups": np.array([c.groups for c in cs], dtype=np.int64),
                "bias": np.array([c.bias for c in cs], dtype=np.int64)}

    return {"values": np.array([index[c] for c in prog.channels], dtype=np.int64),
            "norms": np.array([index[c] for c in prog.norms], dtype=np.int64),
            "levels": np.array(list(prog.levels.values()), dtype=np.int64),
            **{f"run_{k}": v for k, v in convs(prog.convs).items()},
            **{f"all_{k}": v for k, v in convs(prog.weights).items()}}


def bind(symbol: Any, config: Config) -> int:
    """The channel count ``symbol`` stands for in ``config``."""
    if symbol == "in":
        return config.input_channels
    if symbol == "fpn":
        return config.fpn_width
    kind, r = symbol
    width = sorted({config.stem_width, *config.widths})[r]
    return width if kind == "rank" else width // config.expansion


@functools.lru_cache(maxsize=128)
def program(structure: Config) -> Program:
    """Record the program of ``structure`` (a ``structure_key``) from one meta forward of its model."""
    model = build_model(structure, device="meta")
    norms = _stand_in_for_batchnorm(model)
    weights = [Conv(-1, m.in_channels, m.out_channels, tuple(m.kernel_size), m.groups, m.bias is not None)
               for m in model.modules() if isinstance(m, nn.Conv2d)]
    rec = _Recorder()
    rec.level_at = {path: level for level, path in model.level_modules().items()}
    handles = [m.register_forward_hook(functools.partial(_hook, rec, name)) for name, m in model.named_modules() if name]
    observer = add_module._observer.set(rec.on_add)
    complete = True
    try:
        with torch.inference_mode():
            x = torch.empty(structure.input_shape, device="meta")
            rec.new_value(x)
            model(x)
    except ShapeMismatchError as err:
        if err.dim != 1:  # the probe size suits every policy's spatial rule; only channels can disagree
            raise RuntimeError(f"size program: the recording at 256×256 stopped at a spatial mismatch: {err.headline}")
        complete = False
    finally:
        add_module._observer.reset(observer)
        for h in handles:
            h.remove()
    if rec.pending_match:
        raise RuntimeError("size program: a 'match' resize whose result was never added to a lateral")
    prog = Program(
        ops=tuple(rec.ops), values=len(rec.channels), channels=tuple(_symbol(c, structure) for c in rec.channels),
        levels=dict(rec.levels),
        convs=tuple(_symbolic(c, structure) for c in rec.convs),
        weights=tuple(_symbolic(c, structure) for c in weights),
        norms=tuple(_symbol(c, structure) for c in norms), complete=complete,
    )
    _self_check(prog, rec.shapes)
    return prog


class _ElementWise(nn.Module):
    """Keeps its input's size (a BatchNorm's size rule) and checks the channel count as BatchNorm does."""

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.channels:
            raise RuntimeError(f"BatchNorm for {self.channels} channels got {x.shape[1]}")
        return x.clone()


def _stand_in_for_batchnorm(model: nn.Module) -> list[int]:
    """Swap every BatchNorm for an element-wise stand-in of the same channel count; returns their channels.

    A BatchNorm keeps its input's size, but on the meta device it runs a decomposition that costs
    milliseconds per call (most of a recording); the stand-in keeps the size rule and the channel check.
    """
    channels = []
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.BatchNorm2d):
                channels.append(child.num_features)
                setattr(parent, name, _ElementWise(child.num_features))
    return channels


def _hook(rec: _Recorder, name: str, module, args, out) -> None:
    rec.post(name, module, args, out)


def _self_check(prog: Program, shapes: list[tuple[int, int]]) -> None:
    """The program must give back every size the recording observed (cheap, and catches a wrong rule)."""
    for axis in range(2):
        n = np.array([shapes[0][axis]])
        got = prog.evaluate(n, axis)[:, 0]
        want = np.array([s[axis] for s in shapes])
        bad = np.nonzero(got != want)[0]
        if len(bad):
            op = next(o for o in prog.ops if o.out == bad[0])
            raise RuntimeError(f"size program: {op.module} ({op.kind}) gives {got[bad[0]]}, the model gave {want[bad[0]]}")


# -- the map ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Failure:
    """The first addition that fails at one size: site, operand names and both shapes ``(N, C, H, W)``."""

    where: str
    operands: tuple[str, str]
    shapes: tuple[tuple[int, int, int, int], tuple[int, int, int, int]]

    def to_dict(self) -> dict[str, Any]:
        return {"where": self.where, "operands": list(self.operands), "shapes": [list(s) for s in self.shapes]}


@dataclass
class AxisMap:
    """One policy and axis over sizes 1..MAX_SIZE: sizes of every value, and the first failing addition."""

    sizes: np.ndarray  # (values, MAX_SIZE): value sizes, column i for input size i + 1
    first_fail: np.ndarray  # (MAX_SIZE,): index into the program's additions, -1 where it builds

    @property
    def builds(self) -> np.ndarray:
        return self.first_fail < 0


@dataclass
class SizeMap:
    """Valid sizes of one design for every policy and axis (``size_map``)."""

    config: Config
    programs: dict[str, Program]
    axes: dict[str, dict[str, AxisMap]]  # policy -> axis -> map
    valid: dict[str, dict[str, list[int]]] = field(default_factory=dict)  # policy -> axis -> sorted sizes

    @property
    def max_size(self) -> int:
        return len(next(iter(next(iter(self.axes.values())).values())).first_fail)

    def summary(self, policy: str, axis: str) -> str:
        """The valid sizes in a few words, e.g. ``'29–32 (mod 32)'`` (see ``compact``)."""
        return compact(self.valid[policy][axis], self.max_size)

    def builds(self, policy: str, height: int, width: int) -> bool:
        return bool(self.axes[policy]["height"].builds[height - 1] and self.axes[policy]["width"].builds[width - 1])

    def failure_at(self, policy: str, height: int, width: int) -> Failure | None:
        """The first addition that fails for input ``height``×``width`` (None where it builds): the
        earlier of the two axes' first failures, with both operands' shapes at that size. Sizes beyond
        the map are evaluated on their own (the program holds at any size)."""
        if max(height, width) > self.max_size:
            one = size_map_at(self.config.replace(policy=policy), height, width)
            return one.failure_at(policy, 1, 1)
        prog, mh, mw = self.programs[policy], self.axes[policy]["height"], self.axes[policy]["width"]
        js = [int(j) for j in (mh.first_fail[height - 1], mw.first_fail[width - 1]) if j >= 0]
        if not js:
            return None
        op = prog.additions[min(js)]
        c = self.config
        a, b = ((c.batch, bind(prog.channels[v], c), int(mh.sizes[v, height - 1]), int(mw.sizes[v, width - 1]))
                for v in op.ins)
        return Failure(op.module, op.operands, (a, b))

    def first_failure(self, policy: str, axis: str, n: int, other: int | None = None) -> Failure | None:
        """The first failing addition at size ``n`` on ``axis`` (None where it builds), with the other
        axis at ``other`` (default: the design's own size there if it builds, else the nearest that does)."""
        if self.axes[policy][axis].first_fail[n - 1] < 0:
            return None
        other_axis = "width" if axis == "height" else "height"
        if other is None:
            other = self.nearest_valid(policy, other_axis, getattr(self.config, f"input_{other_axis}")) or 1
        return self.failure_at(policy, n, other) if axis == "height" else self.failure_at(policy, other, n)

    def nearest_valid(self, policy: str, axis: str, n: int) -> int | None:
        """The size nearest to ``n`` on ``axis`` that builds (the smaller one on a tie), or None."""
        valid = self.valid[policy][axis]
        if not valid:
            return None
        return min(valid, key=lambda v: (abs(v - n), v))

    def level_sizes(self, policy: str, axis: str, n: int) -> dict[str, int]:
        """Every level's size along ``axis`` for input size ``n`` (levels after a failure are not reached)."""
        prog, am = self.programs[policy], self.axes[policy][axis]
        order = sorted(prog.levels, key=lambda k: (k[0] != "C", int(k[1:])))
        return {level: int(am.sizes[prog.levels[level], n - 1]) for level in order}

    def to_dict(self, failures: int = 8) -> dict[str, Any]:
        """JSON: per policy and axis the sorted valid sizes, a compact summary, and the first failing
        addition for ``failures`` sizes that do not build (spread over 1..MAX_SIZE)."""
        out: dict[str, Any] = {"max_size": self.max_size, "config": self.config.to_dict(), "policies": {}}
        for policy, axes in self.axes.items():
            out["policies"][policy] = {}
            for axis in AXES:
                valid = self.valid[policy][axis]
                bad = np.nonzero(~axes[axis].builds)[0] + 1
                sample = bad[np.linspace(0, len(bad) - 1, min(failures, len(bad))).astype(int)] if len(bad) else []
                out["policies"][policy][axis] = {
                    "valid": valid,
                    "summary": self.summary(policy, axis),
                    "failures": [{"size": int(n)} | f.to_dict() for n in sample
                                 if (f := self.first_failure(policy, axis, int(n))) is not None],
                }
        return out


def size_map(config: Config, policies: tuple[str, ...] = POLICY_NAMES, max_size: int = MAX_SIZE) -> SizeMap:
    """Which input sizes 1..``max_size`` build, per policy and axis, for ``config``'s design."""
    n = np.arange(1, max_size + 1, dtype=np.int64)
    programs, axes, valid = {}, {}, {}
    for policy in policies:
        prog = program(structure_key(config.replace(policy=policy)))
        programs[policy], axes[policy], valid[policy] = prog, {}, {}
        for i, axis in enumerate(AXES):
            sizes = prog.evaluate(n, i)
            first = _first_failures(prog, sizes, config)
            axes[policy][axis] = AxisMap(sizes, first)
            valid[policy][axis] = (np.nonzero(first < 0)[0] + 1).tolist()
    return SizeMap(config, programs, axes, valid)


def size_map_at(config: Config, height: int, width: int) -> SizeMap:
    """A one-size map of ``config``'s policy: column 0 of each axis is ``height`` (``width``)."""
    prog = program(structure_key(config))
    axes = {}
    for i, (axis, n) in enumerate(zip(AXES, (height, width))):
        sizes = prog.evaluate(np.array([n], dtype=np.int64), i)
        axes[axis] = AxisMap(sizes, _first_failures(prog, sizes, config))
    return SizeMap(config, {config.policy: prog}, {config.policy: axes},
                   {config.policy: {a: [] for a in AXES}})


def _first_failures(prog: Program, sizes: np.ndarray, config: Config) -> np.ndarray:
    first = np.full(sizes.shape[1], -1, dtype=np.int64)
    for j, op in enumerate(prog.additions):
        a, b = op.ins
        if bind(prog.channels[a], config) != bind(prog.channels[b], config):
            bad = np.ones(sizes.shape[1], dtype=bool)
        else:
            bad = sizes[a] != sizes[b]
        first[bad & (first < 0)] = j
    if not prog.complete:  # the recording stopped at a channel mismatch; nothing after it is known
        first[first < 0] = len(prog.additions) - 1
    return first


def compact(valid: list[int], max_size: int = MAX_SIZE) -> str:
    """The valid sizes in a few words: ``'29–32 (mod 32)'``, ``'every size'``, ``'none'``, or runs.

    A set that repeats with period 2^k from the start (the stride-2 layers' rounding) is written as its
    residues, e.g. ``'25–32 (mod 32)'`` for 25..32, 57..64, ...; other sets as ranges.

        >>> compact(list(range(1, 2049)))
        'every size'
        >>> compact([n for n in range(1, 2049) if n % 32 in (29, 30, 31, 0)])
        '29–32 (mod 32)'
    """
    if not valid:
        return "none"
    if len(valid) == max_size:
        return "every size"
    ok = np.zeros(max_size + 1, dtype=bool)
    ok[valid] = True
    for k in range(1, 11):
        period = 2**k
        if max_size % period or 2 * period > max_size:
            break
        pattern = ok[1: period + 1]
        if np.array_equal(ok[1:], np.tile(pattern, max_size // period)):
            return f"{_ranges([i + 1 for i in np.nonzero(pattern)[0]])} (mod {period})"
    return _ranges(valid)


def _ranges(values: list[int]) -> str:
    runs: list[list[int]] = []
    for v in values:
        if runs and v == runs[-1][1] + 1:
            runs[-1][1] = v
        else:
            runs.append([v, v])
    return ", ".join(f"{a}" if a == b else f"{a}–{b}" for a, b in runs)


def aspect_sizes(size_map_: SizeMap, policy: str, height: int, width: int, count: int = 6,
                 tolerance: float = 0.01) -> list[dict[str, Any]]:
    """The sizes nearest to ``height``×``width`` that build under ``policy`` and keep its aspect ratio
    within ``tolerance`` (relative), nearest in area first: ``[{"height", "width", "aspect_error", "scale"}]``."""
    valid_h = np.array(size_map_.valid[policy]["height"], dtype=np.int64)
    valid_w = np.array(size_map_.valid[policy]["width"], dtype=np.int64)
    if not len(valid_h) or not len(valid_w):
        return []
    ratio = height / width
    # For every valid height, the valid widths just below and above height / ratio.
    target = valid_h / ratio
    idx = np.searchsorted(valid_w, target)
    cands = []
    for off in (-1, 0):
        j = np.clip(idx + off, 0, len(valid_w) - 1)
        cands.append(np.stack([valid_h, valid_w[j]], 1))
    pairs = np.unique(np.concatenate(cands), axis=0)
    err = np.abs(pairs[:, 0] / pairs[:, 1] / ratio - 1)
    keep = pairs[err <= tolerance]
    err = err[err <= tolerance]
    area = keep[:, 0] * keep[:, 1] / (height * width)
    order = np.lexsort((err, np.abs(np.log(area))))
    return [{"height": int(keep[i, 0]), "width": int(keep[i, 1]), "aspect_error": round(float(err[i]), 5),
             "scale": round(math.sqrt(float(area[i])), 4)} for i in order[:count]]


# -- cost against input size -------------------------------------------------------------------------

def parameters(prog: Program, config: Config) -> int:
    """Parameters of the design: every conv's weight (and bias) and every BatchNorm's scale and shift."""
    k, table = _codes(prog), channel_table(config)
    cin, cout = table[k["all_cin"]], table[k["all_cout"]]
    return int((cout * (cin // k["all_groups"]) * k["all_kk"] + cout * k["all_bias"]).sum() + 2 * table[k["norms"]].sum())


@dataclass
class Costs:
    """MACs, parameters and the trace's peak-activation estimate for input sizes ``heights``×``widths``."""

    heights: np.ndarray
    widths: np.ndarray
    builds: np.ndarray
    macs: np.ndarray
    params: int
    peak_bytes: np.ndarray  # the trace's estimate: all levels plus six of the largest tensor (float32)
    level_bytes: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        return {"height": self.heights.tolist(), "width": self.widths.tolist(), "builds": self.builds.tolist(),
                "macs": self.macs.tolist(), "params": self.params, "peak_bytes": self.peak_bytes.tolist(),
                "level_bytes": self.level_bytes.tolist()}


@functools.lru_cache(maxsize=1024)
def _sizes_at(prog: Program, n: int, axis: int) -> np.ndarray:
    return prog.evaluate(np.array([n], dtype=np.int64), axis)


def costs(config: Config, heights: Any, widths: Any) -> Costs:
    """Costs of ``config``'s design at each input size ``(heights[i], widths[i])``, under its own policy,
    analytically from the program (equal to the trace's ``macs.total``, ``params.total`` and
    ``activation_bytes``'s levels and peak, where the size builds)."""
    prog = program(structure_key(config))
    h, w = np.asarray(heights, dtype=np.int64), np.asarray(widths, dtype=np.int64)
    if len(h) == 1:  # one size (the sweep): shared by every design of the structure
        sh, sw = _sizes_at(prog, int(h[0]), 0), _sizes_at(prog, int(w[0]), 1)
    else:
        sh, sw = prog.evaluate(h, 0), prog.evaluate(w, 1)
    fh, fw = _first_failures(prog, sh, config), _first_failures(prog, sw, config)
    area = sh * sw  # (values, sizes)
    k, table = _codes(prog), channel_table(config)
    per_conv = table[k["run_cout"]] * (table[k["run_cin"]] // k["run_groups"]) * k["run_kk"]
    macs = per_conv @ area[k["run_out"]]
    per_value = table[k["values"]][:, None] * area * config.batch * ELEMENT_BYTES
    levels = per_value[k["levels"]].sum(0)
    largest = per_value[1:].max(0) if prog.values > 1 else np.zeros(len(h), dtype=np.int64)
    return Costs(h, w, (fh < 0) & (fw < 0), macs * config.batch, parameters(prog, config), levels + 6 * largest,
                 levels)
