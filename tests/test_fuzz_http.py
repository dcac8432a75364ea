"""Hostile configurations and hostile images through the real HTTP route of `python app.py`.

Every answer must be a report that serialises as JSON or a clear message (a gr.Error title and text,
never Gradio's generic "error" without one), and the server must still answer at the end.
"""

import io
import json
import struct
import zlib

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import launch_app

GENERIC = "has not enabled verbose error reporting"
FIELDS = ["input_height", "input_width", "input_channels", "batch", "widths", "blocks", "block", "stride_in",
          "skip", "stem_width", "fpn_from", "fpn_width", "upsample", "policy", "p6", "p7", "colour"]
# Floats stay finite: NaN and infinity are not JSON, so no HTTP client can send them.
values = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 5000), st.floats(-1e6, 1e6),
    st.sampled_from(["A", "B", "C", "D", "E", "x2", "match", "pad", "basic", "bottleneck", "none", "", "∞"]),
    st.lists(st.integers(-4, 3000), max_size=5),
)
configs = st.one_of(
    st.dictionaries(st.sampled_from(FIELDS), values, max_size=5),
    st.lists(st.integers(), max_size=3), st.text(max_size=10), st.integers(),
)


def _png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 200, 30)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    data[16:24] = struct.pack(">II", width, height)  # the IHDR claims another size
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buf, "JPEG")
    return buf.getvalue()


images = st.one_of(
    st.none(),
    st.just(b""),  # empty
    st.binary(min_size=1, max_size=200),  # non-image bytes
    st.integers(10, 600).map(lambda n: _jpeg()[:n]),  # truncated JPEG
    st.tuples(st.integers(1, 200_000), st.integers(1, 200_000)).map(lambda wh: _png(*wh)),  # huge header
    st.just(_jpeg()),
)


@pytest.fixture(scope="module")
def client():
    with launch_app(RESFPN_MEMORY_BUDGET_MB="256") as url:
        yield Client(url, verbose=False)


def test_hostile_requests_get_a_report_or_a_clear_message(client, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    answers = {"report": 0, "message": 0}

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(config=configs, image=images, precision=st.sampled_from(["fp32", "bf16", "fp16", ""]))
    def check(config, image, precision):
        path = None
        if image is not None:
            path = folder / f"upload-{len(list(folder.iterdir()))}.jpg"
            path.write_bytes(image)
        try:
            job = client.submit(config, handle_file(str(path)) if path else None, precision, api_name="/analyze")
            report = job.result(timeout=120)  # a hang is a failure, not a stuck suite
        except AppError as err:
            assert GENERIC not in str(err) and str(err).strip(), f"not a clear message: {err!r}"
            answers["message"] += 1
            return
        json.dumps(report, allow_nan=False)
        assert "levels" in report and "config" in report
        answers["report"] += 1

    check()
    assert answers["report"] and answers["message"], answers
    assert client.predict({}, None, api_name="/analyze")["mismatch"] is None  # still serving
