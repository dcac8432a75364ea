"""``python -m resfpn --image ... --weights ...`` and ``python -m resfpn download``, offline."""

import json

import pytest
from PIL import Image

from resfpn.cli.main import main
from test_pretrained import _hub_cache, _timm_file, hub  # noqa: F401  (the fixture)


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    Image.new("RGB", (80, 60), (200, 120, 40)).save(path)
    return str(path)


def test_run_with_imagenet_weights_prints_stats_and_the_source(hub, tmp_path, photo, capsys):  # noqa: F811
    _hub_cache(hub, "timm/resnet18.tv_in1k", _timm_file("resnet18", tmp_path)[1])
    assert main(["--preset", "resnet18", "--input", "64", "--weights", "imagenet", "--image", photo, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["run"]["weights"] == ("backbone: ImageNet, timm/resnet18.tv_in1k · FPN: seeded random, seed 0 · "
                                        "licence BSD-3-Clause")
    assert set(report["stats"]) == {"C2", "C3", "C4", "C5", "P2", "P3", "P4", "P5", "P6"}
    assert set(report["stats"]["C5"]) == {"mean", "std", "zeros", "top_channels"}


def test_random_weights_run_as_a_table(photo, capsys):
    assert main(["--input", "64", "--image", photo, "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "weights: seeded random weights (seed 3)" in out and "top channels" in out


@pytest.mark.parametrize("argv, message", [
    (["--preset", "resnet34", "--weights", "imagenet", "--image", "PHOTO"],
     r"not cached .*python -m resfpn download imagenet resnet34"),
    (["--preset", "resnet50-v1", "--weights", "imagenet", "--image", "PHOTO"], r"stride in the 3x3 \(now 1x1\)"),
    (["--preset", "retinanet", "--weights", "coco-retinanet", "--image", "PHOTO"], r"Fix: change p6='p5-conv'"),
    (["--weights", "nonsense", "--image", "PHOTO"], r"unknown; published weights: imagenet-resnet18"),
    (["--weights", "imagenet"], r"--weights applies to a run: add --image PATH"),
    (["--image", "missing.jpg"], r"missing\.jpg"),
])
def test_run_errors_exit_2_with_a_message(hub, photo, capsys, argv, message):  # noqa: F811
    assert main([photo if a == "PHOTO" else a for a in argv]) == 2
    assert pytest.importorskip("re").search(message, capsys.readouterr().err)


def test_download_offline_and_unknown_names(hub, capsys):  # noqa: F811
    assert main(["download", "imagenet", "resnet34"]) == 2
    assert "python -m resfpn download imagenet resnet34" in capsys.readouterr().out
    assert main(["download", "imagenet", "resnet9"]) == 2
    assert "unknown imagenet weights resnet9; known: resnet18, resnet34" in capsys.readouterr().err
