import json
import os
import subprocess
import sys

import pytest
import torch
from PIL import Image

from resfpn import Config, build_model
from resfpn.cli.main import main
from resfpn.analysis.compare import compare, compare_traces, difference_maps, merge_orders, paired_maps, relative_difference
from resfpn.serving.engine import Engine, cached_trace
from resfpn.serving.limits import Limits
from resfpn.model.network import module_seed


def _image(w=80, h=60):
    g = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (h, w, 3), generator=g, dtype=torch.uint8)
    return Image.fromarray(pixels.numpy())


@pytest.fixture
def small(tiny) -> Config:
    return tiny.replace(input_height=64, input_width=64)


# -- seeded weights depend on a module's place and shape only -------------------------------------


def _state(config, seed=0):
    return build_model(config, seed=seed).state_dict()


def test_changing_only_the_fpn_leaves_the_backbone_weights_identical(tiny):
    a = _state(tiny)
    b = _state(tiny.replace(fpn_width=16, p6="c5-conv", p7=True))
    backbone = [k for k in a if k.startswith("backbone.")]
    assert backbone and all(torch.equal(a[k], b[k]) for k in backbone)
    assert not torch.equal(a["fpn.lateral.C2.weight"], b["fpn.lateral.C2.weight"][:8])  # another shape, another draw
    c = _state(tiny.replace(upsample="bilinear", fpn_from="C3"))
    assert set(c) < set(a) and all(torch.equal(a[k], c[k]) for k in c)


def test_skip_a_and_b_differ_only_where_the_shortcuts_differ(tiny):
    a, b = _state(tiny.replace(skip="A")), _state(tiny.replace(skip="B"))
    assert set(a) < set(b)
    assert {k.rsplit(".shortcut.", 1)[0] for k in set(b) - set(a)} == {
        "backbone.layer2.0", "backbone.layer3.0", "backbone.layer4.0"}
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_seeded_weights_change_with_the_seed_and_keep_pytorchs_distributions(tiny):
    a, b = _state(tiny, seed=0), _state(tiny, seed=1)
    convs = [k for k in a if k.endswith("conv1.weight") or k.endswith("lateral.C5.weight")]
    assert convs and not any(torch.equal(a[k], b[k]) for k in convs)
    w = a["fpn.output.P2.weight"]  # Conv2d's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    bound = 1 / (w.shape[1] * w.shape[2] * w.shape[3]) ** 0.5
    assert 0.9 * bound < w.abs().max() <= bound
    assert torch.equal(a["backbone.stem.bn.weight"], torch.ones(8)) and torch.equal(a["backbone.stem.bn.running_var"], torch.ones(8))


def test_module_seed_depends_on_seed_path_and_shapes():
    conv, wider = torch.nn.Conv2d(4, 8, 3), torch.nn.Conv2d(4, 16, 3)
    seeds = {module_seed(0, "fpn.p6", conv), module_seed(1, "fpn.p6", conv), module_seed(0, "fpn.p7", conv),
             module_seed(0, "fpn.p6", wider)}
    assert len(seeds) == 4 and module_seed(0, "fpn.p6", conv) == module_seed(0, "fpn.p6", torch.nn.Conv2d(4, 8, 3))


def test_seeded_weights_are_the_same_in_another_process(tiny):
    code = ("import torch; from resfpn import Config, build_model; "
            "m = build_model(Config(widths=(8, 8, 16, 16), blocks=(1, 1, 1, 1), stem_width=8, fpn_width=8), seed=5); "
            "print(repr(sum(p.double().sum().item() for p in m.parameters())))")
    env = dict(os.environ, PYTHONHASHSEED="12345")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    here = sum(p.double().sum().item() for p in build_model(tiny, seed=5).parameters())
    assert float(out) == here


def test_building_draws_nothing_from_the_global_generator_and_meta_allocates_nothing(tiny):
    state = torch.random.get_rng_state()
    build_model(tiny, seed=3)
    meta = build_model(tiny, device="meta")
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(p.is_meta for p in meta.parameters()) and all(b.is_meta for b in meta.buffers())


# -- comparing traces ------------------------------------------------------------------------------


def test_skip_a_vs_b_trace_comparison(small):
    r = compare_traces(cached_trace(small.replace(skip="A")), cached_trace(small.replace(skip="B")))
    assert r["changed"] == {"skip": {"a": "A", "b": "B"}}
    assert list(r["levels"]) == ["C2", "C3", "C4", "C5", "P2", "P3", "P4", "P5", "P6"]
    assert all(lv["same_shape"] and not lv["differs"] and lv["difference"] is None for lv in r["levels"].values())
    assert r["levels"]["C3"]["a"] == [1, 8, 8, 8] and r["levels"]["C3"]["channels"] == {"a": 8, "b": 8}
    differing = {b["site"]: b for b in r["blocks"] if b["differs"]}
    assert set(differing) == {"layer2.0", "layer3.0", "layer4.0"}
    assert differing["layer3.0"]["a"]["shortcut"] == "shortcut-zero-pad"
    assert differing["layer3.0"]["b"]["shortcut"] == "shortcut-projection"
    assert differing["layer3.0"]["changes"] == ["shortcut", "params", "macs"]
    assert not any(a["differs"] for a in r["additions"])
    assert r["params"]["a"] < r["params"]["b"] and r["macs"]["a"] < r["macs"]["b"]
    assert r["costs"]["params"]["fpn"]["a"] == r["costs"]["params"]["fpn"]["b"]
    assert "backbone.layer2.0.shortcut.conv" in r["highlight"]["b"] and "backbone.stem" not in r["highlight"]["a"]
    assert r["mismatch"] == {"a": None, "b": None}


def test_a_design_against_itself_differs_nowhere(small):
    r = compare_traces(cached_trace(small), cached_trace(small))
    assert r["changed"] == {} and r["highlight"] == {"a": [], "b": []}
    assert not any(x["differs"] for key in ("blocks", "additions") for x in r[key])
    assert not any(lv["differs"] for lv in r["levels"].values())


def test_levels_are_the_union_of_both_sides_and_a_mismatch_is_reported(tiny):
    a = tiny.replace(input_height=65, input_width=64)  # x2 policy: FPN merge into P4 fails
    b = tiny.replace(input_height=64, input_width=64, fpn_from="C3", p7=True, policy="match")
    r = compare_traces(cached_trace(a), cached_trace(b))
    assert list(r["levels"]) == ["C2", "C3", "C4", "C5", "P2", "P3", "P4", "P5", "P6", "P7"]
    assert r["levels"]["P2"]["b"] is None and r["levels"]["P7"]["a"] is None and r["levels"]["P7"]["differs"]
    assert r["levels"]["P4"]["a"] is None  # not reached: A's trace stopped at the merge into P4
    assert r["mismatch"]["a"].startswith("FPN merge into P4") and r["mismatch"]["b"] is None
    merges = {x["where"]: x for x in r["additions"]}
    assert merges["FPN merge into P4"]["a"]["ok"] is False and merges["FPN merge into P4"]["b"]["ok"] is True
    assert "FPN merge into P2" not in merges  # A stopped before it, B has no P2


def test_merge_orders_keeps_both_orders():
    assert merge_orders(["x", "y", "z"], ["x", "w", "z"]) == ["x", "y", "w", "z"]
    assert merge_orders([], ["a", "b"]) == ["a", "b"] and merge_orders(["a"], []) == ["a"]
    assert merge_orders(["a", "b", "c"], ["a", "b", "c"]) == ["a", "b", "c"]


def test_blocks_and_additions_of_different_depths_come_in_execution_order(small):
    r = compare_traces(cached_trace(small.replace(blocks=(1, 2, 1, 1))), cached_trace(small.replace(blocks=(2, 1, 1, 1))))
    assert [b["site"] for b in r["blocks"]] == ["layer1.0", "layer1.1", "layer2.0", "layer2.1", "layer3.0", "layer4.0"]
    assert [b["site"] for b in r["blocks"] if b["differs"]] == ["layer1.1", "layer2.1"]
    wheres = [a["where"] for a in r["additions"]]
    assert wheres[:6] == [b["site"] + " residual add" for b in r["blocks"]]
    assert wheres[6:] == ["FPN merge into P4", "FPN merge into P3", "FPN merge into P2"]
    assert list(r["costs"]["params"])[3:] == ["stem", "layer1", "layer2", "layer3", "layer4",
                                              "fpn.lateral", "fpn.output", "fpn.extra"]


# -- comparing activations -------------------------------------------------------------------------


def test_relative_difference():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(1, 4, 5, 5, generator=g), torch.randn(1, 4, 5, 5, generator=g)
    assert relative_difference(a, a.clone()) == 0.0
    assert relative_difference(a, b) == pytest.approx(relative_difference(b, a))
    assert relative_difference(a, b) == pytest.approx(
        (torch.linalg.vector_norm(a - b) / max(torch.linalg.vector_norm(a), torch.linalg.vector_norm(b))).item())
    assert relative_difference(a, -a) == pytest.approx(2.0)
    assert relative_difference(torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 3, 3)) == 0.0
    assert relative_difference(torch.zeros(1, 2, 3, 3), torch.ones(1, 2, 3, 3)) == 1.0
    with pytest.raises(ValueError, match=r"shapes \(1, 4, 5, 5\) and \(1, 4, 5, 4\) differ"):
        relative_difference(a, b[..., :4])


def test_a_design_against_itself_costs_one_forward_and_differs_by_exactly_zero(small):
    engine = Engine()
    c = compare(small, small.to_dict(), image=_image(), engine=engine)
    assert engine.forwards == 1 and c.ok
    report = c.to_dict()
    assert all(lv["difference"] == 0.0 for lv in report["levels"].values())
    maps = c.difference_maps()
    assert maps.vmax == 0.0 and set(maps.maps) == set(report["levels"])


def test_skip_a_vs_b_with_an_image_reuses_the_shared_stage(small):
    engine = Engine()
    c = compare(small.replace(skip="A"), small.replace(skip="B"), image=_image(), engine=engine)
    report = c.to_dict()
    assert engine.forwards == 2 and report["shared_levels"] == ["C2"]  # stem and layer1 are the same
    diffs = {k: lv["difference"] for k, lv in report["levels"].items()}
    assert diffs["C2"] == 0.0 and all(d > 0 for k, d in diffs.items() if k != "C2")
    full = Engine().run(small.replace(skip="B"), _image())  # B's forward from scratch
    assert all(torch.equal(full.levels[k], c.b.run.levels[k]) for k in full.levels)
    assert report["b"]["run"]["shared_levels"] == ["C2"] and set(report["a"]["stats"]) == set(diffs)
    assert report["a"]["run"]["build_seconds"] > 0 and report["b"]["run"]["build_seconds"] > 0
    json.dumps(report, allow_nan=False)


def test_an_fpn_only_change_runs_only_the_second_fpn(small):
    engine = Engine()
    c = compare(small, small.replace(upsample="bilinear"), image=_image(), engine=engine)
    assert c.b.shared == ("C2", "C3", "C4", "C5")
    diffs = c.differences()
    assert all(diffs[k] == 0.0 for k in ("C2", "C3", "C4", "C5")) and diffs["P2"] > 0 and diffs["P5"] == 0.0
    full = Engine().run(small.replace(upsample="bilinear"), _image())
    assert all(torch.equal(full.levels[k], c.b.run.levels[k]) for k in full.levels)


def test_levels_of_different_shapes_get_no_difference(small):
    c = compare(small, small.replace(fpn_width=16), image=_image())
    d = c.to_dict()["levels"]
    assert d["C5"]["difference"] == 0.0 and d["P2"]["difference"] is None and not d["P2"]["same_shape"]
    assert set(c.difference_maps().maps) == {"C2", "C3", "C4", "C5"}


def test_difference_and_paired_maps_share_one_scale():
    g = torch.Generator().manual_seed(1)
    la = {"C2": torch.randn(1, 3, 4, 4, generator=g), "C3": torch.randn(1, 3, 2, 2, generator=g)}
    lb = {"C2": torch.randn(1, 3, 4, 4, generator=g), "C3": la["C3"].clone(), "P6": torch.randn(1, 3, 1, 1, generator=g)}
    maps = difference_maps(la, lb)
    assert maps.maps["C2"].shape == (4, 4) and torch.equal(maps.maps["C3"], torch.zeros(2, 2))
    assert maps.vmax == maps.maps["C2"].max().item()
    pairs = paired_maps(la, lb)
    ma, mb, (lo, hi) = pairs["C2"]
    assert lo == min(ma.min().item(), mb.min().item()) and hi == max(ma.max().item(), mb.max().item())
    assert pairs["P6"][0] is None and pairs["P6"][1].shape == (1, 1)


# -- one side refused: the message names the side and field, the other side still shows ------------


def test_an_invalid_side_is_named_and_the_other_side_still_runs(small):
    c = compare(small.to_dict(), small.to_dict() | {"widths": [0, 8, 16, 16]}, image=_image())
    report = c.to_dict()
    assert report["errors"] == {"a": None, "b": "B: widths[0]=0: each stage width must be between 1 and 8192"}
    assert report["b"] is None and report["a"]["run"]["forward_seconds"] > 0 and not c.ok
    assert report["levels"]["C2"]["a"] == [1, 8, 16, 16] and report["levels"]["C2"]["b"] is None
    c = compare({"skip": "E"}, {}, image=None)
    assert c.errors == ["A: skip='E': unknown value; allowed: 'A', 'B', 'C', 'D'"]
    assert compare({"colour": 1}, {}).errors[0].startswith("A: unknown configuration key(s) ['colour']")
    assert compare([], {}).errors == ["A: expected a configuration object (field: value), got list"]


def test_caps_name_the_side(small):
    limits = Limits(max_width=16, max_run_input=64)
    c = compare(small, small.replace(fpn_width=32), limits=limits)
    assert c.errors == ["B: fpn_width 32 is above this server's cap of 16 channels"]
    engine = Engine()
    c = compare(small.replace(input_height=96), small, image=_image(), engine=engine, limits=limits)
    assert c.errors[0].startswith("A: input 96×64 is above this server's cap of 64")
    assert c.to_dict()["a"]["levels"]["C2"]["shape"] == [1, 8, 24, 16]  # A's trace still shows
    assert c.a.run is None and c.b.run is not None and engine.forwards == 1


# -- command line ----------------------------------------------------------------------------------


TINY_FLAGS = ["--widths", "8,8,16,16", "--blocks", "1,1,1,1", "--stem-width", "8", "--fpn-width", "8", "--input", "64"]


def test_cli_table_marks_the_differences(capsys):
    assert main([*TINY_FLAGS, "--vs", "fpn_width=16", "--vs", "skip=A"]) == 0
    out = capsys.readouterr().out
    assert "changed: skip B → A, fpn_width 8 → 16" in out
    assert "  C5     16×2×2           16×2×2" in out and "≠ P2     8×16×16          16×16×16" in out
    assert "layer3.0   A: basic-block, shortcut shortcut-projection" in out
    assert "≠ fpn" in out and "≠ total" in out


def test_cli_json_is_the_compare_report_and_vs_preset_keeps_the_input(capsys):
    assert main(["--input", "256", "--vs-preset", "resnet50", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"a", "b", "levels", "params", "macs", "errors"} <= set(report)
    assert report["b"]["config"]["block"] == "bottleneck" and report["b"]["config"]["input_height"] == 256
    assert report["levels"]["C5"]["channels"] == {"a": 512, "b": 2048}


def test_cli_image_gives_differences(tmp_path, capsys):
    path = tmp_path / "photo.png"
    _image().save(path)
    assert main([*TINY_FLAGS, "--vs", "upsample=bilinear", "--image", str(path)]) == 0
    out = capsys.readouterr().out
    assert "rel. L2" in out and "B reused A's forward for C2, C3, C4, C5" in out
    assert [line.split()[-1] for line in out.splitlines() if line.startswith("  C3 ")] == ["0"]


@pytest.mark.parametrize(
    "argv, status, message",
    [
        (["--vs", "widths=0,8,16,16"], 2, "B: widths[0]=0: each stage width must be between 1 and 8192"),
        (["--fpn-width", "0", "--vs", "fpn_width=8"], 2, "A: fpn_width=0: must be between 1 and 4096"),
        (["--vs", "input=225"], 1, "B: SHAPE MISMATCH"),
    ],
)
def test_cli_one_bad_side_is_named_and_the_other_still_shows(argv, status, message, capsys):
    assert main(argv) == status
    captured = capsys.readouterr()
    assert message in captured.out + captured.err
    assert any(line[2:4] == "C5" and "512×7×7" in line for line in captured.out.splitlines())  # the valid side


def test_forward_from_needs_a_prefix_of_the_backbone_levels(small):
    model = build_model(small)
    x = torch.zeros(1, 3, 64, 64)
    with torch.inference_mode():
        full = model(x)
        rest = model.forward_from({"C2": full["C2"], "C3": full["C3"]}, (64, 64))
        assert all(torch.equal(full[k], rest[k]) for k in full)
        with pytest.raises(ValueError, match=r"known levels \['C3'\]: expected a prefix of \['C2', 'C3', 'C4', 'C5'\]"):
            model.forward_from({"C3": full["C3"]}, (64, 64))
