"""The page's way into resfpn: one engine, started in the background, and the one place where a
library error a user can cause becomes a readable ``gr.Error``.

Nothing here imports torch at import time: handlers import resfpn's torch-backed modules when they
run, and ``warm_up`` (started by app.py) imports them first, so the page serves while torch loads.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import urllib.parse
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr
from gradio.utils import get_upload_folder

from resfpn import Config, ConfigError, LimitError, Limits
from resfpn.serving.limits import serving_overhead
from resfpn.serving.precision import check_precision as _allowed_precision

if TYPE_CHECKING:
    from resfpn.serving.engine import Engine, Run, Weights
    from resfpn.serving.images import Decoded
    from resfpn.shapes.records import Trace

ASSETS = Path(__file__).resolve().parents[1] / "assets"
EXAMPLES = sorted((ASSETS / "examples").glob("*.jpg"))
LIMITS = Limits.from_env()
QUEUE_SIZE = int(os.environ.get("RESFPN_QUEUE_SIZE", "16"))
# Uploads (images and checkpoints) up to this size; Gradio streams them to disk as they arrive.
MAX_UPLOAD_BYTES = int(float(os.environ.get("RESFPN_MAX_UPLOAD_MB", "512")) * 2**20)

log = logging.getLogger("resfpn.app")
_engine: Engine | None = None
_engine_lock = threading.Lock()


def engine() -> Engine:
    """The one engine of this server (models, activations, the run slot), made on first use."""
    global _engine
    with _engine_lock:
        if _engine is None:
            from resfpn.serving import runtime
            from resfpn.serving.engine import Engine

            runtime.set_torch_threads()
            _engine = Engine()
    return _engine


def trace(config: Config) -> Trace:
    from resfpn.serving.engine import cached_trace

    return cached_trace(config)


def warm_up() -> None:
    """Import the model code and run one trace, so the first request does not pay for it."""
    engine()
    trace(Config())
    from resfpn.serving import bf16

    bf16.offer(engine().device.type)  # the probe (about 0.5 s), before a page asks what to offer


_FOLLOWING: ContextVar[bool] = ContextVar("following", default=False)


def log_to_stderr(stream: Any = None) -> logging.Handler:
    """The server's log: resfpn's records, a line each, to ``stream`` (stderr). They do not also
    propagate to the root logger, which a library may configure at any time (one did, mid-session,
    and every refusal was printed twice)."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("resfpn")
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    root.propagate = False
    return handler


def refuse(message: str, title: str, toast: bool = True) -> gr.Error:
    """A refusal the user can act on: one line in the server's log, no traceback (an unexpected
    exception, anything but this, keeps its traceback). ``toast=False``: the page shows no pop-up,
    as it explains the refusal in place (ui.errors); API callers get the message either way.
    Inside a ``follower`` the line is left out: the event that set the design logged it."""
    if not _FOLLOWING.get():
        log.info("refused: %s: %s", title, " ".join(message.split()))
    return gr.Error(message, title=title, print_exception=False, visible=toast)


def follower(fn):
    """``fn`` re-reads a design that another event set and checked (the design check, the weights
    offer, Compare, Space): its refusals are not logged again, so one action that makes the design
    invalid is one line in the log, not one per view."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        token = _FOLLOWING.set(True)
        try:
            return fn(*args, **kwargs)
        finally:
            _FOLLOWING.reset(token)

    return wrapper


def checked_config(d: Any, side: str = "") -> Config:
    """A Config from plain values, within this server's caps, or a readable gr.Error.

    ``side`` ("A" or "B") prefixes the message when two designs are on the page.
    """
    prefix = f"{side}: " if side else ""
    if not isinstance(d, dict):
        raise refuse(f"{prefix}config must be a JSON object of configuration fields", "Configuration refused")
    try:
        config = Config.from_dict(dict(d))
        LIMITS.check_architecture(config)
    except (ConfigError, LimitError) as err:
        raise refuse(f"{prefix}{err}", "Configuration refused", toast=False) from None
    except TypeError as err:
        raise refuse(f"{prefix}configuration not understood: {err}", "Configuration refused") from None
    return config


def check_run(t: Trace, backward: bool = False) -> int:
    """Refuse a run the trace already knows cannot work here; returns its memory estimate in bytes."""
    if t.mismatch:
        raise refuse(f"{t.mismatch.headline} See the fixes above the diagram.", "Cannot run: shape mismatch")
    if t.config.input_channels != 3:
        raise refuse("Images have 3 channels; set input channels to 3 to run one.", "Cannot run")
    try:
        return LIMITS.check_backward(t) if backward else LIMITS.check_run(t)
    except LimitError as err:
        raise refuse(str(err), "Run refused") from None


def admit(t: Trace, estimate: int, decoded: Decoded) -> None:
    """Make room in the memory budget for this request: the forward's estimate plus what the forward
    leaves out (decoded image, statistics, bf16 copies); cached models and activations go first."""
    w, h = decoded.original_size
    engine().make_room(estimate + serving_overhead(t, w * h), LIMITS.memory_budget)


def run_admitted(config: Config, t: Trace, estimate: int, image_path: str | None, weights: Weights,
                 precision: str) -> tuple[Run, Decoded]:
    """Decode, admit and run one image. The caller holds ``engine().slot()`` from here until it is
    done with the run's levels (statistics, maps), so the memory admitted covers that work too."""
    decoded = decode(image_path)
    admit(t, estimate + weights.load_bytes, decoded)  # a checkpoint's tensors are held while it loads
    try:
        return engine().run(config, decoded.image, weights, precision), decoded
    except weights_errors() as err:
        raise refuse(str(err), "Weights refused") from None


def check_precision(value: str | None) -> str:
    """``value`` if allowed and offered here (bf16 only where this machine's probe offers it), else a
    gr.Error with the library's sentence; nothing is built or cached for a refused precision."""
    try:
        value = _allowed_precision(value)
    except ValueError as err:
        raise refuse(str(err), "Run refused") from None
    if value == "bf16":
        from resfpn.serving import bf16

        try:
            bf16.require(value, engine().device.type)
        except bf16.PrecisionUnavailable as err:
            raise refuse(str(err), "Precision not offered") from None
    return value


def decode(image_path: str | None) -> Decoded:
    from resfpn.serving import images

    if not image_path:
        raise refuse("Choose an example image or upload one first.", "No image")
    try:
        return images.decode_image(image_path)
    except images.ImageError as err:
        raise refuse(f"This file cannot be used: {err}.", "Image refused") from None


def uploaded_path(image: Any) -> str:
    """gr.api hands inputs over unprocessed: accept only files uploaded to this server, as a FileData
    (gradio_client's handle_file) or as this server's own file URL (what MCP clients send after
    uploading); nothing is fetched from elsewhere."""
    path = image.get("path") if isinstance(image, dict) else image
    if isinstance(path, str) and _FILE_ROUTE in path:
        path = urllib.parse.unquote(path.split(_FILE_ROUTE, 1)[1])
    if not isinstance(path, str):
        raise refuse("image must be a file sent with gradio_client.handle_file(path), or the URL of a file "
                     "uploaded to this server", "Image refused")
    resolved = Path(path).resolve()
    if not resolved.is_relative_to(Path(get_upload_folder()).resolve()) or not resolved.is_file():
        raise refuse("image was not uploaded to this server", "Image refused")
    return str(resolved)


_FILE_ROUTE = "/gradio_api/file="


def weights_for(config: Config, mode: str | None, seed: Any = 0, checkpoint: str | None = None,
                progress: gr.Progress | None = None, who: str | None = None) -> Weights:
    """The weights a run uses: "random", "upload" (a file), a published source's name, or the
    API's short names "imagenet" / "coco". A published file is fetched first (from the cache, or
    downloaded with progress); a source that does not fit the design is refused, never half loaded."""
    from resfpn.serving.engine import Weights

    seed = _seed(seed)
    mode = mode or "random"
    if mode in ("upload", "checkpoint"):
        if not checkpoint:
            raise refuse("Upload a checkpoint (.pth or .safetensors, torchvision layout) first, or choose "
                         "another weights option.", "No checkpoint")
        size = Path(checkpoint).stat().st_size
        if size > LIMITS.memory_budget:
            raise refuse(f"checkpoint {Path(checkpoint).name} is {size / 2**20:,.0f} MiB, above this server's memory "
                         f"budget of {LIMITS.memory_budget / 2**20:,.0f} MiB for loading it", "Checkpoint refused")
        return Weights.from_file(checkpoint, seed=seed)
    if mode == "random":
        return Weights(seed=seed)
    source = published_source(config, mode)
    fetch_shared(source, who or f"call-{threading.get_ident()}-{id(config)}", progress)
    return Weights(seed=seed, source=source.name)


def fetch_shared(source, who: str, progress: gr.Progress | None = None):
    """The local file of published ``source``: cached, or downloaded by the server's one shared
    download of it (``resfpn.weights.download_jobs``), waited for here with progress; ``who`` (a
    session) may stop waiting with ``cancel_downloads``. Returns the path."""
    steps = download_steps(source, who)
    while True:
        try:
            done, total, status = next(steps)
        except StopIteration as finished:
            return finished.value
        if progress is not None:
            progress((done, total), desc=status, unit="bytes")


def download_steps(source, who: str):
    """``fetch_shared`` as a generator: yields (bytes done, total, status line) about twice a second
    while the file downloads, and returns its path (``path = yield from download_steps(...)``)."""
    from resfpn.weights import download
    from resfpn.weights.download_jobs import DOWNLOADS

    try:
        cached = download.cached_path(source)
    except download.CorruptFile as err:
        raise refuse(str(err), "Weights refused") from None
    if cached is not None:
        return cached
    job = DOWNLOADS.join(source, who)
    try:
        while not job.wait(0.5):
            if who not in job.waiters:
                raise refuse(f"Download of {source.name} cancelled; {job.status()}.", "Download cancelled")
            yield job.done, job.total or source.bytes, job.status()
    finally:
        DOWNLOADS.leave(job, who)
    if isinstance(job.error, download.CorruptFile):
        raise refuse(str(job.error), "Weights refused")
    if job.error is not None:
        raise refuse(str(job.error), "Weights not available")
    return job.path


def cancel_downloads(who: str) -> str:
    """The page's Cancel: ``who`` stops waiting; a download nobody else waits for stops."""
    from resfpn.weights.download_jobs import DOWNLOADS

    left = DOWNLOADS.leave_all(who)
    return "Download cancelled." if left else "No download was running for this page."


def published_source(config: Config, name: str):
    """The published source ``name`` ("imagenet", "coco" or a source name) picks for ``config``,
    without fetching it; refused (naming the weights that fit) when unknown or not fitting."""
    from resfpn.weights import pretrained

    try:
        source = pretrained.resolve(name, config)
        pretrained.require_fit(config, source)
    except (pretrained.NoSuchSource, pretrained.WeightsDontFit) as err:
        raise refuse(str(err), "Weights refused") from None
    return source


def _seed(value: Any) -> int:
    try:
        seed = int(value or 0)
    except (TypeError, ValueError):
        raise refuse(f"seed={value!r}: choose a whole number from 0 to {2**32 - 1}", "Seed refused") from None
    if not 0 <= seed < 2**32:
        raise refuse(f"seed={seed}: choose a whole number from 0 to {2**32 - 1}", "Seed refused")
    return seed


def weights_errors() -> tuple[type[Exception], ...]:
    """Errors a checkpoint can raise while it loads (refused all or nothing)."""
    from resfpn.weights import download, pretrained, loading as weights

    return weights.WeightsError, pretrained.WeightsDontFit, download.CorruptFile, download.WeightsUnavailable


# -- figures follow the page's theme and download under the design's name --------------------------

# Gradio marks dark mode with the "dark" class (on <body>, or on <gradio-app> when embedded). A phone
# adds " narrow": its figures are laid out for a narrow screen (two heatmaps per row).
THEME_JS = ("() => (document.body.classList.contains('dark') || !!document.querySelector('gradio-app.dark') "
            "? 'dark' : 'light') + (window.innerWidth < NARROW_PX ? ' narrow' : '')").replace("NARROW_PX", "700")
_narrow: ContextVar[bool] = ContextVar("narrow", default=False)


def narrow() -> bool:
    """Whether the page that sent this event is a narrow screen (a phone), from its theme value."""
    return _narrow.get()


def png_js(elem_id: str, fmt: str = "png") -> str:
    """A plot toolbar button's browser code: download the plot as ``fmt`` under its design's name."""
    scale = ", scale: 2" if fmt == "png" else ""
    return (f"() => {{ const gd = document.querySelector('#{elem_id} .js-plotly-plot'); "
            f"if (gd && window.Plotly) window.Plotly.downloadImage(gd, {{format: '{fmt}'{scale}, "
            "filename: (gd.layout.meta || {}).filename || 'resfpn-figure'}); }")


def plot(elem_id: str, **kwargs: Any) -> gr.Plot:
    """A gr.Plot whose toolbar (above the figure, not over it) downloads SVG and PNG; Plotly's own
    toolbar is hidden, so nothing covers the figure's title."""
    svg = gr.Button("SVG", size="sm", elem_id=f"{elem_id}-svg")
    png = gr.Button("PNG", size="sm", elem_id=f"{elem_id}-png")
    component = gr.Plot(show_label=False, elem_id=elem_id, buttons=[svg, png], elem_classes=["resfpn-plot"], **kwargs)
    svg.click(None, js=png_js(elem_id, "svg"))
    png.click(None, js=png_js(elem_id))
    return component


def themed(fn, figures: dict[int, str], config_of):
    """``fn`` for an event whose last input is the page theme: the outputs at ``figures``' indices
    (plotly figures) are drawn in that theme and carry their download name (``config_of(args, out)``
    gives the design). The handler itself stays theme-free, and testable as it is."""
    from gradio.components.plot import PlotData

    def handler(*args: Any) -> Any:
        from plotly import graph_objects as go

        from resfpn.figures import apply_theme, design_filename, plot_json

        *args, theme = args
        theme = str(theme or "light")
        _narrow.set("narrow" in theme.split())
        theme = "dark" if theme.split()[:1] == ["dark"] else "light"
        out = fn(*args)
        single = not isinstance(out, (tuple, list))
        out = [out] if single else list(out)
        config = config_of(args, out)
        for i, name in figures.items():
            if isinstance(out[i], go.Figure):
                fig = apply_theme(out[i], "dark" if theme == "dark" else "light")
                filename = design_filename(config, name) if config is not None else f"resfpn-{name}"
                out[i] = PlotData(type="plotly", plot=plot_json(fig, filename))
        return out[0] if single else out

    handler.__name__, handler.__doc__ = fn.__name__, fn.__doc__
    return handler
