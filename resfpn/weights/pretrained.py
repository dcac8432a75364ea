"""Published trained weights: which exist, which fit a design, and what a label must say about them.

Two families, both torchvision's own training runs:

- ImageNet classification ResNets, as the Hugging Face Hub holds them in safetensors
  (``timm/resnet50.tv_in1k`` and friends: torchvision's key layout, ``fc.*`` included). They train
  the backbone only; the FPN keeps its seeded random weights.
- COCO detection checkpoints (Faster R-CNN / RetinaNet, ResNet-50 FPN) at the URLs torchvision
  publishes. They train the backbone and the FPN, P6/P7 included where the model has them.

A source *fits* a design when every field it fixes has its value (``Source.design``): not only
the tensor shapes, but what the shapes cannot show, such as where the stride sits in a bottleneck
or how P6 is computed. Nothing here downloads (see ``resfpn.weights.download``) and nothing needs torch.

    >>> from resfpn.model.config import Config
    >>> [c.value for c in weight_choices(Config.preset("resnet50")) if c.fits]
    ['random', 'imagenet-resnet50', 'imagenet-resnet50-v2', 'upload']
    >>> fit(Config.preset("retinanet"), SOURCES["coco-retinanet"]).changes
    {'p6': 'p5-conv'}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ..model.config import Config

TORCHVISION_URL = "https://download.pytorch.org/models/"
BSD = "BSD-3-Clause"
COCO_TERMS = (
    "BSD-3-Clause (torchvision); trained on COCO 2017, whose annotations are CC BY 4.0 — torchvision "
    "notes that pre-trained weights may carry terms of their training data"
)
IMAGENET_TERMS = "BSD-3-Clause (torchvision's weights, as timm republishes them); trained on ImageNet-1k"


class NoSuchSource(ValueError):
    """A weights name that is not in the registry; the message lists the names that are."""


@dataclass(frozen=True)
class Source:
    """One published weight file and the design it was trained with.

    ``design`` holds every Config field the weights fix; fields not named there stay free (input
    size, batch, top-down policy, and for ImageNet sources the whole FPN).
    """

    name: str  # what the CLI, the API and the page call it, e.g. "imagenet-resnet50"
    family: Literal["imagenet", "coco"]
    title: str  # e.g. "ResNet-50, torchvision V1 recipe"
    filename: str  # "model.safetensors" on the Hub, or the file name torchvision publishes
    bytes: int  # download size; see ``size_note``
    size_note: str
    licence: str
    design: dict[str, Any] = field(hash=False)
    repo_id: str | None = None  # Hugging Face Hub repository (ImageNet sources)
    url: str | None = None  # torchvision's URL (COCO sources); its file name carries a sha256 prefix
    trained: str = "backbone"  # which parts the file trains: "backbone" or "backbone + FPN"
    bn_eps: float | None = None  # torchvision sets BN eps to this after loading (0.0 for its COCO_V1 sets)

    @property
    def where(self) -> str:
        """The exact source a label names: a Hub repository id or a checkpoint file name."""
        return self.repo_id if self.repo_id else self.filename

    @property
    def max_bytes(self) -> int:
        """The most a download may bring: the published size plus 5 % and 1 MiB."""
        return int(self.bytes * 1.05) + 2**20

    def parts(self, config: Config) -> str:
        """Which levels the file trains in ``config``, e.g. 'backbone C2–C5 + FPN P2–P6'."""
        if self.family == "imagenet":
            return "backbone"
        extra = [p for p in ("P6", "P7") if p in config.pyramid_levels]
        if config.p6 == "maxpool":
            extra = [f"{p} (max-pool, no weights)" if p == "P6" else p for p in extra]
        return "backbone + FPN" + (f" with {', '.join(extra)}" if extra else "")


def _resnet(block: str, blocks: tuple[int, int, int, int]) -> dict[str, Any]:
    """The fields a torchvision ResNet fixes: 3 input channels, stem 64, skip B, v1.5 stride placement."""
    design: dict[str, Any] = {"input_channels": 3, "stem_width": 64, "skip": "B", "block": block, "blocks": blocks}
    if block == "basic":
        design["widths"] = (64, 128, 256, 512)
    else:
        design |= {"widths": (256, 512, 1024, 2048), "expansion": 4, "stride_in": "3x3"}
    return design


def _imagenet(depth: int, block: str, blocks, tag: str, size: int, recipe: str) -> Source:
    suffix = "-v2" if tag == "tv2_in1k" else ""
    return Source(
        name=f"imagenet-resnet{depth}{suffix}",
        family="imagenet",
        title=f"ImageNet ResNet-{depth}, torchvision {recipe} recipe",
        filename="model.safetensors",
        bytes=size,
        size_note="about; the tensors of timm's resnet{} written as safetensors (Hub size not checked offline)".format(depth),
        licence=IMAGENET_TERMS,
        design=_resnet(block, blocks),
        repo_id=f"timm/resnet{depth}.{tag}",
    )


_R50 = _resnet("bottleneck", (3, 4, 6, 3))
_MIB = 2**20


def _coco(
    name: str, title: str, file_stem: str, mib: float, fpn_from: str, p6: str, p7: bool, bn_eps: float | None
) -> Source:
    """A torchvision COCO detector's ResNet-50 + FPN weights (width 256, nearest upsampling)."""
    return Source(
        name=f"coco-{name}",
        family="coco",
        title=f"COCO {title}",
        filename=f"{file_stem}.pth",
        bytes=int(mib * _MIB),
        size_note=f"{mib} MiB, torchvision's published _file_size",
        licence=COCO_TERMS,
        design=_R50 | {"fpn_from": fpn_from, "fpn_width": 256, "upsample": "nearest", "p6": p6, "p7": p7},
        url=TORCHVISION_URL + f"{file_stem}.pth",
        trained="backbone + FPN",
        bn_eps=bn_eps,
    )

SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        _imagenet(18, "basic", (2, 2, 2, 2), "tv_in1k", 46_807_480, "V1"),
        _imagenet(34, "basic", (3, 4, 6, 3), "tv_in1k", 87_278_552, "V1"),
        _imagenet(50, "bottleneck", (3, 4, 6, 3), "tv_in1k", 102_469_872, "V1"),
        _imagenet(50, "bottleneck", (3, 4, 6, 3), "tv2_in1k", 102_469_872, "V2"),
        _imagenet(101, "bottleneck", (3, 4, 23, 3), "tv_in1k", 178_675_840, "V1"),
        _imagenet(152, "bottleneck", (3, 8, 36, 3), "tv_in1k", 241_463_544, "V1"),
        # torchvision.models.detection.fasterrcnn_resnet50_fpn: FPN on C2–C5, LastLevelMaxPool
        # (P6 = max_pool2d(P5, 1, stride 2)); FrozenBatchNorm with eps overwritten to 0 for COCO_V1.
        _coco("faster-rcnn", "Faster R-CNN ResNet-50 FPN (torchvision COCO_V1)",
              "fasterrcnn_resnet50_fpn_coco-258fb6c6", 159.743, "C2", "maxpool", p7=False, bn_eps=0.0),
        # retinanet_resnet50_fpn (v1): FPN on C3–C5, LastLevelP6P7(256, 256), which takes P6 from P5
        # (in_channels == out_channels), not from C5 as the paper does; BN eps overwritten to 0.
        _coco("retinanet", "RetinaNet ResNet-50 FPN (torchvision COCO_V1; P6 from P5)",
              "retinanet_resnet50_fpn_coco-eeacb38b", 130.267, "C3", "p5-conv", p7=True, bn_eps=0.0),
        # retinanet_resnet50_fpn_v2: LastLevelP6P7(2048, 256), P6 from C5 as in the paper; plain
        # BatchNorm backbone, plain FPN (its GroupNorm is in the heads, which we do not use).
        _coco("retinanet-v2", "RetinaNet ResNet-50 FPN v2 (torchvision COCO_V1 of the v2 model; P6 from C5)",
              "retinanet_resnet50_fpn_v2_coco-5905b1c5", 146.037, "C3", "c5-conv", p7=True, bn_eps=None),
    )
}

# Names that pick, among a family, the one source that fits a design (V1 recipes first).
FAMILIES = {"imagenet": "ImageNet backbone", "coco": "COCO backbone + FPN"}


def get_source(name: str) -> Source:
    """The registry entry called ``name``."""
    if name not in SOURCES:
        raise NoSuchSource(f"weights={name!r}: unknown; published weights: {', '.join(SOURCES)}")
    return SOURCES[name]


@dataclass(frozen=True)
class Fit:
    """Whether ``source`` fits a design, and the changes that would make it fit."""

    source: Source
    changes: dict[str, Any]  # field -> the value the weights need (empty when it fits)
    current: dict[str, Any]  # field -> the design's value now, for the same fields

    @property
    def fits(self) -> bool:
        return not self.changes

    def reason(self) -> str:
        """E.g. 'needs block bottleneck (now basic); blocks 3,4,6,3 (now 2,2,2,2)'; '' when it fits."""
        if not self.changes:
            return ""
        return "needs " + "; ".join(
            f"{_field_label(k)} {_value(v)} (now {_value(self.current[k])})" for k, v in self.changes.items())

    def adjusted(self, config: Config) -> Config:
        """``config`` changed to the design the weights were trained with."""
        return config.replace(**self.changes)


_FIELD_LABELS = {
    "input_channels": "input channels", "stem_width": "stem width", "skip": "skip option", "block": "block",
    "blocks": "blocks", "widths": "widths", "expansion": "expansion", "stride_in": "stride in the",
    "fpn_from": "FPN from", "fpn_width": "FPN width", "upsample": "upsampling", "p6": "P6 source", "p7": "P7",
}


def _field_label(name: str) -> str:
    return _FIELD_LABELS.get(name, name)


def _value(v: Any) -> str:
    return ",".join(map(str, v)) if isinstance(v, tuple) else str(v)


def fit(config: Config, source: Source) -> Fit:
    """Compare ``config`` with the design ``source`` was trained with, field by field."""
    changes = {k: v for k, v in source.design.items() if getattr(config, k) != v}
    return Fit(source, changes, {k: getattr(config, k) for k in changes})


def resolve(name: str, config: Config) -> Source:
    """A source by name, or by family ('imagenet', 'coco'): the family's source that fits ``config``.

    Raises:
        NoSuchSource: an unknown name.
        WeightsDontFit: no source of the family fits, with what each would need.
    """
    if name in FAMILIES:
        fits = [fit(config, s) for s in SOURCES.values() if s.family == name]
        fitting = [f.source for f in fits if f.fits]
        if fitting:
            return fitting[0]
        closest = sorted(fits, key=lambda f: len(f.changes))[:3]
        raise WeightsDontFit(
            f"no published {FAMILIES[name]} weights fit this design. Closest: "
            + " | ".join(f"{f.source.name}: {f.reason()}" for f in closest)
        )
    return get_source(name)


class WeightsDontFit(ValueError):
    """Published weights asked for a design they were not trained with; the message says what differs."""


def require_fit(config: Config, source: Source) -> None:
    """Refuse ``source`` for ``config`` unless it fits, naming every field that differs and its fix."""
    f = fit(config, source)
    if not f.fits:
        fix = ", ".join(f"{k}={v!r}" for k, v in f.changes.items())
        raise WeightsDontFit(
            f"{source.name} ({source.where}) does not fit this design: it {f.reason()}. "
            f"Fix: change {fix}, or choose weights that fit (see weight_choices)."
        )


def describe(source: Source | None, seed: int, config: Config | None = None) -> str:
    """What a page or report says about the weights, every time: which parts are trained, from where.

    >>> describe(SOURCES["imagenet-resnet50"], 0)
    'backbone: ImageNet, timm/resnet50.tv_in1k · FPN: seeded random, seed 0 · licence BSD-3-Clause'
    """
    if source is None:
        return f"seeded random weights (seed {seed})"
    if source.family == "imagenet":
        return f"backbone: ImageNet, {source.where} · FPN: seeded random, seed {seed} · licence {BSD}"
    parts = source.parts(config) if config is not None else source.trained
    return f"{parts}: COCO, torchvision {source.where} · nothing random · licence {BSD}"


@dataclass(frozen=True)
class Choice:
    """One entry of a weights control: its value, its label, and whether it fits the design now."""

    value: str  # "random", "upload", or a SOURCES name
    label: str
    fits: bool
    reason: str = ""  # why it does not fit, '' when it does
    changes: dict[str, Any] = field(default_factory=dict, hash=False)  # apply with config.replace(**changes)
    licence: str = ""
    bytes: int = 0


def weight_choices(config: Config) -> list[Choice]:
    """Every weights choice for ``config``: those that fit first, then the others with what they need.

    ``random`` and ``upload`` always fit (an upload is checked when it is loaded).
    """
    choices = [Choice("random", "seeded random (offline)", True)]
    others = []
    for source in SOURCES.values():
        f = fit(config, source)
        size = f"{source.bytes / 1e6:.0f} MB"
        label = f"{FAMILIES[source.family]} — {source.where} ({size})"
        choice = Choice(source.name, label, f.fits, f.reason(), f.changes, source.licence, source.bytes)
        (choices if f.fits else others).append(choice)
    choices.append(Choice("upload", "uploaded .pth or .safetensors (torchvision layout)", True))
    return choices + sorted(others, key=lambda c: len(c.changes))
