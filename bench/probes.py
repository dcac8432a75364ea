"""Measurements that need a fresh process, run by the bench as ``python -m bench.probes KIND ARGS``.

Each prints one JSON object on its last line of stdout.

    python -m bench.probes omp 224 5                      # median forward seconds (OpenMP policy rows)
    python -m bench.probes peak reference 1024 IMAGE      # peak RSS of building and running one model
"""

from __future__ import annotations

import json
import statistics
import sys
import time


def omp(size: int, reps: int) -> dict:
    """Median seconds of a default-model forward at ``size``, with the app's thread count."""
    import torch

    from resfpn import Config, build_model
    from resfpn.serving.runtime import set_torch_threads

    set_torch_threads()
    model, x = build_model(Config(input_height=size, input_width=size)), torch.randn(1, 3, size, size)
    times = []
    with torch.inference_mode():
        model(x)
        for _ in range(reps):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    return {"seconds": statistics.median(times)}


def peak(preset: str, size: int, image_path: str) -> dict:
    """RSS after imports, after building, and the peak (VmHWM) of one ``Engine.run`` at ``size``."""
    import torch

    from bench.harness import proc_status
    from resfpn import Config
    from resfpn.serving.engine import Engine, Weights
    from resfpn.serving.runtime import set_torch_threads
    from resfpn.serving.images import decode_image

    set_torch_threads()
    config = Config.preset(preset, input_height=size, input_width=size)
    image = decode_image(image_path).image
    base = proc_status()["VmRSS"]
    engine = Engine()
    engine.model(config, Weights())
    built = proc_status()["VmRSS"]
    start = time.perf_counter()
    engine.run(config, image)
    seconds = time.perf_counter() - start
    m = proc_status()
    return {"base": base, "built": built, "hwm": m["VmHWM"], "rss": m["VmRSS"], "seconds": seconds,
            "threads": torch.get_num_threads()}


PROBES = {"omp": (omp, (int, int)), "peak": (peak, (str, int, str))}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in PROBES or len(argv) - 1 != len(PROBES[argv[0]][1]):
        print(__doc__, file=sys.stderr)
        return 2
    fn, types = PROBES[argv[0]]
    print(json.dumps(fn(*(t(a) for t, a in zip(types, argv[1:])))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
