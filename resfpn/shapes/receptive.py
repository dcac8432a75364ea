"""Exact theoretical receptive fields, per position, from the ops the shape trace observes.

The textbook recurrence ``r += (k-1)·jump`` gives one number per layer and is wrong after nearest
upsampling: a P2 cell whose 3×3 window stays inside one C5 parent sees less than one whose window
straddles two. Here every position of every tensor carries, per axis, the interval ``[lo, hi]`` of
input pixels it depends on, propagated through windows (convs, pools, strided subsampling),
upsampling (PyTorch's own index arithmetic), element-wise ops and additions (union).

Intervals are *unclipped*: positions are computed as if the input went on beyond its border
(padding positions count as pixels). Each tensor is evaluated on exactly the index range its
consumers reach, so border positions get the same field as they would in an unbounded input.

The field of a cell is a rectangle ``[lo_h, hi_h] × [lo_w, hi_w]``; its extent per axis is
``hi - lo + 1``. ``receptive_field`` reports the largest extent over positions and both axes and
``receptive_field_range`` the ``[min, max]`` over positions and both axes; ``axes`` keeps the
height and width ranges apart (they differ for non-square inputs under the 'match' policy).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class AxisField:
    """Input-pixel intervals ``[lo[i], hi[i]]`` (inclusive, unclipped) of positions ``0..n-1`` on one axis."""

    lo: np.ndarray
    hi: np.ndarray

    @property
    def extent(self) -> np.ndarray:
        return self.hi - self.lo + 1

    @property
    def range(self) -> tuple[int, int]:
        e = self.extent
        return int(e.min()), int(e.max())


@dataclass(frozen=True)
class FieldMap:
    """The exact theoretical field of every position of one tensor ``(N, C, H, W)``."""

    h: AxisField
    w: AxisField

    @property
    def range(self) -> tuple[int, int]:
        """``(min, max)`` extent over positions and both axes, in input pixels."""
        (a, b), (c, d) = self.h.range, self.w.range
        return min(a, c), max(b, d)

    @property
    def max(self) -> int:
        return self.range[1]

    @property
    def axes(self) -> dict[str, list[int]]:
        return {"height": list(self.h.range), "width": list(self.w.range)}

    def box(self, row: int, col: int) -> list[int]:
        """``[top, left, bottom, right]`` of cell ``(row, col)`` in input pixels, bottom/right exclusive, unclipped."""
        return [int(self.h.lo[row]), int(self.w.lo[col]), int(self.h.hi[row]) + 1, int(self.w.hi[col]) + 1]


# -- ops observed during the trace ----------------------------------------------------------------

@dataclass(frozen=True)
class _Window:
    """Output ``o`` reads input ``o·s - p + d·j`` for ``j < k`` (one axis)."""

    k: int
    s: int
    p: int
    d: int = 1


@dataclass(frozen=True)
class _Resize:
    mode: str
    scale_factor: float | None  # given to F.interpolate, or None when it was called with a size


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _windows(module: nn.Module) -> tuple[_Window, _Window] | None:
    """Per-axis window of a module that moves the field, or None for element-wise modules."""
    from ..model.blocks import ZeroPadShortcut  # local: blocks imports nothing from here, but keep the cycle-free order

    if isinstance(module, nn.Conv2d):
        if not isinstance(module.padding, tuple):
            raise ValueError(f"padding={module.padding!r}: the receptive-field trace needs numeric conv padding")
        return tuple(_Window(module.kernel_size[i], module.stride[i], module.padding[i], module.dilation[i])
                     for i in range(2))  # type: ignore[return-value]
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        k, s, p = _pair(module.kernel_size), _pair(module.stride), _pair(module.padding)
        d = _pair(getattr(module, "dilation", 1))
        return tuple(_Window(k[i], s[i], p[i], d[i]) for i in range(2))  # type: ignore[return-value]
    if isinstance(module, ZeroPadShortcut):
        return _Window(1, module.stride, 0), _Window(1, module.stride, 0)
    return None


class FieldTape:
    """Records the ops of one meta forward (tensor ids and sizes only), then solves for the fields.

    ``set_input`` names the root, ``module`` and ``add`` are called from forward hooks in execution
    order, ``solve`` returns a ``FieldMap`` per recorded tensor id.
    """

    def __init__(self) -> None:
        self.ops: list[tuple] = []  # (kind, out_id, in_ids, per-axis params)
        self.sizes: dict[int, tuple[int, int]] = {}
        self.root: int | None = None
        self.gaps = 0  # unions whose pieces neither overlap nor touch (a field with holes); 0 for every design here
        self._keep: list[torch.Tensor] = []  # keeps ids unique while the tape is alive

    def _seen(self, t: torch.Tensor) -> int:
        self._keep.append(t)
        self.sizes[id(t)] = (int(t.shape[-2]), int(t.shape[-1]))
        return id(t)

    def set_input(self, x: torch.Tensor) -> None:
        self.root = self._seen(x)

    def module(self, module: nn.Module, args: tuple, out: Any) -> None:
        """Record ``out = module(*args)``; outputs already recorded (containers, in-place ops) add nothing."""
        if not isinstance(out, torch.Tensor) or id(out) in self.sizes:
            return
        from ..model.fpn import TopDownResize

        x = args[0]
        windows = _windows(module)
        if windows is not None:
            self.ops.append(("window", self._seen(out), (id(x),), windows))
        elif isinstance(module, TopDownResize):
            scale = None if module.policy == "match" else 2.0
            self.ops.append(("resize", self._seen(out), (id(x),), (_Resize(module.mode, scale),) * 2))
        else:  # BN, ReLU, bottom/right zero padding: position i stays position i
            self.ops.append(("same", self._seen(out), (id(x),), None))

    def add(self, a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> None:
        self.ops.append(("add", self._seen(out), (id(a), id(b)), None))

    def solve(self) -> dict[int, FieldMap]:
        """The field of every recorded tensor (by id), on its real positions ``0..n-1``."""
        if self.root is None:
            raise RuntimeError("FieldTape.solve: set_input was never called")
        known = set(self.sizes)
        for _, _, ins, _ in self.ops:
            for i in ins:
                if i not in known:
                    raise RuntimeError("receptive-field trace: an op read a tensor no hooked module produced")
        axes = []
        for axis in range(2):
            if axis == 1 and self._square():
                axes.append(axes[0])
            else:
                axes.append(self._solve_axis(axis))
        return {t: FieldMap(axes[0][t], axes[1][t]) for t in self.sizes}

    def _square(self) -> bool:
        if any(h != w for h, w in self.sizes.values()):
            return False
        return all(p is None or p[0] == p[1] for _, _, _, p in self.ops)

    def _solve_axis(self, axis: int) -> dict[int, AxisField]:
        n = {t: s[axis] for t, s in self.sizes.items()}
        # Backward: the index range [a, b) each tensor must be known on (its own positions, plus
        # whatever its consumers' windows and parents reach beyond its border).
        need = {t: [0, n[t]] for t in n}
        parents: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for kind, out, ins, params in reversed(self.ops):
            a, b = need[out]
            if kind == "window":
                w = params[axis]
                lo, hi = a * w.s - w.p, (b - 1) * w.s - w.p + w.d * (w.k - 1) + 1
            elif kind == "resize":
                plo, phi = _resize_parents(params[axis], n[ins[0]], n[out], a, b)
                parents[out] = (plo, phi)
                lo, hi = int(plo.min()), int(phi.max()) + 1
            else:
                lo, hi = a, b
            for i in ins:
                need[i][0], need[i][1] = min(need[i][0], lo), max(need[i][1], hi)
        # Forward: intervals on exactly those ranges; start[t] is the index of element 0.
        a0, b0 = need[self.root]
        start = {self.root: a0}
        los = {self.root: np.arange(a0, b0, dtype=np.int64)}
        his = {self.root: los[self.root]}
        for kind, out, ins, params in self.ops:
            a, b = need[out]
            x = ins[0]
            if kind == "window":
                w = params[axis]
                base = a * w.s - w.p - start[x]
                m = b - a
                lo = hi = None
                for j in range(w.k):
                    sl = slice(base + w.d * j, base + w.d * j + (m - 1) * w.s + 1, w.s)
                    if lo is not None:
                        self._count_gaps(lo, hi, los[x][sl], his[x][sl])
                    lo = los[x][sl] if lo is None else np.minimum(lo, los[x][sl])
                    hi = his[x][sl] if hi is None else np.maximum(hi, his[x][sl])
            elif kind == "resize":
                plo, phi = parents[out]
                lo, hi = los[x][plo - start[x]], his[x][phi - start[x]]
                # Parents of one output are a contiguous run; take every one of them (nearest: 1, bilinear: ≤ 2).
                for step in range(1, int((phi - plo).max()) + 1):
                    p = np.minimum(plo + step, phi) - start[x]
                    self._count_gaps(lo, hi, los[x][p], his[x][p])
                    lo, hi = np.minimum(lo, los[x][p]), np.maximum(hi, his[x][p])
            elif kind == "add":
                y = ins[1]
                sx, sy = slice(a - start[x], b - start[x]), slice(a - start[y], b - start[y])
                self._count_gaps(los[x][sx], his[x][sx], los[y][sy], his[y][sy])
                lo = np.minimum(los[x][sx], los[y][sy])
                hi = np.maximum(his[x][sx], his[y][sy])
            else:
                sl = slice(a - start[x], b - start[x])
                lo, hi = los[x][sl], his[x][sl]
            start[out], los[out], his[out] = a, lo, hi
        return {t: AxisField(los[t][-start[t]: n[t] - start[t]], his[t][-start[t]: n[t] - start[t]]) for t in n}


    def _count_gaps(self, lo: np.ndarray, hi: np.ndarray, lo2: np.ndarray, hi2: np.ndarray) -> None:
        self.gaps += int(((lo2 > hi + 1) | (hi2 < lo - 1)).sum())


def _resize_parents(r: _Resize, n_in: int, n_out: int, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
    """First and last parent of outputs ``a..b-1`` (unclipped at the borders), shapes ``(b - a,)``.

    Real outputs take PyTorch's own parents: F.interpolate is run, with the model's arguments, on the
    source axis holding a ramp (each position's own index) and three combs (ones where
    ``index % 3 == c``). Nearest copies the ramp, so the parent is read off exactly. A bilinear output
    mixes at most two neighbours; the combs it picks up (nonzero weights only: a weight of exactly 0
    is no dependency) name their residues mod 3, and the ramp, a weighted mean of the parents, says
    which run of neighbours that is. Beyond the border, and where PyTorch clamps a source index to
    the border, the same formula is continued without the clamp.
    """
    i = np.arange(a, b, dtype=np.float32)
    scale = np.float32(1.0 / r.scale_factor) if r.scale_factor else np.float32(n_in) / np.float32(n_out)
    if r.mode == "nearest":
        flo = np.floor(i * scale).astype(np.int64)
        fhi = flo
    else:  # bilinear, align_corners=False
        src = scale * (i + np.float32(0.5)) - np.float32(0.5)
        flo = np.floor(src).astype(np.int64)
        fhi = flo + (src > flo)
    plo, phi = flo.copy(), fhi.copy()
    r0, r1 = max(a, 0), min(b, n_out)
    if r1 > r0:
        index = torch.arange(n_in, dtype=torch.float32)
        probe = torch.stack([index] + [(index.remainder(3) == c).float() for c in range(3)]).reshape(1, 4, n_in, 1)
        if r.scale_factor:
            y = F.interpolate(probe, scale_factor=r.scale_factor, mode=r.mode)
        else:
            y = F.interpolate(probe, size=(n_out, 1), mode=r.mode)
        if y.shape[2] != n_out:
            raise RuntimeError(f"resize parents: F.interpolate gave {y.shape[2]} positions, the trace saw {n_out}")
        y = y[0, :, r0:r1, 0].numpy()
        ramp, combs = y[0], y[1:] != 0
        if r.mode == "nearest":
            first = last = np.rint(ramp).astype(np.int64)
        else:
            first, last = _runs_from_residues(ramp, combs)
        sl = slice(r0 - a, r1 - a)
        # Keep PyTorch's parents, extended past the border where the unclipped formula goes beyond it.
        plo[sl] = np.where(flo[sl] < 0, flo[sl], first)
        phi[sl] = np.where(fhi[sl] > n_in - 1, fhi[sl], last)
    return plo, phi


def _runs_from_residues(ramp: np.ndarray, combs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last parent of each output from the residues mod 3 it reads and its ramp value."""
    count = combs.sum(0)
    if count.min() < 1 or count.max() > 2:
        raise RuntimeError("resize parents: an output reads no parent or more than two")
    best = np.full(ramp.shape, -1, dtype=np.int64)
    err = np.full(ramp.shape, np.inf)
    base = np.floor(ramp).astype(np.int64)
    for q in (base - 1, base, base + 1):
        pair = count == 2
        # a single parent q, or the pair (q, q + 1); the residues must match exactly
        match = np.where(pair, combs[q % 3, np.arange(q.size)] & combs[(q + 1) % 3, np.arange(q.size)],
                         combs[q % 3, np.arange(q.size)])
        centre = np.where(pair, q + 0.5, q)
        e = np.abs(centre - ramp)
        take = match & (e < err)
        best, err = np.where(take, q, best), np.where(take, e, err)
    if (best < 0).any() or err.max() > 0.75:
        raise RuntimeError("resize parents: could not identify the parents of an output")
    return best, best + (count == 2)
