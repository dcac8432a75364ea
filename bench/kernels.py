"""Kernels chosen by measurement: the served CPU model against the plain tuned model, per design and size.

    python -m bench.kernels                       # reference + resnet50 at 224, 512, 1024
    python -m bench.kernels --sizes 224 --designs reference --convs   # also the per-conv table
    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 python -m bench.kernels   # capped at AVX2

Prints the CPU, the instruction sets oneDNN and ATen use, then one markdown row per design and size:
the served forward (``Engine.model``: folded, channels-last, each conv on the kernel measured fastest
at its shape, ``resfpn.serving.fastpath``) and the plain model with the same tuning (``Engine(pack=False)``:
BatchNorm folded, channels-last, ``inference_mode``), timed interleaved in the same rounds (ratio =
median of the per-round ratios), the kernels the served model chose, and the first-run cost at that
shape: build + choosing + forward for the served model, build + first forward for the plain one,
each in a fresh process (no oneDNN kernel created before, no choice remembered).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import torch

from bench.harness import cpu_model, interleave, log, round_ratios
from resfpn.serving import fastpath, runtime
from resfpn.model.config import PRESETS

REPEATS = {224: 9, 512: 7, 1024: 5}
FIRST_RUN_BOUND = 2.0  # served first run ÷ plain first run (issue 19)


def isa_lines() -> list[str]:
    """Markdown lines: CPU model, ATen's CPU capability, oneDNN's ISA (from its verbose header), caps set."""
    code = ("import torch\nx = torch.randn(1, 8, 8, 8).to(memory_format=torch.channels_last)\n"
            "w = torch.ops.mkldnn._reorder_convolution_weight(torch.randn(8, 8, 3, 3), [1, 1], [1, 1], [1, 1], 1)\n"
            "torch.ops.mkldnn._convolution_pointwise(x, w, None, [1, 1], [1, 1], [1, 1], 1, 'none', [], '')\n")
    onednn = "unknown"
    try:
        out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "ONEDNN_VERBOSE": "1"},
                             capture_output=True, text=True, timeout=120).stdout
        onednn = next((line.split("isa:", 1)[1] for line in out.splitlines() if ",isa:" in line), "unknown")
    except (OSError, subprocess.SubprocessError):
        pass
    caps = {k: os.environ[k] for k in ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY") if k in os.environ}
    return [f"- CPU: {cpu_model()}; {torch.get_num_threads()} torch threads; torch {torch.__version__}",
            f"- oneDNN ISA: {onednn}; ATen CPU capability: {torch.backends.cpu.get_cpu_capability()}; "
            f"caps set: {', '.join(f'{k}={v}' for k, v in caps.items()) or 'none (native)'}",
            f"- packed kernels' self-check: {fastpath.self_check() or 'pass'}"]


def config_for(design: str, size: int):
    return PRESETS[design].replace(input_height=size, input_width=size)


def first_run(design: str, size: int, kind: str) -> dict:
    """In this (fresh) process: seconds to build the ``kind`` ("served" or "plain") model and run the first forward."""
    from resfpn.serving.engine import Engine, Weights
    from bench.common import example_input

    config = config_for(design, size)
    x = example_input(size).to(memory_format=torch.channels_last)
    engine = Engine(device="cpu", pack=None if kind == "served" else False)
    start = time.perf_counter()
    model, _, _ = engine.model(config, Weights())
    built = time.perf_counter()
    with torch.inference_mode():
        model(x)
    done = time.perf_counter()
    return {"build": built - start, "forward": done - built, "total": done - start}


def first_runs(design: str, size: int) -> dict[str, dict]:
    out = {}
    for kind in ("plain", "served"):
        proc = subprocess.run([sys.executable, "-m", "bench.kernels", "--first-run", design, str(size), kind],
                              capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"first run of {kind} {design} at {size} failed: {proc.stderr[-500:]}")
        out[kind] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def steady(design: str, size: int, repeats: int, convs: bool) -> dict:
    """Served and plain in this process, interleaved after one forward each (the served one chooses)."""
    from resfpn.serving.engine import Engine, Weights
    from bench.common import example_input

    config = config_for(design, size)
    served, _, _ = Engine(device="cpu").model(config, Weights())
    plain, _, _ = Engine(device="cpu", pack=False).model(config, Weights())
    x = example_input(size).to(memory_format=torch.channels_last)
    with torch.inference_mode():
        got, want = served(x), plain(x)
    kernels = fastpath.kernel_counts(served)
    error = max(float((got[k] - want[k]).abs().max() / want[k].abs().max()) for k in want)
    if error > 1e-4:
        raise RuntimeError(f"{design} at {size}: served levels differ from plain by {error:.1e}")
    del got, want

    def call(model):
        def run():
            with torch.inference_mode():
                model(x)
        return run

    times = interleave({"served": call(served), "plain": call(plain)}, repeats)
    ratio, spread, noisy = round_ratios(times["served"], times["plain"])
    if convs:
        print(f"\n#### {design} at {size}: per conv (first-forward timings, ms; * = chosen)\n")
        print("| conv | input | plain | onednn | winograd |\n|---|---|---|---|---|")
        for name, m in served.named_modules():
            if isinstance(m, fastpath.PackedConv):
                for (shape, _, _), t in m.timings.items():
                    chosen = m.choice[(shape, torch.float32, _)]
                    cells = [f"{t[k] * 1e3:.2f}{'*' if k == chosen else ''}" if k in t else "—" for k in fastpath.KERNELS]
                    print(f"| {name} | {'×'.join(map(str, shape[1:]))} | " + " | ".join(cells) + " |")
        print()
    return {"served": sorted(times["served"])[len(times["served"]) // 2],
            "plain": sorted(times["plain"])[len(times["plain"]) // 2],
            "ratio": ratio, "spread": spread, "noisy": noisy, "kernels": kernels}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--designs", nargs="+", default=["reference", "resnet50"], choices=list(PRESETS))
    parser.add_argument("--sizes", nargs="+", type=int, default=[224, 512, 1024])
    parser.add_argument("--repeats", type=int, default=0, help="interleaved rounds (default: 9, 7, 5 by size)")
    parser.add_argument("--convs", action="store_true", help="also print the per-conv timings and choices")
    parser.add_argument("--no-first-run", action="store_true", help="skip the fresh-process first-run cost")
    parser.add_argument("--first-run", nargs=3, metavar=("DESIGN", "SIZE", "KIND"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    runtime.tune_process()
    runtime.set_torch_threads()
    if args.first_run:
        design, size, kind = args.first_run
        print(json.dumps(first_run(design, int(size), kind)))
        return
    print("\n".join(isa_lines()))
    print(f"- load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())} (a shared machine: "
          "figures from one run are compared only with each other)\n")
    rows = ["| design | size | served ms | plain ms | served ÷ plain (rounds) | kernels chosen "
            "| first run served: build + choose + forward s | first run plain: build + forward s | ÷ (≤ 2) |",
            "|---|---|---|---|---|---|---|---|---|"]
    for design in args.designs:
        for size in args.sizes:
            log(f"{design} at {size}")
            s = steady(design, size, args.repeats or REPEATS.get(size, 5), args.convs)
            first = "— | — | —"
            if not args.no_first_run:
                f = first_runs(design, size)
                sv, pl = f["served"], f["plain"]
                first = (f"{sv['build']:.2f} + {sv['forward']:.2f} = {sv['total']:.2f} | "
                         f"{pl['build']:.2f} + {pl['forward']:.2f} = {pl['total']:.2f} | "
                         f"{sv['total'] / pl['total']:.2f}")
            kernels = ", ".join(f"{k} {n}" for k, n in s["kernels"].items())
            rows.append(f"| {design} | {size} | {s['served'] * 1e3:.0f} | {s['plain'] * 1e3:.0f} | "
                        f"{s['ratio']:.2f} ({s['spread']}){' noisy' if s['noisy'] else ''} | {kernels} | {first} |")
            print(rows[-1], file=sys.stderr)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
