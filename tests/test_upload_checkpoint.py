"""A real-sized checkpoint through the page's own route, against `python app.py`: uploaded (160 MB,
torchvision's Faster R-CNN R50-FPN layout), refused with its key summary where it does not fit,
loaded where it does; above RESFPN_MAX_UPLOAD_MB it is refused at the door."""

import urllib.error
import urllib.request

import pytest
import torch
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from app import EXAMPLES, controls_from_config
from resfpn import Config

from conftest import launch_app

DISPLAY = ["mean", 0, True, 0.6, "Viridis", False]  # reduction, channel, overlay, opacity, colour scale, shared


def page_run(client: Client, config: Config, weights: str, checkpoint=None):
    """The page's Run button (an undocumented endpoint): controls, image, weights, seed, checkpoint,
    display options, precision, theme."""
    values = controls_from_config(config)
    return client.predict(*values, handle_file(str(EXAMPLES[0])), weights, 0, checkpoint, *DISPLAY, "fp32", "light",
                          api_name="/run")


@pytest.fixture(scope="module")
def detector_file(tmp_path_factory):
    """torchvision's Faster R-CNN ResNet-50 FPN with random weights, saved as torchvision saves it."""
    from test_pretrained import detection

    torch.manual_seed(0)
    model = detection.fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91)
    path = tmp_path_factory.mktemp("upload") / "fasterrcnn_resnet50_fpn.pth"
    torch.save(model.state_dict(), path)
    assert path.stat().st_size > 160e6
    return path


def test_a_160_mb_detection_checkpoint_is_summarised_where_it_does_not_fit_and_loads_where_it_does(
        served_app, detector_file):
    client = Client(served_app, verbose=False)
    small = Config(input_height=64, input_width=64)
    with pytest.raises(AppError, match=r"The checkpoint: torchvision detection \(backbone \+ FPN\) layout; it looks "
                       r"like block bottleneck, blocks 3,4,6,3, widths 256,512,1024,2048.*Fix: change "
                       r"block='bottleneck', blocks=\(3, 4, 6, 3\), widths=\(256, 512, 1024, 2048\)") as info:
        page_run(client, small, "upload", handle_file(str(detector_file)))
    message = str(info.value)
    assert "27 tensor(s) disagree in shape: backbone.body.layer1.0.conv1.weight -> backbone.layer1.0.conv1.weight: " \
           "checkpoint (64, 64, 1, 1) vs model (64, 64, 3, 3)" in message
    assert "Missing from the checkpoint: 2 tensor(s) (fpn.p6.weight, fpn.p6.bias)." in message
    assert "Unexpected (no such part here): 198 key(s) (backbone.body.layer1.0.conv3.weight" in message
    fits = Config.preset("faster-rcnn", input_height=64, input_width=64)
    _, rows, status = page_run(client, fits, "upload", handle_file(str(detector_file)))
    assert "0 missing" in status and "checkpoint fasterrcnn_resnet50_fpn.pth (sha256" in status
    assert [r[0] for r in rows["data"]] == ["C2", "C3", "C4", "C5", "P2", "P3", "P4", "P5", "P6"]


def test_an_upload_above_the_cap_is_refused_at_the_door(tmp_path):
    big = tmp_path / "big.pth"
    big.write_bytes(b"\0" * (3 << 20))
    with launch_app(RESFPN_MAX_UPLOAD_MB="2") as url:
        boundary = "cap-test"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.pth\"\r\n\r\n"
                ).encode() + big.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
        request = urllib.request.Request(f"{url}gradio_api/upload", data=body, method="POST",
                                         headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=60)
        assert info.value.code == 413
        assert "maximum allowed size" in info.value.read().decode()
