"""Bench item 2: the shape-only trace, its time, and that it allocates no activation memory."""

from __future__ import annotations

import resfpn
from bench.harness import MIB, Table, interleave, median, proc_status, reset_peak_rss
from resfpn import Config


def bench_trace(table: Table, quick: bool) -> None:
    from resfpn.serving.engine import cached_trace

    reps = 5 if quick else 21
    for size in (224, 8192):
        config = Config(input_height=size, input_width=size)
        resfpn.trace(config)
        resfpn.trace(config)
        times = interleave({"trace": lambda: resfpn.trace(config), "cached": lambda: cached_trace(config)}, reps)
        t_trace, t_cached = median(times["trace"]), median(times["cached"])
        table.add("2", f"`resfpn.trace` (uncached), default model {size}×{size}, median of {reps}",
                  f"{t_trace * 1e3:.1f} ms", "—", f"{t_trace * 1e3:.1f} ms", "≤ 30 ms", t_trace <= 0.030)
        table.add("2", f"`engine.cached_trace`, default model {size}×{size}, median of {reps}",
                  f"{t_cached * 1e6:.1f} µs", "—", f"{t_cached * 1e3:.3f} ms", "≤ 30 ms", t_cached <= 0.030)
    r50 = Config.preset("resnet50", input_height=8192, input_width=8192)
    resfpn.trace(r50)
    t_r50 = median(interleave({"r50": lambda: resfpn.trace(r50)}, max(3, reps // 3))["r50"])
    table.add("2", "`resfpn.trace` (uncached), ResNet-50 preset 8192×8192 (info)", f"{t_r50 * 1e3:.1f} ms", "—",
              f"{t_r50 * 1e3:.1f} ms", "—")

    n = 10 if quick else 50
    config = Config(input_height=8192, input_width=8192)
    levels_bytes = resfpn.trace(config).activation_bytes["total"]
    rss_before = proc_status()["VmRSS"]
    exact = reset_peak_rss()
    for _ in range(n):
        resfpn.trace(config)
        resfpn.trace(r50)
    peak = proc_status()["VmHWM" if exact else "VmRSS"]
    delta = (peak - rss_before) / MIB
    how = "peak RSS (VmHWM after clear_refs)" if exact else "RSS"
    table.add("2", f"memory over {n} default + {n} ResNet-50 traces at 8192×8192", f"{how} +{delta:.1f} MiB",
              f"the default model's levels at 8192: {levels_bytes / 2**30:.1f} GiB",
              f"{100 * delta * MIB / levels_bytes:.3f} % of the levels", "≤ 16 MiB (no activations)", delta <= 16)
