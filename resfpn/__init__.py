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

from .config import PRESETS, Config, ConfigError
from .levels import LevelSpec
from .limits import LimitError, Limits

if TYPE_CHECKING:  # the same names, visible to type checkers and go-to-definition
    from .add import Fix, ShapeMismatchError, checked_add
    from .backbone import ResNetBackbone
    from .fpn import FPN
    from .model import ResFPN, build_model
    from .tracing import Trace, trace
    from .weights import WeightsError, load_checkpoint, load_torchvision_weights

_LAZY = {
    "Fix": "add",
    "ShapeMismatchError": "add",
    "checked_add": "add",
    "ResNetBackbone": "backbone",
    "FPN": "fpn",
    "ResFPN": "model",
    "build_model": "model",
    "Trace": "tracing",
    "trace": "tracing",
    "WeightsError": "weights",
    "load_checkpoint": "weights",
    "load_torchvision_weights": "weights",
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
