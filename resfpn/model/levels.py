"""The level declaration: what a part of the model promises for each level before anything runs.

As detectron2's ``ShapeSpec`` (channels and stride per output), but every field is required, and
each record also names the module whose output is the level (as timm's ``feature_info`` does),
written by the same loop that builds that module, so the declaration cannot drift from the model.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class LevelSpec:
    """One level: ``(N, channels, ceil(H/stride), ceil(W/stride))``, the output of ``module``.

    ``module`` is a path as ``named_modules()`` gives it, relative to the part that declares the level
    (``"layer1"`` in the backbone, ``"backbone.layer1"`` in the whole model).
    """

    channels: int
    stride: int
    module: str

    def under(self, prefix: str) -> "LevelSpec":
        """The same level with its module path seen from the parent that holds this part as ``prefix``."""
        return replace(self, module=f"{prefix}.{self.module}")
