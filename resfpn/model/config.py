"""One frozen configuration object for a ResNet backbone with an FPN neck."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any, Literal, get_args

MAX_INPUT = 8192

# Allowed values: each Literal alias is the one home of a field's vocabulary (also the JSON and CLI
# vocabulary); the tuples and dicts below are derived from it and checked against it.
BlockType = Literal["basic", "bottleneck"]
StrideIn = Literal["3x3", "1x1"]  # v1.5 (torchvision) / v1 (paper, MSRA)
SkipOption = Literal["A", "B", "C", "D"]  # the ResNet paper's letters
FpnFrom = Literal["C2", "C3"]
Upsample = Literal["nearest", "bilinear"]
Policy = Literal["x2", "match", "pad"]
P6Source = Literal["p5-conv", "c5-conv", "maxpool", "none"]
Reduction = Literal["mean", "mean-abs", "l2", "max", "channel"]

BLOCKS: tuple[BlockType, ...] = get_args(BlockType)
STRIDE_IN: tuple[StrideIn, ...] = get_args(StrideIn)
UPSAMPLE: tuple[Upsample, ...] = get_args(Upsample)
P6_SOURCES: tuple[P6Source, ...] = get_args(P6Source)
FPN_FROM: tuple[FpnFrom, ...] = get_args(FpnFrom)

# The ResNet paper's letters, with the readable names used in code and UI.
SKIP_OPTIONS: dict[SkipOption, str] = {
    "A": "zero-pad: subsample with the block's stride, zero-pad the extra channels",
    "B": "projection where needed: identity, or 1×1 conv + BN where shapes change",
    "C": "projection everywhere: 1×1 conv + BN on every block",
    "D": "avg-down (ResNet-D): 2×2 avg-pool then 1×1 conv + BN where shapes change",
}
POLICIES: dict[Policy, str] = {
    "x2": "scale by 2 (needs the input size to suit the stride-32 backbone)",
    "match": "resize to the lateral's size (any input works)",
    "pad": "pad the input bottom/right to a multiple of 32",
}
# How a level's channels become one heatmap (resfpn.analysis.activations.reduce_channels).
REDUCTIONS: dict[Reduction, str] = {
    "mean": "mean over channels",
    "mean-abs": "mean |x| over channels",
    "l2": "L2 norm over channels",
    "max": "max over channels",
    "channel": "one chosen channel",
}
# Short names of the choices, where people pick them (the page's controls) and where a fix names them.
LABELS: dict[str, dict[str, str]] = {
    "block": {"basic": "basic (two 3×3)", "bottleneck": "bottleneck (1×1, 3×3, 1×1)"},
    "stride_in": {"3x3": "3×3 (torchvision, v1.5)", "1x1": "first 1×1 (paper, v1)"},
    "skip": {k: f"{k} — {v.split(':')[0]}" for k, v in SKIP_OPTIONS.items()},
    "fpn_from": {"C2": "C2–C5", "C3": "C3–C5 (RetinaNet)"},
    "upsample": {"nearest": "nearest", "bilinear": "bilinear"},
    "policy": {"x2": "×2", "match": "match lateral size", "pad": "pad input to 32"},
    "p6": {"p5-conv": "3×3 s2 conv on P5", "c5-conv": "3×3 s2 conv on C5", "maxpool": "max-pool of P5",
           "none": "no P6"},
    "reduction": dict(REDUCTIONS),
}
LEVEL_STRIDE = {f"C{k}": 2**k for k in range(2, 6)} | {f"P{k}": 2**k for k in range(2, 8)}


class ConfigError(ValueError):
    """A configuration value that is not allowed; the message names field, value and what is allowed."""


def _tuple4(name: str, value: Any) -> tuple[int, int, int, int]:
    try:
        items = tuple(int(v) for v in value)
        if any(int(v) != v for v in value):
            raise ValueError
    except (TypeError, ValueError):
        raise ConfigError(f"{name}={value!r}: expected four whole numbers, e.g. 64,128,256,512") from None
    if len(items) != 4:
        raise ConfigError(f"{name}={value!r}: expected exactly four values (one per stage), got {len(items)}")
    return items  # type: ignore[return-value]


@dataclass(frozen=True)
class Config:
    """What to build: input, ResNet backbone, FPN neck. Defaults are the reference design.

    The reference design is a tiny ResNet-18-like backbone (BasicBlocks, Option B shortcuts)
    exposing C2..C5 and an FPN of width 256 with ×2 nearest upsampling and P6 from P5.
    """

    input_height: int = 224
    input_width: int = 224
    input_channels: int = 3
    batch: int = 1
    widths: tuple[int, int, int, int] = (64, 128, 256, 512)  # output channels of layer1..layer4
    blocks: tuple[int, int, int, int] = (2, 2, 2, 2)  # blocks per stage
    block: BlockType = "basic"
    stride_in: StrideIn = "3x3"  # bottleneck only: where the stage's stride sits
    expansion: int = 4  # bottleneck only: inner width = out_channels // expansion
    stem_width: int = 64
    skip: SkipOption = "B"
    fpn_from: FpnFrom = "C2"  # lowest backbone level the FPN uses
    fpn_width: int = 256
    upsample: Upsample = "nearest"
    policy: Policy = "x2"  # how the top-down path reaches the lateral's size
    p6: P6Source = "p5-conv"
    p7: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "widths", _tuple4("widths", self.widths))
        object.__setattr__(self, "blocks", _tuple4("blocks", self.blocks))
        self._check_int("input_height", 1, MAX_INPUT)
        self._check_int("input_width", 1, MAX_INPUT)
        self._check_int("input_channels", 1, 64)
        self._check_int("batch", 1, 64)
        self._check_int("stem_width", 1, 4096)
        self._check_int("fpn_width", 1, 4096)
        self._check_int("expansion", 1, 64)
        for i, w in enumerate(self.widths):
            if not 1 <= w <= 8192:
                raise ConfigError(f"widths[{i}]={w}: each stage width must be between 1 and 8192")
        for i, b in enumerate(self.blocks):
            if not 1 <= b <= 64:
                raise ConfigError(f"blocks[{i}]={b}: each stage needs between 1 and 64 blocks")
        self._check_choice("block", BLOCKS)
        self._check_choice("stride_in", STRIDE_IN)
        self._check_choice("skip", get_args(SkipOption))
        self._check_choice("fpn_from", FPN_FROM)
        self._check_choice("upsample", UPSAMPLE)
        self._check_choice("policy", get_args(Policy))
        self._check_choice("p6", P6_SOURCES)
        if not isinstance(self.p7, bool):
            raise ConfigError(f"p7={self.p7!r}: expected true or false")
        if self.p7 and self.p6 == "none":
            sources = ", ".join(repr(p) for p in P6_SOURCES if p != "none")
            raise ConfigError(f"p7=True needs a P6 to build on: choose p6 from {sources}")
        if self.block == "bottleneck":
            for i, w in enumerate(self.widths):
                if w % self.expansion:
                    raise ConfigError(
                        f"widths[{i}]={w}: a bottleneck stage width must be divisible by the expansion "
                        f"{self.expansion} (its inner width is width/{self.expansion}); "
                        f"try {max(self.expansion, w // self.expansion * self.expansion)}"
                    )

    def _check_int(self, name: str, lo: int, hi: int) -> None:
        value = getattr(self, name)
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                object.__setattr__(self, name, int(value))
                value = int(value)
            else:
                raise ConfigError(f"{name}={value!r}: expected a whole number between {lo} and {hi}")
        if not lo <= value <= hi:
            raise ConfigError(f"{name}={value}: must be between {lo} and {hi}")

    def _check_choice(self, name: str, allowed: tuple[str, ...]) -> None:
        value = getattr(self, name)
        if value not in allowed:
            raise ConfigError(f"{name}={value!r}: unknown value; allowed: {', '.join(map(repr, allowed))}")

    # -- derived values -------------------------------------------------------------------------

    @property
    def backbone_levels(self) -> tuple[str, ...]:
        return ("C2", "C3", "C4", "C5")

    @property
    def fpn_levels(self) -> tuple[str, ...]:
        """Backbone levels the FPN reads, e.g. ('C3', 'C4', 'C5') for RetinaNet."""
        first = int(self.fpn_from[1])
        return tuple(f"C{k}" for k in range(first, 6))

    @property
    def pyramid_levels(self) -> tuple[str, ...]:
        """Levels the FPN returns: one P per input level, then P6 and P7 where enabled."""
        levels = tuple("P" + c[1] for c in self.fpn_levels)
        if self.p6 != "none":
            levels += ("P6",)
        if self.p7:
            levels += ("P7",)
        return levels

    @property
    def levels(self) -> tuple[str, ...]:
        return self.backbone_levels + self.pyramid_levels

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (self.batch, self.input_channels, self.input_height, self.input_width)

    # -- (de)serialisation ----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict; ``Config(**cfg.to_dict()) == cfg``."""
        d = dataclasses.asdict(self)
        d["widths"] = list(self.widths)
        d["blocks"] = list(self.blocks)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Config":
        """Like ``Config(**d)``, but an unknown key is refused with the list of known keys."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown configuration key(s) {unknown}; known keys: {sorted(known)}")
        return cls(**d)

    def replace(self, **changes: Any) -> "Config":
        return dataclasses.replace(self, **changes)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "Config":
        """A named preset (see ``PRESETS``), with optional field overrides."""
        if name not in PRESETS:
            raise ConfigError(f"preset={name!r}: unknown preset; allowed: {', '.join(map(repr, PRESETS))}")
        return dataclasses.replace(PRESETS[name], **overrides)


_R50 = dict(widths=(256, 512, 1024, 2048), blocks=(3, 4, 6, 3), block="bottleneck")

# Every preset except "reference" uses torchvision's layout so its checkpoints load.
PRESETS: dict[str, Config] = {
    "reference": Config(),
    "resnet18": Config(policy="match"),
    "resnet34": Config(blocks=(3, 4, 6, 3), policy="match"),
    "resnet50": Config(**_R50, policy="match"),
    "resnet50-v1": Config(**_R50, stride_in="1x1", policy="match"),
    "retinanet": Config(**_R50, policy="match", fpn_from="C3", p6="c5-conv", p7=True),
    "faster-rcnn": Config(**_R50, policy="match", p6="maxpool"),
}

PRESET_NOTES = {
    "reference": "the reference design: tiny ResNet-18-like backbone, FPN d=256, ×2 nearest, P6 from P5",
    "resnet18": "torchvision ResNet-18 layout with an FPN",
    "resnet34": "torchvision ResNet-34 layout with an FPN",
    "resnet50": "torchvision ResNet-50 (v1.5, stride in the 3×3) with an FPN",
    "resnet50-v1": "ResNet-50 v1 (paper/MSRA, stride in the first 1×1) with an FPN",
    "retinanet": "RetinaNet neck: ResNet-50, FPN on C3–C5, P6/P7 from C5",
    "faster-rcnn": "Faster R-CNN neck: ResNet-50, FPN on C2–C5, max-pool P6",
}
