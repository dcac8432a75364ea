"""Designs that travel: the design in the page's link, as a JSON file (down and up), and as one
standalone PyTorch file. The logic is in ``resfpn.share.links``, ``resfpn.share.design_file`` and ``resfpn.share.export``."""

from __future__ import annotations

import html
import re
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr

from resfpn import PRESETS
from resfpn.model.config import PRESET_NOTES
from resfpn.share.design_file import DesignFileError, config_from_json, design_json
from resfpn.share.links import config_from_query, design_query

from .controls import config_from_controls, controls_from_config
from .errors import in_place, remember
from .library import LIMITS, refuse

# Builds the full link in the browser, where the page's real address is known (Spaces embed it).
COPY_LINK_JS = """(query) => {
  const url = window.location.origin + window.location.pathname + (query ? "?" + query : "");
  if (navigator.clipboard) navigator.clipboard.writeText(url).catch(() => {});
  return url;
}"""


def _slug(config: Any, preset: str | None) -> str:
    start = preset if preset in PRESETS else "design"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", f"resfpn-{start}-{config.input_height}x{config.input_width}")


def on_link(request: gr.Request) -> list:
    """The page opened: read the design from the link's query parameters (named after the config
    fields); what cannot be used is named in a note and keeps the reference value."""
    params = dict(request.query_params) if request is not None else {}
    params = {k: v for k, v in params.items() if not k.startswith("__")}  # Gradio's own, e.g. __theme
    if not params:
        return [*controls_from_config(PRESETS["reference"]), "reference", gr.update(), ""]
    config, notes = config_from_query(params)
    try:
        LIMITS.check_architecture(config)
    except ValueError as err:
        notes.append(f"{err}; the reference design is shown instead")
        config = PRESETS["reference"]
    preset = params.get("preset") if params.get("preset") in PRESETS else "reference"
    text = ("**From the link:** " + "; ".join(html.escape(n) for n in notes)) if notes else "Design read from the link."
    return [*controls_from_config(config), preset, PRESET_NOTES[preset], text]


def on_copy_link(preset: str | None, *values: Any) -> str:
    """The current design's query string (the browser turns it into the full link and copies it)."""
    return design_query(config_from_controls(list(values)), preset if preset in PRESETS else None)


def on_download_design(preset: str | None, *values: Any) -> str:
    config = config_from_controls(list(values))
    path = Path(tempfile.mkdtemp(prefix="resfpn-")) / f"{_slug(config, preset)}.json"
    path.write_text(design_json(config), encoding="utf-8")
    return str(path)


def on_download_code(preset: str | None, *values: Any) -> str:
    from resfpn.share.export import ExportError, export_code

    config = config_from_controls(list(values))
    try:
        code = export_code(config)
    except ExportError as err:
        raise refuse(f"This design cannot be exported: {err}", "Export refused") from None
    path = Path(tempfile.mkdtemp(prefix="resfpn-")) / f"{_slug(config, preset).replace('-', '_').replace('.', '_')}.py"
    path.write_text(code, encoding="utf-8")
    return str(path)


def on_open_design(path: str | None) -> list:
    if not path:
        return [gr.update() for _ in range(len(controls_from_config(PRESETS["reference"])))] + [""]
    try:
        config = config_from_json(Path(path).read_bytes(), source=Path(path).name)
        LIMITS.check_architecture(config)
    except (DesignFileError, ValueError) as err:
        raise refuse(str(err), "Design file refused") from None
    return [*controls_from_config(config), f"Opened **{html.escape(Path(path).name)}**."]


def share_tab() -> dict[str, gr.components.Component]:
    """The "Share & export" tab (call inside ``gr.Tabs``); returns its components by name."""
    c: dict[str, gr.components.Component] = {}
    with gr.Tab("Share", id="share"):
        gr.Markdown("Take the design with you: a link that opens this page on it, a JSON file "
                    "(`python -m resfpn --config design.json` reads it), or one PyTorch file that imports only "
                    "torch and loads resfpn's `state_dict`. Every figure's toolbar downloads it as SVG (camera) "
                    "and PNG.")
        with gr.Row():
            c["copy"] = gr.Button("Copy link", elem_id="copy-link")
            c["download_design"] = gr.Button("Design as JSON", elem_id="download-design")
            c["download_code"] = gr.Button("Standalone PyTorch code", elem_id="download-code")
        c["link"] = gr.Textbox(label="Link to this design", buttons=["copy"], interactive=False, elem_id="link")
        c["file"] = gr.File(label="Download", interactive=False, elem_id="share-file")
        c["open"] = gr.File(label="Open a design (.json)", file_types=[".json"], type="filepath", elem_id="open-design")
        c["note"] = gr.Markdown(elem_id="share-note")
    return c


def wire(c: dict[str, gr.components.Component], preset: gr.Dropdown, design: list, refresh) -> None:
    """``refresh(event)`` chains the shape views' update after an event that set the controls."""
    copy = c["copy"].click(remember("copy", on_copy_link), [preset, *design], c["link"], api_visibility="private",
                           concurrency_id="trace")
    copy.success(None, c["link"], c["link"], js=COPY_LINK_JS)
    in_place(copy, "copy", c["note"], clear=[c["link"]])
    for key, fn in (("download_design", on_download_design), ("download_code", on_download_code)):
        event = c[key].click(remember(key, fn), [preset, *design], c["file"], api_visibility="private",
                             concurrency_id="trace")
        in_place(event, key, c["note"], clear=[c["file"]])
    opened = c["open"].upload(remember("open", on_open_design), c["open"], [*design, c["note"]],
                              api_visibility="private", concurrency_id="trace")
    in_place(opened, "open", c["note"])
    refresh(opened)
