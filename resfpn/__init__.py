"""resfpn: ResNet backbones with a Feature Pyramid Network that know every shape before they run.

    >>> from resfpn import Config, build_model, trace
    >>> t = trace(Config(input_height=225, input_width=225))
    >>> t.mismatch.where
    'FPN merge into P4'

Names are imported on first use (PEP 562), so ``resfpn.config`` and ``resfpn.limits`` load without
torch: a page can be laid out while torch is still loading.
"""

import importlib

_EXPORTS = {
    "Config": "config",
    "ConfigError": "config",
    "PRESETS": "config",
    "Fix": "add",
    "ShapeMismatchError": "add",
    "checked_add": "add",
    "ResFPN": "model",
    "build_model": "model",
    "Trace": "tracing",
    "trace": "tracing",
    "WeightsError": "weights",
    "load_checkpoint": "weights",
    "load_torchvision_weights": "weights",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'resfpn' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
