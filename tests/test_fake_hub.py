"""Hub downloads through huggingface_hub's real client against a fake Hub (HF_ENDPOINT on
127.0.0.1): pinned by commit, sha256 and size; hashed once; the deadline and the size cap hold
even where the Hub advertises an Xet transfer (these downloads go over plain HTTP)."""

import dataclasses
import hashlib
import http.server
import time

import pytest
import torch
from safetensors.torch import save_file

from resfpn.weights.digests import hashes_done
from resfpn.weights.download import CorruptFile, WeightsUnavailable, fetch
from resfpn.weights.pretrained import SOURCES

import loopback

COMMIT = "a" * 40
REPO = "timm/resnet18.tv_in1k"


class _Hub(http.server.ThreadingHTTPServer):
    daemon_threads = True
    body = b""
    announced: int | None = None  # size the headers claim (None: the real size)
    trickle = 0.0  # seconds between 4 KiB pieces
    xet = False
    gets = 0


class _Handler(loopback.Handler):
    def _headers(self) -> bool:
        hub = self.server
        if not self.path.startswith(f"/{REPO}/resolve/"):
            self.send_error(404)
            return False
        sha = hashlib.sha256(hub.body).hexdigest()
        self.send_response(200)
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("ETag", f'"{sha}"')
        self.send_header("X-Linked-Etag", f'"{sha}"')
        self.send_header("X-Linked-Size", str(hub.announced or len(hub.body)))
        self.send_header("Content-Length", str(len(hub.body)))
        if hub.xet:  # what the Hub sends for a file stored in Xet
            self.send_header("X-Xet-Hash", "0" * 64)
            self.send_header("X-Xet-Refresh-Route", f"/api/models/{REPO}/xet-read-token/{COMMIT}")
        self.end_headers()
        return True

    def do_HEAD(self):
        self._headers()

    def do_GET(self):
        if not self._headers():  # huggingface_hub also asks other /api routes: 404
            return
        self.server.gets += 1
        self.send_pieces(self.server.body, 4096, self.server.trickle)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    server = _Hub(("127.0.0.1", 0), _Handler)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    tensors = {"conv1.weight": torch.randn(8, 3, 7, 7), "bn1.weight": torch.ones(8),
               "layer1.0.conv1.weight": torch.randn(8, 8, 3, 3), "fc.weight": torch.randn(10, 16)}
    save_file(tensors, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})  # timm's layout, small
    server.body = (tmp_path / "model.safetensors").read_bytes()
    with loopback.serving(server):
        yield server


def _pinned(hub, **changes):
    pins = {"revision": COMMIT, "bytes": len(hub.body), "sha256": hashlib.sha256(hub.body).hexdigest()}
    return dataclasses.replace(SOURCES["imagenet-resnet18"], **(pins | changes))


def test_a_pinned_file_downloads_once_and_is_hashed_once(hub):
    source = _pinned(hub)
    path = fetch(source)
    assert path.read_bytes() == hub.body and f"snapshots/{COMMIT}/model.safetensors" in str(path)
    for _ in range(3):
        assert fetch(source) == path
    assert hub.gets == 1 and hashes_done(path) == 1  # three checked uses, one read of the file


def test_a_file_that_is_not_the_pinned_one_is_discarded(hub, tmp_path):
    with pytest.raises(CorruptFile, match=r"discarded: .* has sha256 [0-9a-f]{16}…, but timm/resnet18\.tv_in1k@a{40} "
                       r"pins f{16}…"):
        fetch(_pinned(hub, sha256="f" * 64))
    assert not [p for p in (tmp_path / "hub").rglob("*") if p.is_file() and p.stat().st_size == len(hub.body)]


@pytest.mark.parametrize("xet", [False, True])
def test_the_deadline_holds_on_a_trickling_hub_even_where_it_advertises_xet(hub, xet):
    hub.xet, hub.trickle = xet, 0.05  # 80 KB/s
    hub.body = hub.body + b"\0" * (2 << 20)  # 2 MiB: half a minute at that rate
    start = time.monotonic()
    with pytest.raises(WeightsUnavailable, match="did not finish in time and was stopped"):
        fetch(_pinned(hub), timeout=2.0)
    assert time.monotonic() - start < 10


def test_the_size_cap_holds_where_the_hub_announces_less_than_it_sends(hub):
    hub.xet = True
    real = len(hub.body)
    hub.body = hub.body + b"\0" * (3 << 20)
    hub.announced = real
    with pytest.raises(WeightsUnavailable, match="refused, the download passed"):
        fetch(_pinned(hub, bytes=real, sha256=None))
