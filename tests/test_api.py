"""The documented /analyze endpoint through gradio_client, against `python app.py` on 127.0.0.1."""

import time

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from app import EXAMPLES
from conftest import DOCUMENTED


@pytest.fixture(scope="module")
def client(served_app):
    return Client(served_app, verbose=False)


def test_the_api_lists_the_documented_endpoints_only(client):
    endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert set(endpoints) == {f"/{name}" for name in DOCUMENTED}  # the page's events are undocumented


def test_analyze_without_an_image_returns_the_report(client):
    report = client.predict({"input_height": 225, "input_width": 225}, None, api_name="/analyze")
    assert report["mismatch"]["where"] == "FPN merge into P4"
    assert report["config"]["input_height"] == 225 and "stats" not in report
    ok = client.predict({"input_height": 256, "input_width": 320, "p7": True}, api_name="/analyze")
    assert ok["mismatch"] is None and ok["levels"]["P7"]["shape"] == [1, 256, 2, 3]


def test_analyze_with_an_image_adds_statistics(client):
    report = client.predict({"input_height": 128, "input_width": 128}, handle_file(str(EXAMPLES[0])),
                            api_name="/analyze")
    assert set(report["stats"]) == set(report["levels"])
    assert {"mean", "std", "zeros", "top_channels"} <= set(report["stats"]["P2"])
    assert report["run"]["weights"] == "seeded random weights (seed 0)"
    assert report["run"]["packed"] is True  # the app on CPU serves the packed model (resfpn.serving.fastpath)
    assert report["run"]["serving"].startswith("packed model: each conv runs the kernel measured fastest")
    kernels = report["run"]["kernels"]
    assert set(kernels) <= {"plain", "onednn", "winograd"} and sum(kernels.values()) == 29, kernels  # every conv ran


def test_analyze_refuses_bad_input_readably_and_keeps_serving(client, tmp_path):
    with pytest.raises(AppError, match=r"skip='E': unknown value"):
        client.predict({"skip": "E"}, api_name="/analyze")
    with pytest.raises(AppError, match=r"unknown configuration key\(s\) \['colour'\]"):
        client.predict({"colour": 1}, api_name="/analyze")
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    with pytest.raises(AppError, match="This file cannot be used"):
        client.predict({}, handle_file(str(bad)), api_name="/analyze")
    assert client.predict({}, api_name="/analyze")["mismatch"] is None


@pytest.mark.parametrize("target", ["/etc/passwd", "{root}/app.py", "{root}/assets/README.md",
                                    "/tmp/gradio/../../etc/passwd", "..%2F..%2Fetc%2Fpasswd"])
def test_file_route_serves_nothing_outside_upload_and_cache_folders(served_app, client, target):
    import urllib.error
    import urllib.request
    from pathlib import Path

    path = target.format(root=Path(__file__).resolve().parents[1])
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{served_app}gradio_api/file={path}", timeout=10)
    assert info.value.code in (403, 404)
    assert client.predict({}, api_name="/analyze")["mismatch"] is None  # still serving


def test_a_full_queue_answers_busy_and_the_app_keeps_serving():
    """With room for one waiting request: one run is processing, one waits, the next is refused as busy.
    Each step waits for the server's own status events, so a slow machine only makes the first run
    longer, which the test needs anyway."""
    from gradio_client.utils import QueueError, Status

    from conftest import launch_app

    def reach(job, codes, what):
        for _ in range(1200):  # a count, not a clock: at most about a minute of 50 ms polls
            if job.status().code in codes:
                return
            if job.done():
                break
            time.sleep(0.05)
        raise AssertionError(f"{what}: status {job.status().code}")

    with launch_app(RESFPN_QUEUE_SIZE="1") as url:
        long_run, waiting, refused = (Client(url, verbose=False) for _ in range(3))
        image = handle_file(str(EXAMPLES[0]))
        # /receptive_field runs one at a time (the model's queue): a forward and a backward per level
        first = long_run.submit({"input_height": 1024, "input_width": 1024}, image, 500, 500,
                                api_name="/receptive_field")
        reach(first, {Status.PROCESSING}, "the long run never started")
        second = waiting.submit({"input_height": 128, "input_width": 128}, image, 60, 60, api_name="/receptive_field")
        reach(second, {Status.IN_QUEUE}, "the second run never queued")
        with pytest.raises(QueueError, match="Queue is full! Please try again."):
            refused.predict({"input_height": 160, "input_width": 160}, image, api_name="/analyze")
        assert not first.done(), "the long run ended before the refusal: the queue was not full"
        assert "levels" in first.result(timeout=600) and "levels" in second.result(timeout=600)
        assert refused.predict({}, api_name="/analyze")["mismatch"] is None  # still serving


def test_ui_endpoints_answer_empty_values_readably(client):
    import app as app_module
    from resfpn import Config

    values = app_module.controls_from_config(Config())
    values[0] = None  # input height left empty by an API caller
    with pytest.raises(AppError, match="Input height H is empty"):
        client.predict(*values, "light", api_name="/trace")  # the page's event: every input, the theme last
    with pytest.raises(AppError, match="preset=None: unknown preset"):
        client.predict(None, "light", api_name="/preset")
