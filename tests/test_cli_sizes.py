"""``python -m resfpn sizes``: compact lines per policy and axis, and JSON equal to the library's map."""

import json
import subprocess
import sys

from resfpn.cli.main import main
from resfpn import Config, trace
from resfpn.shapes.sizes import size_map


def test_compact_lines_per_policy_and_axis(capsys):
    assert main(["sizes"]) == 0
    out = capsys.readouterr().out
    assert "x2 height:     29–32 (mod 32)" in out and "match width:   every size" in out
    assert "design's size 224×224 builds under ×2" in out


def test_retinanet_style_under_x2_and_a_photos_aspect_ratio(capsys):
    assert main(["sizes", "--preset", "retinanet", "--policy", "x2", "--input", "225x300", "--aspect", "750x1000"]) == 0
    out = capsys.readouterr().out
    assert "x2 width:      25–32 (mod 32)" in out
    assert "225×300 does not build under ×2: FPN merge into P4: lateral(C4) is 256×15×19 but upsampled P5 is 256×16×20" in out
    assert "nearest that builds: 224×288" in out
    assert "nearest sizes keeping 750×1000's aspect ratio" in out


def test_json_equals_the_library(capsys):
    assert main(["sizes", "--skip", "D", "--input", "100", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    m = size_map(Config(skip="D", input_height=100, input_width=100))
    for policy in ("x2", "match", "pad"):
        for axis in ("height", "width"):
            assert report["policies"][policy][axis]["valid"] == m.valid[policy][axis]
    assert report["current"]["builds"] is False
    mismatch = trace(Config(skip="D", input_height=100, input_width=100)).mismatch
    assert report["current"]["failure"]["where"] == mismatch.where == "FPN merge into P4"
    assert report["current"]["failure"]["shapes"] == [list(s) for s in mismatch.shapes]
    f = report["policies"]["x2"]["height"]["failures"][0]
    assert set(f) == {"size", "where", "operands", "shapes"}


def test_bad_design_exits_two_with_the_field_named():
    r = subprocess.run([sys.executable, "-m", "resfpn", "sizes", "--fpn-width", "0"], capture_output=True, text=True)
    assert r.returncode == 2 and "fpn_width=0: must be between 1 and 4096" in r.stderr
