"""resfpn: ResNet backbones with a Feature Pyramid Network that know every shape before they run.

    >>> from resfpn import Config, build_model, trace
    >>> t = trace(Config(input_height=225, input_width=225))
    >>> t.mismatch.where
    'FPN merge into P4'

Torch-free names (the configuration, the level declaration, the limits) are imported now; the rest
on first use (PEP 562), so ``import resfpn`` does not load torch: a page can be laid out while torch
is still loading.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .model.config import PRESETS, Config, ConfigError
from .model.levels import LevelSpec
from .serving.limits import LimitError, Limits

if TYPE_CHECKING:  # the same names, visible to type checkers and go-to-definition
    from .model.add import Fix, ShapeMismatchError, checked_add
    from .model.backbone import ResNetBackbone
    from .model.fpn import FPN
    from .model.network import ResFPN, build_model
    from .shapes.tracing import Trace, trace
    from .weights.loading import WeightsError, load_checkpoint, load_torchvision_weights

_LAZY = {
    "Fix": "model.add",
    "ShapeMismatchError": "model.add",
    "checked_add": "model.add",
    "ResNetBackbone": "model.backbone",
    "FPN": "model.fpn",
    "ResFPN": "model.network",
    "build_model": "model.network",
    "Trace": "shapes.tracing",
    "trace": "shapes.tracing",
    "WeightsError": "weights.loading",
    "load_checkpoint": "weights.loading",
    "load_torchvision_weights": "weights.loading",
}

__all__ = sorted({"Config", "ConfigError", "PRESETS", "LevelSpec", "LimitError", "Limits", *_LAZY})


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'resfpn' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
