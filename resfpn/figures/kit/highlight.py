"""Where the differences of a comparison go on the architecture map (the "≠" marks).

A comparison names what differs by level ("C3"), module path ("backbone.layer2.0.shortcut") or
addition ("layer2.0 residual add", "FPN merge into P4"). ``place_marks`` finds the drawn element
each name belongs to, from the trace's own map (parts, level sources, execution order), never from
spelled-out paths.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ...model.fpn import merge_site
from ...shapes.records import Trace
from .canvas import Canvas, add_label
from .style import DIFF, ON_MARK

MAX_HOVER_NAMES = 8
FPN_PART_MARK = {"fpn.lateral": "lateral", "fpn.output": "output", "fpn.extra": "extra"}


@dataclass(frozen=True)
class Marks:
    """Names that differ, by drawn element: ``(kind, where)`` -> names.

    Kinds: ``level`` (a box: input, stem, C2..P7), ``stage`` (a stage's ⊕ node, keyed by its C
    level), ``lateral``, ``output``, ``resize``, ``merge`` and ``extra`` (keyed by their P level).
    ``shown`` is False when the map is not part of a comparison (no legend note).
    """

    at: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    unplaced: list[str] = field(default_factory=list)
    shown: bool = False

    def get(self, kind: str, where: str) -> list[str]:
        return self.at.get((kind, where), [])

    @property
    def count(self) -> int:
        return sum(map(len, self.at.values())) + len(self.unplaced)

    def legend(self) -> str:
        """The legend note: what the ≠ marks mean, how many there are, and any name not drawn."""
        if not self.count:
            return "≠ nothing differs from the other design"
        text = (f"<b>≠</b> magenta: differs from the other design ({self.count} "
                f"difference{'s' if self.count != 1 else ''} in modules, levels and additions; hover for names)")
        if self.unplaced:
            more = " …" if len(self.unplaced) > 4 else ""
            text += "<br>also differs, not drawn: " + ", ".join(self.unplaced[:4]) + more
        return text

    def pill(self, kind: str, where: str, text: str, sign: bool = True) -> dict[str, Any]:
        """Keyword arguments of ``add_pill`` for the pill ``text``, marked if it differs (in magenta,
        and with "≠" unless ``sign=False``, where there is no room for it, as on a phone)."""
        names = self.get(kind, where)
        if not names:
            return dict(text=text)
        return dict(text=f"≠ {text}" if sign else text, color=DIFF, border=DIFF, border_width=2,
                    hovertext=differs_hover(names))


def differs_hover(names: list[str]) -> str:
    """Hover lines naming what differs, at most ``MAX_HOVER_NAMES`` of them."""
    shown = names[:MAX_HOVER_NAMES]
    more = f"<br>… and {len(names) - len(shown)} more" if len(names) > len(shown) else ""
    return "<b>≠ differs from the other design</b><br>" + "<br>".join(shown) + more


def place_marks(t: Trace, names: Iterable[str] | None) -> Marks:
    """The drawn element of each name in ``names`` (None: not a comparison, nothing marked)."""
    if names is None:
        return Marks()
    stage_of = {t.level_part(c): c for c in t.config.backbone_levels}  # "layer2" -> "C3"
    source_of = {m: p for p, mods in t.map.sources.items() for m in mods}
    merges = {merge_site(p): p for p in t.config.pyramid_levels}
    added_by = {a.where: m for a, m in zip(t.additions, t.add_modules)}
    order = [m.name for m in t.modules]
    stem_at = order.index(t.map.stem) if t.map.stem in order else 0

    def fpn_level(name: str) -> str | None:
        """The P level a module of the FPN works for: its own, or that of the next source to run."""
        if name in source_of:
            return source_of[name]
        start = order.index(name) if name in order else len(order)
        return next((source_of[m] for m in order[start:] if m in source_of), None)

    def key(name: str) -> tuple[str, str] | None:
        if name in t.map.levels or name == "input":
            return "level", name
        if name in merges:
            return "merge", merges[name]
        module = added_by.get(name, name)
        part = t.map.part.get(module)
        if part in stage_of:
            return "stage", stage_of[part]
        if module == t.map.stem or part == "stem":
            return "level", "stem"
        if part in FPN_PART_MARK or (part is None and module in order and order.index(module) > stem_at):
            level = fpn_level(module)
            return (FPN_PART_MARK.get(part, "resize"), level) if level else None
        if module in order and order.index(module) < stem_at:
            return "level", "input"  # runs before the stem: the input padding
        return None

    at: dict[tuple[str, str], list[str]] = defaultdict(list)
    unplaced = []
    for name in dict.fromkeys(names):
        k = key(name)
        if k is None:
            unplaced.append(name)
        else:
            at[k].append(name)
    return Marks(dict(at), unplaced, shown=True)


def mark_box(cv: Canvas, x: float, y: float, w: float, h: float, badge: bool = True) -> None:
    """A magenta outline around the box centred at (x, y), with "≠" on its top-right corner
    (``badge=False``: the outline alone, where the corner has no room, as on a phone)."""
    pad = 0.9
    cv.shapes.append(dict(type="rect", xref="x", yref="y", x0=x - w / 2 - pad, x1=x + w / 2 + pad,
                          y0=y - h / 2 - pad, y1=y + h / 2 + pad, line=dict(color=DIFF, width=3)))
    if badge:
        add_label(cv, x + w / 2 + pad, y + h / 2 + pad, "<b>≠</b>", ON_MARK, size=14, bgcolor=DIFF, borderpad=1)


def add_rings(cv: Canvas, rings: list[tuple[float, float, int, str]]) -> None:
    """Magenta rings around ⊕ nodes that differ: (x, y, node size, hover) each."""
    if not rings:
        return
    xs, ys, sizes, hovers = zip(*rings)
    cv.traces.append(dict(type="scatter", x=xs, y=ys, mode="markers", name="differs",
                          marker=dict(symbol="circle-open", size=[s + 12 for s in sizes], color=DIFF,
                                      line=dict(color=DIFF, width=3)),
                          hovertext=list(hovers), hoverinfo="text"))
