"""Designs as JSON files: the report's ``config`` dict, read with one-line errors and written back.

    >>> text = design_json(Config(input_height=225, skip="A"))
    >>> config_from_json(text) == Config(input_height=225, skip="A")
    True
    >>> config_from_json('{"skip": "E"}')
    Traceback (most recent call last):
    ...
    resfpn.share.design_file.DesignFileError: design: skip='E': unknown value; allowed: 'A', 'B', 'C', 'D'

A file may hold only some fields (the others keep the starting design's values), and a whole
``python -m resfpn --json`` report is read through its ``config`` key.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

from ..model.config import Config, ConfigError

MAX_BYTES = 1 << 20  # a design is a few hundred bytes; anything near this is not one

_DEFAULTS = {f.name: getattr(Config(), f.name) for f in fields(Config)}


class DesignFileError(ConfigError):
    """A design file that cannot be used; the one-line message names the file and what is wrong."""


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the text {json.dumps(value[:40])}"
    return "a list" if isinstance(value, list) else "an object"


def _check_type(name: str, value: Any) -> str | None:
    """What is wrong with the JSON type of ``value`` for field ``name``, or None."""
    default = _DEFAULTS[name]
    if isinstance(default, bool):
        ok, expected = isinstance(value, bool), "true or false"
    elif isinstance(default, int):
        ok, expected = isinstance(value, (int, float)) and not isinstance(value, bool), "a whole number"
    elif isinstance(default, tuple):
        ok = isinstance(value, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        expected = "a list of four whole numbers, e.g. [64, 128, 256, 512]"
    else:
        ok, expected = isinstance(value, str), "a text value"
    return None if ok else f"{name}: expected {expected}, got {_json_kind(value)}"


def config_from_json(text: str | bytes, source: str = "design", start: Config | None = None) -> Config:
    """The design in a JSON text: a config dict, or a report holding one under ``config``.

    Args:
        text: the file's content.
        source: how messages name the file, e.g. its path.
        start: the values of fields the file leaves out (default: the reference design).

    Raises:
        DesignFileError: bad JSON, not an object, an unknown key, a value of the wrong type or one
            the configuration refuses; the message is one line starting with ``source``.
    """
    if len(text) > MAX_BYTES:
        raise DesignFileError(f"{source}: more than {MAX_BYTES:,} bytes; a design file is a small JSON object")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise DesignFileError(f"{source}: not UTF-8 text; expected a JSON design file") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise DesignFileError(f"{source}: not valid JSON: {err.msg} (line {err.lineno}, column {err.colno})") from None
    except (ValueError, RecursionError) as err:  # e.g. a number with thousands of digits, deep nesting
        raise DesignFileError(f"{source}: not a usable JSON design ({type(err).__name__})") from None
    if isinstance(data, dict) and "config" in data:  # a whole report
        data = data["config"]
        if not isinstance(data, dict):
            raise DesignFileError(f"{source}: 'config' should be an object of design fields, got {_json_kind(data)}")
    if not isinstance(data, dict):
        raise DesignFileError(
            f"{source}: expected a JSON object of design fields (or a report with a 'config' key), got {_json_kind(data)}"
        )
    unknown = [key for key in data if key not in _DEFAULTS]
    if unknown:
        raise DesignFileError(
            f"{source}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(repr(k[:40]) for k in unknown[:5])}"
            f"{' …' if len(unknown) > 5 else ''}; known keys: {', '.join(_DEFAULTS)}"
        )
    for name, value in data.items():
        problem = _check_type(name, value)
        if problem:
            raise DesignFileError(f"{source}: {problem}")
    try:
        return (start or Config()).replace(**data)
    except ConfigError as err:
        raise DesignFileError(f"{source}: {err}") from None


def read_design(path: str | Path, start: Config | None = None) -> Config:
    """The design in the JSON file at ``path`` (see ``config_from_json``); DesignFileError if unusable."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as err:
        raise DesignFileError(f"{path}: cannot read it: {err.strerror or err}") from None
    return config_from_json(data, source=str(path), start=start)


def design_json(config: Config) -> str:
    """``config`` as the JSON text of a design file (every field, in the config's order)."""
    return json.dumps(config.to_dict(), indent=2) + "\n"


def write_design(config: Config, path: str | Path) -> None:
    """Write ``config`` as a design file; DesignFileError (one line) if the file cannot be written."""
    try:
        Path(path).write_text(design_json(config), encoding="utf-8")
    except OSError as err:
        raise DesignFileError(f"{path}: cannot write it: {err.strerror or err}") from None
