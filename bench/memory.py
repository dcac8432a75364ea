"""Bench item 7: peak resident memory of one forward, against the memory guard's estimate."""

from __future__ import annotations

import resfpn
from bench.common import EXAMPLE, probe
from bench.harness import MIB, Table
from resfpn import Config
from resfpn.serving.images import decode_image


def bench_peak_memory(table: Table, quick: bool) -> None:
    from resfpn.serving.limits import memory_estimate, serving_overhead

    size = 1024
    presets = ["reference"] if quick else ["reference", "resnet50"]
    image = decode_image(EXAMPLE).image
    pixels = image.width * image.height
    for preset in presets:
        config = Config.preset(preset, input_height=size, input_width=size)
        t = resfpn.trace(config)
        estimate = memory_estimate(t) + serving_overhead(t, pixels)  # what the guard admits against
        m = probe(["peak", preset, str(size), str(EXAMPLE)])
        added = m["hwm"] - m["base"]
        ratio = added / estimate
        label = "default config" if preset == "reference" else "ResNet-50 preset"
        table.add("7", f"peak RSS of one forward at {size}×{size}, {label} (subprocess, {m['seconds']:.1f} s)",
                  f"VmHWM {m['hwm'] / MIB:.0f} MiB = {m['base'] / MIB:.0f} MiB after imports + "
                  f"{added / MIB:.0f} MiB for model and forward",
                  f"the guard's figure (`memory_estimate` + `serving_overhead`) {estimate / MIB:.0f} MiB",
                  f"actual/estimate {ratio:.2f}", "— (info; ≤ 1 means the guard is safe)",
                  None)
