"""bf16 fast mode: levels come back float32, close to fp32, cached apart, with a measured difference."""

import threading
import time

import pytest
import torch
from PIL import Image

from resfpn.serving.engine import Engine, cached_trace
from resfpn.serving.precision import bf16_slow_reason, check_precision, cpu_bf16_flags


def _image():
    return Image.new("RGB", (64, 48), (200, 30, 30)).rotate(10, fillcolor=(0, 90, 200))


def test_bf16_levels_are_float32_close_to_fp32_and_cached_apart(tiny):
    engine = Engine(device="cpu")
    fast = engine.run(tiny, _image(), precision="bf16")
    assert fast.precision == "bf16" and fast.difference is None  # no fp32 run of this image yet
    exact = engine.run(tiny, _image())
    assert engine.forwards == 2 and engine.builds == 2  # precision is part of both cache keys
    t = cached_trace(tiny)
    for name, x in fast.levels.items():
        assert x.dtype == torch.float32 and tuple(x.shape) == t.levels[name].shape
        error = ((x - exact.levels[name]).norm() / exact.levels[name].norm()).item()
        assert error < 5e-2, (name, error)
        assert not torch.equal(x, exact.levels[name])  # really computed in bf16
    again = engine.run(tiny, _image(), precision="bf16")
    assert again.cached and engine.forwards == 2
    assert set(again.difference) == set(fast.levels)
    expected = ((fast.levels["P2"] - exact.levels["P2"]).double().norm() / exact.levels["P2"].double().norm()).item()
    assert again.difference["P2"] == pytest.approx(expected)


def test_unknown_precision_is_refused_with_the_allowed_values(tiny):
    with pytest.raises(ValueError, match=r"precision='fp16': choose one of 'fp32', 'bf16'"):
        Engine().run(tiny, _image(), precision="fp16")
    assert check_precision("bf16") == "bf16"


def test_slow_reason_reads_the_cpu_flags():
    assert cpu_bf16_flags("flags\t: fpu sse avx512f avx512_bf16\n") == ["avx512_bf16"]
    assert bf16_slow_reason("cpu", "flags\t: fpu amx_bf16 amx_tile\n") is None
    reason = bf16_slow_reason("cpu", "flags\t: fpu sse avx2\n")
    assert "no bf16 instructions" in reason and "slower than fp32" in reason


def test_cache_readers_do_not_wait_behind_real_work(tiny):
    """Read the caches while another thread holds the slot, which it gives back only after the reads:
    reads that waited for the slot would never finish (events, not timings: a busy machine cannot flake it)."""
    engine = Engine()
    first = engine.run(tiny, _image())
    held, release, read = threading.Event(), threading.Event(), threading.Event()
    answers = []

    def hold():
        with engine.slot():
            held.set()
            release.wait(timeout=120)  # only a failing run waits this long

    def reader():
        answers.append((engine.cached_run(first.key) is not None, engine.cached_bytes() > 0))
        read.set()

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(timeout=60)
    threading.Thread(target=reader, daemon=True).start()
    finished_while_held = read.wait(timeout=60)
    release.set()
    holder.join()
    assert finished_while_held, "reading the caches waited for the slot"
    assert answers == [(True, True)]
