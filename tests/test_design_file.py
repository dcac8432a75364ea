import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resfpn import PRESETS, Config
from resfpn.share.design_file import DesignFileError, config_from_json, design_json, read_design, write_design
from resfpn.shapes.tracing import trace


@pytest.mark.parametrize("name", list(PRESETS))
def test_written_designs_read_back(name, tmp_path):
    write_design(PRESETS[name], tmp_path / "design.json")
    assert read_design(tmp_path / "design.json") == PRESETS[name]


def test_a_whole_report_is_read_through_its_config_key():
    config = Config.preset("retinanet", input_height=300)
    assert config_from_json(json.dumps(trace(config).to_dict())) == config


def test_left_out_fields_come_from_the_start():
    assert config_from_json('{"skip": "A"}', start=PRESETS["resnet50"]) == Config.preset("resnet50", skip="A")
    assert config_from_json("{}") == Config()


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"skip": "A",}', r"^f\.json: not valid JSON: Expecting property name .*\(line 1, column 14\)$"),
        ("[1, 2]", r"^f\.json: expected a JSON object of design fields .*got a list$"),
        ('{"config": 3}', r"^f\.json: 'config' should be an object"),
        ('{"colour": "red", "skip": "A"}', r"^f\.json: unknown key 'colour'; known keys: input_height, "),
        ('{"widths": "64,128,256,512"}', r'^f\.json: widths: expected a list of four whole numbers.*got the text "64'),
        ('{"input_height": "224"}', r'^f\.json: input_height: expected a whole number, got the text "224"$'),
        ('{"p7": 1}', r"^f\.json: p7: expected true or false, got the number 1$"),
        ('{"skip": null}', r"^f\.json: skip: expected a text value, got null$"),
        ('{"skip": "E"}', r"^f\.json: skip='E': unknown value; allowed: 'A', 'B', 'C', 'D'$"),
        ('{"widths": [64, 128, 256]}', r"^f\.json: widths=.*exactly four values"),
        ('{"input_height": 22.5}', r"^f\.json: input_height=22\.5: expected a whole number"),
        ('{"block": "bottleneck", "widths": [64, 128, 256, 510]}', r"widths\[3\]=510: .*divisible by the expansion"),
        ("[" * 100000, r"^f\.json: not "),
        ('{"batch": ' + "9" * 5000 + "}", r"^f\.json: not a usable JSON design"),
    ],
)
def test_bad_files_give_one_line(text, message):
    with pytest.raises(DesignFileError, match=message) as info:
        config_from_json(text, source="f.json")
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)


def test_unreadable_files_give_one_line(tmp_path):
    with pytest.raises(DesignFileError, match=r"missing\.json: cannot read it: No such file"):
        read_design(tmp_path / "missing.json")
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00{")
    with pytest.raises(DesignFileError, match="not UTF-8 text"):
        read_design(tmp_path / "bin.json")
    (tmp_path / "big.json").write_bytes(b" " * (2 << 20))
    with pytest.raises(DesignFileError, match="a design file is a small JSON object"):
        read_design(tmp_path / "big.json")
    with pytest.raises(DesignFileError, match="cannot write it"):
        write_design(Config(), tmp_path / "no-such-dir" / "d.json")


def test_design_json_is_the_reports_config():
    config = Config.preset("faster-rcnn", input_width=300)
    assert json.loads(design_json(config)) == trace(config).to_dict()["config"]


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.binary(), st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["skip", "widths", "p7", "config", "input_height", "block", "x"]), inner, max_size=4),
).map(json.dumps)))
def test_reading_raises_nothing_but_design_file_errors(text):
    try:
        assert isinstance(config_from_json(text), Config)
    except DesignFileError as err:
        assert "\n" not in str(err)
