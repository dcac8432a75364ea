"""Figures out of the page: JSON that carries its download settings, and file names after the design.

``plot_json`` adds a top-level ``config`` to the figure's JSON, which Plotly's front end (also
Gradio's ``gr.Plot``) passes to ``Plotly.react``: the toolbar's camera button then downloads
``filename.svg`` (or ``.png``), and the name is kept in ``layout.meta.filename`` for a page button
that downloads the other format.

    >>> design_filename(Config.preset("resnet50", input_height=224, input_width=224), "architecture")
    'resfpn-resnet50-224x224-skipB-architecture'
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import fields
from typing import Literal, get_args

import plotly.graph_objects as go

from ..model.config import PRESETS, Config

ImageFormat = Literal["svg", "png"]
IMAGE_FORMATS: tuple[ImageFormat, ...] = get_args(ImageFormat)
PNG_SCALE = 2  # sharp on high-density screens and slides
_SIZE_FIELDS = ("input_height", "input_width")  # written in every name, so a preset stays a preset
_UNSAFE = re.compile(r"[^a-z0-9]+")


def _safe(text: str) -> str:
    """Lower-case letters, digits and single dashes: safe in a file name on every system and in a URL."""
    return _UNSAFE.sub("-", text.lower()).strip("-")


def _preset_of(config: Config) -> str | None:
    """The preset ``config`` is, apart from its input size; None for any other design."""
    for name, preset in PRESETS.items():
        if all(getattr(config, f.name) == getattr(preset, f.name) for f in fields(Config) if f.name not in _SIZE_FIELDS):
            return name
    return None


def design_hash(config: Config) -> str:
    """8 hex digits that differ for designs that differ (sha256 of the config's canonical JSON)."""
    text = json.dumps(config.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def design_filename(config: Config, figure_name: str) -> str:
    """A file name (no extension) for a figure of ``config``, e.g. ``resfpn-resnet50-224x224-skipB-architecture``.

    A preset at any input size is named after the preset; any other design gets a short readable
    slug (block type and widths) and ``design_hash``, e.g.
    ``resfpn-basic-64-128-256-512-225x225-skipA-3f2a9c1b-blocks``. Only ``a-z A-Z 0-9 -`` appear.
    """
    figure = _safe(figure_name)
    if not figure:
        raise ValueError(f"figure_name={figure_name!r}: needs at least one letter or digit, e.g. 'architecture'")
    size = f"{config.input_height}x{config.input_width}"
    preset = _preset_of(config)
    if preset is not None:
        design = f"{_safe(preset)}-{size}-skip{config.skip}"
    else:
        widths = "-".join(str(w) for w in config.widths)
        design = f"{config.block}-{widths}-{size}-skip{config.skip}-{design_hash(config)}"
    return f"resfpn-{design}-{figure}"


def plot_json(fig: go.Figure, filename: str, fmt: ImageFormat = "svg") -> str:
    """The figure's JSON with a ``config`` for Plotly's toolbar: download as ``filename.fmt``, no logo.

    ``layout.meta.filename`` carries ``filename`` for a page button that downloads the other format
    (``Plotly.downloadImage(div, {format: "png", filename: div.layout.meta.filename})``).
    """
    if fmt not in IMAGE_FORMATS:
        raise ValueError(f"fmt={fmt!r}: unknown image format; allowed: {', '.join(map(repr, IMAGE_FORMATS))}")
    if not filename or _UNSAFE.sub("", filename.lower().replace("-", "")) != filename.lower().replace("-", ""):
        raise ValueError(f"filename={filename!r}: use letters, digits and '-' only (see design_filename)")
    spec = json.loads(fig.to_json())
    layout = spec.setdefault("layout", {})
    meta = layout.get("meta")
    layout["meta"] = (meta if isinstance(meta, dict) else {} if meta is None else {"meta": meta}) | {"filename": filename}
    options = {"format": fmt, "filename": filename} | ({"scale": PNG_SCALE} if fmt == "png" else {})
    spec["config"] = {"toImageButtonOptions": options, "displaylogo": False, "displayModeBar": False}
    return json.dumps(spec, separators=(",", ":"))
