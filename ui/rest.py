"""Plain REST calls that leave out trailing arguments get each one's documented default.

Gradio's ``POST /gradio_api/call/<name>`` wants one value per parameter: a shorter ``data`` list
fails before the function runs, and the client reads only ``{"error": null}``. This ASGI
middleware fills the list for the named endpoints from their Python signatures: an optional
argument takes its default, a required one is sent as null so the endpoint names it in its
error. gradio_client and MCP fill defaults themselves and are not touched.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable
from typing import Any

_CALL = re.compile(r"^(?:.*)/gradio_api/call/([A-Za-z0-9_]+)/?$")
_MAX_BODY = 1 << 20  # a /call body carries arguments and file references, not files


def defaults_of(fn: Callable) -> list[Any]:
    """Each API parameter's default (None for a required one), in order; Gradio's own request
    parameter is left out as the API leaves it out."""
    import gradio as gr

    out = []
    for p in inspect.signature(fn).parameters.values():
        if p.name == "request" or p.annotation in (gr.Request, "gr.Request"):
            continue
        out.append(None if p.default is inspect.Parameter.empty else p.default)
    return out


def filled(body: bytes, defaults: list[Any]) -> bytes | None:
    """``body`` with its ``data`` list padded to ``defaults``' length, or None to leave it as it is.

    >>> filled(b'{"data": [{}]}', [None, None, "fp32"])
    b'{"data": [{}, null, "fp32"]}'
    >>> filled(b'{"data": [{}, null, "fp32"]}', [None, None, "fp32"]) is None
    True
    """
    try:
        payload = json.loads(body or b"{}")
    except ValueError:
        return None
    if not isinstance(payload, dict):
        return None
    data = payload.get("data", [])
    if not isinstance(data, list) or len(data) >= len(defaults):
        return None
    payload["data"] = data + defaults[len(data):]
    return json.dumps(payload).encode()


class FillDefaults:
    """ASGI middleware: pad ``POST .../gradio_api/call/<name>`` bodies for ``endpoints`` (name -> function)."""

    def __init__(self, app, endpoints: dict[str, Callable]):
        self.app = app
        self.defaults = {name: defaults_of(fn) for name, fn in endpoints.items()}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        m = _CALL.match(scope["path"])
        if not m or m.group(1) not in self.defaults:
            return await self.app(scope, receive, send)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return await self.app(scope, _replay([message], receive), send)
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > _MAX_BODY:  # not ours to judge: hand the stream on untouched
                return await self.app(scope, _replay([{"type": "http.request", "body": b"".join(chunks),
                                                       "more_body": more}], receive), send)
        body = b"".join(chunks)
        new = filled(body, self.defaults[m.group(1)])
        if new is not None:
            body = new
            headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
            scope = dict(scope, headers=headers + [(b"content-length", str(len(body)).encode())])
        return await self.app(scope, _replay([{"type": "http.request", "body": body, "more_body": False}], receive),
                              send)


def _replay(messages: list[dict], then):
    """A ``receive`` that gives ``messages`` first, then whatever the client sends next."""
    queue = list(messages)

    async def receive():
        return queue.pop(0) if queue else await then()

    return receive
