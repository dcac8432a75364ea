import json
import subprocess
import sys

import pytest

from resfpn.cli.main import main


def test_table_and_exit_status_zero(capsys):
    assert main(["--input", "224x320", "--p7"]) == 0
    out = capsys.readouterr().out
    assert "P6     256×4×5" in out and "P7     256×2×3" in out and "recept. field" in out and "FLOPs = 2 × MACs" in out


def test_json_report_keys(capsys):
    assert main(["--preset", "retinanet", "--input", "256", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"config", "levels", "additions", "mismatch", "params", "macs", "flops", "activation_bytes"} <= set(report)
    assert report["mismatch"] is None
    assert report["levels"]["P3"] == {**report["levels"]["P3"], "shape": [1, 256, 32, 32], "stride": 8}
    assert set(report["levels"]["C5"]) >= {"shape", "stride", "receptive_field"}
    assert set(report["additions"][0]) >= {"where", "shapes", "ok"}
    for key in ("params", "macs"):
        assert set(report[key]) >= {"total", "backbone", "fpn", "parts"}
        assert set(report[key]["parts"]) == {"stem", "layer1", "layer2", "layer3", "layer4",
                                             "fpn.lateral", "fpn.output", "fpn.extra"}


def test_mismatch_exits_one_with_the_diagnosis(capsys):
    assert main(["--input", "225", "--json"]) == 1
    mismatch = json.loads(capsys.readouterr().out)["mismatch"]
    assert mismatch["where"] == "FPN merge into P4"
    assert mismatch["shapes"] == [[1, 256, 15, 15], [1, 256, 16, 16]] and mismatch["dim"] == 2
    assert "use input 224×224" in mismatch["hint"]


# Every usage error of the command line, side B's (--vs) included: (argv, what the message says).
BAD_ARGUMENTS = [
    (["--skip", "E"], "invalid choice: 'E'"),
    (["--input", "22x"], "expected 224 or 224x320"),
    (["--widths", "64,128"], "expected four values"),
    (["--fpn-width", "0"], "fpn_width=0: must be between 1 and 4096"),
    (["--block", "bottleneck", "--widths", "64,128,256,510"], "divisible by the expansion 4"),
    (["--vs", "colour=red"], "unknown field 'colour'; known: input, batch"),
    (["--vs", "p7"], "expected FIELD=VALUE"),
    (["--vs", "fpn_width=wide"], "fpn_width takes a whole number"),
    (["--vs", "p7=maybe"], "p7 takes true or false"),
    (["--vs-preset", "resnet99"], "invalid choice: 'resnet99'"),
]


def exit_status(argv: list[str]) -> int:
    """``main(argv)``'s status, whether it returns it or argparse exits with it."""
    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code


@pytest.mark.parametrize("argv, message", BAD_ARGUMENTS)
def test_bad_arguments_exit_two_with_a_message(argv, message, capsys):
    assert exit_status(argv) == 2
    assert message in capsys.readouterr().err


def test_python_m_resfpn_exits_two_with_the_message():
    proc = subprocess.run([sys.executable, "-m", "resfpn", "--skip", "E"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "invalid choice: 'E'" in proc.stderr and "Traceback" not in proc.stderr


def test_json_config_round_trips_into_config():
    from resfpn import Config

    proc = subprocess.run([sys.executable, "-m", "resfpn", "--preset", "faster-rcnn", "--input", "300x200", "--json"],
                          capture_output=True, text=True, check=True)
    cfg = json.loads(proc.stdout)["config"]
    assert Config(**cfg) == Config.preset("faster-rcnn", input_height=300, input_width=200)


def test_config_file_with_flags_overriding_it(tmp_path, capsys):
    from resfpn import Config

    design = tmp_path / "design.json"
    assert main(["--preset", "retinanet", "--input", "256", "--save-config", str(design)]) == 0
    capsys.readouterr()
    assert main(["--config", str(design), "--skip", "D", "--json"]) == 0
    out = capsys.readouterr().out
    assert Config(**json.loads(out)["config"]) == Config.preset("retinanet", input_height=256, input_width=256, skip="D")


def test_export_code_writes_a_file_and_refuses_a_mismatch(tmp_path, capsys):
    model = tmp_path / "model.py"
    assert main(["--widths", "8,8,16,16", "--blocks", "1,1,1,1", "--stem-width", "8", "--fpn-width", "8",
                 "--export-code", str(model)]) == 0
    assert "def build_model() -> ResFPN:" in model.read_text()
    assert f"wrote {model}" in capsys.readouterr().err
    refused = tmp_path / "refused.py"
    assert main(["--input", "225", "--export-code", str(refused)]) == 1
    err = capsys.readouterr().err
    assert "not exporting a design whose shapes do not add up: FPN merge into P4" in err and "Fix:" in err
    assert not refused.exists()


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"skip": "A",', "design.json: not valid JSON: Expecting property name enclosed in double quotes"),
        ('{"colour": 1}', "design.json: unknown key 'colour'; known keys:"),
        ('{"p7": "yes"}', "design.json: p7: expected true or false, got the text"),
        ('{"fpn_width": 0}', "design.json: fpn_width=0: must be between 1 and 4096"),
    ],
)
def test_bad_config_file_exits_two_with_one_line(tmp_path, content, message):
    (tmp_path / "design.json").write_text(content)
    proc = subprocess.run([sys.executable, "-m", "resfpn", "--config", str(tmp_path / "design.json")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == ""
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1
