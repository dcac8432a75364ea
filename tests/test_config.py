import json

import pytest

from resfpn import PRESETS, Config, ConfigError


def test_defaults_are_the_reference_design():
    c = Config()
    assert (c.input_height, c.input_width, c.widths, c.blocks) == (224, 224, (64, 128, 256, 512), (2, 2, 2, 2))
    assert (c.block, c.skip, c.fpn_width, c.policy, c.p6, c.p7) == ("basic", "B", 256, "x2", "p5-conv", False)
    assert c.levels == ("C2", "C3", "C4", "C5", "P2", "P3", "P4", "P5", "P6")


@pytest.mark.parametrize("name", list(PRESETS))
def test_round_trips_through_json(name):
    c = Config.preset(name)
    assert Config(**json.loads(json.dumps(c.to_dict()))) == c


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"skip": "E"}, r"skip='E': unknown value; allowed: 'A', 'B', 'C', 'D'"),
        ({"skip": "a"}, r"skip='a': unknown value"),
        ({"policy": "x3"}, r"policy='x3': unknown value; allowed: 'x2', 'match', 'pad'"),
        ({"p6": "p4"}, r"p6='p4'.*'p5-conv', 'c5-conv', 'maxpool', 'none'"),
        ({"block": "wide"}, r"block='wide'.*'basic', 'bottleneck'"),
        ({"input_height": 0}, r"input_height=0: must be between 1 and 8192"),
        ({"input_width": 8193}, r"input_width=8193: must be between 1 and 8192"),
        ({"input_width": 22.5}, r"input_width=22.5: expected a whole number"),
        ({"fpn_width": "256"}, r"fpn_width='256': expected a whole number"),
        ({"widths": (64, 128, 256)}, r"widths=.*exactly four values"),
        ({"widths": (64, 0, 256, 512)}, r"widths\[1\]=0"),
        ({"blocks": (2, 2, "x", 2)}, r"blocks=.*four whole numbers"),
        ({"block": "bottleneck", "widths": (64, 128, 256, 510)}, r"widths\[3\]=510: .*divisible by the expansion 4"),
        ({"p6": "none", "p7": True}, r"p7=True needs a P6"),
        ({"p7": "yes"}, r"p7='yes': expected true or false"),
    ],
)
def test_bad_values_are_refused_with_field_value_and_allowed(changes, match):
    with pytest.raises(ConfigError, match=match):
        Config(**changes)


def test_unknown_keys_and_presets_are_refused():
    with pytest.raises(ConfigError, match=r"unknown configuration key\(s\) \['colour'\]"):
        Config.from_dict({"colour": "red"})
    with pytest.raises(ConfigError, match=r"preset='resnet9'.*'reference', 'resnet18'"):
        Config.preset("resnet9")


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


def test_integral_floats_from_json_are_accepted():
    assert Config(input_height=256.0).input_height == 256
