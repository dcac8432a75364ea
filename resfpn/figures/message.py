"""A figure that says why there is no figure: drawn where a refused request's figure would be."""

from __future__ import annotations

import textwrap

import plotly.graph_objects as go

from ._style import FONT, INK, PAPER


def message_figure(title: str, message: str, width: int = 60) -> go.Figure:
    """A card holding ``title`` and ``message`` (plain text, wrapped at ``width`` characters), no axes."""
    lines = [line for part in message.splitlines() for line in (textwrap.wrap(part, width) or [""])]
    body = "<br>".join(_escape(line) for line in lines)
    fig = go.Figure(layout=dict(
        paper_bgcolor=PAPER, plot_bgcolor=PAPER, font=FONT, height=120 + 20 * len(lines), template="none",
        margin=dict(l=16, r=16, t=16, b=16), xaxis=dict(visible=False), yaxis=dict(visible=False),
        annotations=[dict(text=f"<b>{_escape(title)}</b><br><br>{body}", x=0, y=1, xref="paper", yref="paper",
                          xanchor="left", yanchor="top", align="left", showarrow=False,
                          font=dict(color=INK, size=14))],
    ))
    return fig


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
