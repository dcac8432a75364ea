"""What a trace reports: one record per module call, per level and per part, and the ``Trace``.

The records are plain data (``to_dict`` gives the JSON report); ``Trace``'s accessors answer
"which module is that" from the model's own map, so no caller spells a module path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..model.add import AddRecord, ShapeMismatchError
from ..model.config import Config
from ..formatting import shape_bytes
from ..model.fpn import merge_site
from .modelmap import ModelMap
from .receptive import FieldMap


@dataclass
class ModuleRecord:
    """One module call, in execution order. Shapes are ``(N, C, H, W)``; ``None`` if it never finished."""

    name: str
    kind: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...] | None = None
    params: int = 0
    macs: int = 0
    receptive_field: int | None = None  # exact: the largest field over positions (see resfpn.shapes.receptive)
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
        return sum(v for p, v in self.parts.items() if not p.startswith("fpn."))

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
    map: ModelMap = field(default_factory=ModelMap)
    add_modules: list[str] = field(default_factory=list)  # the module whose forward made each addition
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
        largest = max((shape_bytes(m.out_shape) for m in self.modules if m.out_shape), default=0)
        return {
            "levels": levels,
            "total": sum(levels.values()),
            # Inference keeps the levels alive plus a few working tensors at a time: measured peaks
            # (bench/bench.py, item 7) stay within the levels plus six of the largest tensor.
            "peak_estimate": sum(levels.values()) + 6 * largest,
        }

    # -- where things are (paths come from the model's own declarations, never spelled here) --------

    @property
    def declared(self) -> dict[str, tuple[int, int]]:
        """``level -> (channels, stride)`` as the model declares them (see ``map.levels`` for the records)."""
        return {k: (v.channels, v.stride) for k, v in self.map.levels.items()}

    def module(self, path: str) -> ModuleRecord | None:
        """The record of the module at ``path``, or None where the trace stopped before it ran.

        Raises:
            KeyError: ``path`` is not a module of this model (a caller's mistake, not "not reached").
        """
        if path not in self.map.paths:
            raise KeyError(f"{path!r} is not a module of this model")
        return next((m for m in self.modules if m.name == path), None)

    @property
    def stem(self) -> ModuleRecord | None:
        return self.module(self.map.stem)

    def level_part(self, level: str) -> str:
        """The part (``"layer2"``, ``"fpn.output"``, ..) whose module outputs ``level``."""
        return self.map.part[self.map.levels[level].module]

    def level_sources(self, level: str) -> list[ModuleRecord]:
        """Records of the modules whose parameters make a pyramid level (lateral and output conv, or P6/P7)."""
        return [m for m in map(self.module, self.map.sources.get(level, ())) if m is not None]

    def transition_block(self, level: str) -> str:
        """Path of the first block of the stage that outputs ``level`` (where stride and width change)."""
        return self.map.stages[level][0]

    @property
    def blocks(self) -> dict[str, str]:
        """Every residual block's path and its site (``"layer3.0"``), in execution order."""
        return {block: self.map.site[block] for blocks in self.map.stages.values() for block in blocks}

    def inside(self, block: str) -> list[ModuleRecord]:
        """Records of the modules under a block (not the block itself) that ran, in execution order."""
        paths = set(self.map.inside[block])
        return [m for m in self.modules if m.name in paths]

    def shortcut(self, block: str) -> ModuleRecord | None:
        return self.module(self.map.shortcut[block])

    def shortcut_steps(self, block: str) -> list[ModuleRecord]:
        """The pool and conv records inside a block's projection shortcut, input to output."""
        return [m for m in map(self.module, self.map.shortcut_steps[block]) if m is not None]

    def residual_convs(self, block: str) -> list[ModuleRecord]:
        return [m for m in map(self.module, self.map.residual[block]) if m is not None]

    def additions_in(self, *blocks: str) -> list[AddRecord]:
        """Additions made by the forward of any of ``blocks``, in execution order."""
        return [a for a, m in zip(self.additions, self.add_modules) if m in blocks]

    def stage_additions(self, level: str) -> list[AddRecord]:
        return self.additions_in(*self.map.stages[level])

    def merge_into(self, level: str) -> AddRecord | None:
        """The FPN merge that makes pyramid level ``level``, if it ran."""
        return next((a for a in self.additions if a.where == merge_site(level)), None)

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
