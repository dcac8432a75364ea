"""Errors stay where they happened.

A refused request raises ``gr.Error`` as before (API callers get it), and the page also keeps its
message in the outputs the request would have filled: ``remember`` notes the message for the
browser session that sent the request, and ``in_place`` chains a ``.failure`` step that writes it
there (a Markdown note and, for a figure, a card that says why), instead of leaving Gradio's red
"Error" badge and a toast that fades. ``explain`` turns a configuration message into the words on
screen and names the control at fault.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import gradio as gr
from gradio.context import LocalContext

from resfpn.model.config import LABELS

from .controls import TABLE

_KEPT = 512  # sessions remembered; the oldest messages go first
_last: OrderedDict[tuple[str, str], tuple[str, str]] = OrderedDict()
_lock = threading.Lock()


def _session() -> str:
    request = LocalContext.request.get(None)
    return getattr(request, "session_hash", None) or ""


def remember(key: str, fn: Callable) -> Callable:
    """``fn``, noting the title and message of what it raises for this session's ``in_place(key)``."""

    @contextlib.contextmanager
    def noting():
        try:
            yield
        except gr.Error as err:
            _keep(key, err.title, str(err.message))
            raise
        except Exception as err:  # noqa: BLE001 - re-raised: Gradio logs its traceback
            _keep(key, "Unexpected error", f"{type(err).__name__}: {err}. The server's log has the details; "
                                           "please report it with the design's link (Share tab).")
            raise

    if inspect.isgeneratorfunction(fn):  # a handler that streams (progress): Gradio must see a generator
        @functools.wraps(fn)
        def streaming(*args: Any, **kwargs: Any) -> Any:
            with noting():
                yield from fn(*args, **kwargs)

        return streaming

    @functools.wraps(fn)
    def handler(*args: Any, **kwargs: Any) -> Any:
        with noting():
            return fn(*args, **kwargs)

    return handler


def _keep(key: str, title: str, message: str) -> None:
    with _lock:
        _last[(_session(), key)] = (title, message)
        _last.move_to_end((_session(), key))
        while len(_last) > _KEPT:
            _last.popitem(last=False)


def take(key: str) -> tuple[str, str]:
    """The last refusal of ``key`` in this session (forgotten once taken)."""
    with _lock:
        found = _last.pop((_session(), key), None)
    return found or ("Refused", "The server did not say why (it may be busy); try again.")


def note(title: str, message: str) -> str:
    """The Markdown a refusal leaves in place: its title, then the message with its remedy."""
    return f"<div class='refusal'>\n\n**{title}:** {message}\n\n</div>"


def in_place(event, key: str, markdown: gr.components.Component | None, plots: Sequence[gr.Plot] = (),
             clear: Sequence[gr.components.Component] = (), theme: gr.components.Component | None = None) -> None:
    """After ``event`` fails, write its refusal into ``markdown`` and ``plots`` (a card that says why);
    ``clear`` are its other outputs, emptied so nothing stale sits beside the message."""
    def show(*args: Any) -> list:
        from gradio.components.plot import PlotData

        from resfpn.figures import apply_theme, message_figure, plot_json

        title, message = take(key)
        dark = bool(args) and str(args[-1]).startswith("dark")
        out: list = [note(title, message)] if markdown is not None else []
        for _ in plots:
            fig = apply_theme(message_figure(title, message), "dark" if dark else "light")
            out.append(PlotData(type="plotly", plot=plot_json(fig, "resfpn-refused")))
        out += [None] * len(clear)
        return out

    outputs = ([markdown] if markdown is not None else []) + list(plots) + list(clear)
    event.failure(show, [theme] if theme is not None else None, outputs, api_visibility="private")


# -- configuration messages in the words on screen -------------------------------------------------

_BY_FIELD = {c.name: c for c in TABLE}
_VALUE_LABELS = {value: label for labels in LABELS.values() for value, label in labels.items()}
_FIELDS = "|".join(sorted((n for n in _BY_FIELD if "." not in n), key=len, reverse=True))
_ASSIGNED = re.compile(rf"\b(?:(widths|blocks)\[(\d)\]|({_FIELDS}))=('[^']*'|[^\s:;,]+)")
_NAMED = re.compile(rf"\b({_FIELDS})\b(?= from| \d)")
_LAYER = re.compile(r"\blayer(\d) (?:width\b|has (?=\d+ blocks))")
_QUOTED = re.compile(r"'([^']*)'")


def _control(field: str | None, index: str | None) -> str:
    return f"{field}.{index}" if index is not None else str(field)


def explain(message: str) -> tuple[str | None, str]:
    """``(control, text)``: the control a configuration message is about (a ``CONTROLS`` name, or
    None) and the message with config names and values replaced by the labels on screen.

    >>> explain("p7=True needs a P6 to build on: choose p6 from 'p5-conv', 'maxpool'")[1]
    '“P7 (3×3 s2 conv on ReLU(P6))” (ticked) needs a P6 to build on: choose “P6” from “3×3 s2 conv on P5”, “max-pool of P5”'
    """
    found: list[str] = []

    def assigned(m: re.Match) -> str:
        name = _control(m[1] or m[3], m[2])
        found.append(name)
        value = m[4].strip("'")
        label = _BY_FIELD[name].label
        if value in ("True", "False"):
            return f"“{label}” ({'ticked' if value == 'True' else 'not ticked'})"
        return f"“{label}” = {_VALUE_LABELS.get(value, value)}"

    def named(m: re.Match) -> str:
        found.append(m[1])
        return f"“{_BY_FIELD[m[1]].label}”"

    def layer(m: re.Match) -> str:
        kind = "widths" if m[0].endswith("width") else "blocks"
        name = f"{kind}.{int(m[1]) - 1}"
        found.append(name)
        return f"“{_BY_FIELD[name].label}”" if kind == "widths" else f"“{_BY_FIELD[name].label}” is "

    text = _ASSIGNED.sub(assigned, message)
    text = _NAMED.sub(named, text)
    text = _LAYER.sub(layer, text)
    text = _QUOTED.sub(lambda m: f"“{_VALUE_LABELS[m[1]]}”" if m[1] in _VALUE_LABELS else m[0], text)
    if not found:
        found += [c.name for c in TABLE if message.startswith(c.label)]
    return (found[0] if found else None), text
