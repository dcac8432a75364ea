"""Where things are in a built model, by module path, read from the modules themselves.

Paths come from the level declaration (``LevelSpec.module``) and from object identity (a block's
``shortcut`` attribute is whatever ``named_modules`` calls it), so renaming a module renames it here
too, and no path is ever spelled out of strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..model.levels import LevelSpec

if TYPE_CHECKING:
    from ..model.network import ResFPN


@dataclass(frozen=True)
class ModelMap:
    """Module paths of one model (all relative to the model's root)."""

    paths: frozenset[str] = frozenset()  # every module of the model
    levels: dict[str, LevelSpec] = field(default_factory=dict)  # the declaration, C2..C5 then P2..P7
    stem: str = ""
    stages: dict[str, tuple[str, ...]] = field(default_factory=dict)  # C level -> its stage's blocks
    shortcut: dict[str, str] = field(default_factory=dict)  # block -> S(x)
    shortcut_steps: dict[str, tuple[str, ...]] = field(default_factory=dict)  # block -> pool/conv inside S(x)
    residual: dict[str, tuple[str, ...]] = field(default_factory=dict)  # block -> convs of F(x)
    site: dict[str, str] = field(default_factory=dict)  # block -> its name in messages, e.g. "layer3.0"
    inside: dict[str, tuple[str, ...]] = field(default_factory=dict)  # block -> every module under it
    sources: dict[str, tuple[str, ...]] = field(default_factory=dict)  # P level -> modules that make it
    part: dict[str, str] = field(default_factory=dict)  # module -> part ("stem", "layer1", .., "fpn.extra")


def map_model(model: ResFPN) -> ModelMap:
    """Read the map of ``model`` from its declaration and its modules."""
    from torch import nn

    name_of = {id(m): name for name, m in model.named_modules()}

    def names(modules) -> tuple[str, ...]:
        return tuple(name_of[id(m)] for m in modules)

    levels = model.output_shape()
    stages, shortcut, steps, residual, site, inside = {}, {}, {}, {}, {}, {}
    for level, spec in model.backbone.output_shape().items():
        stage = model.backbone.get_submodule(spec.module)
        stages[level] = names(stage)
        for block in stage:
            path = name_of[id(block)]
            shortcut[path] = name_of[id(block.shortcut)]
            inner = [m for m in block.shortcut.children() if isinstance(m, (nn.Conv2d, nn.AvgPool2d))]
            steps[path] = names(inner)
            residual[path] = names(block.residual_convs())
            site[path] = block.site
            inside[path] = names(m for m in block.modules() if m is not block)
    part = {name_of[id(sub)]: label for label, mods in model.parts().items() for m in mods for sub in m.modules()}
    return ModelMap(
        paths=frozenset(name_of.values()),
        levels=levels,
        stem=name_of[id(model.backbone.stem)],
        stages=stages,
        shortcut=shortcut,
        shortcut_steps=steps,
        residual=residual,
        site=site,
        inside=inside,
        sources={k: names(v) for k, v in model.fpn.level_sources().items()},
        part=part,
    )
