"""bf16: offered only where the library's probe finds it native and faster; levels come back float32,
close to fp32, cached apart, with a measured difference. Both branches of the probe are forced here,
so both run on every machine; the real probe is checked against what this machine is."""

import os
import threading
import time

import pytest
import torch
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from resfpn.serving import bf16, fastpath
from resfpn.serving.engine import Engine, Weights, cached_trace
from resfpn.serving.precision import check_precision, cpu_bf16_flags

OFFERED = bf16.Bf16Offer(True, "", 0.55, "a 128→128 3×3 conv on 56×56, packed oneDNN kernels")
REFUSED = bf16.Bf16Offer(False, "this CPU does not run bf16 convolutions natively (a test's stand-in)", None,
                         "a 128→128 3×3 conv on 56×56, packed oneDNN kernels")


def _image():
    return Image.new("RGB", (64, 48), (200, 30, 30)).rotate(10, fillcolor=(0, 90, 200))


@pytest.fixture
def offered(monkeypatch):
    monkeypatch.setattr(bf16, "offer", lambda device="cpu": OFFERED)


@pytest.fixture
def refused(monkeypatch):
    monkeypatch.setattr(bf16, "offer", lambda device="cpu": REFUSED)


def test_bf16_levels_are_float32_close_to_fp32_and_cached_apart(tiny, offered):
    engine = Engine(device="cpu")
    fast = engine.run(tiny, _image(), precision="bf16")
    assert fast.precision == "bf16" and fast.difference is None  # no fp32 run of this image yet
    # Packed where oneDNN's bf16 kernels pass their self-check here, else the plain bf16 model, saying why.
    assert fast.packed == (engine.pack and fastpath.available(torch.bfloat16)), fast.serving
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


def test_bf16_where_not_offered_is_refused_with_the_reason_and_nothing_is_cached(tiny, refused):
    engine = Engine(device="cpu")
    message = r"precision='bf16' is not offered here: this CPU does not run bf16 convolutions natively \(a test"
    with pytest.raises(bf16.PrecisionUnavailable, match=message):
        engine.run(tiny, _image(), precision="bf16")
    with pytest.raises(bf16.PrecisionUnavailable, match=message):
        engine.model(tiny, Weights(), "bf16")
    assert engine.builds == engine.forwards == engine.cached_bytes() == 0
    assert engine.run(tiny, _image()).precision == "fp32"  # fp32 still serves


def test_unknown_precision_is_refused_with_the_allowed_values(tiny):
    with pytest.raises(ValueError, match=r"precision='fp16': choose one of 'fp32', 'bf16'"):
        Engine().run(tiny, _image(), precision="fp16")
    assert check_precision("bf16") == "bf16"


def test_the_probe_answers_for_this_machine():
    """The real probe: offered only with a measured ratio below 1 and bf16 kernels that pass their
    self-check; refused with one sentence. Capped at AVX2 (CI's second pass) it must be refused."""
    answer = bf16.probe()
    if answer.offered:
        assert answer.ratio < 1.0 and answer.reason == ""
        assert fastpath.self_check(torch.bfloat16) is None or not fastpath.available()
        assert f"{answer.ratio:.2f}×" in answer.note() and "56×56" in answer.note()
    else:
        assert answer.reason and "\n" not in answer.reason and answer.note().startswith("bf16 is not offered here: ")
    if os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper() == "AVX2":
        assert not answer.offered and "natively" in answer.reason, answer


def test_the_note_states_the_measured_ratio_and_size_never_a_constant():
    assert OFFERED.note().startswith("bf16: measured 0.55× the float32 time here (a 128→128 3×3 conv on 56×56")
    other = bf16.Bf16Offer(True, "", 0.31, "a 64→64 3×3 conv on 112×112, F.conv2d")
    assert "0.31×" in other.note() and "112×112" in other.note() and "0.55" not in other.note()
    slower = bf16.Bf16Offer(False, "a bf16 convolution took 1.30× the float32 time on this CPU", 1.3, "")
    assert slower.note() == "bf16 is not offered here: a bf16 convolution took 1.30× the float32 time on this CPU."


def test_an_environment_switch_turns_bf16_off(monkeypatch):
    monkeypatch.setenv("RESFPN_BF16", "0")
    bf16.offer.cache_clear()
    try:
        assert not bf16.offer().offered and "RESFPN_BF16=0" in bf16.offer().reason
    finally:
        monkeypatch.delenv("RESFPN_BF16")
        bf16.offer.cache_clear()


def test_the_page_disables_bf16_where_not_offered_and_says_why(refused):
    import gradio as gr

    from ui import heatmaps, library

    control, note = heatmaps.precision_offer()
    assert control["interactive"] is False and control["value"] == "fp32"
    assert note == "fp32: the reference arithmetic. " + REFUSED.note()
    with pytest.raises(gr.Error, match=r"not offered here: this CPU does not run bf16"):
        library.check_precision("bf16")


def test_the_page_offers_bf16_with_the_measured_note(offered):
    from ui import heatmaps, library

    control, note = heatmaps.precision_offer()
    assert control["interactive"] is True and note == "fp32: the reference arithmetic."
    assert heatmaps.precision_note("bf16") == OFFERED.note()
    assert library.check_precision("bf16") == "bf16"


def test_the_api_refuses_bf16_clearly_with_or_without_an_image_where_not_offered():
    """Through `python app.py` over HTTP, on a server where bf16 is not offered (RESFPN_BF16=0)."""
    from app import EXAMPLES
    from conftest import launch_app

    with launch_app(RESFPN_BF16="0") as url:
        client = Client(url, verbose=False)
        for image in (None, handle_file(str(EXAMPLES[0]))):
            with pytest.raises(AppError, match=r"precision='bf16' is not offered here: bf16 is turned off on this "
                                               r"server \(RESFPN_BF16=0\); use 'fp32'"):
                client.predict({"input_height": 64, "input_width": 64}, image, "bf16", api_name="/analyze")
        report = client.predict({"input_height": 64, "input_width": 64}, handle_file(str(EXAMPLES[0])), "fp32",
                                 api_name="/analyze")
        assert report["run"]["precision"] == "fp32" and report["run"]["serving"]


def test_cpu_flags_are_read_for_reports():
    assert cpu_bf16_flags("flags\t: fpu sse avx512f avx512_bf16\n") == ["avx512_bf16"]
    assert cpu_bf16_flags("flags\t: fpu sse avx2\n") == []


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
