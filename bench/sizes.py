"""The design-space map (issue 23): the whole valid-size map and the width/depth sweep, timed.

``python -m bench.sizes`` prints, for the presets, the map of 2 axes × 2048 sizes × 3 policies and
the ~100-design sweep, cold (the size programs recorded from a meta forward, once per structure)
and warm (programs cached), interleaved, medians; and what the same map would cost as meta traces.
Targets: the map ≤ 100 ms, the sweep ≤ 1 s.
"""

from __future__ import annotations

import argparse
import time

import resfpn
from bench.harness import cpu_model, interleave, median
from resfpn import Config
from resfpn.shapes import sizes as sizes_module
from resfpn.shapes.sizes import MAX_SIZE, POLICY_NAMES, size_map
from resfpn.shapes.sweep import sweep


def _cold(fn):
    """``fn`` with the recorded programs forgotten first, so it records them again."""
    def run():
        sizes_module.program.cache_clear()
        sizes_module._sizes_at.cache_clear()
        return fn()
    return run


def isa() -> str:
    import torch

    return torch.backends.cpu.get_cpu_capability()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args()
    size_map(Config())  # imports and the first meta ops out of the way
    print(f"CPU: {cpu_model()} ({isa()}); medians of {args.repeats}, interleaved (other work shares this machine)")
    print(f"{'design':<14} {'map cold':>10} {'map warm':>10} {'sweep cold':>11} {'sweep warm':>11} {'designs':>8} "
          f"{'trace/size':>11} {'map as traces':>14}")
    for name in ("reference", "resnet50", "retinanet"):
        config = Config.preset(name)
        times = interleave({
            "map cold": _cold(lambda: size_map(config)),
            "map warm": lambda: size_map(config),
            "sweep cold": _cold(lambda: sweep(config)),
            "sweep warm": lambda: sweep(config),
        }, args.repeats)
        designs = len(sweep(config).designs)
        t0 = time.perf_counter()
        for n in (223, 224, 225):
            resfpn.trace(config.replace(input_height=n))
        per_trace = (time.perf_counter() - t0) / 3
        whole = per_trace * 2 * MAX_SIZE * len(POLICY_NAMES)
        print(f"{name:<14} {median(times['map cold']) * 1e3:>8.1f} ms {median(times['map warm']) * 1e3:>7.1f} ms "
              f"{median(times['sweep cold']) * 1e3:>8.0f} ms {median(times['sweep warm']) * 1e3:>8.0f} ms {designs:>8} "
              f"{per_trace * 1e3:>8.1f} ms {whole / 60:>10.1f} min")
    m = size_map(Config())
    print("reference, x2:", {axis: m.summary("x2", axis) for axis in ("height", "width")})
    r = size_map(Config.preset("retinanet", policy="x2"))
    print("retinanet (C3–C5, P6/P7 from C5), x2:", {axis: r.summary("x2", axis) for axis in ("height", "width")})


if __name__ == "__main__":
    main()
