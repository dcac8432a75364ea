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
import copy
import io
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
import urllib.request
import uuid
from pathlib import Path

import torch

import resfpn
from bench.harness import (MIB, NOISY, Table, interleave, log, machine, median, percentile,
                           proc_status, reset_peak_rss, round_ratios)
from resfpn import Config
from resfpn.serving import fastpath
from resfpn.serving.images import decode_image, resize_for_input, to_tensor
from scripts import serve

ROOT = serve.ROOT
EXAMPLES = sorted((ROOT / "assets" / "examples").glob("*.jpg"))
EXAMPLE = EXAMPLES[0]


def probe(args: list[str], env: dict[str, str] | None = None) -> dict:
    """Run ``python -m bench.probes ARGS`` in a fresh process from the repository root; its JSON answer."""
    out = subprocess.run([sys.executable, "-m", "bench.probes", *args], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=600, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def launch(script: str, log_path: Path, timeout: float = 180.0) -> tuple[subprocess.Popen, str, float]:
    """Start ``python script`` on a free port; returns (process, url, seconds to first HTTP 200)."""
    return serve.start(log_path, script, timeout=timeout)


stop = serve.stop


def rest_upload(url: str, path: Path) -> str:
    """Upload a file to a Gradio server over plain HTTP (multipart); returns its server-side path."""
    boundary = uuid.uuid4().hex
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{path.name}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + path.read_bytes()
    body += f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(url + "gradio_api/upload", data=body,
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())[0]


def rest_call(url: str, api: str, data: list) -> list:
    """Call a Gradio endpoint over its REST API (POST, then read the SSE result) with no polling."""
    req = urllib.request.Request(url + f"gradio_api/call/{api}", data=json.dumps({"data": data}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        event_id = json.loads(r.read())["event_id"]
    with urllib.request.urlopen(url + f"gradio_api/call/{api}/{event_id}", timeout=300) as r:
        event = None
        for raw in r:
            line = raw.decode().strip()
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event == "complete":
                return json.loads(line[5:])
            elif line.startswith("data:") and event == "error":
                raise RuntimeError(f"/{api} failed: {line[5:].strip()}")
    raise RuntimeError(f"/{api}: the stream ended without a result")


# ---------------------------------------------------------------------------------------------
# Sections.


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


def example_input(size: int) -> torch.Tensor:
    """The example image as the app feeds it: resized to size×size, ImageNet-normalised, (1, 3, H, W)."""
    image = decode_image(EXAMPLE).image
    return to_tensor(resize_for_input(image, size, size))


def app_model(config: Config, precision: str = "fp32", pack: bool = True) -> torch.nn.Module:
    """The model as the app's engine serves it (``Engine.model``: build_model, weights, fold, device,
    and on CPU the packed form of ``resfpn.serving.fastpath``); ``pack=False`` stops before packing."""
    from resfpn.serving.engine import Engine, Weights

    model, _, _ = Engine(device="cpu", pack=pack).model(config, Weights(), precision)
    return model


def tuned(model: torch.nn.Module) -> torch.nn.Module:
    """The generic tuning anyone can apply to any model: BatchNorm folded (torch.fx), channels-last."""
    from torch.fx.experimental.optimization import fuse

    return fuse(model.eval()).to(memory_format=torch.channels_last)


# ---------------------------------------------------------------------------------------------
# 1. Forward against the tutorial reference given the same generic tuning, and against a large matmul.


def bench_forward(table: Table, quick: bool) -> None:
    """Rows: the served forward vs the tuned plain model (the fair yardstick), the unfolded resfpn
    model, the untuned tutorial model, bf16 vs fp32, and conv GFLOP/s vs a matmul."""
    from bench.reference import ReferenceResFPN, n_params

    ref_params = n_params(ReferenceResFPN())
    ours_params = resfpn.trace(Config()).params.total
    if ref_params != ours_params:
        raise RuntimeError(f"reference has {ref_params:,} parameters, resfpn's Config() {ours_params:,}")
    n = 2048
    a, b = torch.randn(n, n), torch.randn(n, n)
    repeats = {224: 3, 512: 3, 1024: 2} if quick else {224: 9, 512: 7, 1024: 5}
    for size in (224, 512, 1024):
        config = Config(input_height=size, input_width=size)
        plain = _loaded_reference(config)  # the engine's weights (seed 0), before any serving tweak
        plain_tuned = tuned(_loaded_reference(config))
        unfolded = resfpn.build_model(config).eval().to(memory_format=torch.channels_last)
        served = app_model(config)
        direct = fastpath.pack(app_model(config, pack=False), use_winograd=False)
        eager = app_model(config, pack=False)
        bf16 = app_model(config, "bf16")
        bf16_eager = app_model(config, "bf16", pack=False)
        x = example_input(size)
        xc = x.to(memory_format=torch.channels_last)
        xb = xc.to(torch.bfloat16)
        with torch.inference_mode():
            want = plain(x)
            for name, got in (("served", served(xc)), ("direct", direct(xc)), ("eager", eager(xc)), ("tuned plain", plain_tuned(xc)),
                              ("unfolded", unfolded(xc))):
                _check_same(name, size, got, want, 1e-4)
            _check_same("bf16", size, bf16(xb), want, 5e-2)
            _check_same("bf16 eager", size, bf16_eager(xb), want, 5e-2)

        def timed(fn):
            def call():
                with torch.inference_mode():
                    fn()
            return call

        fns = {
            "served": timed(lambda: served(xc)),
            "direct": timed(lambda: direct(xc)),
            "tuned": timed(lambda: plain_tuned(xc)),
            "unfolded": timed(lambda: unfolded(xc)),
            "eager": timed(lambda: eager(xc)),
            "plain": lambda: _no_grad(plain, x),
            "bf16": timed(lambda: bf16(xc.to(torch.bfloat16))),
            "bf16 eager": timed(lambda: bf16_eager(xc.to(torch.bfloat16))),
            "matmul": lambda: a @ b,
        }
        times = interleave(fns, repeats[size])
        t = {k: median(v) for k, v in times.items()}
        ratio, spread, noisy = round_ratios(times["served"], times["tuned"])
        table.add("1", f"served fp32 forward {size}×{size} (packed, ReLU and adds fused), {repeats[size]} rounds",
                  f"resfpn {t['served'] * 1e3:.1f} ms",
                  f"plain model, same tuning (BN folded, channels-last, inference_mode) {t['tuned'] * 1e3:.1f} ms",
                  f"ratio {ratio:.2f} (rounds {spread})", "≤ 0.90", ratio <= 0.90, noisy)
        for name, label in (("eager", "served model before packing (BN folded, channels-last)"),
                            ("direct", "packed and fused, direct convolutions only (no Winograd)"),
                            ("unfolded", "resfpn eager, BN not folded (channels-last, inference_mode)"),
                            ("plain", "plain tutorial model untuned (NCHW, no_grad)")):
            r, spread, noisy = round_ratios(times[name], times["tuned"])
            table.add("1", f"(info) {label} {size}×{size}", f"{t[name] * 1e3:.1f} ms",
                      f"tuned plain {t['tuned'] * 1e3:.1f} ms", f"ratio {r:.2f} (rounds {spread})", "—", None, noisy)
        r, spread, noisy = round_ratios(times["bf16"], times["served"])
        target = size in (512, 1024)
        table.add("1", f"bf16 forward {size}×{size} (`precision=\"bf16\"`, packed)", f"{t['bf16'] * 1e3:.1f} ms",
                  f"served fp32 {t['served'] * 1e3:.1f} ms", f"ratio {r:.2f} (rounds {spread})",
                  "≤ 0.45" if target else "— (info)", r <= 0.45 if target else None, noisy)
        r, spread, noisy = round_ratios(times["bf16 eager"], times["eager"])
        table.add("1", f"(info) bf16 ÷ fp32, both before packing, {size}×{size}", f"{t['bf16 eager'] * 1e3:.1f} ms",
                  f"fp32 before packing {t['eager'] * 1e3:.1f} ms", f"ratio {r:.2f} (rounds {spread})", "—", None, noisy)
        flops = 2 * resfpn.trace(config).macs.total
        # Per round too: the forward and the matmul of one round share that round's load.
        share, spread, noisy = round_ratios(times["matmul"], times["served"])
        share *= flops / (2 * n**3)
        achieved = flops / t["served"] / 1e9
        peak = 2 * n**3 / t["matmul"] / 1e9
        table.add("1", f"conv GFLOP/s at {size}×{size} ({flops / 1e9:.1f} GFLOP from the trace's direct-conv MACs; "
                  "Winograd does fewer multiplies, so over 100 % is possible)",
                  f"{achieved:.0f} GFLOP/s", f"fp32 matmul {n}² @ {n}²: {peak:.0f} GFLOP/s",
                  f"{100 * share:.1f} %", "≥ 60 %", share >= 0.60, noisy)
        del plain, plain_tuned, unfolded, eager, bf16, bf16_eager, served, direct
    bf16_ceiling(table, quick)


def bf16_ceiling(table: Table, quick: bool) -> None:
    """The hardware's bf16 ÷ fp32 ratio on one large convolution (oneDNN's direct kernels, weights
    prepacked): the floor for the whole forward's bf16 ratio, since convolutions are most of it."""
    conv = torch.nn.Conv2d(256, 256, 3, padding=1).eval()
    packs = {dtype: fastpath.PackedConv(copy.deepcopy(conv).to(dtype), use_winograd=False)
             for dtype in (torch.float32, torch.bfloat16)}
    x = torch.randn(1, 256, 128, 128).to(memory_format=torch.channels_last)
    inputs = {dtype: x.to(dtype) for dtype in packs}

    def timed(dtype):
        def call():
            with torch.inference_mode():
                packs[dtype](inputs[dtype])
        return call

    times = interleave({"fp32": timed(torch.float32), "bf16": timed(torch.bfloat16)}, 3 if quick else 9)
    r, spread, noisy = round_ratios(times["bf16"], times["fp32"])
    table.add("1", "(info) one 256→256 3×3 conv on 128×128, oneDNN direct, bf16 (the ceiling for bf16 ÷ fp32)",
              f"{median(times['bf16']) * 1e3:.1f} ms", f"fp32 {median(times['fp32']) * 1e3:.1f} ms",
              f"ratio {r:.2f} (rounds {spread})", "—", None, noisy)


def _loaded_reference(config: Config) -> torch.nn.Module:
    from bench.reference import ReferenceResFPN, load_from

    reference = ReferenceResFPN().eval()
    load_from(reference, resfpn.build_model(config))
    return reference


def _no_grad(model: torch.nn.Module, x: torch.Tensor) -> None:
    with torch.no_grad():
        model(x)


def _check_same(name: str, size: int, got: dict, want: dict, tolerance: float) -> None:
    if list(got) != list(want):
        raise RuntimeError(f"{name} at {size}: levels {list(got)} vs the reference's {list(want)}")
    for k in want:
        error = ((got[k].float() - want[k]).abs().max() / want[k].abs().max().clamp_min(1e-12)).item()
        if error > tolerance:
            raise RuntimeError(f"{name} at {size}: {k} differs from the reference by {error:.1e} (> {tolerance:.0e})")


def bench_omp_policy(table: Table, quick: bool) -> None:
    """The same forward in fresh processes: libgomp's default wait policy, PASSIVE, and a short spin count."""
    size, rounds, reps = 224, (1 if quick else 3), 5
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env = {k: v for k, v in env.items() if k != "GOMP_SPINCOUNT"}
    variants = {"default": env, "PASSIVE": env | {"OMP_WAIT_POLICY": "PASSIVE"},
                "GOMP_SPINCOUNT=10000": env | {"GOMP_SPINCOUNT": "10000"}}
    times: dict[str, list[float]] = {k: [] for k in variants}
    for r in range(rounds):
        k = r % len(variants)
        for name in list(variants)[k:] + list(variants)[:k]:
            out = probe(["omp", str(size), str(reps)], env=variants[name])
            times[name].append(out["seconds"])
    load = os.getloadavg()[0]
    default = median(times["default"])
    for name in list(variants)[1:]:
        ratio, spread, _ = round_ratios(times[name], times["default"])
        table.add("1", f"(info) forward {size}×{size} in a fresh process, {torch.get_num_threads()} threads, "
                  f"{name}; load average {load:.1f}", f"{median(times[name]) * 1e3:.0f} ms",
                  f"libgomp default wait policy {default * 1e3:.0f} ms", f"ratio {ratio:.2f} (rounds {spread})", "—")


# ---------------------------------------------------------------------------------------------
# 2. Shape-only trace: time, and that it allocates no activation memory.


def bench_trace(table: Table, quick: bool) -> None:
    from resfpn.serving.engine import cached_trace

    reps = 5 if quick else 21
    for size in (224, 8192):
        config = Config(input_height=size, input_width=size)
        resfpn.trace(config)
        resfpn.trace(config)
        times = interleave({"trace": lambda: resfpn.trace(config), "cached": lambda: cached_trace(config)}, reps)
        t_trace, t_cached = median(times["trace"]), median(times["cached"])
        table.add("2", f"`resfpn.trace` (uncached), default model {size}×{size}, median of {reps}",
                  f"{t_trace * 1e3:.1f} ms", "—", f"{t_trace * 1e3:.1f} ms", "≤ 30 ms", t_trace <= 0.030)
        table.add("2", f"`engine.cached_trace`, default model {size}×{size}, median of {reps}",
                  f"{t_cached * 1e6:.1f} µs", "—", f"{t_cached * 1e3:.3f} ms", "≤ 30 ms", t_cached <= 0.030)
    r50 = Config.preset("resnet50", input_height=8192, input_width=8192)
    resfpn.trace(r50)
    t_r50 = median(interleave({"r50": lambda: resfpn.trace(r50)}, max(3, reps // 3))["r50"])
    table.add("2", "`resfpn.trace` (uncached), ResNet-50 preset 8192×8192 (info)", f"{t_r50 * 1e3:.1f} ms", "—",
              f"{t_r50 * 1e3:.1f} ms", "—")

    n = 10 if quick else 50
    config = Config(input_height=8192, input_width=8192)
    levels_bytes = resfpn.trace(config).activation_bytes["total"]
    rss_before = proc_status()["VmRSS"]
    exact = reset_peak_rss()
    for _ in range(n):
        resfpn.trace(config)
        resfpn.trace(r50)
    peak = proc_status()["VmHWM" if exact else "VmRSS"]
    delta = (peak - rss_before) / MIB
    how = "peak RSS (VmHWM after clear_refs)" if exact else "RSS"
    table.add("2", f"memory over {n} default + {n} ResNet-50 traces at 8192×8192", f"{how} +{delta:.1f} MiB",
              f"the default model's levels at 8192: {levels_bytes / 2**30:.1f} GiB",
              f"{100 * delta * MIB / levels_bytes:.3f} % of the levels", "≤ 16 MiB (no activations)", delta <= 16)


# ---------------------------------------------------------------------------------------------
# 3. The /analyze endpoint against the bare forward.


def bench_analyze(table: Table, quick: bool, tmp: Path) -> None:
    from gradio_client import Client, handle_file

    size = 512
    config = Config(input_height=size, input_width=size)
    n = 3 if quick else 7
    # One copy of the example per call, each with a black 32×32 patch somewhere else, saved as JPEG like
    # a user's photo: the content digest differs after resizing, so each call is a real forward,
    # while architecture, weights and input size (hence MACs and the cached model) stay the same.
    original = decode_image(EXAMPLE).image
    paths = []
    for i in range(2 * n + 2):
        im = original.copy()
        x0, y0 = 32 * (i % 16), 32 * (i // 16)  # a black 32×32 patch at a different place in each copy
        im.paste((0, 0, 0), (x0, y0, x0 + 32, y0 + 32))
        path = tmp / f"variant-{i}.jpg"
        im.save(path, "JPEG", quality=95)
        paths.append(path)

    model = app_model(config)
    x = example_input(size)

    def bare():
        with torch.inference_mode():
            model(x)

    proc, url, _ = launch("app.py", tmp / "app-analyze.log")
    try:
        client = Client(url, verbose=False)
        payload = {"input_height": size, "input_width": size}
        server_forward: list[float] = []
        cached_flags: list[bool] = []
        queue = iter(paths)

        def analyze():
            report = client.predict(payload, handle_file(str(next(queue))), api_name="/analyze")
            server_forward.append(report["run"]["forward_seconds"])
            cached_flags.append(report["run"]["cached"])

        def floor():  # the same endpoint without an image: a cached trace, i.e. the round trip alone
            client.predict(payload, None, api_name="/analyze")

        def rest():  # the same call over plain HTTP: upload, POST, read the SSE result
            remote = rest_upload(url, next(queue))
            report = rest_call(url, "analyze", [payload, {"path": remote, "meta": {"_type": "gradio.FileData"}}, "fp32",
                                                "random"])[0]  # plain REST sends every argument
            cached_flags.append(report["run"]["cached"])

        times = interleave({"analyze": analyze, "bare": bare, "floor": floor, "rest": rest}, n, warmup=1)
        if any(cached_flags):
            raise RuntimeError(f"/analyze served a cached run where a forward was expected: {cached_flags}")
        t_api, t_bare, t_floor = median(times["analyze"]), median(times["bare"]), median(times["floor"])
        t_server = median(server_forward[1:])
        overhead, spread, noisy = round_ratios(times["analyze"], times["bare"])
        overhead -= 1
        table.add("3", f"`/analyze` {size}×{size} via gradio_client, a new image each call, {n} rounds",
                  f"{t_api * 1e3:.0f} ms (server-side forward {t_server * 1e3:.0f} ms)",
                  f"bare forward in the bench process {t_bare * 1e3:.0f} ms",
                  f"overhead {100 * overhead:+.0f} % (rounds {spread})", "≤ +25 %", overhead <= 0.25, noisy)
        rest_overhead, spread, _ = round_ratios(times["rest"], times["bare"])
        table.add("3", f"(info) the same call over Gradio's REST API with stdlib HTTP (no client polling), {n} rounds",
                  f"{median(times['rest']) * 1e3:.0f} ms", f"bare forward {t_bare * 1e3:.0f} ms",
                  f"overhead {100 * (rest_overhead - 1):+.0f} % (rounds {spread})", "—")
        table.add("3", f"(info) `/analyze` without an image (cached trace only) via gradio_client: the round-trip "
                  f"floor, {n} rounds", f"{t_floor * 1e3:.0f} ms", f"bare forward {t_bare * 1e3:.0f} ms",
                  f"{100 * t_floor / t_bare:.0f} % of the forward", "—")

        repeat = paths[-1]
        flags: list[bool] = []

        def analyze_cached():
            report = client.predict(payload, handle_file(str(repeat)), api_name="/analyze")
            flags.append(report["run"]["cached"])

        times = interleave({"cached": analyze_cached, "bare": bare}, n, warmup=0)
        if not all(flags):
            raise RuntimeError(f"a repeated /analyze call ran a forward: cached flags {flags}")
        t_cached, t_bare2 = median(times["cached"]), median(times["bare"])
        table.add("3", f"`/analyze` {size}×{size} via gradio_client, same image again (cached activations), "
                  f"{n} rounds", f"{t_cached * 1e3:.0f} ms", f"bare forward {t_bare2 * 1e3:.0f} ms",
                  f"{round_ratios(times['cached'], times['bare'])[0]:.2f}× the forward", "— (info)")
    finally:
        stop(proc)


# ---------------------------------------------------------------------------------------------
# 4 and 5. Display-only changes in-process, and the heatmap figure's size.


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
    from resfpn.serving.engine import Weights, cached_trace
    from resfpn.figures import heatmap_grid_figure

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


# ---------------------------------------------------------------------------------------------
# 6. Cold start against a blank Gradio app.


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


# ---------------------------------------------------------------------------------------------
# 7. Peak resident memory of one forward against the library's estimate.


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


# ---------------------------------------------------------------------------------------------
# 8. Trace-only /analyze while other clients run 1024-pixel images.


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


# ---------------------------------------------------------------------------------------------


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
