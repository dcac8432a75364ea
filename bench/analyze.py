"""Bench item 3: ``/analyze`` over HTTP (gradio_client and plain REST) against the bare forward."""

from __future__ import annotations

from pathlib import Path

import torch

from bench.common import EXAMPLE, app_model, example_input, launch, rest_call, rest_upload, stop
from bench.harness import Table, interleave, median, round_ratios
from resfpn import Config
from resfpn.serving.images import decode_image


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
