"""Receptive-field bench: trace time with the exact fields, and the time of one effective-field click.

    .venv/bin/python -m bench.receptive [--quick]

Prints (1) the trace time per preset and size, with the share spent solving the fields, and (2) per
input size, a plain forward of the served model (BN folded, channels-last) next to one click: a
forward with autograd and one backward for one level, and all levels (one backward each). Medians
of interleaved repeats; the machine may be shared, so compare figures within one run only.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from bench.harness import median_time
from resfpn import Config, build_model, trace
from resfpn.analysis.effective import effective_fields
from resfpn.serving.engine import set_torch_threads
from resfpn.serving.limits import backward_memory_estimate, memory_estimate
from resfpn.shapes import tracing
from resfpn.weights.fold import fold_batchnorm


def bench_trace(repeats: int) -> None:
    solve = []
    original = tracing._Recorder.fill_receptive_fields

    def timed(self):
        start = time.perf_counter()
        try:
            return original(self)
        finally:
            solve.append(time.perf_counter() - start)

    tracing._Recorder.fill_receptive_fields = timed
    print("| preset | input | trace ms (median) | of which fields ms |\n|---|---|---|---|")
    for preset in ("reference", "resnet50"):
        for side in (224, 1024, 8192):
            config = Config.preset(preset, input_height=side, input_width=side)
            trace(config)
            solve.clear()
            total = median_time(lambda: trace(config), repeats)
            print(f"| {preset} | {side} | {total * 1e3:.1f} | {statistics.median(solve) * 1e3:.1f} |")
    tracing._Recorder.fill_receptive_fields = original


def bench_click(sizes: list[int], repeats: int) -> None:
    print("\n| input | plain forward ms | click, one level (P2) ms | ratio | all levels ms | ratio "
          "| backward estimate MiB | forward estimate MiB |\n|---|---|---|---|---|---|---|---|")
    for side in sizes:
        config = Config(input_height=side, input_width=side)
        model = fold_batchnorm(build_model(config)).to(memory_format=torch.channels_last)
        x = torch.randn(1, 3, side, side).to(memory_format=torch.channels_last)
        t = trace(config)

        def plain():
            with torch.inference_mode():
                model(x)

        plain()
        effective_fields(model, x, (side // 2, side // 2), ["P2"], t)
        fwd, one, every = [], [], []
        for _ in range(repeats):  # interleaved
            fwd.append(median_time(plain, 1))
            one.append(median_time(lambda: effective_fields(model, x, (side // 2, side // 2), ["P2"], t), 1))
        every.append(median_time(lambda: effective_fields(model, x, (side // 2, side // 2), None, t), 1))
        f, o, a = statistics.median(fwd), statistics.median(one), statistics.median(every)
        print(f"| {side} | {f * 1e3:.0f} | {o * 1e3:.0f} | {o / f:.2f}× | {a * 1e3:.0f} | {a / f:.2f}× "
              f"| {backward_memory_estimate(t) / 2**20:.0f} | {memory_estimate(t) / 2**20:.0f} |")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    cores = set_torch_threads()
    print(f"torch {torch.__version__}, {cores} threads\n")
    bench_trace(3 if args.quick else 7)
    bench_click([224, 512] if args.quick else [224, 512, 1024], 3 if args.quick else 5)


if __name__ == "__main__":
    main()
