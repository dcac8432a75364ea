"""torchvision downloads against a loopback server: a transfer that breaks off resumes with an
HTTP Range request, a server that ignores Range restarts it cleanly, a partial file is never
loaded, and stale partial files are removed."""

import dataclasses
import hashlib
import http.server
import os
import re
import time

import pytest

from resfpn.weights.download import (CorruptFile, WeightsUnavailable, cached_path, fetch, partial_path,
                             remove_stale_partials)
from resfpn.weights.pretrained import SOURCES

import loopback

BODY = bytes(range(256)) * 4096 * 2  # 2 MiB


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    cut_at: int | None = None  # send this many bytes of a whole-file answer, then hang up
    ranges = True  # answer Range requests with 206
    trickle = 0.0  # seconds between 16 KiB pieces
    requests: list


class _Handler(loopback.Handler):
    def do_GET(self):
        header = self.headers.get("Range")
        self.server.requests.append(header)
        m = re.match(r"bytes=(\d+)-$", header or "")
        start = int(m.group(1)) if m and self.server.ranges else 0
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(BODY) - 1}/{len(BODY)}")
        self.send_header("Content-Length", str(len(BODY) - start))
        self.end_headers()
        end = len(BODY) if start or self.server.cut_at is None else self.server.cut_at
        self.send_pieces(BODY[start:end], 16384, self.server.trickle)


@pytest.fixture
def server(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.requests = []
    with loopback.serving(srv):
        yield srv


def _source(server, body=BODY):
    name = f"tiny_fpn_coco-{hashlib.sha256(body).hexdigest()[:8]}.pth"
    return dataclasses.replace(SOURCES["coco-faster-rcnn"], name="coco-tiny", filename=name, bytes=len(BODY),
                               url=f"http://127.0.0.1:{server.server_port}/{name}")


def test_a_broken_transfer_resumes_with_a_range_request(server):
    source = _source(server)
    server.cut_at = 700_000
    with pytest.raises(WeightsUnavailable, match=r"broke off at 700,000 of 2,097,152 bytes; it resumes from there"):
        fetch(source)
    assert partial_path(source).stat().st_size == 700_000
    assert cached_path(source) is None  # the partial file is never taken for the published one
    path = fetch(source)
    assert path.read_bytes() == BODY and not partial_path(source).exists()
    assert server.requests == [None, "bytes=700000-"]


def test_a_server_that_ignores_range_restarts_the_file_cleanly(server):
    source = _source(server)
    server.cut_at, server.ranges = 500_000, False
    with pytest.raises(WeightsUnavailable, match="broke off"):
        fetch(source)
    server.cut_at = None
    assert fetch(source).read_bytes() == BODY  # 200 with the whole file: written from the start, not appended
    assert server.requests == [None, "bytes=500000-"]


def test_a_partial_file_with_wrong_bytes_is_discarded_not_loaded(server):
    source = _source(server)
    partial_path(source).parent.mkdir(parents=True)
    partial_path(source).write_bytes(b"\xff" * 1000)  # not the file's first bytes
    with pytest.raises(CorruptFile, match="not the published file"):
        fetch(source)
    assert not partial_path(source).exists() and cached_path(source) is None
    assert fetch(source).read_bytes() == BODY


def test_stale_partial_files_are_removed(tmp_path):
    old, fresh = tmp_path / ".a.pth.partial", tmp_path / ".b.pth.partial"
    old.write_bytes(b"x")
    fresh.write_bytes(b"y")
    day_ago = time.time() - 2 * 24 * 3600
    os.utime(old, (day_ago, day_ago))
    assert remove_stale_partials(tmp_path) == [old]
    assert not old.exists() and fresh.exists()


def test_a_trickle_past_the_deadline_is_stopped_and_resumes_later(server):
    source = _source(server)
    server.trickle = 0.05  # 320 KB/s: about 7 s for the whole file
    start = time.monotonic()
    with pytest.raises(WeightsUnavailable, match=r"did not finish in 1 s and was stopped at [\d.]+ MB; it resumes"):
        fetch(source, timeout=1.0)
    assert time.monotonic() - start < 4
    have = partial_path(source).stat().st_size
    assert 0 < have < len(BODY)
    server.trickle = 0.0
    assert fetch(source).read_bytes() == BODY
    assert server.requests[-1] == f"bytes={have}-"
