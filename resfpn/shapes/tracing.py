"""Shape-only trace: run the model on the meta device and report every shape, sum and count.

Nothing is allocated and no arithmetic is done, so any input up to 8192×8192 traces in
milliseconds. The model itself is the source of truth: the trace observes its real forward.
"""

from __future__ import annotations

import contextvars
import functools
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import conv_flop_count

from ..model import add as add_module
from ..model.add import AddRecord, ShapeMismatchError
from ..model.blocks import ZeroPadShortcut
from ..model.config import Config
from ..model.network import ResFPN, build_model
from .modelmap import ModelMap, map_model
from .records import LevelRecord, ModuleRecord, PartCounts, Trace
from .receptive import FieldMap, FieldTape

__all__ = ["LevelRecord", "ModuleRecord", "PartCounts", "Trace", "count_params", "trace"]

# Plain torch modules, by exact type; resfpn's own modules declare ``kind`` themselves.
_TORCH_KINDS: dict[type, str] = {
    nn.Conv2d: "conv",
    nn.BatchNorm2d: "bn",
    nn.ReLU: "relu",
    nn.MaxPool2d: "maxpool",
    nn.AvgPool2d: "avgpool",
    nn.Identity: "identity",
}


def _kind(module: nn.Module) -> str | None:
    """The module's declared kind, or its torch type's; None for containers, which are not recorded."""
    return getattr(module, "kind", None) or _TORCH_KINDS.get(type(module))


def count_params(model: ResFPN) -> PartCounts:
    """Parameters per part, counted from the modules (no forward needed)."""
    return PartCounts({part: sum(p.numel() for m in mods for p in m.parameters()) for part, mods in model.parts().items()})


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
        self.add_modules: list[str] = []  # per addition, the innermost module running when it was made
        self._running: list[str] = []
        self._open: dict[int, list[ModuleRecord]] = {}
        self.tape = FieldTape()  # every op's tensors, for the exact receptive fields (resfpn.shapes.receptive)
        self._out_id: list[tuple[ModuleRecord, int]] = []
        self._level_id: dict[str, int] = {}
        self._level_of = {m: lvl for lvl, m in model.level_modules().items()}
        self._stride = {k: v.stride for k, v in model.output_shape().items()}

    def pre(self, name: str, module: nn.Module, args: tuple) -> None:
        self._running.append(name)
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
        self._running.pop()
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
        self.add_modules.append(self._running[-1] if self._running else "")
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
def _meta_model(config: Config) -> tuple[ResFPN, dict[int, _Facts], PartCounts, ModelMap]:
    """The meta-device model for ``config`` with trace hooks installed once, its module facts, its
    parameters per part and its map (none of them changes from one trace to the next)."""
    model = build_model(config, device="meta")
    facts = {}
    for name, module in model.named_modules():
        if not name or isinstance(module, nn.ModuleDict):
            continue
        facts[id(module)] = _Facts(_kind(module), sum(p.numel() for p in module.parameters()), _geometry(module))
        module.register_forward_pre_hook(functools.partial(_pre, name))
        module.register_forward_hook(functools.partial(_post, name))
    return model, facts, count_params(model), map_model(model)


def trace(config: Config) -> Trace:
    """Run ``config``'s model on the meta device and report every shape.

    Returns:
        A ``Trace``. If an addition's operands disagree, ``trace.mismatch`` holds the diagnosed
        ``ShapeMismatchError`` and everything observed before it is still reported.
    """
    model, facts, params, where = _meta_model(config)
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
    macs = dict.fromkeys(params.parts, 0)
    for m in rec.modules:
        if m.kind == "conv":
            macs[where.part[m.name]] += m.macs
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
        map=where,
        add_modules=rec.add_modules,
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
