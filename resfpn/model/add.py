"""The one checked addition behind every ``+`` in the model, and the error it raises.

Residual adds (``F(x) + S(x)``) and FPN merges (``lateral + upsampled``) are element-wise: both
operands must have identical shapes. ``torch.add`` would broadcast a 1×1 map against an 8×8 one
without a word; ``checked_add`` never does.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import Any, Callable

import torch

from ..formatting import format_shape  # noqa: F401  (re-exported: resfpn.model.add.format_shape)

DIM_NAMES = ("N", "C", "H", "W")


@dataclass(frozen=True)
class Fix:
    """One concrete way out of a mismatch: a label for people and the config fields it changes."""

    label: str
    changes: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "changes": dict(self.changes)}


class ShapeMismatchError(ValueError):
    """Two operands of an element-wise addition disagree in shape.

    Attributes:
        where: the addition, e.g. ``"FPN merge into P4"`` or ``"layer3.0 residual add"``.
        operands: what the two operands are, e.g. ``("lateral(C4)", "upsampled P5")``.
        shapes: both shapes, ``(N, C, H, W)`` each.
        dim: index of the first dimension that differs (0..3); ``dim_name`` is N, C, H or W.
        cause: why they differ (filled in by the model, which knows the configuration).
        fixes: concrete changes that make the addition hold.
    """

    def __init__(self, where: str, operands: tuple[str, str], shapes: tuple[tuple[int, ...], tuple[int, ...]]):
        self.where = where
        self.operands = operands
        self.shapes = (tuple(shapes[0]), tuple(shapes[1]))
        self.dim = _first_difference(*self.shapes)
        self.cause = ""
        self.fixes: list[Fix] = []
        super().__init__(self.message)

    @property
    def dim_name(self) -> str:
        return DIM_NAMES[self.dim] if 0 <= self.dim < len(DIM_NAMES) else f"dim {self.dim}"

    @property
    def headline(self) -> str:
        (a, b), (sa, sb) = self.operands, self.shapes
        da = sa[self.dim] if self.dim < len(sa) else "-"
        db = sb[self.dim] if self.dim < len(sb) else "-"
        return (
            f"{self.where}: {a} is {format_shape(sa)} but {b} is {format_shape(sb)} "
            f"({self.dim_name} differs: {da} vs {db})."
        )

    @property
    def hint(self) -> str:
        """Cause and fixes as one readable paragraph."""
        parts = [self.cause] if self.cause else []
        if self.fixes:
            parts.append("Fix: " + "; or ".join(f.label for f in self.fixes) + ".")
        return " ".join(parts)

    @property
    def message(self) -> str:
        return "\n".join(p for p in (self.headline, self.cause, self._fix_line()) if p)

    def _fix_line(self) -> str:
        return ("Fix: " + "; or ".join(f.label for f in self.fixes) + ".") if self.fixes else ""

    def explain(self, cause: str, fixes: list[Fix]) -> None:
        """Attach the cause and fixes (once; the innermost explanation wins)."""
        if self.cause:
            return
        self.cause, self.fixes = cause, list(fixes)
        self.args = (self.message,)

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        return {
            "where": self.where,
            "operands": list(self.operands),
            "shapes": [list(self.shapes[0]), list(self.shapes[1])],
            "dim": self.dim,
            "dim_name": self.dim_name,
            "cause": self.cause,
            "fixes": [f.to_dict() for f in self.fixes],
            "hint": self.hint,
            "message": self.message,
        }


def _first_difference(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    if len(a) != len(b):
        return min(len(a), len(b))
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return -1


@dataclass
class AddRecord:
    where: str
    operands: tuple[str, str]
    shapes: tuple[tuple[int, ...], tuple[int, ...]]
    ok: bool


# Set by ``trace`` (and tests) to observe additions; None in normal use, so a forward pays nothing.
_observer: contextvars.ContextVar[Callable[[AddRecord, torch.Tensor, torch.Tensor, torch.Tensor | None], None] | None]
_observer = contextvars.ContextVar("resfpn_add_observer", default=None)


def checked_add(a: torch.Tensor, b: torch.Tensor, where: str, operands: tuple[str, str]) -> torch.Tensor:
    """``a + b`` for operands of identical shape; never broadcasts.

    Raises:
        ShapeMismatchError: when ``a.shape != b.shape``; names ``where``, both operands and shapes.
    """
    ok = a.shape == b.shape
    observer = _observer.get()
    if not ok:
        if observer is not None:
            observer(AddRecord(where, operands, (tuple(a.shape), tuple(b.shape)), False), a, b, None)
        raise ShapeMismatchError(where, operands, (tuple(a.shape), tuple(b.shape)))
    out = a + b
    if observer is not None:
        observer(AddRecord(where, operands, (tuple(a.shape), tuple(b.shape)), True), a, b, out)
    return out

