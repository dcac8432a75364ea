"""A real-sized checkpoint through `python app.py`: time to upload it, time to load and run it, and
the server's peak memory while doing so (its VmHWM, reset just before).

    .venv/bin/python -m bench.upload_checkpoint          # torchvision's Faster R-CNN R50-FPN layout, ~160 MiB

The file is torchvision's own detector with random weights (the published file's shapes and size),
written to a temporary folder. Three rounds; medians. The machine may be shared: say so with the figures.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.harness import MIB, log, machine, median, proc_status
from scripts import serve

ROUNDS = 3


def _detector_file(folder: Path) -> Path:
    import torch

    from tests.test_pretrained import detection

    torch.manual_seed(0)
    model = detection.fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91)
    path = folder / "fasterrcnn_resnet50_fpn.pth"
    torch.save(model.state_dict(), path)
    return path


def main() -> None:
    import httpx
    from gradio_client import Client, handle_file

    from app import EXAMPLES, controls_from_config
    from resfpn import Config

    with tempfile.TemporaryDirectory() as tmp:
        path = _detector_file(Path(tmp))
        size = path.stat().st_size
        proc, url, _ = serve.start(Path(tmp) / "server.log")
        try:
            client = Client(url, verbose=False)
            config = Config.preset("faster-rcnn", input_height=224, input_width=224)
            values = controls_from_config(config)
            image = handle_file(str(EXAMPLES[0]))
            client.predict(*values, image, "random", 0, None, "mean", 0, True, 0.6, "Viridis", False, "fp32", "light",
                           api_name="/run")  # warm: torch loaded, the random model built once
            uploads, runs, peaks, rss_before = [], [], [], []
            for i in range(ROUNDS):
                rss_before.append(proc_status(proc.pid).get("VmRSS", 0))
                Path(f"/proc/{proc.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS now
                start = time.perf_counter()
                with open(path, "rb") as f:  # streamed multipart, as a browser sends it
                    response = httpx.post(f"{url}gradio_api/upload", files={"files": (path.name, f)}, timeout=600)
                response.raise_for_status()
                [server_path] = response.json()
                uploaded = time.perf_counter()
                checkpoint = {"path": server_path, "meta": {"_type": "gradio.FileData"}}
                _, _, status = client.predict(*values, image, "upload", i, checkpoint, "mean", 0, True, 0.6,
                                              "Viridis", False, "fp32", "light", api_name="/run")
                done = time.perf_counter()
                uploads.append(uploaded - start)
                runs.append(done - uploaded)
                peaks.append(proc_status(proc.pid).get("VmHWM", 0) - rss_before[-1])
                log(f"round {i}: upload {uploads[-1]:.2f} s, load+run {runs[-1]:.2f} s, peak +{peaks[-1] / MIB:.0f} MiB")
        finally:
            serve.stop(proc)
    print("\n".join(machine()))
    print()
    print(f"| checkpoint | upload (s) | load + build + run 224² (s) | server peak above its RSS before (MiB) |")
    print("|---|---|---|---|")
    print(f"| {size / MIB:.0f} MiB Faster R-CNN R50-FPN (.pth) | {median(uploads):.2f} | {median(runs):.2f} | "
          f"{median(peaks) / MIB:.0f} |")
    print(f"\nmedians of {ROUNDS} rounds; each round a new seed, so the model is built and loaded again")


if __name__ == "__main__":
    main()
