"""A concise view of a trace or comparison report, for assistants and other readers that pay per byte.

The full report (``Trace.to_dict``) lists every module and every addition (about 24 KB for the
reference design); the summary keeps what a reader acts on: each level's shape, stride and receptive
field, the mismatch with its cause and fixes, the costs, and a run's statistics and weights.

    >>> from resfpn import Config
    >>> from resfpn.shapes.tracing import trace
    >>> s = summarize(trace(Config(input_height=225, input_width=225)).to_dict())
    >>> s["mismatch"]["where"], s["levels"]["P5"]["shape"], sorted(s)
    ('FPN merge into P4', [1, 256, 8, 8], ['config', 'costs', 'detail', 'levels', 'mismatch', 'ok'])
"""

from __future__ import annotations

from typing import Any

DETAILS = ("summary", "full")
_LEVEL_KEYS = ("shape", "stride", "receptive_field", "receptive_field_range")
_MISMATCH_KEYS = ("where", "shapes", "cause", "fixes", "message")


def check_detail(value: Any) -> str:
    """``value`` if it is one of ``DETAILS``; else a ValueError naming the allowed values."""
    if value not in DETAILS:
        raise ValueError(f"detail={value!r}: choose 'summary' (levels, mismatch and fixes, costs) or 'full' "
                         "(every module and addition as well)")
    return value


def summarize(report: dict[str, Any]) -> dict[str, Any]:
    """The summary of one design's report (``python -m resfpn --json``, or /analyze's answer)."""
    out: dict[str, Any] = {"detail": "summary", "config": report.get("config"), "ok": report.get("ok")}
    out["levels"] = {name: {k: lv[k] for k in _LEVEL_KEYS if k in lv} for name, lv in (report.get("levels") or {}).items()}
    mismatch = report.get("mismatch")
    out["mismatch"] = {k: mismatch[k] for k in _MISMATCH_KEYS if k in mismatch} if mismatch else None
    costs = {k: report[k]["total"] for k in ("params", "macs") if isinstance(report.get(k), dict)}
    if isinstance(report.get("activation_bytes"), dict):
        costs["activation_peak_bytes"] = report["activation_bytes"].get("peak_estimate")
    out["costs"] = costs
    if "stats" in report:
        out["stats"] = {name: {k: v for k, v in s.items() if k != "top_channels"} for name, s in report["stats"].items()}
    if "run" in report:
        out["run"] = report["run"]
    return out


def summarize_comparison(report: dict[str, Any]) -> dict[str, Any]:
    """The summary of a comparison (/compare's answer): both sides summarised, the per-level table,
    what changed, and each side's error."""
    out = {"detail": "summary", "a": summarize(report["a"]) if report.get("a") else None,
           "b": summarize(report["b"]) if report.get("b") else None}
    for key in ("errors", "levels", "changed", "params", "macs"):
        if key in report:
            out[key] = report[key]
    return out
