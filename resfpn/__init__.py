"""resfpn: ResNet backbones with a Feature Pyramid Network that know every shape before they run.

    >>> from resfpn import Config, build_model, trace
    >>> t = trace(Config(input_height=225, input_width=225))
    >>> t.mismatch.where
    'FPN merge into P4'
"""

from .add import Fix, ShapeMismatchError, checked_add
from .config import PRESETS, Config, ConfigError
from .model import ResFPN, build_model
from .trace import Trace, trace
from .weights import WeightsError, load_checkpoint, load_torchvision_weights

__all__ = [
    "Config",
    "ConfigError",
    "Fix",
    "PRESETS",
    "ResFPN",
    "ShapeMismatchError",
    "Trace",
    "WeightsError",
    "build_model",
    "checked_add",
    "load_checkpoint",
    "load_torchvision_weights",
    "trace",
]
