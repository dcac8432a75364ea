"""resfpn performance bench: one markdown table, every figure measured in the same run as its reference.

Run from the repository root with the project's interpreter:

    .venv/bin/python -m bench.bench            # full run (1.5 min on 2 idle cores, more when busy)
    .venv/bin/python -m bench.bench --quick    # smoke run: fewer repeats, no ResNet-50 memory probe

The machine this runs on may be shared and noisy, so nothing is compared across runs: each figure is
a ratio against a reference measured in the same process (or the same moment), interleaved
(A B, B A, A B, ...) with the median taken. Progress goes to stderr; the table to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import textwrap
import time
import traceback
from pathlib import Path

from bench.analyze import bench_analyze
from bench.cold_start import bench_cold_start
from bench.common import EXAMPLE, ROOT
from bench.display import bench_display, bench_figure
from bench.forward import bench_forward, bench_omp_policy
from bench.harness import NOISY, Table, log, machine
from bench.memory import bench_peak_memory
from bench.trace import bench_trace
from bench.under_load import bench_trace_under_load


def section(table: Table, item: str, what: str):
    """Run one section; an exception becomes an ERROR row instead of ending the bench."""

    def wrap(fn):
        log(f"{item}: {what}")
        start = time.perf_counter()
        try:
            fn()
        except Exception as err:  # noqa: BLE001 - the table reports it
            traceback.print_exc(file=sys.stderr)
            table.error(item, what, err)
        log(f"{item}: done in {time.perf_counter() - start:.1f} s")
        return fn

    return wrap


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: fewer repeats")
    parser.add_argument("--only", default="1,2,3,4,5,6,7,8", help="comma-separated items to run, e.g. 3,6")
    args = parser.parse_args()
    only = set(args.only.split(","))
    os.chdir(ROOT)
    with contextlib.suppress(ImportError, AttributeError):
        from resfpn.serving.runtime import set_torch_threads

        set_torch_threads()  # as the app does at import
    started = time.perf_counter()
    header = machine()
    table = Table()
    with tempfile.TemporaryDirectory(prefix="resfpn-bench-") as tmpdir:
        tmp = Path(tmpdir)
        sections = [
            ("1", "forward vs tutorial reference; GFLOP/s vs matmul", lambda: bench_forward(table, args.quick)),
            ("1", "OpenMP wait policy probe", lambda: bench_omp_policy(table, args.quick)),
            ("2", "shape-only trace", lambda: bench_trace(table, args.quick)),
            ("3", "/analyze via gradio_client", lambda: bench_analyze(table, args.quick, tmp)),
            ("4", "display-only change", lambda: bench_display(table, args.quick)),
            ("5", "heatmap figure JSON size", lambda: bench_figure(table, args.quick)),
            ("6", "cold start", lambda: bench_cold_start(table, args.quick, tmp)),
            ("7", "peak memory of a forward", lambda: bench_peak_memory(table, args.quick)),
            ("8", "trace-only /analyze under run load", lambda: bench_trace_under_load(table, args.quick, tmp)),
        ]
        for item, what, fn in sections:
            if item in only:
                section(table, item, what)(fn)
    elapsed = time.perf_counter() - started
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    misses = [f"{r[0]} {r[1]}" for r in table.rows if r[-1].startswith(("MISS", "ERROR"))]
    mode = ("quick" if args.quick else "full") + ("" if args.only == parser.get_default("only") else f", items {args.only}")
    print(f"# resfpn bench ({mode})\n")
    print("\n".join(header))
    print()
    print(table.render())
    print()
    print(textwrap.dedent(f"""\
        Notes:
        - Every ratio compares things timed in this run, interleaved (A B, B A, ...): it is the median
          of the per-round ratios, and "rounds" gives their range, a measure of the machine's noise;
          a result marked "noisy" had rounds more than {NOISY}× apart: rerun when the machine is quieter.
        - 1: resfpn's model comes from `Engine.model` (build_model + weights + device) and runs as
          `Engine.run` does (eval, `torch.inference_mode()`); the reference is
          bench/reference.py, the seed tutorial's design (NCHW, `torch.no_grad()`), loaded with the same
          weights and checked to give the same outputs and parameter count.
        - 3: each timed call uploads a different copy of {EXAMPLE.name} (a black 32×32 patch at a
          different place, saved as JPEG), so the activation cache misses and a real forward runs, while architecture,
          weights and input size stay the same (same MACs, same cached model). Varying fpn_width instead
          would change the work and rebuild the model, so it would not compare like with like.
          The round-trip floor is mostly gradio_client itself: its SSE reader polls with
          `time.sleep(0.05)` (gradio_client/utils.py, stream_sse_v1plus), so any call costs ≥ 50 ms.
        - 7: "after imports" is the subprocess's RSS once torch and resfpn are imported, before the
          model is built; the rest is parameters, input, and the forward's peak.
        - load average at end: {load}; total {elapsed:.0f} s.
        - Misses/errors: {"; ".join(misses) if misses else "none"}."""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
