"""Published weights, offline: a Hub cache laid out as huggingface_hub lays it out, torch's hub cache
with torchvision's file names, and a loopback server for the download itself. Nothing is fetched
from the network; the references are timm's and torchvision's own models."""

import dataclasses
import hashlib
import http.server
import threading

import pytest
import torch
from PIL import Image

from resfpn import Config, WeightsError, build_model, load_checkpoint
from resfpn.weights.download import CorruptFile, WeightsUnavailable, fetch
from resfpn.serving.engine import Engine, Weights
from resfpn.serving.images import to_tensor
from resfpn.weights.loading import load_source
from resfpn.weights.pretrained import SOURCES, WeightsDontFit, describe, fit, require_fit, resolve, weight_choices

import loopback


def _import_torchvision_and_timm():
    """torchvision's wheel needs CUDA torch for its C ops; declaring the two op schemas lets its
    pure-Python models (and timm, which imports torchvision) load. No C op is called here."""
    for op in ("nms", "qnms"):
        try:
            torch.library.define(f"torchvision::{op}", "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        except RuntimeError:
            pass
    import timm
    import torchvision.models.detection as detection

    return timm, detection


timm, detection = _import_torchvision_and_timm()


def _randomise_bn(module, small_stem_var=False):
    """Real BN statistics, so a mapping or eps mistake shows in the outputs."""
    g = torch.Generator().manual_seed(1)
    for name, m in module.named_modules():
        if isinstance(m, torch.nn.BatchNorm2d) or type(m).__name__ == "FrozenBatchNorm2d":
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            if small_stem_var and name.endswith("body.bn1"):  # eps 1e-5 vs 0 differs by ~5 % here
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) * 1e-4 + 1e-4)


def _relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


# -- a Hugging Face cache, laid out as huggingface_hub lays it out ------------------------------

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _hub_cache(root, repo_id: str, content: bytes):
    """models--org--name/{blobs/<sha256>, snapshots/<commit>/model.safetensors -> ../../blobs/<sha256>, refs/main}."""
    repo = root / ("models--" + repo_id.replace("/", "--"))
    sha = hashlib.sha256(content).hexdigest()
    (repo / "blobs").mkdir(parents=True)
    (repo / "blobs" / sha).write_bytes(content)
    (repo / "snapshots" / COMMIT).mkdir(parents=True)
    (repo / "snapshots" / COMMIT / "model.safetensors").symlink_to(f"../../blobs/{sha}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    return repo / "blobs" / sha


def _timm_file(arch: str, tmp_path) -> tuple[torch.nn.Module, bytes]:
    """timm's own model with random weights, saved as the Hub's model.safetensors (fc.* included)."""
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = timm.create_model(arch, pretrained=False).eval()
    _randomise_bn(model)
    path = tmp_path / f"{arch}.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path), metadata={"format": "pt"})
    return model, path.read_bytes()


@pytest.fixture
def hub(tmp_path, monkeypatch):
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


@pytest.mark.parametrize("arch, preset", [("resnet18", "resnet18"), ("resnet50", "resnet50")])
def test_timm_layout_file_loads_and_matches_timm_features(hub, tmp_path, arch, preset):
    reference, content = _timm_file(arch, tmp_path)
    _hub_cache(hub, f"timm/{arch}.tv_in1k", content)
    features = timm.create_model(arch, pretrained=False, features_only=True, out_indices=(1, 2, 3, 4)).eval()
    features.load_state_dict({k: v for k, v in reference.state_dict().items() if not k.startswith("fc.")})
    config = Config.preset(preset, input_height=96, input_width=128)
    engine = Engine(device="cpu")
    image = Image.new("RGB", (128, 96))
    image.putdata([(x * 2 % 256, y * 3 % 256, (x + y) % 256) for y in range(96) for x in range(128)])
    run = engine.run(config, image, Weights(source=f"imagenet-{arch}"))
    with torch.inference_mode():
        expected = features(to_tensor(image))
    for level, theirs in zip(("C2", "C3", "C4", "C5"), expected):
        assert run.levels[level].shape == theirs.shape
        assert _relative_error(run.levels[level], theirs) < 1e-4, level
    assert sorted(run.load.ignored) == ["fc.bias", "fc.weight"]
    assert all(k.startswith("fpn.") for k in run.load.missing)
    assert run.weights == (f"backbone: ImageNet, timm/{arch}.tv_in1k · FPN: seeded random, seed 0 · "
                           f"licence BSD-3-Clause")
    engine.run(config, image.rotate(90), Weights(source=f"imagenet-{arch}"))
    assert engine.builds == 1  # a model with trained weights is cached like any other


def test_offline_without_the_file_names_it_and_the_command(hub, tiny):
    with pytest.raises(WeightsUnavailable, match=r"timm/resnet34\.tv_in1k/model\.safetensors .*not cached.*"
                       r"HF_HUB_OFFLINE is set.*python -m resfpn download imagenet resnet34"):
        fetch(SOURCES["imagenet-resnet34"])
    with pytest.raises(WeightsUnavailable, match="python -m resfpn download imagenet resnet34"):
        Engine(device="cpu").run(Config.preset("resnet34", input_height=32, input_width=32),
                                 Image.new("RGB", (32, 32)), Weights(source="imagenet-resnet34"))


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_corrupted_cached_blob_is_refused_every_time(hub, tmp_path, damage):
    _, content = _timm_file("resnet18", tmp_path)
    blob = _hub_cache(hub, "timm/resnet18.tv_in1k", content)
    assert fetch(SOURCES["imagenet-resnet18"]).resolve() == blob  # intact: served from the cache
    broken = bytearray(content)
    if damage == "flip":
        broken[len(broken) // 2] ^= 0xFF
    else:
        del broken[len(broken) // 2:]
    blob.write_bytes(bytes(broken))
    for _ in range(2):
        with pytest.raises(CorruptFile, match=r"corrupted or truncated: its sha256 is .* Delete"):
            fetch(SOURCES["imagenet-resnet18"])


def test_a_pickle_where_safetensors_is_expected_is_refused(hub, tmp_path):
    path = tmp_path / "model.pth"
    torch.save(timm.create_model("resnet18", pretrained=False).state_dict(), path)
    _hub_cache(hub, "timm/resnet18.tv_in1k", path.read_bytes())  # the hash is right; the format is not
    model = build_model(Config.preset("resnet18"))
    with pytest.raises(WeightsError, match=r"not a valid safetensors file.*It is a PyTorch zip/pickle"):
        load_source(model, SOURCES["imagenet-resnet18"])
    upload = tmp_path / "upload.safetensors"
    upload.write_bytes(path.read_bytes())
    with pytest.raises(WeightsError, match=r"refused upload\.safetensors: not a valid safetensors file"):
        load_checkpoint(upload)


def test_wrong_architecture_is_refused_whole_with_the_keys(hub, tmp_path):
    _, content = _timm_file("resnet34", tmp_path)  # a ResNet-34 file where ResNet-18 is published
    _hub_cache(hub, "timm/resnet18.tv_in1k", content)
    model = build_model(Config.preset("resnet18"))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(WeightsError, match=r"nothing loaded.*96 unexpected \(layer1\.2\.bn1\.bias, layer1\.2\.bn1\.running_mean"):
        load_source(model, SOURCES["imagenet-resnet18"])
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_missing_tensors_are_refused_whole(hub, tmp_path):
    from safetensors.torch import load_file, save_file

    _, content = _timm_file("resnet18", tmp_path)
    (tmp_path / "full.safetensors").write_bytes(content)
    tensors = {k: v for k, v in load_file(tmp_path / "full.safetensors").items() if not k.startswith("layer4.1.")}
    save_file(tensors, str(tmp_path / "part.safetensors"))
    _hub_cache(hub, "timm/resnet18.tv_in1k", (tmp_path / "part.safetensors").read_bytes())
    with pytest.raises(WeightsError, match=r"tensor\(s\) missing \(backbone\.layer4\.1\."):
        load_source(build_model(Config.preset("resnet18")), SOURCES["imagenet-resnet18"])


def test_uploaded_safetensors_load_like_pth(tmp_path, tiny):
    from safetensors.torch import save_file

    model = build_model(tiny)
    sd = {k.replace("backbone.stem.conv.", "conv1."): v for k, v in model.state_dict().items()
          if k.startswith("backbone.stem.conv.")}
    save_file(sd, str(tmp_path / "mine.safetensors"))
    assert set(load_checkpoint(tmp_path / "mine.safetensors")) == {"conv1.weight"}


# -- torchvision's detection checkpoints, in torch's hub cache ----------------------------------


def _detection_file(builder: str, cache) -> tuple:
    """A torchvision detection model with random weights, saved in torch's hub cache twice: under a
    name carrying its own sha256 prefix (what our registry entry is pointed at, so check_hash is
    real), and under the name torchvision publishes (so torchvision's own builder loads it)."""
    published = SOURCES["coco-faster-rcnn" if builder.startswith("faster") else "coco-retinanet"]
    torch.manual_seed(0)
    model = getattr(detection, builder)(weights=None, weights_backbone=None, num_classes=91)
    _randomise_bn(model, small_stem_var=True)
    checkpoints = cache / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    tmp = checkpoints / "tmp.pth"
    torch.save(model.state_dict(), tmp)
    prefix = hashlib.sha256(tmp.read_bytes()).hexdigest()[:8]
    stem = published.filename.rsplit("-", 1)[0]
    ours = checkpoints / f"{stem}-{prefix}.pth"
    tmp.rename(ours)
    (checkpoints / published.filename).hardlink_to(ours)
    source = dataclasses.replace(published, filename=ours.name, url=published.url.rsplit("/", 1)[0] + "/" + ours.name)
    return source, ours


@pytest.mark.parametrize("builder, preset, weights_enum", [
    ("retinanet_resnet50_fpn", "retinanet", "RetinaNet_ResNet50_FPN_Weights"),
    # Faster R-CNN passes the same check (14 s here, so it is left out): its LastLevelMaxPool mapping is
    # covered in test_reference_torchvision, and its eps-0 handling shares this code path.
])
def test_detection_checkpoint_matches_torchvisions_own_model(tmp_path, monkeypatch, builder, preset, weights_enum):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    source, path = _detection_file(builder, tmp_path)
    # torchvision's builder with its COCO_V1 weights: FrozenBatchNorm, eps set to 0, its P6/P7 blocks.
    reference = getattr(detection, builder)(weights=getattr(detection, weights_enum).COCO_V1).eval()
    config = Config.preset(preset, input_height=96, input_width=128)
    if preset == "retinanet":
        with pytest.raises(WeightsDontFit, match=r"needs P6 source p5-conv \(now c5-conv\).*Fix: change p6='p5-conv'"):
            require_fit(config, source)
        config = fit(config, source).adjusted(config)
    model = build_model(config)
    result = load_source(model, source)
    assert result.missing == []
    assert all(k.startswith(("head.", "rpn.", "roi_heads.")) for k in result.ignored)
    x = torch.randn(1, 3, 96, 128)
    with torch.inference_mode():
        ours = model(x)
        theirs = list(reference.backbone(x).values())
    pyramid = [ours[p] for p in config.pyramid_levels]
    assert len(pyramid) == len(theirs)
    for level, a, b in zip(config.pyramid_levels, pyramid, theirs):
        assert a.shape == b.shape
        assert _relative_error(a, b) < 1e-4, level
    path.write_bytes(path.read_bytes()[:-100])  # truncated in the cache: refused on the next use
    with pytest.raises(CorruptFile, match=r"its name promises [0-9a-f]{8}"):
        load_source(build_model(config), source)


def test_detection_offline_without_the_file_names_it_and_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsUnavailable, match=r"fasterrcnn_resnet50_fpn_coco-258fb6c6\.pth .*not cached.*"
                       r"python -m resfpn download coco faster-rcnn"):
        fetch(SOURCES["coco-faster-rcnn"])


# -- the download itself, against a loopback server ---------------------------------------------


class _Server(http.server.ThreadingHTTPServer):
    files: dict[str, bytes]
    gets: int = 0


class _Handler(loopback.Handler):
    def do_GET(self):
        body = self.server.files.get(self.path.lstrip("/"))
        self.server.gets += 1
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.send_pieces(body, 4096)


@pytest.fixture
def server():
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.files = {}
    with loopback.serving(srv):
        yield srv


def _served_source(server, body: bytes, published_bytes: int | None = None, name="tiny_fpn_coco"):
    prefix = hashlib.sha256(body).hexdigest()[:8]
    filename = f"{name}-{prefix}.pth"
    server.files[filename] = body
    return dataclasses.replace(SOURCES["coco-faster-rcnn"], name="coco-tiny", filename=filename,
                               url=f"http://127.0.0.1:{server.server_port}/{filename}",
                               bytes=published_bytes or len(body))


def test_two_callers_download_once_with_progress(server, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    body = bytes(range(256)) * 4096 * 3  # 3 MiB: several reads
    source = _served_source(server, body)
    seen, paths = [], []
    callers = [threading.Thread(target=lambda: paths.append(fetch(source, lambda d, t, s: seen.append((d, t)))))
               for _ in range(2)]
    for t in callers:
        t.start()
    for t in callers:
        t.join()
    assert server.gets == 1 and len(paths) == 2 and paths[0] == paths[1]
    assert paths[0].read_bytes() == body
    assert seen[-1] == (len(body), len(body)) and len(seen) >= 2


def test_a_download_larger_than_published_is_refused_and_nothing_is_kept(server, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    source = _served_source(server, b"x" * (4 << 20), published_bytes=1000)
    with pytest.raises(WeightsUnavailable, match="refused above"):
        fetch(source)
    assert list((tmp_path / "hub" / "checkpoints").iterdir()) == []


def test_a_download_that_is_not_the_published_file_is_discarded(server, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    source = _served_source(server, b"published bytes")
    server.files[source.filename] = b"other bytes"
    with pytest.raises(CorruptFile, match="not the published file"):
        fetch(source)
    assert list((tmp_path / "hub" / "checkpoints").iterdir()) == []


def test_unreachable_and_not_cached_says_what_and_how(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    source = dataclasses.replace(SOURCES["coco-retinanet"], url="http://127.0.0.1:9/retinanet_resnet50_fpn_coco-eeacb38b.pth")
    with pytest.raises(WeightsUnavailable, match=r"could not be downloaded .*not cached.*python -m resfpn download coco retinanet"):
        fetch(source)


# -- which weights fit which design -------------------------------------------------------------


@pytest.mark.parametrize("preset, fitting", [
    ("reference", ["imagenet-resnet18"]),
    ("resnet18", ["imagenet-resnet18"]),
    ("resnet34", ["imagenet-resnet34"]),
    ("resnet50", ["imagenet-resnet50", "imagenet-resnet50-v2"]),
    ("resnet50-v1", []),  # same shapes as torchvision's ResNet-50, but the stride sits in the 1×1
    ("retinanet", ["imagenet-resnet50", "imagenet-resnet50-v2", "coco-retinanet-v2"]),
    ("faster-rcnn", ["imagenet-resnet50", "imagenet-resnet50-v2", "coco-faster-rcnn"]),
])
def test_weight_choices_per_preset(preset, fitting):
    choices = weight_choices(Config.preset(preset))
    assert [c.value for c in choices if c.fits] == ["random", *fitting, "upload"]
    for c in choices:
        if not c.fits:  # every other choice says what it needs, and that change makes it fit
            assert c.reason.startswith("needs ") and c.changes
            assert fit(Config.preset(preset).replace(**c.changes), SOURCES[c.value]).fits


def test_family_names_resolve_to_the_fitting_source():
    assert resolve("imagenet", Config.preset("resnet50")).name == "imagenet-resnet50"
    assert resolve("coco", Config.preset("faster-rcnn")).name == "coco-faster-rcnn"
    assert resolve("coco", Config.preset("retinanet")).name == "coco-retinanet-v2"
    with pytest.raises(WeightsDontFit, match=r"no published ImageNet backbone weights fit.*stride in the 3x3 \(now 1x1\)"):
        resolve("imagenet", Config.preset("resnet50-v1"))


def test_labels_say_which_parts_are_trained():
    assert describe(SOURCES["coco-faster-rcnn"], 3, Config.preset("faster-rcnn")) == (
        "backbone + FPN with P6 (max-pool, no weights): COCO, torchvision fasterrcnn_resnet50_fpn_coco-258fb6c6.pth"
        " · nothing random · licence BSD-3-Clause")
    assert Weights(source="imagenet-resnet50", seed=2).label == (
        "backbone: ImageNet, timm/resnet50.tv_in1k · FPN: seeded random, seed 2 · licence BSD-3-Clause")
    assert Weights(source="imagenet-resnet50", seed=2).key != Weights(source="imagenet-resnet50", seed=3).key
