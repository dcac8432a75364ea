"""Bench item 6: ``python app.py`` to its first HTTP 200, against a blank Gradio app."""

from __future__ import annotations

from pathlib import Path

from bench.common import launch, stop
from bench.harness import Table, median, round_ratios


def bench_cold_start(table: Table, quick: bool, tmp: Path) -> None:
    repeats = 1 if quick else 3
    times: dict[str, list[float]] = {"app": [], "blank": []}
    scripts = {"app": "app.py", "blank": "bench/blank_app.py"}
    for r in range(repeats):
        for name in (["app", "blank"] if r % 2 == 0 else ["blank", "app"]):
            proc, _, seconds = launch(scripts[name], tmp / f"cold-{name}-{r}.log")
            stop(proc)
            times[name].append(seconds)
    t_app, t_blank = median(times["app"]), median(times["blank"])
    ratio, spread, noisy = round_ratios(times["app"], times["blank"])
    table.add("6", f"cold start: `python app.py` to first HTTP 200, {repeats} rounds", f"{t_app:.2f} s",
              f"blank Gradio app with one gr.Plot: {t_blank:.2f} s", f"{ratio:.2f}× (rounds {spread})", "≤ 1.3×",
              ratio <= 1.3, noisy)
