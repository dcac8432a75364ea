import pickle

import pytest
import torch

from resfpn import Config, WeightsError, build_model, load_checkpoint, load_torchvision_weights
from resfpn.weights.loading import translate_key


def _torchvision_keys(model, prefix=""):
    """Our model's backbone as a torchvision-layout state dict, written independently of the loader."""
    sd = {}
    for key, value in model.backbone.state_dict().items():
        tv = key.replace("stem.conv.", "conv1.").replace("stem.bn.", "bn1.")
        tv = tv.replace("shortcut.conv.", "downsample.0.").replace("shortcut.bn.", "downsample.1.")
        sd[prefix + tv] = torch.randn_like(value.float()).to(value.dtype) if value.is_floating_point() else value
    return sd


@pytest.mark.parametrize("block", ["basic", "bottleneck"])
def test_classification_checkpoint_round_trips(tiny, block):
    config = tiny.replace(block=block)
    model = build_model(config)
    sd = _torchvision_keys(model) | {"fc.weight": torch.zeros(10, 16), "fc.bias": torch.zeros(10)}
    result = load_torchvision_weights(model, sd)
    assert result.ignored == ["fc.weight", "fc.bias"]
    assert all(k.startswith("fpn.") for k in result.missing) and result.missing
    own = model.state_dict()
    for tv_key, value in sd.items():
        if not tv_key.startswith("fc."):
            assert torch.equal(own[translate_key(tv_key, model)], value), tv_key


def test_detection_checkpoint_with_frozen_bn_loads_backbone_and_fpn(tiny):
    config = tiny.replace(fpn_from="C3", p6="c5-conv", p7=True)
    model = build_model(config)
    sd = {k: v for k, v in _torchvision_keys(model, "backbone.body.").items() if "num_batches_tracked" not in k}
    d = config.fpn_width
    for i, c in enumerate(config.fpn_levels):
        channels = model.backbone.output_shape()[c].channels
        sd[f"backbone.fpn.inner_blocks.{i}.0.weight"] = torch.randn(d, channels, 1, 1)
        sd[f"backbone.fpn.inner_blocks.{i}.0.bias"] = torch.randn(d)
        sd[f"backbone.fpn.layer_blocks.{i}.0.weight"] = torch.randn(d, d, 3, 3)
        sd[f"backbone.fpn.layer_blocks.{i}.0.bias"] = torch.randn(d)
    sd["backbone.fpn.extra_blocks.p6.weight"] = torch.randn(d, 16, 3, 3)
    sd["backbone.fpn.extra_blocks.p6.bias"] = torch.randn(d)
    sd["backbone.fpn.extra_blocks.p7.weight"] = torch.randn(d, d, 3, 3)
    sd["backbone.fpn.extra_blocks.p7.bias"] = torch.randn(d)
    sd["head.classification_head.conv.0.0.weight"] = torch.randn(4, 4, 3, 3)
    result = load_torchvision_weights(model, sd)
    assert result.missing == [] and result.ignored == ["head.classification_head.conv.0.0.weight"]
    assert torch.equal(model.fpn.lateral["C3"].weight, sd["backbone.fpn.inner_blocks.0.0.weight"])
    assert torch.equal(model.fpn.output["P5"].bias, sd["backbone.fpn.layer_blocks.2.0.bias"])
    assert torch.equal(model.fpn.p7.weight, sd["backbone.fpn.extra_blocks.p7.weight"])


def test_shape_disagreement_names_key_and_both_shapes_and_loads_nothing(tiny):
    model = build_model(tiny)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    sd = _torchvision_keys(model)
    sd["layer2.0.conv1.weight"] = torch.zeros(8, 8, 5, 5)
    with pytest.raises(WeightsError, match=r"layer2\.0\.conv1\.weight -> backbone\.layer2\.0\.conv1\.weight: "
                       r"checkpoint \(8, 8, 5, 5\) vs model \(8, 8, 3, 3\)"):
        load_torchvision_weights(model, sd)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_unrelated_checkpoint_is_explained(tiny):
    with pytest.raises(WeightsError, match="no tensor in the checkpoint matches"):
        load_torchvision_weights(build_model(tiny), {"encoder.weight": torch.zeros(3)})


def test_checkpoint_files_load_tensors_only(tmp_path, tiny):
    model = build_model(tiny)
    path = tmp_path / "ok.pth"
    torch.save({"model": _torchvision_keys(model)}, path)
    assert set(load_checkpoint(path)) == set(_torchvision_keys(model))


class _Payload:
    def __reduce__(self):
        return (print, ("this would run",))


def test_pickles_that_would_run_code_are_refused(tmp_path):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"conv1.weight": _Payload()}, f, protocol=2)
    with pytest.raises(WeightsError, match=r"refused evil\.pth: it holds Python objects beyond tensors"):
        load_checkpoint(path)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04broken zip"])
def test_unreadable_files_are_explained(tmp_path, content):
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(WeightsError, match=r"bad\.pth"):
        load_checkpoint(path)
