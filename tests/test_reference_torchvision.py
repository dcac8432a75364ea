"""Compare with torchvision, an implementation nobody here wrote.

torchvision's PyPI wheel ships C ops built against CUDA torch; with the CPU torch pinned here its
extension does not load, and its import then fails registering fake kernels for two ops that do
not exist. Declaring those two op schemas first lets the pure-Python models import; nothing here
calls a torchvision C op.
"""

import pytest
import torch

from resfpn import Config, build_model, load_torchvision_weights


def _import_torchvision():
    for op in ("nms", "qnms"):
        try:
            torch.library.define(f"torchvision::{op}", "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        except RuntimeError:
            pass  # already defined (a working extension, or a second import)
    import torchvision.models as models
    from torchvision.models.detection import backbone_utils
    from torchvision.ops import feature_pyramid_network as fpn_ops

    return models, backbone_utils, fpn_ops


models, backbone_utils, fpn_ops = _import_torchvision()


@pytest.mark.parametrize("preset, name", [("resnet18", "resnet18"), ("resnet34", "resnet34"), ("resnet50", "resnet50")])
def test_parameter_counts_equal_torchvision(preset, name):
    reference = getattr(models, name)()
    expected = sum(p.numel() for n, p in reference.named_parameters() if not n.startswith("fc."))
    model = build_model(Config.preset(preset), device="meta")
    assert sum(p.numel() for p in model.backbone.parameters()) == expected


def _randomise_bn(module):
    """Give BN running statistics real values, so a mapping mistake would show in the outputs."""
    g = torch.Generator().manual_seed(1)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d) or type(m).__name__ == "FrozenBatchNorm2d":
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)


@pytest.mark.parametrize(
    "preset, name, kwargs, extra",
    [
        ("faster-rcnn", "resnet50", {}, None),
        ("resnet18", "resnet18", {}, None),
        ("retinanet", "resnet50", {"returned_layers": [2, 3, 4]}, "p6p7"),
    ],
)
def test_detection_backbone_outputs_equal_torchvision(preset, name, kwargs, extra):
    if extra == "p6p7":
        kwargs["extra_blocks"] = fpn_ops.LastLevelP6P7(2048, 256)
    torch.manual_seed(0)
    reference = backbone_utils.resnet_fpn_backbone(backbone_name=name, weights=None, trainable_layers=5, **kwargs)
    _randomise_bn(reference)
    reference.eval()
    config = Config.preset(preset, input_height=100, input_width=132)
    if preset == "resnet18":  # torchvision's resnet_fpn_backbone default neck: max-pool P6
        config = config.replace(p6="maxpool")
    model = build_model(config)
    state = {"backbone." + k: v for k, v in reference.state_dict().items()}
    result = load_torchvision_weights(model, state)
    assert result.missing == [] and result.ignored == []
    x = torch.randn(2, 3, 100, 132)
    config = config.replace(batch=2)
    with torch.inference_mode():
        ours = model(x)
        theirs = list(reference(x).values())
    pyramid = [ours[p] for p in config.pyramid_levels]
    assert len(theirs) == len(pyramid)
    for a, b in zip(pyramid, theirs):
        assert a.shape == b.shape
        scale = b.abs().max().item()  # random weights: magnitudes grow through the stages
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * scale)


def test_classification_checkpoint_gives_torchvision_features():
    torch.manual_seed(0)
    reference = models.resnet50().eval()
    _randomise_bn(reference)
    model = build_model(Config.preset("resnet50-v1").replace(stride_in="3x3"))
    result = load_torchvision_weights(model, reference.state_dict())
    assert result.ignored == ["fc.weight", "fc.bias"]
    x = torch.randn(1, 3, 64, 96)
    with torch.inference_mode():
        c5 = model(x)["C5"]
        r = reference
        expected = r.layer4(r.layer3(r.layer2(r.layer1(r.maxpool(r.relu(r.bn1(r.conv1(x))))))))
    torch.testing.assert_close(c5, expected, rtol=1e-4, atol=1e-4)
