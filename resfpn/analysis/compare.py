"""Two designs side by side: levels, additions, residual blocks and costs, and, given an image,
how far apart their activations are.

``compare(a, b)`` never raises for one side's bad configuration: the side carries its error
(``"B: widths[0]=0: ..."``) and the other side is still traced, run and reported, so a page can
show it. The report of ``Comparison.to_dict()`` is what the ``/compare`` endpoint returns.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from .activations import level_stats
from ..model.config import LEVEL_STRIDE, Config, ConfigError
from ..serving.engine import Engine, Run, Weights, cached_trace
from ..serving.limits import LimitError, Limits, memory_estimate
from .differences import DifferenceMaps, difference_maps, paired_maps, relative_difference, shared_levels  # noqa: F401
from ..shapes.records import Trace

SIDES = ("a", "b")


@dataclass
class Side:
    """One design of a comparison: its configuration, trace and run, or the error that stopped it.

    ``error`` starts with the side's letter (``"A: "``/``"B: "``). A side whose configuration is
    refused has no trace; a side whose run is refused (over a cap) keeps its trace.
    """

    name: str  # "A" or "B"
    config: Config | None = None
    trace: Trace | None = None
    run: Run | None = None
    error: str | None = None
    shared: tuple[str, ...] = ()  # backbone levels taken from the other side's forward

    def report(self) -> dict[str, Any] | None:
        """``trace.to_dict()``, with ``stats`` and ``run`` after a run (as ``/analyze`` gives them)."""
        if self.trace is None:
            return None
        report = self.trace.to_dict()
        if self.run is not None:
            report["stats"] = {k: level_stats(v) for k, v in self.run.levels.items()}
            report["run"] = {
                "forward_seconds": self.run.forward_seconds,
                "build_seconds": self.run.build_seconds,
                "cached": self.run.cached,
                "weights": self.run.weights,
                "shared_levels": list(self.shared),
            }
        return report


def load_side(name: str, config: Config | dict[str, Any], limits: Limits | None = None) -> Side:
    """A side from a Config or a dict of fields (missing keys take the reference design's values),
    traced; a refused configuration or a cap becomes ``side.error`` instead of an exception."""
    side = Side(name)
    try:
        if isinstance(config, Config):
            side.config = config
        elif isinstance(config, dict):
            side.config = Config.from_dict(config)
        else:
            raise ConfigError(f"expected a configuration object (field: value), got {type(config).__name__}")
        if limits is not None:
            limits.check_architecture(side.config)
    except (ConfigError, LimitError) as err:
        side.config, side.error = None, f"{name}: {err}"
        return side
    except TypeError as err:
        side.config, side.error = None, f"{name}: configuration not understood: {err}"
        return side
    side.trace = cached_trace(side.config)
    return side


# -- comparing traces ------------------------------------------------------------------------------


def _pair(a: Any, b: Any) -> dict[str, Any]:
    return {"a": a, "b": b}


def _level_entry(la, lb) -> dict[str, Any]:
    def get(record, attr):
        return None if record is None else getattr(record, attr)

    shape = _pair(list(la.shape) if la else None, list(lb.shape) if lb else None)
    entry = {
        **shape,
        "same_shape": la is not None and lb is not None and la.shape == lb.shape,
        "channels": _pair(la.shape[1] if la else None, lb.shape[1] if lb else None),
        "stride": _pair(get(la, "stride"), get(lb, "stride")),
        "receptive_field": _pair(get(la, "receptive_field"), get(lb, "receptive_field")),
        "bytes": _pair(get(la, "bytes"), get(lb, "bytes")),
        "difference": None,
    }
    entry["differs"] = not entry["same_shape"] or any(
        entry[k]["a"] != entry[k]["b"] for k in ("receptive_field", "bytes")
    )
    return entry


def _levels(ta: Trace | None, tb: Trace | None) -> dict[str, dict[str, Any]]:
    """Every level either design declares, in the order C2..C5, P2..P7; a side without the level
    (or whose trace stopped before it) has ``None`` there."""
    declared = set(ta.config.levels if ta else ()) | set(tb.config.levels if tb else ())
    return {
        name: _level_entry(ta.levels.get(name) if ta else None, tb.levels.get(name) if tb else None)
        for name in LEVEL_STRIDE
        if name in declared
    }


def merge_orders(a: list[str], b: list[str]) -> list[str]:
    """One list holding each item of ``a`` and ``b`` once, keeping the order of both.

    Both are in execution order (each a subsequence of one model-wide order), so an item of ``a``
    that ``b`` lacks sits where ``a`` had it: ``["x", "y", "z"]`` and ``["x", "w", "z"]`` give
    ``["x", "y", "w", "z"]``.
    """
    only_a = set(a) - set(b)
    merged, i, j = [], 0, 0
    while i < len(a) or j < len(b):
        if i < len(a) and (j == len(b) or a[i] in only_a or a[i] == b[j]):
            if j < len(b) and a[i] == b[j]:
                j += 1
            merged.append(a[i])
            i += 1
        else:
            merged.append(b[j])
            j += 1
    return merged


def _additions(ta: Trace | None, tb: Trace | None) -> list[dict[str, Any]]:
    """Additions aligned by place (``where``), in the order they ran."""
    def by_where(t):
        return {a.where: {"shapes": [list(s) for s in a.shapes], "ok": a.ok} for a in (t.additions if t else ())}

    sa, sb = by_where(ta), by_where(tb)
    return [
        {"where": w, "a": sa.get(w), "b": sb.get(w), "differs": sa.get(w) != sb.get(w)}
        for w in merge_orders(list(sa), list(sb))
    ]


def _blocks_of(t: Trace | None) -> dict[str, dict[str, Any]]:
    """Residual blocks that ran, by site ("layer2.0"): kind, shapes, shortcut kind, parameters and MACs."""
    if t is None:
        return {}
    blocks = {}
    for path, site in t.blocks.items():
        m = t.module(path)
        if m is None:
            continue
        shortcut = t.shortcut(path)
        blocks[site] = {
            "kind": m.kind,
            "in_shape": list(m.in_shape),
            "out_shape": list(m.out_shape) if m.out_shape else None,
            "shortcut": shortcut.kind if shortcut else None,
            "params": m.params,
            "macs": sum(r.macs for r in t.inside(path)),
        }
    return blocks


def _blocks(ta: Trace | None, tb: Trace | None) -> list[dict[str, Any]]:
    ba, bb = _blocks_of(ta), _blocks_of(tb)
    rows = []
    for site in merge_orders(list(ba), list(bb)):
        a, b = ba.get(site), bb.get(site)
        changes = ["presence"] if (a is None) != (b is None) else [k for k in (a or {}) if a[k] != b[k]]
        rows.append({"site": site, "a": a, "b": b, "differs": bool(changes), "changes": changes})
    return rows


def _highlight(ta: Trace | None, tb: Trace | None) -> dict[str, list[str]]:
    """Per side, the modules (by name) that the other side lacks or has with another kind, shape
    or parameter count: what an architecture map should mark."""
    def facts(t):
        return {m.name: (m.kind, m.in_shape, m.out_shape, m.params) for m in (t.modules if t else ())}

    fa, fb = facts(ta), facts(tb)
    return {
        "a": [n for n, f in fa.items() if fb.get(n) != f],
        "b": [n for n, f in fb.items() if fa.get(n) != f],
    }


def _costs(ta: Trace | None, tb: Trace | None) -> dict[str, Any]:
    def counts(t, what):
        if t is None:
            return None
        c = getattr(t, what)
        return {"total": c.total, "backbone": c.backbone, "fpn": c.fpn, **c.parts}

    out: dict[str, Any] = {}
    parts = merge_orders(*(list(t.params.parts) if t else [] for t in (ta, tb)))  # from the models' maps
    for what in ("params", "macs"):
        ca, cb = counts(ta, what), counts(tb, what)
        out[what] = {
            k: _pair(ca.get(k) if ca else None, cb.get(k) if cb else None)
            for k in ("total", "backbone", "fpn", *parts)
        }
    memory = {}
    for k in ("total", "peak_estimate"):
        memory[k] = _pair(ta.activation_bytes[k] if ta else None, tb.activation_bytes[k] if tb else None)
    out["activation_bytes"] = memory
    return out


def _changed(ca: Config | None, cb: Config | None) -> dict[str, dict[str, Any]]:
    """Configuration fields whose values differ (all of them when a side has no configuration)."""
    da, db = (ca.to_dict() if ca else {}), (cb.to_dict() if cb else {})
    if not da or not db:
        return {}
    return {k: _pair(da[k], db[k]) for k in da if da[k] != db[k]}


def compare_traces(ta: Trace | None, tb: Trace | None) -> dict[str, Any]:
    """Everything that differs between two traces (either may be None: that side is missing).

    Returns a dict with ``levels`` (per level: both shapes, ``same_shape``, ``channels``,
    ``receptive_field``, ``bytes`` per side, ``differs``, ``difference`` = None), ``params`` and
    ``macs`` (totals per side), ``costs`` (total/backbone/fpn and each part, per side),
    ``additions`` and ``blocks`` (aligned by place, with ``differs``), ``highlight`` (module names
    per side) and ``mismatch`` (each side's diagnosis message or None).
    """
    return {
        "changed": _changed(ta.config if ta else None, tb.config if tb else None),
        "levels": _levels(ta, tb),
        "params": _pair(ta.params.total if ta else None, tb.params.total if tb else None),
        "macs": _pair(ta.macs.total if ta else None, tb.macs.total if tb else None),
        "costs": _costs(ta, tb),
        "additions": _additions(ta, tb),
        "blocks": _blocks(ta, tb),
        "highlight": _highlight(ta, tb),
        "mismatch": _pair(
            ta.mismatch.message if ta and ta.mismatch else None,
            tb.mismatch.message if tb and tb.mismatch else None,
        ),
    }


# -- running both sides ----------------------------------------------------------------------------


def _check_runnable(side: Side, limits: Limits | None) -> int:
    """Estimated bytes of the side's forward; sets ``side.error`` when it cannot run."""
    t = side.trace
    if t is None or side.error or t.mismatch:
        return 0  # no configuration, or a mismatch: the report says why, there is nothing to run
    if t.config.input_channels != 3:
        side.error = f"{side.name}: input_channels={t.config.input_channels}: images have 3 channels; set 3 to run one"
        return 0
    if limits is None:
        return memory_estimate(t)
    try:
        return limits.check_run(t)
    except LimitError as err:
        side.error = f"{side.name}: {err}"
        return 0


def run_sides(engine: Engine, a: Side, b: Side, image: Image.Image, weights: Weights = Weights(),
              limits: Limits | None = None) -> None:
    """Run the image through every runnable side; the second side reuses what the first computed.

    A design against itself costs one forward (the second is the cached run). Otherwise the second
    forward starts after the backbone levels the two designs share (``shared_levels``), e.g. only
    the FPN runs again when only the FPN differs.
    """
    estimates = [_check_runnable(s, limits) for s in (a, b)]
    runnable = [s for s in (a, b) if s.trace is not None and s.trace.ok and not s.error]
    if not runnable:
        return
    if limits is not None:
        engine.make_room(sum(estimates), limits.memory_budget)
    first = runnable[0]
    first.run = engine.run(first.config, image, weights)
    if len(runnable) < 2:
        return
    second = runnable[1]
    if second.config == first.config:
        second.run, second.shared = engine.run(second.config, image, weights), tuple(first.run.levels)
        return
    model_a, _, _ = engine.model(first.config, weights)
    model_b, _, build_seconds = engine.model(second.config, weights)
    second.shared = shared_levels(model_a, model_b, first.trace, second.trace)
    known = {k: first.run.levels[k] for k in second.shared} or None
    second.run = engine.run(second.config, image, weights, shared=known)
    if build_seconds and not second.run.cached:  # built above, so the run itself found it cached
        second.run = dataclasses.replace(second.run, build_seconds=build_seconds)


@dataclass
class Comparison:
    """Two sides and what differs between them; ``to_dict()`` is the ``/compare`` report."""

    a: Side
    b: Side
    traces: dict[str, Any] = field(default_factory=dict)  # compare_traces(a.trace, b.trace)

    @property
    def errors(self) -> list[str]:
        return [s.error for s in (self.a, self.b) if s.error]

    @property
    def ok(self) -> bool:
        """True when both sides traced without a mismatch and nothing was refused."""
        return not self.errors and all(s.trace is not None and s.trace.ok for s in (self.a, self.b))

    def differences(self) -> dict[str, float]:
        """Relative L2 difference per level run on both sides with the same shape."""
        if self.a.run is None or self.b.run is None:
            return {}
        la, lb = self.a.run.levels, self.b.run.levels
        return {
            name: relative_difference(la[name], lb[name])
            for name in LEVEL_STRIDE
            if name in la and name in lb and la[name].shape == lb[name].shape
        }

    def difference_maps(self) -> DifferenceMaps | None:
        if self.a.run is None or self.b.run is None:
            return None
        return difference_maps(self.a.run.levels, self.b.run.levels)

    def to_dict(self) -> dict[str, Any]:
        """``{"a": report, "b": report, "errors": {..}, "levels": {..}, "params": {"a": n, "b": n},
        "macs": {..}, ...}``; a side refused before its trace has report None and its error."""
        report = {
            "a": self.a.report(),
            "b": self.b.report(),
            "errors": _pair(self.a.error, self.b.error),
            **{k: v for k, v in self.traces.items()},
        }
        report["levels"] = {k: dict(v) for k, v in self.traces["levels"].items()}
        for name, value in self.differences().items():
            report["levels"][name]["difference"] = value
        report["shared_levels"] = list(self.b.shared) if self.b.run is not None else []
        return report


def compare(
    a: Config | dict[str, Any],
    b: Config | dict[str, Any],
    image: Image.Image | None = None,
    engine: Engine | None = None,
    weights: Weights = Weights(),
    limits: Limits | None = None,
) -> Comparison:
    """Compare designs ``a`` and ``b`` (Configs, or dicts of fields as ``/analyze`` takes them).

    With an ``image``, both run through ``engine`` (a fresh one if None) with the same
    ``weights``, and each level of the same shape gets its relative L2 difference. One side's
    refused configuration, cap or run limit is kept as that side's ``error``; nothing is raised.
    """
    side_a, side_b = load_side("A", a, limits), load_side("B", b, limits)
    comparison = Comparison(side_a, side_b, compare_traces(side_a.trace, side_b.trace))
    if image is not None:
        run_sides(engine or Engine(), side_a, side_b, image, weights, limits)
    return comparison
