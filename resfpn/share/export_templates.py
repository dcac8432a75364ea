"""The exported file's parts as code templates, one function per part, written for one design.

Each function returns a section of the standalone file ``resfpn.share.export.export_code`` assembles: only
torch is imported there, and module names match resfpn's so state dicts move both ways. Classes
that only name their layers (the stem, the projections) are written from a layer table; the rest
are templates in the exported file's own words.
"""

from __future__ import annotations

import textwrap

from ..model.config import Config
from ..model.network import PAD_MULTIPLE


def _code(text: str) -> str:
    return textwrap.dedent(text).strip("\n")


def _shape(channels: int | str, stride: int) -> str:
    return f"(N, {channels}, H/{stride}, W/{stride})" if stride > 1 else f"(N, {channels}, H, W)"


def _layers_class(name: str, doc: str, args: str, layers: list[tuple[str, str]]) -> str:
    """An ``nn.Sequential`` subclass that only names its layers, written from its layer table.

    ``layers`` holds (attribute, constructor) in order; ``"pool if stride > 1"`` adds the layer only then.
    """
    lines = [f"class {name}(nn.Sequential):", textwrap.indent(f'"""{doc}"""', 4 * " "), ""]
    lines += [f"    def __init__(self, {args}):", "        super().__init__()"]
    for attribute, constructor in layers:
        attribute, _, condition = attribute.partition(" if ")
        if condition:
            lines += [f"        if {condition}:", f"            self.{attribute} = {constructor}"]
        else:
            lines.append(f"        self.{attribute} = {constructor}")
    return "\n".join(lines)


# What every shortcut class shares: its arguments, its shapes, the BN that ends the projections.
_SHORTCUT_ARGS = "in_channels: int, out_channels: int, stride: int"
_SHORTCUT_SHAPES = "(N, C_in, H, W) -> (N, C_out, H/stride, W/stride)"
_SHORTCUT_BN = ("bn", "nn.BatchNorm2d(out_channels)")


def pad_function() -> str:
    return _code(
        '''
        def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
            """Zero-pads bottom and right to multiples of ``multiple``: (N, C, H, W) -> (N, C, H', W')."""
            pad_h, pad_w = -x.shape[-2] % multiple, -x.shape[-1] % multiple
            return F.pad(x, (0, pad_w, 0, pad_h)) if pad_h or pad_w else x
        '''
    )


def stem() -> str:
    return _layers_class(
        "Stem",
        "7×7 stride-2 conv, BN, ReLU, 3×3 stride-2 max-pool.\n\n(N, C_in, H, W) -> (N, C_out, H/4, W/4).\n",
        "in_channels: int, out_channels: int",
        [
            ("conv", "nn.Conv2d(in_channels, out_channels, 7, stride=2, padding=3, bias=False)"),
            ("bn", "nn.BatchNorm2d(out_channels)"),
            ("relu", "nn.ReLU(inplace=True)"),
            ("pool", "nn.MaxPool2d(3, stride=2, padding=1)"),
        ],
    )


def shortcuts(skip: str) -> list[str]:
    """The skip path's classes, and for A, B, D the function that picks identity where shapes hold."""
    if skip == "A":
        cls = _code(
            '''
            class ZeroPadShortcut(nn.Module):
                """Option A: subsample with the block's stride, append zero channels; no parameters.

                (N, C_in, H, W) -> (N, C_out, H/stride, W/stride).
                """

                def __init__(self, in_channels: int, out_channels: int, stride: int):
                    super().__init__()
                    self.stride = stride
                    self.extra_channels = out_channels - in_channels

                def forward(self, x: torch.Tensor) -> torch.Tensor:
                    x = x[:, :, :: self.stride, :: self.stride]
                    return F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))
            '''
        )
        name = "ZeroPadShortcut"
    elif skip in ("B", "C"):
        cls = _layers_class(
            "Projection",
            f"Option {skip}: 1×1 conv with the block's stride, then BN.\n\n{_SHORTCUT_SHAPES}.\n",
            _SHORTCUT_ARGS,
            [("conv", "nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)"), _SHORTCUT_BN],
        )
        name = "Projection"
        if skip == "C":  # a projection on every block: the blocks build it directly
            return [cls]
    else:
        cls = _layers_class(
            "AvgDownProjection",
            "Option D (ResNet-D): 2×2 average pool where strided, then 1×1 conv + BN.\n\n"
            f"{_SHORTCUT_SHAPES}. The pool lets every input pixel reach the\n"
            "shortcut, where a strided 1×1 conv would skip 3 in 4.\n",
            _SHORTCUT_ARGS,
            [
                ("pool if stride > 1", "nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False)"),
                ("conv", "nn.Conv2d(in_channels, out_channels, 1, bias=False)"),
                _SHORTCUT_BN,
            ],
        )
        name = "AvgDownProjection"
    picker = _code(
        f'''
        def make_shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module:
            """The skip path: identity where the block keeps its shape, else {name}."""
            if stride == 1 and in_channels == out_channels:
                return nn.Identity()
            return {name}(in_channels, out_channels, stride)
        '''
    )
    return [cls, picker]


def block(c: Config) -> str:
    make_shortcut = "Projection" if c.skip == "C" else "make_shortcut"
    if c.block == "basic":
        return _code(
            f'''
            class BasicBlock(nn.Module):
                """Two 3×3 convs plus the skip path: (N, C_in, H, W) -> (N, C_out, H/stride, W/stride)."""

                def __init__(self, in_channels: int, out_channels: int, stride: int):
                    super().__init__()
                    self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
                    self.bn1 = nn.BatchNorm2d(out_channels)
                    self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
                    self.bn2 = nn.BatchNorm2d(out_channels)
                    self.relu = nn.ReLU(inplace=True)
                    self.shortcut = {make_shortcut}(in_channels, out_channels, stride)

                def forward(self, x: torch.Tensor) -> torch.Tensor:
                    out = self.relu(self.bn1(self.conv1(x)))
                    out = self.bn2(self.conv2(out))
                    return self.relu(out + self.shortcut(x))
            '''
        )
    if c.stride_in == "3x3":
        where, conv1, conv2 = "3×3 conv (torchvision's v1.5)", "", "stride=stride, "
    else:
        where, conv1, conv2 = "first 1×1 conv (the paper's v1)", "stride=stride, ", ""
    return _code(
        f'''
        class Bottleneck(nn.Module):
            """1×1 reduce, 3×3, 1×1 expand, plus the skip path.

            (N, C_in, H, W) -> (N, C_out, H/stride, W/stride). The inner width is C_out/{c.expansion}; the
            stride sits in the {where}.
            """

            def __init__(self, in_channels: int, out_channels: int, stride: int):
                super().__init__()
                inner = out_channels // {c.expansion}
                self.conv1 = nn.Conv2d(in_channels, inner, 1, {conv1}bias=False)
                self.bn1 = nn.BatchNorm2d(inner)
                self.conv2 = nn.Conv2d(inner, inner, 3, {conv2}padding=1, bias=False)
                self.bn2 = nn.BatchNorm2d(inner)
                self.conv3 = nn.Conv2d(inner, out_channels, 1, bias=False)
                self.bn3 = nn.BatchNorm2d(out_channels)
                self.relu = nn.ReLU(inplace=True)
                self.shortcut = {make_shortcut}(in_channels, out_channels, stride)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                out = self.relu(self.bn1(self.conv1(x)))
                out = self.relu(self.bn2(self.conv2(out)))
                out = self.bn3(self.conv3(out))
                return self.relu(out + self.shortcut(x))
        '''
    )


def stage(c: Config) -> str:
    block = "BasicBlock" if c.block == "basic" else "Bottleneck"
    return _code(
        f'''
        def make_stage(in_channels: int, out_channels: int, num_blocks: int, stride: int) -> nn.Sequential:
            """``num_blocks`` blocks; the first one changes the width and carries the stride."""
            blocks = [{block}(in_channels, out_channels, stride)]
            blocks += [{block}(out_channels, out_channels, 1) for _ in range(num_blocks - 1)]
            return nn.Sequential(*blocks)
        '''
    )


def backbone(c: Config) -> str:
    init, forward = [], [f"x = self.stem(x)  # {_shape(c.stem_width, 4)}"]
    in_channels, previous = c.stem_width, "x"
    for i, (width, n_blocks) in enumerate(zip(c.widths, c.blocks)):
        level, stride = f"C{i + 2}", 2 ** (i + 2)
        init.append(f"self.layer{i + 1} = make_stage({in_channels}, {width}, num_blocks={n_blocks}, stride={1 if i == 0 else 2})")
        forward.append(f"{level.lower()} = self.layer{i + 1}({previous})  # {level}: {_shape(width, stride)}")
        in_channels, previous = width, level.lower()
    forward.append('return {"C2": c2, "C3": c3, "C4": c4, "C5": c5}')
    pad = 16 * " "
    return _code(
        f'''
        class ResNetBackbone(nn.Module):
            """Stem, then layer1..layer4: (N, {c.input_channels}, H, W) -> {{"C2": .., "C5": ..}}, strides 4 to 32."""

            def __init__(self):
                super().__init__()
                self.stem = Stem({c.input_channels}, {c.stem_width})
{textwrap.indent(chr(10).join(init), pad)}

            def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
{textwrap.indent(chr(10).join(forward), pad)}
        '''
    )


def _merge(c: Config) -> str:
    """The FPN's top-down step for the design's policy, as a method."""
    mode = f'mode="{c.upsample}"'
    if c.policy == "match":
        return _code(
            f'''
            @staticmethod
            def merge(lateral: torch.Tensor, coarser: torch.Tensor) -> torch.Tensor:
                """The top-down step: ``coarser`` resized to ``lateral``'s size, added to it."""
                return lateral + F.interpolate(coarser, size=lateral.shape[-2:], {mode})
            '''
        )
    if c.policy == "pad":
        return _code(
            f'''
            @staticmethod
            def merge(lateral: torch.Tensor, coarser: torch.Tensor) -> torch.Tensor:
                """The top-down step: ``coarser`` upsampled ×2 (exact after padding), plus ``lateral``."""
                return lateral + F.interpolate(coarser, scale_factor=2.0, {mode})
            '''
        )
    # ×2 without padding: an input whose halvings do not stay even would make `+` fail, or broadcast
    # a 1×1 lateral silently; say so instead.
    return _code(
        f'''
        @staticmethod
        def merge(lateral: torch.Tensor, coarser: torch.Tensor) -> torch.Tensor:
            """The top-down step: ``coarser`` upsampled ×2, added to ``lateral``."""
            top_down = F.interpolate(coarser, scale_factor=2.0, {mode})
            if top_down.shape != lateral.shape:
                raise ValueError(
                    f"FPN merge: lateral is {{tuple(lateral.shape)}} but the ×2 upsampled level is "
                    f"{{tuple(top_down.shape)}}; use an input whose height and width are multiples of 32"
                )
            return lateral + top_down
        '''
    )


def fpn(c: Config) -> str:
    d, levels = c.fpn_width, c.fpn_levels
    laterals = [f'"{level}": nn.Conv2d({c.widths[int(level[1]) - 2]}, {d}, 1),' for level in levels]
    outputs = [f'"P{level[1]}": nn.Conv2d({d}, {d}, 3, padding=1),' for level in levels]
    init = ["self.lateral = nn.ModuleDict({", *("    " + line for line in laterals), "})"]
    init += ["self.output = nn.ModuleDict({", *("    " + line for line in outputs), "})"]
    if c.p6 == "maxpool":
        init.append("self.p6 = nn.MaxPool2d(1, stride=2)  # subsamples P5")
    elif c.p6 != "none":
        init.append(f"self.p6 = nn.Conv2d({d if c.p6 == 'p5-conv' else c.widths[3]}, {d}, 3, stride=2, padding=1)")
    if c.p7:
        init.append(f"self.p7 = nn.Conv2d({d}, {d}, 3, stride=2, padding=1)")

    forward = ['merged = self.lateral["C5"](features["C5"])', f"p5 = self.output[\"P5\"](merged)  # P5: {_shape(d, 32)}"]
    for level in reversed(levels[:-1]):
        k = int(level[1])
        forward.append(f'merged = self.merge(self.lateral["{level}"](features["{level}"]), merged)')
        forward.append(f'p{k} = self.output["P{k}"](merged)  # P{k}: {_shape(d, 2**k)}')
    names = [f"P{level[1]}" for level in levels]
    if c.p6 != "none":
        source = 'features["C5"]' if c.p6 == "c5-conv" else "p5"
        forward.append(f"p6 = self.p6({source})  # P6: {_shape(d, 64)}")
        names.append("P6")
    if c.p7:
        forward.append(f"p7 = self.p7(F.relu(p6))  # P7: {_shape(d, 128)}")
        names.append("P7")
    forward.append("return {" + ", ".join(f'"{p}": {p.lower()}' for p in names) + "}")

    extras = {"p5-conv": ", P6 from P5", "c5-conv": ", P6 from C5", "maxpool": ", P6 subsampled from P5", "none": ""}
    summary = f"Lateral 1×1 convs, top-down merges, 3×3 output convs{extras[c.p6]}{', P7' if c.p7 else ''}"
    pad = 16 * " "
    return _code(
        f'''
        class FPN(nn.Module):
            """Feature pyramid on {levels[0]}..C5, {d} channels on every level.

            {summary}.
            """

            def __init__(self):
                super().__init__()
{textwrap.indent(chr(10).join(init), pad)}

{textwrap.indent(_merge(c), 12 * " ")}

            def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
{textwrap.indent(chr(10).join(forward), pad)}
        '''
    )


def model(c: Config) -> str:
    p_levels = c.pyramid_levels
    levels = f'"C2": .., "C5": .., "{p_levels[0]}": .., "{p_levels[-1]}": ..'
    pad = (
        f"\n                x = pad_to_multiple(x, {PAD_MULTIPLE})  # (N, {c.input_channels}, H, W), H and W now multiples of {PAD_MULTIPLE}"
        if c.policy == "pad"
        else ""
    )
    return _code(
        f'''
        class ResFPN(nn.Module):
            """ResNet backbone + FPN: (N, {c.input_channels}, H, W) -> {{{levels}}}."""

            def __init__(self):
                super().__init__()
                self.backbone = ResNetBackbone()
                self.fpn = FPN()

            def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:{pad}
                features = self.backbone(x)
                return features | self.fpn(features)


        def build_model() -> ResFPN:
            """The design's model in eval mode, with PyTorch's default initialisation."""
            return ResFPN().eval()


        if __name__ == "__main__":
            with torch.no_grad():
                levels = build_model()(torch.zeros({", ".join(map(str, c.input_shape))}))
            for name, level in levels.items():
                print(name, tuple(level.shape))
        '''
    )
