"""Bench item 1: the served forward at 224/512/1024 against the plain model given the same generic
tuning, bf16 against fp32, conv GFLOP/s against a large matmul, and the OpenMP wait policy."""

from __future__ import annotations

import copy
import os

import torch

import resfpn
from bench.common import app_model, example_input, probe, tuned
from bench.harness import Table, interleave, median, round_ratios
from resfpn import Config
from resfpn.serving import bf16 as bf16_probe
from resfpn.serving import fastpath


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
    offer = bf16_probe.offer()
    for size in (224, 512, 1024):
        config = Config(input_height=size, input_width=size)
        plain = _loaded_reference(config)  # the engine's weights (seed 0), before any serving tweak
        plain_tuned = tuned(_loaded_reference(config))
        unfolded = resfpn.build_model(config).eval().to(memory_format=torch.channels_last)
        served = app_model(config)
        direct = fastpath.pack(app_model(config, pack=False), use_winograd=False)
        eager = app_model(config, pack=False)
        if offer.offered:  # else the engine refuses bf16, and so does the page
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
            if offer.offered:
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
            "matmul": lambda: a @ b,
        }
        if offer.offered:
            fns["bf16"] = timed(lambda: bf16(xc.to(torch.bfloat16)))
            fns["bf16 eager"] = timed(lambda: bf16_eager(xc.to(torch.bfloat16)))
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
        if offer.offered:
            r, spread, noisy = round_ratios(times["bf16"], times["served"])
            target = size in (512, 1024)
            table.add("1", f"bf16 forward {size}×{size} (`precision=\"bf16\"`, packed)", f"{t['bf16'] * 1e3:.1f} ms",
                      f"served fp32 {t['served'] * 1e3:.1f} ms", f"ratio {r:.2f} (rounds {spread})",
                      "≤ 0.45" if target else "— (info)", r <= 0.45 if target else None, noisy)
            r, spread, noisy = round_ratios(times["bf16 eager"], times["eager"])
            table.add("1", f"(info) bf16 ÷ fp32, both before packing, {size}×{size}", f"{t['bf16 eager'] * 1e3:.1f} ms",
                      f"fp32 before packing {t['eager'] * 1e3:.1f} ms", f"ratio {r:.2f} (rounds {spread})", "—", None,
                      noisy)
            del bf16, bf16_eager
        else:
            table.add("1", f"bf16 forward {size}×{size}", "not offered here", "—", offer.reason, "—", None, False)
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
        del plain, plain_tuned, unfolded, eager, served, direct
    bf16_ceiling(table, quick)


def bf16_ceiling(table: Table, quick: bool) -> None:
    """The hardware's bf16 ÷ fp32 ratio on one large convolution (oneDNN's direct kernels, weights
    prepacked): the floor for the whole forward's bf16 ratio, since convolutions are most of it."""
    offer = bf16_probe.offer()
    if not offer.offered:
        table.add("1", "(info) bf16 ceiling: one 256→256 3×3 conv on 128×128", "not offered here", "—", offer.reason,
                  "—", None, False)
        return
    conv = torch.nn.Conv2d(256, 256, 3, padding=1).eval()
    packs = {dtype: fastpath.PackedConv(copy.deepcopy(conv).to(dtype), use_winograd=False, kernels=("onednn",))
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
