"""What a checkpoint is, read from its keys and shapes alone: whose layout, and the design it fits.

Three layouts are recognised: torchvision's classification ResNet (``conv1.weight``, ``layerN.B.*``,
``fc.*``), torchvision's detection ResNet-FPN (``backbone.body.*``, ``backbone.fpn.*`` and the heads)
and timm's ResNets (torchvision's keys, or with timm's deep stem ``conv1.0``/``conv1.3``/``conv1.6``
and average-pool downsampling ``downsample.1``/``downsample.2``). The design is what the shapes
fix: block type, blocks and widths per stage, stem width, input channels, and for a detector the
FPN's input levels, width and P6/P7. Where the stride sits in a bottleneck leaves no trace in the
shapes, and neither does a P6 made by max-pooling; the notes say so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_BLOCK = re.compile(r"^layer([1-4])\.(\d+)\.")


@dataclass(frozen=True)
class Layout:
    """A checkpoint's layout (``kind``), the design fields its shapes fix, and what they cannot show."""

    kind: str  # e.g. "torchvision detection (backbone + FPN)"
    design: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def describe(self) -> str:
        """One sentence, e.g. 'torchvision classification layout; it looks like block bottleneck, ...'."""
        if not self.design:
            return f"{self.kind}."
        fields = ", ".join(f"{k} {_value(v)}" for k, v in self.design.items())
        notes = f" ({'; '.join(self.notes)})" if self.notes else ""
        return f"{self.kind} layout; it looks like {fields}{notes}."

    def fix(self, current: Any) -> str:
        """The changes that would make ``current`` (a Config) take this checkpoint, e.g. "block='bottleneck', ..."."""
        changes = {k: v for k, v in self.design.items() if hasattr(current, k) and getattr(current, k) != v}
        return ", ".join(f"{k}={v!r}" for k, v in changes.items())


def _value(v: Any) -> str:
    return ",".join(map(str, v)) if isinstance(v, tuple) else str(v)


def _shape(state: Mapping[str, Any], key: str) -> tuple[int, ...] | None:
    value = state.get(key)
    return tuple(value.shape) if value is not None and hasattr(value, "shape") else None


def recognise(state: Mapping[str, Any]) -> Layout:
    """The layout and design of a state dict (torch tensors, or anything with ``.shape``).

    >>> import torch
    >>> sd = {"conv1.weight": torch.zeros(64, 3, 7, 7), "layer1.0.conv1.weight": torch.zeros(64, 64, 3, 3),
    ...       "layer1.0.conv2.weight": torch.zeros(64, 64, 3, 3), "fc.weight": torch.zeros(1000, 512)}
    >>> recognise(sd).kind, recognise(sd).design["block"]
    ("torchvision classification (timm's plain ResNets share it)", 'basic')
    """
    keys = list(state)
    if any(k.startswith("backbone.body.") for k in keys):
        body = {k[len("backbone.body."):]: v for k, v in state.items() if k.startswith("backbone.body.")}
        layout = _backbone(body)
        design, notes = dict(layout.design), list(layout.notes)
        fpn_design, fpn_notes = _fpn(state, design)
        return Layout("torchvision detection (backbone + FPN)", design | fpn_design, tuple(notes + fpn_notes))
    if not any(_BLOCK.match(k) for k in keys):
        sample = ", ".join(keys[:4])
        return Layout(f"not a ResNet layout this explorer knows (keys such as {sample})")
    layout = _backbone(state)
    timm = "conv1.0.weight" in state or any(".downsample.2." in k for k in keys)
    kind = "timm ResNet-C/D" if timm else "torchvision classification (timm's plain ResNets share it)"
    return Layout(kind, layout.design, layout.notes)


def _backbone(state: Mapping[str, Any]) -> Layout:
    blocks = [0, 0, 0, 0]
    for k in state:
        m = _BLOCK.match(k)
        if m:
            stage, index = int(m.group(1)) - 1, int(m.group(2))
            blocks[stage] = max(blocks[stage], index + 1)
    bottleneck = any(k.startswith("layer1.0.conv3.") for k in state)
    last = "conv3" if bottleneck else "conv2"
    widths = tuple((_shape(state, f"layer{i + 1}.0.{last}.weight") or (0,))[0] for i in range(4))
    design: dict[str, Any] = {"block": "bottleneck" if bottleneck else "basic", "blocks": tuple(blocks), "widths": widths}
    notes = []
    deep = _shape(state, "conv1.0.weight")
    stem = _shape(state, "conv1.weight")
    if deep is not None:
        design["input_channels"] = deep[1]
        notes.append("a deep 3×3 stem (timm's ResNet-C/D), which this explorer's stem does not build")
        final = _shape(state, "conv1.6.weight")
        if final is not None:
            design["stem_width"] = final[0]
    elif stem is not None:
        design["input_channels"], design["stem_width"] = stem[1], stem[0]
    if bottleneck:
        mid = _shape(state, "layer1.0.conv1.weight")
        if mid and widths[0]:
            design["expansion"] = widths[0] // mid[0]
        notes.append("where a bottleneck puts its stride (3x3 or 1x1) leaves no trace in the shapes")
    if any(".downsample.2." in k for k in state):
        design["skip"] = "D"  # average-pool, then a 1×1 projection: torchvision's keys shifted by one
    elif any(".downsample.0." in k for k in state):
        design["skip"] = "B"
    return Layout("", design, tuple(notes))


def _fpn(state: Mapping[str, Any], backbone: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    inner = sorted({int(m.group(1)) for k in state
                    if (m := re.match(r"^backbone\.fpn\.inner_blocks\.(\d+)\.", k))})
    design: dict[str, Any] = {}
    notes: list[str] = []
    if not inner:
        return design, notes
    widths = backbone.get("widths", ())
    first = _shape(state, "backbone.fpn.inner_blocks.0.0.weight") or _shape(state, "backbone.fpn.inner_blocks.0.weight")
    if first is not None:
        design["fpn_width"] = first[0]
        if first[1] in widths:
            design["fpn_from"] = f"C{2 + widths.index(first[1])}"
    p6 = _shape(state, "backbone.fpn.extra_blocks.p6.weight")
    if p6 is not None:
        design["p6"] = "c5-conv" if widths and p6[1] == widths[-1] and p6[1] != design.get("fpn_width") else "p5-conv"
    else:
        notes.append("no P6 weights: P6 by max-pooling (Faster R-CNN) or no P6, the shapes cannot tell")
    design["p7"] = _shape(state, "backbone.fpn.extra_blocks.p7.weight") is not None
    return design, notes
