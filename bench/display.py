"""Bench items 4 and 5: a display-only change after a run (no forward), and the heatmap figure's size."""

from __future__ import annotations

import contextlib
import io
import time

from bench.common import EXAMPLE
from bench.harness import Table, median
from resfpn import Config
from resfpn.serving.images import decode_image

DISPLAY = ["mean", 0, True, 0.6, "Viridis", False]
DISPLAY_CHANGES = [
    ["l2", 0, True, 0.6, "Inferno", False],
    ["max", 0, True, 0.6, "Cividis", True],
    ["channel", 5, True, 0.3, "RdBu", False],
    ["mean-abs", 0, False, 0.6, "Greys", False],
    ["mean", 0, True, 0.6, "Viridis", True],
]


def bench_display(table: Table, quick: bool) -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        import app

    size = 512
    config = Config(input_height=size, input_width=size)
    controls = app.controls_from_config(config)
    _, _, _, state = app.on_run(*controls, str(EXAMPLE), "random", 0, None, *DISPLAY)
    n = 5 if quick else 15
    forwards = app.engine().forwards
    handler, serialised = [], []
    for i in range(n):
        display = DISPLAY_CHANGES[i % len(DISPLAY_CHANGES)]
        start = time.perf_counter()
        fig, _ = app.on_display(state, *display)
        mid = time.perf_counter()
        fig.to_json()  # what gr.Plot.postprocess does with the figure
        end = time.perf_counter()
        handler.append(mid - start)
        serialised.append(end - start)
    new_forwards = app.engine().forwards - forwards
    t_handler, t_total = median(handler), median(serialised)
    table.add("4", f"display-only change after a run at {size}×{size} (`app.on_display`), median of {n}",
              f"{t_handler * 1e3:.0f} ms", "—", f"{t_handler * 1e3:.0f} ms; with `fig.to_json()` "
              f"(Gradio's Plot.postprocess) {t_total * 1e3:.0f} ms", "≤ 150 ms", t_handler <= 0.150)
    table.add("4", f"forwards during the {n} display changes", f"{new_forwards}", "—", f"{new_forwards}", "0",
              new_forwards == 0)


def bench_figure(table: Table, quick: bool) -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        import app
    from resfpn.analysis.activations import REDUCTIONS, reduce_channels
    from resfpn.figures import heatmap_grid_figure
    from resfpn.serving.engine import Weights, cached_trace

    image = decode_image(EXAMPLE).image
    for size in (224, 512, 1024):
        config = Config(input_height=size, input_width=size)
        run = app.engine().run(config, image, Weights())
        maps = {k: reduce_channels(v, "mean") for k, v in run.levels.items()}
        fig = heatmap_grid_figure(maps, cached_trace(config), colorscale="Viridis", image=run.image, opacity=0.6,
                                  reduction_label=REDUCTIONS["mean"])
        n_bytes = len(fig.to_json())
        target = size == 512
        table.add("5", f"heatmap grid JSON at {size}×{size}, with the overlay image", f"{n_bytes / 1000:.1f} kB",
                  "—", f"{n_bytes:,} bytes", "≤ 100 kB" if target else "— (info)",
                  n_bytes <= 100_000 if target else None)
