"""The exported file is resfpn's model in plain PyTorch: same keys, same outputs, without resfpn."""

import ast
import json
import py_compile
import subprocess
import sys
import textwrap

import pytest
import torch

from resfpn import PRESETS, Config, ShapeMismatchError, build_model, trace
from resfpn.share.export import ExportError, export_code

TINY = dict(widths=(8, 8, 16, 16), blocks=(1, 1, 1, 1), stem_width=8, fpn_width=8)

# A covering set: every skip option, block type, stride placement, P6 source, P7, fpn_from,
# upsampling and top-down policy appears at least once, with odd sizes for 'match' and 'pad'.
CASES = {
    "A-basic-x2-stem4": dict(skip="A", stem_width=4, input_height=64, input_width=64, batch=2),
    "A-bottleneck-pad-maxpool-p7": dict(
        skip="A", block="bottleneck", p6="maxpool", p7=True, fpn_from="C3", upsample="bilinear", policy="pad",
        input_height=33, input_width=47,
    ),
    "B-bottleneck-v1-match-c5conv-p7": dict(
        skip="B", block="bottleneck", stride_in="1x1", expansion=2, blocks=(2, 1, 1, 2), p6="c5-conv", p7=True,
        fpn_from="C3", upsample="bilinear", policy="match", input_height=45, input_width=37,
    ),
    "B-basic-x2-odd-noP6": dict(
        skip="B", p6="none", upsample="bilinear", input_channels=1, input_height=95, input_width=63,
    ),
    "C-bottleneck-v1-pad-maxpool": dict(
        skip="C", block="bottleneck", stride_in="1x1", expansion=2, p6="maxpool", policy="pad",
        input_height=50, input_width=33,
    ),
    "C-basic-match-p7": dict(skip="C", p7=True, fpn_from="C3", policy="match", input_height=19, input_width=23),
    "D-basic-x2-stem4-noP6": dict(
        skip="D", stem_width=4, p6="none", fpn_from="C3", upsample="bilinear", input_height=32, input_width=64,
    ),
    "D-bottleneck-match-p7": dict(
        skip="D", block="bottleneck", blocks=(2, 1, 1, 2), p7=True, policy="match", input_height=29, input_width=31,
    ),
}
CONFIGS = {name: Config(**(TINY | case)) for name, case in CASES.items()}

RUNNER = textwrap.dedent(
    """
    import importlib.util, io, json, runpy, sys, contextlib
    import torch

    results = {"resfpn_importable": importlib.util.find_spec("resfpn") is not None}
    for name in json.load(open("names.json")):
        spec = importlib.util.spec_from_file_location("exported_" + name.replace("-", "_"), name + ".py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        model = module.build_model()
        keys = list(model.state_dict())
        model.load_state_dict(torch.load(name + ".state.pt"))
        with torch.no_grad():
            outputs = model(torch.load(name + ".input.pt"))
            too_small = None
            if "x2" in name:  # a 1×1 lateral would broadcast against a 2×2 upsampled level
                try:
                    model(torch.zeros(1, model.backbone.stem.conv.in_channels, 16, 16))
                except ValueError as err:
                    too_small = str(err)
        torch.save({"keys": keys, "training": model.training, "outputs": outputs, "too_small": too_small},
                   name + ".result.pt")
    first = json.load(open("names.json"))[0]
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        runpy.run_path(first + ".py", run_name="__main__")
    results["main_output"] = printed.getvalue()
    results["resfpn_loaded"] = any(m.split(".")[0] == "resfpn" for m in sys.modules)
    json.dump(results, open("results.json", "w"))
    """
)


def _randomise(model: torch.nn.Module, seed: int) -> None:
    """BN statistics and affine parameters away from 1/0, so a swapped or skipped BN shows."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            elif name.endswith(("running_mean", ".bias")) or (name.endswith(".weight") and t.dim() == 1):
                t.copy_(torch.randn(t.shape, generator=gen) * 0.2 + (1.0 if name.endswith(".weight") else 0.0))


@pytest.fixture(scope="module")
def exported_run(tmp_path_factory):
    """Every case exported, run with resfpn's weights in one `python -I` process outside the repo."""
    tmp = tmp_path_factory.mktemp("exported")
    expected = {}
    for i, (name, config) in enumerate(CONFIGS.items()):
        assert trace(config).ok, name
        model = build_model(config, seed=i)
        _randomise(model, seed=i)
        x = torch.randn(config.input_shape, generator=torch.Generator().manual_seed(100 + i))
        with torch.no_grad():
            expected[name] = (list(model.state_dict()), model(x))
        (tmp / f"{name}.py").write_text(export_code(config))
        torch.save(model.state_dict(), tmp / f"{name}.state.pt")
        torch.save(x, tmp / f"{name}.input.pt")
    (tmp / "names.json").write_text(json.dumps(list(CONFIGS)))
    (tmp / "run_exported.py").write_text(RUNNER)
    proc = subprocess.run([sys.executable, "-I", "run_exported.py"], cwd=tmp, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    results = json.loads((tmp / "results.json").read_text())
    results["cases"] = {name: torch.load(tmp / f"{name}.result.pt") for name in CONFIGS}
    return expected, results


def test_the_exported_files_run_where_resfpn_is_not_importable(exported_run):
    _, results = exported_run
    assert results["resfpn_importable"] is False and results["resfpn_loaded"] is False


@pytest.mark.parametrize("name", list(CONFIGS))
def test_exported_model_has_resfpns_keys_and_outputs(exported_run, name):
    expected, results = exported_run
    keys, outputs = expected[name]
    got = results["cases"][name]
    assert got["keys"] == keys
    assert got["training"] is False
    assert list(got["outputs"]) == list(outputs) == list(CONFIGS[name].levels)
    for level, tensor in outputs.items():
        torch.testing.assert_close(got["outputs"][level], tensor, rtol=0, atol=1e-5, msg=f"{name} {level}")


def test_x2_model_refuses_an_input_it_would_silently_broadcast(exported_run):
    _, results = exported_run
    for name in CONFIGS:
        if "x2" in name:
            assert "use an input whose height and width are multiples of 32" in results["cases"][name]["too_small"]


def test_running_the_file_prints_the_levels(exported_run):
    _, results = exported_run
    first = next(iter(CONFIGS))
    want = "".join(f"{level} {tuple(rec.shape)}\n" for level, rec in trace(CONFIGS[first]).levels.items())
    assert results["main_output"] == want


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_exports_resfpns_module_tree(name):
    config = Config.preset(name)
    namespace: dict = {}
    exec(compile(export_code(config), f"{name}.py", "exec"), namespace)
    with torch.device("meta"):
        exported = namespace["build_model"]()
    reference = build_model(config, device="meta")
    assert [(k, v.shape) for k, v in exported.state_dict().items()] == [
        (k, v.shape) for k, v in reference.state_dict().items()
    ]


@pytest.mark.parametrize("config", [*CONFIGS.values(), *PRESETS.values()], ids=[*CONFIGS, *PRESETS])
def test_exported_code_reads_like_code(config, tmp_path):
    code = export_code(config)
    path = tmp_path / "model.py"
    path.write_text(code)
    py_compile.compile(str(path), doraise=True)
    tree = ast.parse(code)
    imports = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imports |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imports == {"torch"}
    defined = [node.name for node in tree.body if isinstance(node, (ast.ClassDef, ast.FunctionDef))]
    used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    assert [d for d in defined if d not in used] == []  # build_model is used by the __main__ block
    assert max(len(line) for line in code.splitlines()) <= 100
    for level in config.levels:  # a reader sees every level's shape
        assert f"# {level}: (N, " in code


def test_a_design_with_a_mismatch_is_refused_with_the_diagnosis():
    with pytest.raises(ExportError, match=r"FPN merge into P4: lateral\(C4\) is 256×15×15") as info:
        export_code(Config(input_height=225, input_width=225))
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value.mismatch, ShapeMismatchError)
    assert "Fix: use input 224×224" in str(info.value)


def test_option_a_narrowing_stage_is_refused_at_its_residual_add():
    with pytest.raises(ExportError, match=r"layer2\.0 residual add"):
        export_code(Config(**TINY | dict(skip="A", widths=(16, 8, 16, 16))))


def test_only_the_parts_the_design_uses_are_written():
    code = export_code(CONFIGS["A-basic-x2-stem4"])
    assert "class ZeroPadShortcut" in code and "class BasicBlock" in code
    for absent in ("Projection", "Bottleneck", "pad_to_multiple", "self.p7", "MaxPool2d(1"):
        assert absent not in code
    code = export_code(CONFIGS["C-bottleneck-v1-pad-maxpool"])
    assert "def make_shortcut" not in code and "pad_to_multiple(x, 32)" in code and "nn.MaxPool2d(1, stride=2)" in code
    assert "self.conv1 = nn.Conv2d(in_channels, inner, 1, stride=stride, bias=False)" in code
