"""The endpoints added for fields, comparison, weights and MCP, over HTTP against `python app.py`."""

import json
import urllib.request

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from app import EXAMPLES
from resfpn import Config, trace
from resfpn.analysis.effective import cell_at

from conftest import launch_app

TINY = {"widths": [8, 8, 16, 16], "blocks": [1, 1, 1, 1], "stem_width": 8, "fpn_width": 8,
        "input_height": 96, "input_width": 96}


@pytest.fixture(scope="module")
def client(served_app):
    return Client(served_app, verbose=False)


def test_receptive_field_boxes_are_the_exact_fields_of_the_cells(client):
    report = client.predict(TINY, handle_file(str(EXAMPLES[0])), 40, 17, api_name="/receptive_field")
    t = trace(Config(**TINY))
    assert report["point"] == [40, 17] and set(report["levels"]) == set(t.levels)
    for name, lv in report["levels"].items():
        row, col = cell_at(t, name, 40, 17)
        assert lv["cell"] == [row, col]
        assert lv["box"] == t.fields[name].box(row, col)  # unclipped, may reach outside the image
        top, left, bottom, right = lv["erf_box"]
        assert 0 <= top < bottom <= 96 and 0 <= left < right <= 96
        assert lv["erf_mass_in_box"] >= 0.95
    assert report["levels"]["P2"]["box"][0] < 0  # the P2 cell's field reaches past the top border


def test_receptive_field_refuses_bad_points_and_missing_images(client):
    photo = handle_file(str(EXAMPLES[0]))
    with pytest.raises(AppError, match=r"outside the 96×96 input"):
        client.predict(TINY, photo, 96, 3, api_name="/receptive_field")
    with pytest.raises(AppError, match=r"an image is needed"):
        client.predict(TINY, None, 3, 3, api_name="/receptive_field")
    with pytest.raises(AppError, match=r"FPN merge into P4"):
        client.predict(TINY | {"input_height": 97}, photo, 3, 3, api_name="/receptive_field")


def test_compare_a_design_with_itself_differs_nowhere(client):
    photo = handle_file(str(EXAMPLES[1]))
    same = client.predict(TINY, TINY, photo, api_name="/compare")
    assert all(lv["same_shape"] and lv["difference"] == 0.0 for lv in same["levels"].values())
    assert same["params"]["a"] == same["params"]["b"]


def test_compare_skip_a_with_b_differs_from_c3_on(client):
    photo = handle_file(str(EXAMPLES[1]))
    report = client.predict(TINY | {"skip": "A"}, TINY | {"skip": "B"}, photo, api_name="/compare")
    levels = report["levels"]
    assert levels["C2"]["difference"] == 0.0  # stem and layer1 are shared: the same weights
    assert levels["C3"]["difference"] > 0.01
    assert report["params"]["a"] < report["params"]["b"]  # B's projections have weights, A's padding none
    assert report["changed"] == {"skip": {"a": "A", "b": "B"}}


def test_compare_reports_an_invalid_side_and_still_the_other(client):
    report = client.predict(TINY, TINY | {"widths": [0, 8, 16, 16]}, None, api_name="/compare")
    assert report["errors"]["a"] is None and report["errors"]["b"].startswith("B: widths[0]=0")
    assert report["a"]["levels"]["P2"]["shape"] == [1, 8, 24, 24]
    assert all(lv["difference"] is None for lv in report["levels"].values())


def test_endpoints_are_mcp_tools_with_their_docstrings(served_app):
    with urllib.request.urlopen(served_app + "gradio_api/mcp/schema") as r:
        tools = {t["name"]: t for t in json.loads(r.read())}
    assert {"analyze", "receptive_field", "compare"} <= set(tools)
    assert "effective receptive field" in tools["receptive_field"]["description"]
    assert "weights" in json.dumps(tools["analyze"]["inputSchema"])


def test_published_weights_offline_and_not_cached_get_the_download_command(tmp_path):
    with launch_app(HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(tmp_path / "hub"), TORCH_HOME=str(tmp_path / "torch")) as url:
        client = Client(url, verbose=False)
        photo = handle_file(str(EXAMPLES[0]))
        with pytest.raises(AppError, match=r"python -m resfpn download imagenet"):
            client.predict({"input_height": 64, "input_width": 64}, photo, "fp32", "imagenet", api_name="/analyze")
        with pytest.raises(AppError, match=r"no published COCO"):
            client.predict({"input_height": 64, "input_width": 64}, photo, "fp32", "coco", api_name="/analyze")
        report = client.predict({"input_height": 64, "input_width": 64}, photo, api_name="/analyze")
        assert report["run"]["weights"] == "seeded random weights (seed 0)"  # the app keeps serving
