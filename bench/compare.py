"""How long a compare takes: two traces (target 60 ms) and, with an image, against one run (target 2.2x).

    .venv/bin/python -m bench.compare            # from the repository root
    .venv/bin/python -m bench.compare --rounds 5 --sizes 224

"One run" is what ``/analyze`` does with an image: the report of the cached trace, a forward through
``Engine.run`` and the per-level statistics. "Compare" is ``compare(a, b, image).to_dict()``: both
reports, both runs (the second reusing the backbone levels it shares with the first) and the
differences. Each round uses a new image (a copy of the example with a black patch elsewhere), so
every round runs real forwards, and the two are interleaved (one, compare, compare, one, ...); the
ratio is the median of the per-round ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from PIL import Image

from bench.common import ROOT
from bench.harness import median_time
from resfpn.analysis.activations import level_stats
from resfpn.analysis.compare import compare
from resfpn.model.config import Config
from resfpn.serving.engine import Engine, cached_trace, set_torch_threads
from resfpn.shapes import tracing

EXAMPLE = ROOT / "assets" / "examples" / "astronaut.jpg"


def _median_ms(f, n: int) -> float:
    return 1e3 * median_time(f, n)


def trace_timings(pairs: dict[str, tuple[Config, Config]], n: int) -> None:
    print("| trace compare | uncached (trace + meta model) | uncached trace, meta model cached | "
          "reference: the two bare traces, meta model cached | cached | target |")
    print("|---|---|---|---|---|---|")
    for label, (a, b) in pairs.items():
        def report():
            json.dumps(compare(a, b).to_dict())

        def uncached():
            cached_trace.cache_clear()
            tracing._meta_model.cache_clear()
            report()

        def uncached_trace():
            cached_trace.cache_clear()
            report()

        def bare_traces():
            tracing.trace(a)
            tracing.trace(b)

        report()
        print(f"| {label} | {_median_ms(uncached, n):.1f} ms | {_median_ms(uncached_trace, n):.1f} ms | "
              f"{_median_ms(bare_traces, n):.1f} ms | {_median_ms(report, n):.1f} ms | ≤ 60 ms |")


def _images(base: Image.Image, n: int):
    for i in range(n):
        img = base.copy()
        x, y = (37 * i) % (img.width - 32), (53 * i) % (img.height - 32)
        img.paste((0, 0, 0), (x, y, x + 32, y + 32))
        yield img


def one_run(engine: Engine, config: Config, image: Image.Image) -> None:
    report = cached_trace(config).to_dict()
    run = engine.run(config, image)
    report["stats"] = {k: level_stats(v) for k, v in run.levels.items()}


def image_timings(sizes: list[int], rounds: int) -> None:
    base = Image.open(EXAMPLE).convert("RGB")
    print("\n| with an image | one run | compare | ratio (median of rounds) | rounds | forwards per compare | target |")
    print("|---|---|---|---|---|---|---|")
    for size in sizes:
        ref = Config(input_height=size, input_width=size)
        cases = {
            f"skip A vs B, {size}, models cached": (ref.replace(skip="A"), ref.replace(skip="B"), False),
            f"skip A vs B, {size}, cold (fresh engine: builds included)": (ref.replace(skip="A"), ref.replace(skip="B"), True),
            f"FPN bilinear vs nearest, {size}, models cached": (ref, ref.replace(upsample="bilinear"), False),
            f"design vs itself, {size}, models cached": (ref, ref, False),
        }
        for label, (a, b, cold) in cases.items():
            engine = Engine(device="cpu")
            images = iter(_images(base, 4 * rounds + 4))
            one_run(engine, a, next(images))
            compare(a, b, next(images), engine=engine)  # warm: both models built
            ones, pairs, ratios, forwards = [], [], [], set()
            for i in range(rounds):
                order = (0, 1) if i % 2 == 0 else (1, 0)
                t = [0.0, 0.0]
                for which in order:
                    if cold:
                        engine = Engine(device="cpu")
                    img = next(images)
                    before = engine.forwards
                    start = time.perf_counter()
                    if which == 0:
                        one_run(engine, a, img)
                    else:
                        compare(a, b, img, engine=engine).to_dict()
                        forwards.add(engine.forwards - before)
                    t[which] = time.perf_counter() - start
                ones.append(t[0])
                pairs.append(t[1])
                ratios.append(t[1] / t[0])
            print(f"| {label} | {1e3 * statistics.median(ones):.0f} ms | {1e3 * statistics.median(pairs):.0f} ms | "
                  f"{statistics.median(ratios):.2f}× | {min(ratios):.2f}–{max(ratios):.2f}× | "
                  f"{sorted(forwards)} | ≤ 2.2× |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--sizes", type=int, nargs="+", default=[224, 512])
    args = ap.parse_args()
    threads = set_torch_threads()
    print(f"torch {torch.__version__}, {threads} threads, load average {Path('/proc/loadavg').read_text().split()[:3]}\n")
    ref = Config()
    trace_timings({
        "reference skip A vs B, 224": (ref.replace(skip="A"), ref.replace(skip="B")),
        "ResNet-18 vs ResNet-50, 224": (Config.preset("resnet18"), Config.preset("resnet50")),
        "ResNet-50 vs RetinaNet, 8192": (Config.preset("resnet50", input_height=8192, input_width=8192),
                                                  Config.preset("retinanet", input_height=8192, input_width=8192)),
    }, n=max(3, args.rounds))
    image_timings(args.sizes, args.rounds)


if __name__ == "__main__":
    main()
