"""Other users' latency while a published file trickles in, against idle, through `python app.py`.

    .venv/bin/python -m bench.download_latency

Rounds alternate: five idle calls of each kind, then a download starts (the page's prepare step,
from a loopback server sending 320 KB/s), five calls of each kind during it, then Cancel. The
calls are a shape trace (/trace) and a page Run with seeded random weights (/run, 96×96, tiny
design). Medians over all rounds; ratio busy / idle. The machine may be shared: say so.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from pathlib import Path

from bench.harness import log, machine
from scripts import serve

ROUNDS, CALLS = 4, 5


def main() -> None:
    from gradio_client import Client

    from app import controls_from_config
    from resfpn import Config
    from tests.test_download_http import _Handler, _page_run, _timed, _Trickle, _until

    server = _Trickle(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory() as tmp:
        env = {"RESFPN_TORCHVISION_URL": f"http://127.0.0.1:{server.server_port}/", "TORCH_HOME": tmp,
               "HF_HUB_OFFLINE": "0", "RESFPN_DOWNLOAD_TIMEOUT": "600"}
        with serve.serving(Path(tmp) / "server.log", **env) as url:
            a, b = Client(url, verbose=False), Client(url, verbose=False)
            small = Config(widths=(8, 8, 16, 16), blocks=(1, 1, 1, 1), stem_width=8, fpn_width=8,
                           input_height=96, input_width=96)
            design, detector = controls_from_config(small), controls_from_config(Config.preset("faster-rcnn"))
            calls = {"trace": lambda: b.predict(*design, "light", api_name="/trace"),
                     "run": lambda: _page_run(b, small)}
            calls["run"]()
            idle = {k: [] for k in calls}
            busy = {k: [] for k in calls}
            for r in range(ROUNDS):
                for k, fn in calls.items():
                    idle[k] += [_timed(fn) for _ in range(CALLS)]
                server.sent = 0
                job = a.submit(*detector, "coco-faster-rcnn", api_name="/prepare_weights")
                _until(lambda: server.sent > 500_000, 30)
                for k, fn in calls.items():
                    busy[k] += [_timed(fn) for _ in range(CALLS)]
                downloading = server.open == 1
                a.predict(api_name="/cancel_download")
                try:
                    job.result(timeout=30)
                except Exception:
                    pass
                _until(lambda: server.open == 0, 15)
                log(f"round {r}: download running during the busy calls: {downloading}")
    server.shutdown()
    print("\n".join(machine()))
    print()
    print("| call | idle median (s) | during a download (s) | ratio |")
    print("|---|---|---|---|")
    for k in idle:
        i, d = statistics.median(idle[k]), statistics.median(busy[k])
        print(f"| {k} | {i:.3f} | {d:.3f} | {d / i:.2f} |")
    print(f"\n{ROUNDS} alternating rounds of {CALLS} calls each")


if __name__ == "__main__":
    main()
