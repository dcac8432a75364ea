import pytest

from resfpn import Config, trace
from resfpn.serving.limits import LimitError, Limits, memory_estimate


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"widths": (64, 128, 256, 4096)}, "layer4 width 4096 is above this server's cap of 2048 channels"),
        ({"fpn_width": 3000}, "fpn_width 3000 is above this server's cap of 2048"),
        ({"stem_width": 2049}, "stem_width 2049 is above"),
        ({"blocks": (2, 17, 2, 2)}, "layer2 has 17 blocks; this server's cap is 16 per stage"),
    ],
)
def test_architecture_caps_name_the_cap(changes, match):
    with pytest.raises(LimitError, match=match):
        Limits().check_architecture(Config(**changes))


def test_input_cap_applies_to_runs_not_traces():
    t = trace(Config(input_height=4096, input_width=64))
    assert t.ok  # shape-only tracing stays allowed
    with pytest.raises(LimitError, match=r"input 4096×64 is above this server's cap of 2048 pixels a side"):
        Limits().check_run(t)


def test_memory_guard_states_estimate_and_budget():
    t = trace(Config.preset("resnet50", input_height=1024, input_width=1024))
    estimate = memory_estimate(t)
    assert Limits(memory_budget=estimate).check_run(t) == estimate
    with pytest.raises(LimitError, match=r"about [\d,]+ MiB .* above this server's budget of 512 MiB"):
        Limits(memory_budget=512 * 2**20).check_run(t)


def test_memory_estimate_counts_parameters_input_and_activations():
    t = trace(Config())
    levels = sum(v.bytes for v in t.levels.values())
    assert memory_estimate(t) > 4 * t.params.total + 4 * 3 * 224 * 224 + levels


def test_budget_from_environment(monkeypatch):
    monkeypatch.setenv("RESFPN_MEMORY_BUDGET_MB", "300")
    assert Limits.from_env().memory_budget == 300 * 2**20
    monkeypatch.setenv("RESFPN_MEMORY_BUDGET_MB", "lots")
    with pytest.raises(LimitError, match="RESFPN_MEMORY_BUDGET_MB='lots'"):
        Limits.from_env()
