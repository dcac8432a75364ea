"""Bench item 8: trace-only ``/analyze`` while other clients run 1024-pixel images, against idle."""

from __future__ import annotations

import time
from pathlib import Path

from bench.common import EXAMPLE, launch, stop
from bench.harness import Table, median, percentile
from resfpn.serving.images import decode_image


def bench_trace_under_load(table: Table, quick: bool, tmp: Path) -> None:
    """p50 of trace-only `/analyze` on an idle server, then while two clients keep running 1024-px images."""
    import threading

    from gradio_client import Client, handle_file

    n = 8 if quick else 20
    original = decode_image(EXAMPLE).image
    proc, url, _ = launch("app.py", tmp / "app-trace-load.log")
    try:
        client = Client(url, verbose=False)
        shape = {"input_height": 640, "input_width": 480, "p7": True}

        def trace_times() -> list[float]:
            times = []
            for _ in range(n):
                start = time.perf_counter()
                client.predict(shape, None, api_name="/analyze")
                times.append(time.perf_counter() - start)
            return times

        trace_times()  # warm: the server loads torch and traces once
        idle = trace_times()
        halt, runs = threading.Event(), []

        def runner(k: int) -> None:
            c = Client(url, verbose=False)
            i = 0
            while not halt.is_set():
                im = original.copy()  # a new image each call: a real 1024 forward, never the cache
                im.paste((0, 0, 0), (16 * i, 16 * k, 16 * i + 16, 16 * k + 16))
                path = tmp / f"runner-{k}-{i}.png"
                im.save(path)
                report = c.predict({"input_height": 1024, "input_width": 1024}, handle_file(str(path)),
                                   api_name="/analyze")
                runs.append(report["run"]["forward_seconds"])
                i += 1

        runners = [threading.Thread(target=runner, args=(k,), daemon=True) for k in range(2)]
        for t in runners:
            t.start()
        while not runs:  # the load is on once the first 1024 forward has finished
            time.sleep(0.1)
        busy = trace_times()
        halt.set()
        for t in runners:
            t.join(timeout=120)
    finally:
        stop(proc)
    p_idle, p_busy = percentile(idle, 50), percentile(busy, 50)
    ratio = p_busy / p_idle
    table.add("8", f"trace-only `/analyze` (gradio_client), p50 of {n}, while two clients run 1024×1024 images "
              f"({len(runs)} runs, server forward median {median(runs):.2f} s)",
              f"{p_busy * 1e3:.0f} ms (p95 {percentile(busy, 95) * 1e3:.0f} ms)",
              f"idle server {p_idle * 1e3:.0f} ms", f"{ratio:.2f}×", "≤ 1.5×", ratio <= 1.5)
