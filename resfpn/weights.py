"""Load torchvision ResNet (classification) and ResNet-FPN (detection) checkpoints."""

from __future__ import annotations

import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .model import ResFPN


class WeightsError(ValueError):
    """A checkpoint that cannot be read or does not fit the model; the message says which keys."""


@dataclass
class LoadResult:
    """What ``load_torchvision_weights`` did, by model key (loaded, missing) and checkpoint key (ignored)."""

    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return f"loaded {len(self.loaded)} tensors, {len(self.missing)} missing, {len(self.ignored)} ignored"


_STAGE = re.compile(r"^(layer[1-4]\.\d+)\.(.+)$")
_FPN = re.compile(r"^(inner_blocks|layer_blocks)\.(\d+)\.(?:0\.)?(weight|bias)$")


def _backbone_key(key: str) -> str | None:
    """torchvision ResNet key (``conv1.weight``, ``layer2.0.downsample.1.bias``) -> our key."""
    if key.startswith("conv1."):
        return "backbone.stem.conv." + key[len("conv1.") :]
    if key.startswith("bn1."):
        return "backbone.stem.bn." + key[len("bn1.") :]
    m = _STAGE.match(key)
    if not m:
        return None
    block, rest = m.groups()
    rest = rest.replace("downsample.0.", "shortcut.conv.").replace("downsample.1.", "shortcut.bn.")
    return f"backbone.{block}.{rest}"


def _fpn_key(key: str, model: ResFPN) -> str | None:
    """torchvision FPN key (``inner_blocks.0.0.weight``, ``extra_blocks.p6.bias``) -> our key."""
    m = _FPN.match(key)
    if m:
        kind, index, param = m.groups()
        levels = model.config.fpn_levels
        if int(index) >= len(levels):
            return None
        level = levels[int(index)]
        return f"fpn.lateral.{level}.{param}" if kind == "inner_blocks" else f"fpn.output.P{level[1:]}.{param}"
    for extra in ("p6", "p7"):
        if key.startswith(f"extra_blocks.{extra}."):
            return f"fpn.{extra}." + key.split(".")[-1]
    return None


def translate_key(key: str, model: ResFPN) -> str | None:
    """Our state-dict key for a torchvision checkpoint key, or None where we have no such part."""
    if key.startswith("backbone.body."):
        return _backbone_key(key[len("backbone.body.") :])
    if key.startswith("backbone.fpn."):
        return _fpn_key(key[len("backbone.fpn.") :], model)
    if key.startswith("fc."):
        return None
    return _backbone_key(key)


def load_torchvision_weights(model: ResFPN, state_dict: Mapping[str, torch.Tensor]) -> LoadResult:
    """Copy a torchvision checkpoint's tensors into ``model``; all or nothing.

    Accepts classification ResNet keys (``conv1.*``, ``layerN.B.*``; ``fc.*`` ignored) and detection
    keys (``backbone.body.*``, ``backbone.fpn.*``; heads ignored). Frozen batch-norm checkpoints
    have no ``num_batches_tracked``; that is not reported missing.

    Raises:
        WeightsError: naming every key whose shape disagrees, with both shapes; nothing is loaded.
    """
    own = model.state_dict()
    result = LoadResult()
    updates: dict[str, torch.Tensor] = {}
    bad = []
    for key, value in state_dict.items():
        ours = translate_key(key, model)
        if ours is None or ours not in own or not isinstance(value, torch.Tensor):
            result.ignored.append(key)
            continue
        if tuple(value.shape) != tuple(own[ours].shape):
            bad.append(f"{key} -> {ours}: checkpoint {tuple(value.shape)} vs model {tuple(own[ours].shape)}")
            continue
        updates[ours] = value
    if bad:
        shown = "; ".join(bad[:8]) + (f"; and {len(bad) - 8} more" if len(bad) > 8 else "")
        raise WeightsError(
            f"checkpoint does not fit this architecture: {len(bad)} tensor(s) disagree in shape: {shown}. "
            f"Choose the preset the checkpoint was trained with (e.g. resnet50 for a ResNet-50 checkpoint)."
        )
    if not updates:
        raise WeightsError(
            f"no tensor in the checkpoint matches this model ({len(result.ignored)} keys ignored, e.g. "
            f"{result.ignored[:3]}); expected torchvision ResNet keys such as 'conv1.weight' or 'backbone.body.conv1.weight'"
        )
    with torch.no_grad():
        for ours, value in updates.items():
            own[ours].copy_(value)
    result.loaded = sorted(updates)
    result.missing = sorted(k for k in own if k not in updates and not k.endswith("num_batches_tracked"))
    return result


def load_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict with ``torch.load(weights_only=True)``: tensors only, no code is unpickled.

    A ``{"model": ...}`` or ``{"state_dict": ...}`` wrapper is unwrapped.

    Raises:
        WeightsError: unreadable file, a pickle that would run code, or no tensors inside.
    """
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise WeightsError(
            f"refused {Path(path).name}: it holds Python objects beyond tensors, and weights_only loading "
            f"does not run code ({first})"
        ) from None
    except Exception as err:  # torch raises many types for a file that is not a checkpoint
        raise WeightsError(f"could not read {Path(path).name} as a PyTorch checkpoint: {err}") from None
    for wrapper in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(wrapper), Mapping):
            obj = obj[wrapper]
    if not isinstance(obj, Mapping) or not any(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{Path(path).name} holds no state dict (a mapping of names to tensors)")
    return {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
