"""What the bench items share: the example image, the model as the app serves it, the generic tuning,
and starting and calling the app over HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import torch

from resfpn import Config
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

