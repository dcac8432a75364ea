"""A design as one standalone PyTorch file: ``build_model()`` with resfpn's module tree, torch only.

The file is written from the design, class by class, with only the parts the design uses (its block
type, its skip option's shortcuts, its P6/P7). Module names match resfpn's, so state dicts move both
ways: ``build_model().load_state_dict(resfpn_model.state_dict())``.

    >>> code = export_code(Config(widths=(8, 8, 16, 16), blocks=(1, 1, 1, 1), stem_width=8, fpn_width=8))
    >>> "def build_model() -> ResFPN:" in code, "import resfpn" in code
    (True, False)
    >>> export_code(Config(input_height=225, input_width=225))
    Traceback (most recent call last):
    ...
    resfpn.share.export.ExportError: not exporting a design whose shapes do not add up: FPN merge into P4: ...
"""

from __future__ import annotations

import json
import textwrap

from . import export_templates as templates
from ..model.add import ShapeMismatchError
from ..model.config import SKIP_OPTIONS, Config
from ..model.network import PAD_MULTIPLE
from ..shapes.tracing import trace


class ExportError(ValueError):
    """Export refused: the design has a shape mismatch. ``mismatch`` holds the diagnosis."""

    def __init__(self, mismatch: ShapeMismatchError):
        self.mismatch = mismatch
        super().__init__(f"not exporting a design whose shapes do not add up: {mismatch}")


def _describe(c: Config) -> str:
    """One paragraph saying what the design is, for the file's docstring."""
    if c.block == "bottleneck":
        where = "3×3, v1.5" if c.stride_in == "3x3" else "first 1×1, v1"
        block = f"bottleneck blocks (inner width = width/{c.expansion}; stride in the {where})"
    else:
        block = "basic blocks"
    p6 = {
        "p5-conv": "P6 from a stride-2 3×3 conv on P5",
        "c5-conv": "P6 from a stride-2 3×3 conv on C5",
        "maxpool": "P6 by subsampling P5",
        "none": "no P6",
    }[c.p6]
    resize = {
        "x2": f"{c.upsample} ×2 upsampling",
        "match": f"{c.upsample} resizing to each lateral's size",
        "pad": f"{c.upsample} ×2 upsampling on an input padded to a multiple of {PAD_MULTIPLE}",
    }[c.policy]
    skip = SKIP_OPTIONS[c.skip].split(":")[0]
    return (
        f"A ResNet with {block}, {list(c.blocks)} blocks per stage, widths {list(c.widths)}, "
        f"skip option {c.skip} ({skip}); an FPN of width {c.fpn_width} on {c.fpn_levels[0]}–C5 with {resize}; "
        f"{p6}{', and P7 from a stride-2 3×3 conv on ReLU(P6)' if c.p7 else ''}."
    )


def _wrap_items(items: list[str], first: str, indent: str, end: str, width: int = 100) -> list[str]:
    """``items`` joined by commas, broken between items so no line passes ``width``."""
    lines, line = [], first
    for i, item in enumerate(items):
        piece = item + ("," if i < len(items) - 1 else end)
        if line not in (first, indent) and len(line) + 1 + len(piece) > width:
            lines.append(line)
            line = indent
        line += ("" if line in (first, indent) else " ") + piece
    return lines + [line]


def _header(c: Config, shapes: dict[str, tuple[int, ...]]) -> str:
    n, channels, h, w = c.input_shape
    padded = (
        f"\nThe input is first zero-padded bottom and right to a multiple of {PAD_MULTIPLE} (the 'pad' policy);"
        "\nH and W below are the padded sizes."
        if c.policy == "pad"
        else ""
    )
    doc = "\n".join(
        [
            "ResNet + FPN, exported by resfpn as plain PyTorch (this file imports only torch).",
            "",
            *textwrap.wrap(_describe(c), 100),
            "",
            "Module names and state_dict keys are resfpn's, so its weights load directly:",
            "",
            "    model = build_model()",
            "    model.load_state_dict(torch.load(\"weights.pt\"))",
            f"    levels = model(torch.zeros({n}, {channels}, {h}, {w}))",
            *_wrap_items([f"{name!r}: {shape}" for name, shape in shapes.items()], "    # {", "    #  ", "}"),
            "",
            "Shapes are written (N, C, H/stride, W/stride); a stride-2 layer rounds odd sizes up." + padded,
            "",
            "The design, as a resfpn config file (python -m resfpn --config design.json):",
            *_wrap_items([f"{json.dumps(k)}: {json.dumps(v)}" for k, v in c.to_dict().items()], "    {", "     ", "}"),
        ]
    )
    return f'"""{doc}\n"""\n\nimport torch\nimport torch.nn.functional as F\nfrom torch import nn'


def export_code(config: Config) -> str:
    """One readable Python file, importing only torch, whose ``build_model()`` is ``config``'s model.

    Its ``state_dict()`` keys equal ``resfpn.build_model(config)``'s and its forward returns the same
    levels, C2..C5 then P2..P7, with the same values.

    Raises:
        ExportError: the design has a shape mismatch (``ExportError.mismatch`` is the diagnosis).
    """
    t = trace(config)
    if t.mismatch is not None:
        raise ExportError(t.mismatch)
    shapes = {name: tuple(level.shape) for name, level in t.levels.items()}
    sections = [_header(config, shapes)]
    if config.policy == "pad":
        sections.append(templates.pad_function())
    sections += [templates.stem(), *templates.shortcuts(config.skip), templates.block(config)]
    sections += [templates.stage(config), templates.backbone(config), templates.fpn(config), templates.model(config)]
    return "\n\n\n".join(sections) + "\n"
