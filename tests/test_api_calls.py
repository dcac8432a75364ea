"""Every API call gets an answer, over the three routes clients use against `python app.py`:
plain REST sending only what it must, gradio_client, and an MCP client (streamable HTTP).
The schemas the app publishes (/gradio_api/info and the MCP tool list) read as whole sentences."""

import asyncio
import json
import re
import urllib.request

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from app import EXAMPLES
from conftest import DOCUMENTED

TINY = {"widths": [8, 8, 16, 16], "blocks": [1, 1, 1, 1], "stem_width": 8, "fpn_width": 8,
        "input_height": 64, "input_width": 64}


def _post(url: str, body: dict | None = None, data: bytes | None = None, headers: dict | None = None):
    request = urllib.request.Request(url, data=data if data is not None else json.dumps(body).encode(),
                                     headers=headers or {"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=60) as r:
        return json.loads(r.read())


def rest(base: str, name: str, *values) -> tuple[str, object]:
    """POST /gradio_api/call/<name> with only ``values``; returns (event, data) of the answer."""
    event_id = _post(f"{base}gradio_api/call/{name}", {"data": list(values)})["event_id"]
    with urllib.request.urlopen(f"{base}gradio_api/call/{name}/{event_id}", timeout=120) as r:
        text = r.read().decode()
    events = re.findall(r"^event: (\w+)\ndata: (.*)$", text, re.M)
    event, data = [(e, d) for e, d in events if e in ("complete", "error")][-1]
    return event, json.loads(data)


def upload(base: str, path) -> dict:
    """A file sent as a plain REST client sends it: multipart to /gradio_api/upload, then a FileData."""
    boundary = "resfpn-test-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{path.name}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    [server_path] = _post(f"{base}gradio_api/upload", data=body,
                          headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    return {"path": server_path, "meta": {"_type": "gradio.FileData"}}


@pytest.fixture(scope="module")
def client(served_app):
    return Client(served_app, verbose=False)


# -- plain REST ----------------------------------------------------------------------------------


def test_rest_analyze_with_only_its_required_argument_gets_the_full_report(served_app):
    event, data = rest(served_app, "analyze", TINY)
    assert event == "complete"
    report = data[0]
    assert report["detail"] == "full" and report["mismatch"] is None and "modules" in report
    assert report["levels"]["P2"]["shape"] == [1, 8, 16, 16] and "stats" not in report


def test_rest_compare_and_receptive_field_with_only_required_arguments(served_app):
    event, data = rest(served_app, "compare", TINY, TINY | {"skip": "A"})
    assert event == "complete" and data[0]["changed"] == {"skip": {"a": "B", "b": "A"}}
    image = upload(served_app, EXAMPLES[0])
    event, data = rest(served_app, "receptive_field", TINY, image, 10, 20)
    assert event == "complete", data
    assert data[0]["point"] == [10, 20] and data[0]["weights"] == "seeded random weights (seed 0)"
    event, data = rest(served_app, "analyze", TINY, image)  # image given, precision and weights left out
    assert event == "complete" and data[0]["run"]["precision"] == "fp32"


@pytest.mark.parametrize("name, values, missing", [
    ("analyze", [], "config"),
    ("compare", [TINY], "b"),
    ("receptive_field", [TINY], "image, x, y. An image is needed: the effective field is measured on it"),
])
def test_rest_missing_required_arguments_are_named(served_app, name, values, missing):
    event, data = rest(served_app, name, *values)
    assert event == "error"
    assert data["error"] == (f"missing required argument(s): {missing}. See /gradio_api/info for each argument's "
                             "meaning and default.")


def test_rest_bad_precision_and_weights_are_refused_with_or_without_an_image(served_app):
    image = upload(served_app, EXAMPLES[0])
    for with_image in (None, image):
        event, data = rest(served_app, "analyze", TINY, with_image, "fp16")
        assert event == "error" and data["error"] == "precision='fp16': choose one of 'fp32', 'bf16'"
        event, data = rest(served_app, "analyze", TINY, with_image, "fp32", "nonsense")
        assert event == "error" and data["error"].startswith("weights='nonsense': unknown")
        assert data["error"].endswith("Names that fit this design: random.")
    event, data = rest(served_app, "analyze", {}, None, "fp32", "coco")
    assert event == "error" and "no published COCO backbone + FPN weights fit" in data["error"]
    assert data["error"].endswith("Names that fit this design: random, imagenet, imagenet-resnet18.")


def test_rest_arguments_of_the_wrong_type_get_a_message_not_null(served_app):
    image = upload(served_app, EXAMPLES[0])
    event, data = rest(served_app, "receptive_field", TINY, image, "ten", 3)
    assert event == "error" and data["error"] == "x='ten': expected a whole number of pixels"
    event, data = rest(served_app, "analyze", TINY, None, "fp32", "random", "everything")
    assert event == "error" and data["error"].startswith("detail='everything': choose 'summary'")
    event, data = rest(served_app, "analyze", [1, 2])
    assert event == "error" and data["error"] == "config must be a JSON object of configuration fields"


# -- gradio_client -------------------------------------------------------------------------------


def test_client_page_events_are_callable_but_not_documented(client, served_app):
    with urllib.request.urlopen(served_app + "gradio_api/info", timeout=30) as r:
        info = json.loads(r.read())
    assert set(info["named_endpoints"]) == {f"/{name}" for name in DOCUMENTED}
    assert info["unnamed_endpoints"] == {}
    params = [p["parameter_name"] for e in info["named_endpoints"].values() for p in e["parameters"]]
    assert not [p for p in params if p.startswith("param_")]
    summary = client.predict(TINY, None, "fp32", "random", "summary", api_name="/analyze")
    assert summary["detail"] == "summary" and "modules" not in summary and summary["costs"]["params"] > 0


# -- the published descriptions ------------------------------------------------------------------

_GARBLED = re.compile(r",\s*,|\b(an|a|the|of|to|with|its), |\w \w+,\s*$")


def _sentences_ok(text: str) -> list[str]:
    """Problems of one description: doubled commas, a sentence cut after a small word, no full stop."""
    problems = []
    if _GARBLED.search(text):
        problems.append(f"garbled near {_GARBLED.search(text).group(0)!r}")
    if not text.rstrip().endswith((".", ")", "}")):
        problems.append("does not end a sentence")
    return problems


def _check_descriptions(described: dict[str, str]) -> None:
    bad = {where: p for where, text in described.items() if (p := _sentences_ok(text))}
    assert not bad, bad
    assert all(described.values()), [w for w, t in described.items() if not t]


def test_info_and_schema_descriptions_are_whole_sentences(served_app):
    with urllib.request.urlopen(served_app + "gradio_api/info", timeout=30) as r:
        info = json.loads(r.read())
    described = {name: e["description"] for name, e in info["named_endpoints"].items()}
    with urllib.request.urlopen(served_app + "gradio_api/mcp/schema", timeout=30) as r:
        for tool in json.loads(r.read()):
            described[tool["name"]] = tool["description"]
            for k, v in tool["inputSchema"]["properties"].items():
                described[f"{tool['name']}.{k}"] = v["description"]
    _check_descriptions(described)
    assert described["analyze.config"].endswith("so {} is the reference design.")
    assert "[top, left, bottom, right]" in described["receptive_field"]


def _mcp(url: str, work):
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async def main():
        async with streamable_http_client(url + "gradio_api/mcp/") as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return await work(session)

    return asyncio.run(main())


def test_mcp_lists_the_documented_tools_with_clean_descriptions(served_app):
    async def work(session):
        return (await session.list_tools()).tools

    tools = {t.name: t for t in _mcp(served_app, work)}
    assert set(tools) == set(DOCUMENTED)
    described = {name: t.description for name, t in tools.items()}
    for name, t in tools.items():
        described |= {f"{name}.{k}": v["description"] for k, v in t.inputSchema["properties"].items()}
    _check_descriptions(described)
    assert "[top, left, bottom, right]" in tools["receptive_field"].description
    assert "With an, image" not in tools["analyze"].description
    assert tools["analyze"].inputSchema["required"] == ["config"]


def test_mcp_results_are_json_summary_by_default_full_on_request(served_app):
    async def work(session):
        summary = await session.call_tool("analyze", {"config": {"input_height": 225, "input_width": 225}})
        full = await session.call_tool("analyze", {"config": {}, "detail": "full"})
        pair = await session.call_tool("compare", {"a": TINY, "b": TINY | {"skip": "A"}})
        refused = await session.call_tool("analyze", {"config": {"skip": "E"}})
        return summary, full, pair, refused

    summary, full, pair, refused = _mcp(served_app, work)
    text = summary.content[0].text
    report = json.loads(text)  # JSON, not Python's repr
    assert report["detail"] == "summary" and report["mismatch"]["where"] == "FPN merge into P4"
    assert report["mismatch"]["fixes"] and set(report["costs"]) >= {"params", "macs"}
    assert "modules" not in report and len(text) < 4000
    assert json.loads(full.content[0].text)["modules"]
    assert json.loads(pair.content[0].text)["changed"] == {"skip": {"a": "B", "b": "A"}}
    assert refused.isError and "skip='E': unknown value" in refused.content[0].text


def test_mcp_runs_an_image_and_measures_a_receptive_field(served_app):
    image = upload(served_app, EXAMPLES[0])["path"]
    url = f"{served_app}gradio_api/file={image}"

    async def work(session):
        run = await session.call_tool("analyze", {"config": TINY, "image": url})
        field = await session.call_tool("receptive_field", {"config": TINY, "image": url, "x": 5, "y": 6})
        return run, field

    run, field = _mcp(served_app, work)
    assert not run.isError, run.content[0].text
    report = json.loads(run.content[0].text)
    assert set(report["stats"]) == set(report["levels"]) and report["run"]["precision"] == "fp32"
    assert json.loads(field.content[0].text)["point"] == [5, 6]
