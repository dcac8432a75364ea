"""Load torchvision ResNet (classification) and ResNet-FPN (detection) checkpoints."""

from __future__ import annotations

import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..model.network import ResFPN
from .pretrained import Source, require_fit


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
    """Read a state dict: ``.safetensors`` with the safetensors package, anything else with
    ``torch.load(weights_only=True)``. Neither runs code from the file.

    A ``{"model": ...}`` or ``{"state_dict": ...}`` wrapper is unwrapped. A file named
    ``.safetensors`` must be one: a pickle under that name is refused, not unpickled.

    Raises:
        WeightsError: unreadable file, a pickle that would run code, or no tensors inside.
    """
    if Path(path).suffix.lower() == ".safetensors" or _looks_like_safetensors(path):
        return read_safetensors(path)
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


def _looks_like_safetensors(path: str | Path) -> bool:
    """A safetensors file starts with an 8-byte little-endian header length, then a JSON object."""
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b"{" and 2 <= int.from_bytes(head[:8], "little") < 100_000_000


def read_safetensors(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a ``.safetensors`` file (no pickle, nothing executed); the format checks its header
    against the file's length, so a truncated file is refused.

    Raises:
        WeightsError: not a safetensors file (e.g. a pickle under that name), truncated, or no tensors.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    name = Path(path).name
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        with open(path, "rb") as f:
            head = f.read(2)
        kind = "a PyTorch zip/pickle" if head == b"PK" else "a Python pickle" if head[:1] == b"\x80" else ""
        found = f" It is {kind}, which is not read here." if kind else ""
        raise WeightsError(f"refused {name}: not a valid safetensors file ({_first(err)}).{found}") from None
    if not tensors:
        raise WeightsError(f"{name} holds no tensors")
    return tensors


def _first(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def check_complete(model: ResFPN, state_dict: Mapping[str, torch.Tensor], parts: tuple[str, ...],
                   allowed_extra: tuple[str, ...]) -> None:
    """Refuse a published checkpoint unless it fills every tensor of ``parts`` and holds nothing else
    but keys starting with ``allowed_extra``: all or nothing, checked before anything is copied.

    Args:
        parts: our key prefixes the file must fill, e.g. ``("backbone.",)`` or ``("backbone.", "fpn.")``.
        allowed_extra: checkpoint key prefixes that may be left unused, e.g. ``("fc.",)`` or ``("head.",)``.

    Raises:
        WeightsError: naming the missing tensors, the unexpected ones and those of the wrong shape.
    """
    own = model.state_dict()
    filled, unexpected, wrong = set(), [], []
    for key, value in state_dict.items():
        ours = translate_key(key, model)
        if ours is None or ours not in own:
            if not key.startswith(allowed_extra):
                unexpected.append(key)
            continue
        if tuple(value.shape) != tuple(own[ours].shape):
            wrong.append(f"{key}: {tuple(value.shape)} vs {tuple(own[ours].shape)}")
        filled.add(ours)
    missing = [k for k in own if k.startswith(parts) and k not in filled and not k.endswith("num_batches_tracked")]
    if missing or unexpected or wrong:
        unexpected.sort(key=lambda k: k.endswith("num_batches_tracked"))  # weights first: more telling
        def few(items: list[str]) -> str:
            return ", ".join(items[:6]) + (f" and {len(items) - 6} more" if len(items) > 6 else "")

        problems = [f"{len(missing)} tensor(s) missing ({few(missing)})" if missing else "",
                    f"{len(unexpected)} unexpected ({few(unexpected)})" if unexpected else "",
                    f"{len(wrong)} of the wrong shape ({few(wrong)})" if wrong else ""]
        raise WeightsError(
            "checkpoint refused, nothing loaded: it does not fit this architecture: "
            + "; ".join(p for p in problems if p) + ". It may be truncated, for another model, or not the published file."
        )


def load_source(model, source: Source, progress=None):
    """Load published ``source`` into ``model`` (a ``ResFPN``): fetched once, checked on every use,
    refused whole unless it fits the design and fills every tensor of the parts it trains.

    ImageNet files fill the backbone (``fc.*`` is left unused); COCO files fill backbone and FPN
    (the detection heads are left unused). Returns the ``LoadResult``.

    Raises:
        WeightsDontFit: the design differs from the one the weights were trained with.
        resfpn.weights.download.WeightsUnavailable: not cached and not downloadable now.
        resfpn.weights.download.CorruptFile / resfpn.weights.loading.WeightsError: the file is not what was published.
    """
    from torch import nn

    from .download import fetch

    require_fit(model.config, source)
    path = fetch(source, progress)
    if source.family == "imagenet":
        state = read_safetensors(path)  # a Hub file must be safetensors: never unpickled
        check_complete(model, state, ("backbone.",), ("fc.",))
    else:
        state = load_checkpoint(path)
        check_complete(model, state, ("backbone.", "fpn."), ("head.", "rpn.", "roi_heads."))
    result = load_torchvision_weights(model, state)
    if source.bn_eps is not None:  # as torchvision's builder does after loading these weights
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eps = source.bn_eps
    return result
