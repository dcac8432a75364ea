"""Shape-only trace: run the model on the meta device and report every shape, sum and count.

Nothing is allocated and no arithmetic is done, so any input up to 8192×8192 traces in
milliseconds. The model itself is the source of truth: the trace observes its real forward.
"""

from __future__ import annotations

import contextvars
import functools
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import conv_flop_count

from . import add as add_module
from .add import AddRecord, ShapeMismatchError
from .blocks import AvgDownProjection, BasicBlock, Bottleneck, Projection, ZeroPadShortcut
from .backbone import Stem
from .config import Config
from .fpn import TopDownResize
from .model import PadToMultiple, ResFPN, build_model
from .receptive import FieldMap, FieldTape

PARTS = ("stem", "layer1", "layer2", "layer3", "layer4", "fpn.lateral", "fpn.output", "fpn.extra")
BACKBONE_PARTS = PARTS[:5]


@dataclass
class ModuleRecord:
    """One module call, in execution order. Shapes are ``(N, C, H, W)``; ``None`` if it never finished."""

    name: str
    kind: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...] | None = None
    params: int = 0
    macs: int = 0
    receptive_field: int | None = None  # exact: the largest field over positions (see resfpn.receptive)
    kernel: int | None = None  # effective kernel size of a conv or pool, None for other kinds
    stride: int | None = None
    receptive_field_range: tuple[int, int] | None = None  # (min, max) over positions and both axes

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "in_shape": list(self.in_shape),
            "out_shape": list(self.out_shape) if self.out_shape is not None else None,
            "params": self.params,
            "macs": self.macs,
            "receptive_field": self.receptive_field,
            "receptive_field_range": list(self.receptive_field_range) if self.receptive_field_range else None,
            "kernel": self.kernel,
            "stride": self.stride,
        }


@dataclass
class LevelRecord:
    """A pyramid or backbone level: shape ``(N, C, ceil(H/stride), ceil(W/stride))``."""

    name: str
    shape: tuple[int, int, int, int]
    stride: int
    receptive_field: int  # exact theoretical field in input pixels: the largest over positions
    bytes: int
    module: str
    receptive_field_range: tuple[int, int] = (0, 0)  # (min, max) over positions and both axes
    receptive_field_axes: dict[str, list[int]] = field(default_factory=dict)  # {"height": [min, max], "width": ..}

    def to_dict(self) -> dict[str, Any]:
        return {
            "shape": list(self.shape),
            "stride": self.stride,
            "receptive_field": self.receptive_field,
            "receptive_field_range": list(self.receptive_field_range),
            "receptive_field_axes": self.receptive_field_axes,
            "bytes": self.bytes,
            "module": self.module,
        }


@dataclass
class PartCounts:
    """A count (parameters or MACs) per part of the model, with totals."""

    parts: dict[str, int]

    @property
    def backbone(self) -> int:
        return sum(self.parts[p] for p in BACKBONE_PARTS)

    @property
    def fpn(self) -> int:
        return sum(v for p, v in self.parts.items() if p.startswith("fpn."))

    @property
    def total(self) -> int:
        return sum(self.parts.values())

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.total, "backbone": self.backbone, "fpn": self.fpn, "parts": dict(self.parts)}


@dataclass
class Trace:
    """Everything the meta run learned about a configuration. ``ok`` is False after a mismatch."""

    config: Config
    input_shape: tuple[int, int, int, int]
    backbone_input_shape: tuple[int, ...] | None
    modules: list[ModuleRecord]
    levels: dict[str, LevelRecord]
    additions: list[AddRecord]
    mismatch: ShapeMismatchError | None
    params: PartCounts
    macs: PartCounts
    declared: dict[str, tuple[int, int]] = field(default_factory=dict)  # level -> (channels, stride)
    fields: dict[str, FieldMap] = field(default_factory=dict)  # level -> exact field of every cell

    @property
    def ok(self) -> bool:
        return self.mismatch is None

    @property
    def flops(self) -> PartCounts:
        """FLOPs = 2 × MACs (the ResNet paper's "FLOPs" are MACs)."""
        return PartCounts({k: 2 * v for k, v in self.macs.parts.items()})

    @property
    def activation_bytes(self) -> dict[str, Any]:
        levels = {k: v.bytes for k, v in self.levels.items()}
        largest = max((_nbytes(m.out_shape) for m in self.modules if m.out_shape), default=0)
        return {
            "levels": levels,
            "total": sum(levels.values()),
            # Inference keeps the levels alive plus a few working tensors at a time: measured peaks
            # (bench/bench.py, item 7) stay within the levels plus six of the largest tensor.
            "peak_estimate": sum(levels.values()) + 6 * largest,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "ok": self.ok,
            "input_shape": list(self.input_shape),
            "backbone_input_shape": list(self.backbone_input_shape) if self.backbone_input_shape else None,
            "levels": {k: v.to_dict() for k, v in self.levels.items()},
            "additions": [
                {"where": a.where, "operands": list(a.operands), "shapes": [list(s) for s in a.shapes], "ok": a.ok}
                for a in self.additions
            ],
            "mismatch": self.mismatch.to_dict() if self.mismatch else None,
            "params": self.params.to_dict(),
            "macs": self.macs.to_dict(),
            "flops": self.flops.to_dict(),
            "activation_bytes": self.activation_bytes,
            "modules": [m.to_dict() for m in self.modules],
        }


_KINDS: list[tuple[type, str]] = [
    (nn.Conv2d, "conv"),
    (nn.BatchNorm2d, "bn"),
    (nn.ReLU, "relu"),
    (nn.MaxPool2d, "maxpool"),
    (nn.AvgPool2d, "avgpool"),
    (nn.Identity, "identity"),
    (TopDownResize, "upsample"),
    (PadToMultiple, "pad"),
    (ZeroPadShortcut, "shortcut-zero-pad"),
    (AvgDownProjection, "shortcut-avg-down"),
    (Projection, "shortcut-projection"),
    (BasicBlock, "basic-block"),
    (Bottleneck, "bottleneck-block"),
    (Stem, "stem"),
    (nn.Sequential, "stage"),
]


def _kind(module: nn.Module) -> str | None:
    for cls, kind in _KINDS:
        if isinstance(module, cls):
            return kind
    return None


def _part(name: str) -> str:
    if name.startswith("backbone."):
        return name.split(".")[1]
    if name.startswith("fpn.lateral"):
        return "fpn.lateral"
    if name.startswith("fpn.output"):
        return "fpn.output"
    return "fpn.extra"


def _nbytes(shape: tuple[int, ...] | None, element_size: int = 4) -> int:
    n = element_size
    for s in shape or ():
        n *= s
    return n


def count_params(model: ResFPN) -> PartCounts:
    """Parameters per part, counted from the modules (no forward needed)."""
    parts = dict.fromkeys(PARTS, 0)
    for name, p in model.named_parameters():
        parts[_part(name)] += p.numel()
    return PartCounts(parts)


def _geometry(module: nn.Module) -> tuple[int, int] | None:
    """(effective kernel, stride) of a module that moves the receptive field, else None."""
    if isinstance(module, nn.Conv2d):
        k, s, d = module.kernel_size[0], module.stride[0], module.dilation[0]
        return d * (k - 1) + 1, s
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        k = module.kernel_size if isinstance(module.kernel_size, int) else module.kernel_size[0]
        s = module.stride if isinstance(module.stride, int) else module.stride[0]
        return k, s
    if isinstance(module, ZeroPadShortcut):
        return 1, module.stride
    return None


class _Recorder:
    """Forward hooks that fill a ``Trace`` while the meta model runs."""

    def __init__(self, model: ResFPN, facts: dict[int, "_Facts"]):
        self.model = model
        self._facts = facts
        self.modules: list[ModuleRecord] = []
        self.levels: dict[str, LevelRecord] = {}
        self.additions: list[AddRecord] = []
        self.backbone_input: tuple[int, ...] | None = None
        self._open: dict[int, list[ModuleRecord]] = {}
        self.tape = FieldTape()  # every op's tensors, for the exact receptive fields (resfpn.receptive)
        self._out_id: list[tuple[ModuleRecord, int]] = []
        self._level_id: dict[str, int] = {}
        self._level_of = {m: lvl for lvl, m in model.level_modules().items()}
        self._stride = {k: v.stride for k, v in model.output_shape().items()}

    def pre(self, name: str, module: nn.Module, args: tuple) -> None:
        x = args[0]
        if name == "backbone":
            self.backbone_input = tuple(x.shape)
            return
        facts = self._facts[id(module)]
        if facts.kind is None:
            return
        kernel, stride = facts.geometry or (None, None)
        rec = ModuleRecord(name, facts.kind, tuple(x.shape), params=facts.params, kernel=kernel, stride=stride)
        self.modules.append(rec)
        self._open.setdefault(id(module), []).append(rec)

    def post(self, name: str, module: nn.Module, args: tuple, out: Any) -> None:
        if name == "backbone":
            return
        x = args[0]
        if isinstance(out, torch.Tensor):
            self.tape.module(module, args, out)
            stack = self._open.get(id(module))
            if stack:
                rec = stack.pop()
                rec.out_shape = tuple(out.shape)
                self._out_id.append((rec, id(out)))
                if isinstance(module, nn.Conv2d):
                    flops = conv_flop_count(list(x.shape), list(module.weight.shape), list(out.shape))
                    rec.macs = flops // 2
            level = self._level_of.get(name)
            if level is not None:
                self._level_id[level] = id(out)
                self.levels[level] = LevelRecord(
                    level, tuple(out.shape), self._stride[level], 0, out.numel() * out.element_size(), name
                )

    def on_add(self, record: AddRecord, a: torch.Tensor, b: torch.Tensor, out: torch.Tensor | None) -> None:
        self.additions.append(record)
        if out is not None:
            self.tape.add(a, b, out)

    def fill_receptive_fields(self) -> dict[str, FieldMap]:
        """Solve the tape and write every module's and level's exact field; returns the level fields."""
        fields = self.tape.solve()
        for rec, out in self._out_id:
            rec.receptive_field_range = fields[out].range
            rec.receptive_field = fields[out].max
        for level, out in self._level_id.items():
            lv, f = self.levels[level], fields[out]
            lv.receptive_field, lv.receptive_field_range, lv.receptive_field_axes = f.max, f.range, f.axes
        return {level: fields[out] for level, out in self._level_id.items()}


@dataclass(frozen=True)
class _Facts:
    """What the trace needs to know about one module, computed once per cached model."""

    kind: str | None
    params: int
    geometry: tuple[int, int] | None


# The recorder of the trace running in this context; the hooks below report to it.
_active: contextvars.ContextVar[_Recorder | None] = contextvars.ContextVar("resfpn_trace", default=None)


@functools.lru_cache(maxsize=32)
def _meta_model(config: Config) -> tuple[ResFPN, dict[int, _Facts], PartCounts]:
    """The meta-device model for ``config`` with trace hooks installed once, its module facts and
    its parameters per part (neither changes from one trace to the next)."""
    model = build_model(config, device="meta")
    facts = {}
    for name, module in model.named_modules():
        if not name or isinstance(module, nn.ModuleDict):
            continue
        facts[id(module)] = _Facts(_kind(module), sum(p.numel() for p in module.parameters()), _geometry(module))
        module.register_forward_pre_hook(functools.partial(_pre, name))
        module.register_forward_hook(functools.partial(_post, name))
    return model, facts, count_params(model)


def trace(config: Config) -> Trace:
    """Run ``config``'s model on the meta device and report every shape.

    Returns:
        A ``Trace``. If an addition's operands disagree, ``trace.mismatch`` holds the diagnosed
        ``ShapeMismatchError`` and everything observed before it is still reported.
    """
    model, facts, params = _meta_model(config)
    rec = _Recorder(model, facts)
    token = _active.set(rec)
    observer = add_module._observer.set(rec.on_add)
    mismatch = None
    try:
        with torch.inference_mode():
            x = torch.empty(config.input_shape, device="meta")
            rec.tape.set_input(x)
            model(x)
    except ShapeMismatchError as err:
        mismatch = err
    finally:
        add_module._observer.reset(observer)
        _active.reset(token)
    fields = rec.fill_receptive_fields()
    macs = dict.fromkeys(PARTS, 0)
    for m in rec.modules:
        if m.kind == "conv":
            macs[_part(m.name)] += m.macs
    declared = {k: (v.channels, v.stride) for k, v in model.output_shape().items()}
    return Trace(
        config=config,
        input_shape=config.input_shape,
        backbone_input_shape=rec.backbone_input,
        modules=rec.modules,
        levels=dict(sorted(rec.levels.items(), key=lambda kv: (kv[0][0] != "C", kv[0]))),
        additions=rec.additions,
        mismatch=mismatch,
        params=params,
        macs=PartCounts(macs),
        declared=declared,
        fields=dict(sorted(fields.items(), key=lambda kv: (kv[0][0] != "C", kv[0]))),
    )


def _pre(name: str, module: nn.Module, args: tuple) -> None:
    rec = _active.get()
    if rec is not None:
        rec.pre(name, module, args)


def _post(name: str, module: nn.Module, args: tuple, out: Any) -> None:
    rec = _active.get()
    if rec is not None:
        rec.post(name, module, args, out)
