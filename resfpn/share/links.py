"""Designs as links: a ``Config`` to URL query parameters named after its fields, and back.

A link names its starting point and what differs from it, in words a person can read and edit::

    ?preset=resnet50&input_height=225&input_width=225&skip=A

    >>> design_query(Config.preset("resnet50", input_height=225, input_width=225, skip="A"))
    'preset=resnet50&input_height=225&input_width=225&skip=A'
    >>> config, notes = config_from_query("?input_height=225&skip=E&widths=64,128,256,512")
    >>> config.input_height, config.skip
    (225, 'B')
    >>> notes
    ["skip='E': unknown value; allowed: 'A', 'B', 'C', 'D' — kept B"]

Reading never raises: an unknown or invalid parameter becomes a note and the field keeps its
starting value (the preset's, or the reference design's).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import fields
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

from ..model.config import BLOCKS, FPN_FROM, P6_SOURCES, POLICIES, PRESETS, SKIP_OPTIONS, STRIDE_IN, UPSAMPLE, Config, ConfigError

_DEFAULTS = {f.name: getattr(Config(), f.name) for f in fields(Config)}
# Case-insensitive spellings of the allowed values, so a hand-typed ``skip=a`` or ``fpn_from=c3`` works.
_CHOICES = {
    "block": BLOCKS,
    "stride_in": STRIDE_IN,
    "skip": tuple(SKIP_OPTIONS),
    "fpn_from": FPN_FROM,
    "upsample": UPSAMPLE,
    "policy": tuple(POLICIES),
    "p6": P6_SOURCES,
}
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")
_WHOLE = re.compile(r"\s*([0-9]{1,9})\s*")
_MAX_PARAMS = 100  # a design has 17 fields; more than this is not a design link
_SHOWN_UNKNOWN = 5


def format_value(value: Any) -> str:
    """A field's value as a link writes it: ``64,128,256,512``, ``true``, ``225``, ``A``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def _differences(config: Config, start: Config) -> list[str]:
    return [f.name for f in fields(Config) if getattr(config, f.name) != getattr(start, f.name)]


def design_query(config: Config, preset: str | None = None) -> str:
    """The query string (without ``?``) that ``config_from_query`` reads back as ``config``.

    It names a starting preset and only the fields that differ from it, in the config's field
    order. ``preset`` picks the starting point (e.g. the one the user chose); by default it is the
    one that gives the shortest link, and the reference design is written as no preset at all.
    """
    if preset is None or preset not in PRESETS:
        cost = {name: len(_differences(config, start)) + (name != "reference") for name, start in PRESETS.items()}
        preset = min(cost, key=lambda name: (cost[name], name != "reference"))
    params = [("preset", preset)] if preset != "reference" else []
    params += [(name, format_value(getattr(config, name))) for name in _differences(config, PRESETS[preset])]
    return "&".join(f"{name}={quote(value, safe=',')}" for name, value in params)


def design_link(base_url: str, config: Config, preset: str | None = None) -> str:
    """``base_url`` with its query replaced by ``config``'s, e.g. ``https://host/?preset=resnet50``."""
    parts = urlsplit(base_url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", design_query(config, preset), ""))


def _show(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def _parse(name: str, text: str) -> Any:
    """The typed value of one parameter; ValueError with a readable reason when it is not one."""
    default = _DEFAULTS[name]
    text = text.strip()
    if not text:
        raise ValueError("no value given")
    if isinstance(default, bool):
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ValueError("expected true or false (or 1 / 0)")
    if isinstance(default, int):
        match = _WHOLE.fullmatch(text)
        if not match:
            raise ValueError("expected a whole number")
        return int(match.group(1))
    if isinstance(default, tuple):
        items = text.strip("[]()").split(",")
        matches = [_WHOLE.fullmatch(item) for item in items]
        if len(items) != 4 or not all(matches):
            raise ValueError("expected four comma-separated whole numbers, one per stage, e.g. 64,128,256,512")
        return tuple(int(m.group(1)) for m in matches)
    for allowed in _CHOICES.get(name, ()):
        if text.lower() == allowed.lower():
            return allowed
    return text  # Config refuses it with the allowed values


def _pairs(query: str | Mapping[str, str] | Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    if isinstance(query, str):
        if "?" in query:
            query = query.split("?", 1)[1]
        elif "://" in query:
            query = ""  # a link with no query
        return parse_qsl(query.split("#", 1)[0], keep_blank_values=True)
    if hasattr(query, "multi_items"):  # starlette's QueryParams, as Gradio's request.query_params
        return [(str(k), str(v)) for k, v in query.multi_items()]
    if isinstance(query, Mapping):
        return [(str(k), str(v)) for k, v in query.items()]
    return [(str(k), str(v)) for k, v in query]


def config_from_query(
    query: str | Mapping[str, str] | Iterable[tuple[str, str]],
) -> tuple[Config, list[str]]:
    """The design a link describes, and readable notes on every parameter it could not use.

    Args:
        query: a whole link, a query string (``?`` optional), or its parameters as a mapping or pairs.
            ``preset`` gives the starting point; parameters named after ``Config`` fields override it
            (``widths``/``blocks`` as comma lists, ``p7`` as true/false/1/0, choices in any case).

    Returns:
        ``(config, notes)``: an unknown parameter, a bad value or a clash between fields becomes one
        note, and the fields involved keep their starting values. Never raises.
    """
    try:
        pairs = _pairs(query)
    except (TypeError, ValueError) as err:  # e.g. pairs that are not pairs
        return PRESETS["reference"], [f"could not read the link's parameters ({err}); showing the reference design"]
    notes: list[str] = []
    if len(pairs) > _MAX_PARAMS:
        notes.append(f"the link has {len(pairs)} parameters; read the first {_MAX_PARAMS}")
        pairs = pairs[:_MAX_PARAMS]
    given: dict[str, str] = {}
    unknown: list[str] = []
    for raw, text in pairs:
        if raw.startswith("__"):  # the page's own parameters (Gradio's ``__theme=dark``), not the design's
            continue
        name = raw.strip().lower().replace("-", "_")
        if name != "preset" and name not in _DEFAULTS:
            unknown.append(_show(raw))
            continue
        if name in given and given[name] != text:
            notes.append(f"{name} is given more than once; used the last value, {_show(text)}")
        given[name] = text
    if unknown:
        more = f" and {len(unknown) - _SHOWN_UNKNOWN} more" if len(unknown) > _SHOWN_UNKNOWN else ""
        notes.append(
            f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(unknown[:_SHOWN_UNKNOWN])}{more} "
            f"ignored; known: preset, {', '.join(_DEFAULTS)}"
        )

    start_name = "reference"
    if "preset" in given:
        text = given.pop("preset").strip().lower()
        if text in PRESETS:
            start_name = text
        else:
            notes.append(
                f"preset={_show(text)}: unknown preset; allowed: {', '.join(PRESETS)} — started from the reference design"
            )
    start = PRESETS[start_name]

    changes: dict[str, Any] = {}
    for name in _DEFAULTS:  # field order, so the notes read in a stable order
        if name in given:
            try:
                changes[name] = _parse(name, given[name])
            except ValueError as err:
                notes.append(f"{name}={_show(given[name])}: {err} — kept {format_value(getattr(start, name))}")
    try:
        return start.replace(**changes), notes
    except ConfigError:
        pass
    # Some value is out of range, or two fields clash (a bottleneck width and the expansion, P7
    # without P6): apply the changes one by one, twice, so one that needs a later one still lands.
    config, pending, errors = start, dict(changes), {}
    for _ in range(2):
        for name, value in list(pending.items()):
            try:
                config = config.replace(**{name: value})
                del pending[name]
            except ConfigError as err:
                errors[name] = str(err)
    notes += [f"{errors[name]} — kept {format_value(getattr(config, name))}" for name in pending]
    return config, notes
