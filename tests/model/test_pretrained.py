"""ImageNet weights of torchvision, mmseg ResNetV1c and timm resnet*d loaded into our encoder.

The state dicts here are written key by key from the libraries' own sources (see the docstring of
``qgn.model.pretrained`` for the files), independently of our encoder's module tree: random tensors
of the right shapes (``meta`` tensors for the key/shape checks of the big encoders). The features of
the loaded encoder are compared with a functional reference forward that reads the file's tensors
under the file's own names.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from qgn.classes import ClassSet
from qgn.cli.main import main
from qgn.model.checkpoint import load_model, save_model
from qgn.model.encoder import build_encoder
from qgn.model.pretrained import (
    LAYOUTS,
    detect_encoder,
    detect_layout,
    file_key_to_encoder_key,
    encoder_key_to_file_key,
    key_problems,
    load_encoder_weights,
)
from qgn.train.loop import TrainConfig, build_model

# name -> (bottleneck, blocks per stage), as in torchvision's resnet18/34/50/101 constructors
ARCHS: dict[str, tuple[bool, tuple[int, int, int, int]]] = {
    "resnet18": (False, (2, 2, 2, 2)),
    "resnet34": (False, (3, 4, 6, 3)),
    "resnet50": (True, (3, 4, 6, 3)),
    "resnet101": (True, (3, 4, 23, 3)),
}
# layout -> our encoder options
OPTIONS: dict[str, dict] = {
    "torchvision": dict(stem="classic", shortcut="conv"),
    "mmseg-v1c": dict(stem="deep", shortcut="conv"),
    "timm-c": dict(stem="deep", shortcut="conv"),
    "timm-d": dict(stem="deep", shortcut="avgpool"),
}


# ---------------------------------------------------------------- state dicts in the libraries' layouts


class Maker:
    """Random tensors of a shape, reproducibly (or empty ``meta`` tensors)."""

    def __init__(self, seed: int = 0, meta: bool = False) -> None:
        self.gen = torch.Generator().manual_seed(seed)
        self.meta = meta

    def conv(self, out_ch: int, in_ch: int, k: int) -> torch.Tensor:
        if self.meta:
            return torch.empty(out_ch, in_ch, k, k, device="meta")
        return torch.randn(out_ch, in_ch, k, k, generator=self.gen) * (2.0 / (in_ch * k * k)) ** 0.5

    def bn(self, prefix: str, c: int) -> dict[str, torch.Tensor]:
        if self.meta:
            entries = {e: torch.empty(c, device="meta") for e in ("weight", "bias", "running_mean", "running_var")}
        else:
            entries = {
                "weight": torch.rand(c, generator=self.gen) + 0.5,
                "bias": torch.randn(c, generator=self.gen) * 0.1,
                "running_mean": torch.randn(c, generator=self.gen) * 0.1,
                "running_var": torch.rand(c, generator=self.gen) + 0.5,
            }
        entries["num_batches_tracked"] = torch.tensor(0)
        return {f"{prefix}.{k}": v for k, v in entries.items()}


def stage_layers(make: Maker, bottleneck: bool, depths, avg_down: bool) -> dict[str, torch.Tensor]:
    """``layer1..4`` as torchvision ``_make_layer`` / mmseg ``ResLayer`` / timm ``make_blocks`` name them."""
    sd: dict[str, torch.Tensor] = {}
    expansion = 4 if bottleneck else 1
    inplanes = 64
    for i, (planes, depth) in enumerate(zip((64, 128, 256, 512), depths)):
        stride = 1 if i == 0 else 2
        for j in range(depth):
            p = f"layer{i + 1}.{j}"
            c_in = inplanes if j == 0 else planes * expansion
            if bottleneck:
                sd[f"{p}.conv1.weight"] = make.conv(planes, c_in, 1)
                sd.update(make.bn(f"{p}.bn1", planes))
                sd[f"{p}.conv2.weight"] = make.conv(planes, planes, 3)
                sd.update(make.bn(f"{p}.bn2", planes))
                sd[f"{p}.conv3.weight"] = make.conv(planes * 4, planes, 1)
                sd.update(make.bn(f"{p}.bn3", planes * 4))
            else:
                sd[f"{p}.conv1.weight"] = make.conv(planes, c_in, 3)
                sd.update(make.bn(f"{p}.bn1", planes))
                sd[f"{p}.conv2.weight"] = make.conv(planes, planes, 3)
                sd.update(make.bn(f"{p}.bn2", planes))
            if j == 0 and (stride != 1 or inplanes != planes * expansion):
                conv_i, bn_i = (1, 2) if avg_down else (0, 1)  # timm downsample_avg: [pool, conv, bn]
                sd[f"{p}.downsample.{conv_i}.weight"] = make.conv(planes * expansion, inplanes, 1)
                sd.update(make.bn(f"{p}.downsample.{bn_i}", planes * expansion))
        inplanes = planes * expansion
    return sd


def torchvision_state(name: str, make: Maker) -> dict[str, torch.Tensor]:
    bottleneck, depths = ARCHS[name]
    sd = {"conv1.weight": make.conv(64, 3, 7), **make.bn("bn1", 64)}
    sd.update(stage_layers(make, bottleneck, depths, avg_down=False))
    c = 2048 if bottleneck else 512
    sd["fc.weight"] = torch.empty(1000, c, device="meta") if make.meta else torch.randn(1000, c) * 0.01
    sd["fc.bias"] = torch.empty(1000, device="meta") if make.meta else torch.zeros(1000)
    return sd


def mmseg_v1c_state(name: str, make: Maker) -> dict[str, torch.Tensor]:
    bottleneck, depths = ARCHS[name]
    sd = {"stem.0.weight": make.conv(32, 3, 3), **make.bn("stem.1", 32),
          "stem.3.weight": make.conv(32, 32, 3), **make.bn("stem.4", 32),
          "stem.6.weight": make.conv(64, 32, 3), **make.bn("stem.7", 64)}
    sd.update(stage_layers(make, bottleneck, depths, avg_down=False))
    return sd


def timm_state(name: str, make: Maker, avg_down: bool = True) -> dict[str, torch.Tensor]:
    bottleneck, depths = ARCHS[name]
    sd = {"conv1.0.weight": make.conv(32, 3, 3), **make.bn("conv1.1", 32),
          "conv1.3.weight": make.conv(32, 32, 3), **make.bn("conv1.4", 32),
          "conv1.6.weight": make.conv(64, 32, 3), **make.bn("bn1", 64)}
    sd.update(stage_layers(make, bottleneck, depths, avg_down=avg_down))
    c = 2048 if bottleneck else 512
    sd["fc.weight"] = torch.empty(1000, c, device="meta") if make.meta else torch.randn(1000, c) * 0.01
    sd["fc.bias"] = torch.empty(1000, device="meta") if make.meta else torch.zeros(1000)
    return sd


def state_in(layout: str, name: str, make: Maker) -> dict[str, torch.Tensor]:
    if layout == "torchvision":
        return torchvision_state(name, make)
    if layout == "mmseg-v1c":
        return mmseg_v1c_state(name, make)
    return timm_state(name, make, avg_down=layout == "timm-d")


# Where each stem tensor of a file must land in our encoder: written out here, not computed.
STEM_TARGETS: dict[str, dict[str, str]] = {
    "torchvision": {"conv1": "stem.0.0", "bn1": "stem.0.1"},
    "mmseg-v1c": {"stem.0": "stem.0.0", "stem.1": "stem.0.1", "stem.3": "stem.1.0", "stem.4": "stem.1.1",
                  "stem.6": "stem.2.0", "stem.7": "stem.2.1"},
    "timm-d": {"conv1.0": "stem.0.0", "conv1.1": "stem.0.1", "conv1.3": "stem.1.0", "conv1.4": "stem.1.1",
               "conv1.6": "stem.2.0", "bn1": "stem.2.1"},
}


def target_of(key: str, layout: str) -> str:
    module, _, entry = key.rpartition(".")
    if module.startswith("layer"):
        return key
    return f"{STEM_TARGETS[layout][module]}.{entry}"


# ---------------------------------------------------------------- reference forward over the file's tensors


def ref_bn(x, sd, p):
    return F.batch_norm(x, sd[f"{p}.running_mean"], sd[f"{p}.running_var"], sd[f"{p}.weight"],
                        sd[f"{p}.bias"], training=False, eps=1e-5)


def ref_stem(x, sd, layout):
    if layout == "torchvision":
        return F.relu(ref_bn(F.conv2d(x, sd["conv1.weight"], stride=2, padding=3), sd, "bn1"))
    if layout == "mmseg-v1c":
        units = (("stem.0", "stem.1", 2), ("stem.3", "stem.4", 1), ("stem.6", "stem.7", 1))
    else:
        units = (("conv1.0", "conv1.1", 2), ("conv1.3", "conv1.4", 1), ("conv1.6", "bn1", 1))
    for conv, bn, stride in units:
        x = F.relu(ref_bn(F.conv2d(x, sd[f"{conv}.weight"], stride=stride, padding=1), sd, bn))
    return x


def ref_block(x, sd, p, stride):
    if f"{p}.conv3.weight" in sd:  # bottleneck, stride on the 3x3 conv
        out = F.relu(ref_bn(F.conv2d(x, sd[f"{p}.conv1.weight"]), sd, f"{p}.bn1"))
        out = F.relu(ref_bn(F.conv2d(out, sd[f"{p}.conv2.weight"], stride=stride, padding=1), sd, f"{p}.bn2"))
        out = ref_bn(F.conv2d(out, sd[f"{p}.conv3.weight"]), sd, f"{p}.bn3")
    else:
        out = F.relu(ref_bn(F.conv2d(x, sd[f"{p}.conv1.weight"], stride=stride, padding=1), sd, f"{p}.bn1"))
        out = ref_bn(F.conv2d(out, sd[f"{p}.conv2.weight"], padding=1), sd, f"{p}.bn2")
    if f"{p}.downsample.0.weight" in sd:
        short = ref_bn(F.conv2d(x, sd[f"{p}.downsample.0.weight"], stride=stride), sd, f"{p}.downsample.1")
    elif f"{p}.downsample.1.weight" in sd:
        pooled = F.avg_pool2d(x, 2, stride, ceil_mode=True, count_include_pad=False) if stride > 1 else x
        short = ref_bn(F.conv2d(pooled, sd[f"{p}.downsample.1.weight"]), sd, f"{p}.downsample.2")
    else:
        short = x
    return F.relu(out + short)


def ref_features(x, sd, layout, depths):
    f = ref_stem(x, sd, layout)
    feats = [f]
    f = F.max_pool2d(f, 3, 2, 1)
    for i, depth in enumerate(depths):
        for j in range(depth):
            f = ref_block(f, sd, f"layer{i + 1}.{j}", 2 if (i > 0 and j == 0) else 1)
        feats.append(f)
    return feats


# ---------------------------------------------------------------- keys and shapes, every encoder and layout


@pytest.mark.parametrize("layout", list(OPTIONS))
@pytest.mark.parametrize("name", list(ARCHS))
def test_every_layout_has_exactly_the_encoders_keys_and_shapes(name: str, layout: str) -> None:
    sd = state_in(layout, name, Maker(meta=True))
    tensors = {k: v for k, v in sd.items() if not k.startswith("fc.")}
    assert detect_layout(tensors, Path("w.pth")) is LAYOUTS[layout]
    assert detect_encoder(tensors, Path("w.pth")) == name
    with torch.device("meta"):
        ours = build_encoder(name, **OPTIONS[layout]).state_dict()
    converted = {file_key_to_encoder_key(k, LAYOUTS[layout]): v for k, v in tensors.items()}
    assert {k: tuple(v.shape) for k, v in converted.items()} == {k: tuple(v.shape) for k, v in ours.items()}
    assert key_problems(ours, converted, LAYOUTS[layout]) == ""
    # the renaming is lossless both ways
    assert {encoder_key_to_file_key(k, LAYOUTS[layout]) for k in converted} == set(tensors)


# ---------------------------------------------------------------- real tensors: placement and features


def check_loaded(enc, sd, layout, depths, size=64):
    ours = enc.state_dict()
    for key, value in sd.items():
        if key.startswith("fc."):
            continue
        assert torch.equal(ours[target_of(key, layout)], value), key
    enc.eval()
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        feats = enc(x)
        expected = ref_features(x, sd, layout, depths)
    for got, want, stride in zip(feats, expected, (2, 4, 8, 16, 32)):
        assert got.shape == want.shape == (2, got.shape[1], size // stride, size // stride)
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("layout", ["torchvision", "mmseg-v1c", "timm-d"])
def test_resnet18_weights_land_where_they_should_and_features_equal_the_reference(tmp_path, layout) -> None:
    sd = state_in(layout, "resnet18", Maker(seed=3))
    path = tmp_path / "resnet18.safetensors"
    save_file(sd, str(path))
    enc = build_encoder("resnet18", **OPTIONS[layout])
    info = load_encoder_weights(enc, path)
    assert (info.layout.name, info.encoder) == (layout, "resnet18")
    check_loaded(enc, sd, layout, ARCHS["resnet18"][1])


def test_resnet50_timm_d_bottlenecks_and_average_pool_shortcuts_match_the_reference(tmp_path) -> None:
    sd = state_in("timm-d", "resnet50", Maker(seed=4))
    path = tmp_path / "resnet50d.pth"
    torch.save(sd, path)
    enc = build_encoder("resnet50", stem="deep", shortcut="avgpool")
    load_encoder_weights(enc, path)
    check_loaded(enc, sd, "timm-d", ARCHS["resnet50"][1], size=32)


def test_containers_prefixes_and_missing_batch_counters_are_accepted(tmp_path) -> None:
    sd = state_in("mmseg-v1c", "resnet18", Maker(seed=5))
    plain = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "resnet18_v1c.pth"
    torch.save({"meta": {"epoch": 100}, "state_dict": {f"module.{k}": v for k, v in plain.items()}}, path)
    enc = build_encoder("resnet18")
    load_encoder_weights(enc, path)
    check_loaded(enc, plain, "mmseg-v1c", ARCHS["resnet18"][1])

    path2 = tmp_path / "segmentor_backbone.pth"
    torch.save({"model": {f"backbone.{k}": v for k, v in plain.items()}}, path2)
    load_encoder_weights(build_encoder("resnet18"), path2)


# ---------------------------------------------------------------- errors name the key and the file


def write_torchvision(tmp_path, edit=None, name="resnet18.pth"):
    sd = torchvision_state("resnet18", Maker(seed=6))
    if edit:
        edit(sd)
    path = tmp_path / name
    torch.save(sd, path)
    return path


def load_error(path, **options) -> str:
    enc = build_encoder("resnet18", **{"stem": "classic", **options})
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    with pytest.raises(ValueError) as info:
        load_encoder_weights(enc, path)
    after = enc.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "nothing may be copied on an error"
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


def test_missing_key_is_named(tmp_path) -> None:
    path = write_torchvision(tmp_path, lambda sd: sd.pop("layer3.1.bn2.running_var"))
    assert "missing 1 key(s): layer3.1.bn2.running_var" in load_error(path)


def test_missing_stem_key_is_named_in_the_files_own_names(tmp_path) -> None:
    path = write_torchvision(tmp_path, lambda sd: sd.pop("bn1.weight"))
    assert "missing 1 key(s): bn1.weight" in load_error(path)


def test_extra_key_is_named(tmp_path) -> None:
    path = write_torchvision(tmp_path, lambda sd: sd.__setitem__("layer2.0.se.fc1.weight", torch.zeros(8, 128, 1, 1)))
    assert "1 unexpected key(s): layer2.0.se.fc1.weight" in load_error(path)


def test_misshapen_key_is_named_with_both_shapes(tmp_path) -> None:
    path = write_torchvision(tmp_path, lambda sd: sd.__setitem__("layer4.0.conv2.weight", torch.zeros(512, 512, 1, 1)))
    assert "layer4.0.conv2.weight has shape (512, 512, 1, 1), the encoder needs (512, 512, 3, 3)" in load_error(path)


def test_classifier_is_ignored_whatever_its_size(tmp_path) -> None:
    path = write_torchvision(tmp_path, lambda sd: sd.update({"fc.weight": torch.zeros(10, 512), "fc.bias": torch.zeros(10)}))
    load_encoder_weights(build_encoder("resnet18", stem="classic"), path)


class NotWeights:
    """Any object: torch.load(weights_only=True) must refuse to rebuild it."""

    def __init__(self) -> None:
        self.payload = [1, 2, 3]


def test_pickled_objects_are_refused_not_unpickled(tmp_path) -> None:
    path = tmp_path / "checkpoint.pth"
    torch.save({"state_dict": torchvision_state("resnet18", Maker(seed=7)), "trainer": NotWeights()}, path)
    assert "weights_only=True" in load_error(path)


def test_garbage_file_is_refused(tmp_path) -> None:
    path = tmp_path / "resnet18.pth"
    path.write_bytes(b"not a checkpoint at all")
    assert "not a plain state dict" in load_error(path)
    bad = tmp_path / "resnet18.safetensors"
    bad.write_bytes(b"\x00" * 20)
    assert "not a readable safetensors file" in load_error(bad)


def test_width_other_than_one_is_refused_with_the_reason(tmp_path) -> None:
    message = load_error(write_torchvision(tmp_path), width=0.5)
    assert "width-1.0 encoder" in message and "width 0.5" in message


def test_wrong_stem_is_named(tmp_path) -> None:
    message = load_error(write_torchvision(tmp_path), stem="deep")
    assert "encoder_stem='classic'" in message


def test_other_architectures_and_non_resnets_are_refused(tmp_path) -> None:
    def resnet152ish(sd):
        sd.update({f"layer3.{j}.conv1.weight": torch.zeros(1) for j in range(2, 36)})

    assert "stage depths (2, 2, 36, 2)" in load_error(write_torchvision(tmp_path, resnet152ish))
    other = tmp_path / "vit.safetensors"
    save_file({"patch_embed.proj.weight": torch.zeros(4, 3, 16, 16)}, str(other))
    assert "is not a ResNet state dict" in load_error(other)


# ---------------------------------------------------------------- training: TrainConfig and CLI


def test_train_builds_the_matching_encoder_and_the_checkpoint_rebuilds_it(tmp_path) -> None:
    path = write_torchvision(tmp_path)
    classes = ClassSet.generic(4, 255)
    model = build_model(TrainConfig(model="r18", encoder_weights=str(path)), classes)
    assert (model.config.encoder_stem, model.config.encoder_shortcut) == ("classic", "conv")
    assert model.config.extra["encoder_weights"] == {"file": str(path), "layout": "torchvision"}
    sd = torch.load(path, weights_only=True)
    assert torch.equal(model.encoder.stem[0][0].weight, sd["conv1.weight"])
    assert torch.equal(model.encoder.layer4[1].bn2.running_var, sd["layer4.1.bn2.running_var"])
    saved = save_model(tmp_path / "m.safetensors", model)
    again = load_model(saved)
    assert again.config.encoder_stem == "classic"
    for key, value in model.state_dict().items():
        assert torch.equal(again.state_dict()[key], value), key


def test_train_refuses_a_model_the_weights_do_not_fit(tmp_path) -> None:
    path = write_torchvision(tmp_path)
    classes = ClassSet.generic(4, 255)
    with pytest.raises(ValueError, match="holds resnet18 weights, but model 'r50'"):
        build_model(TrainConfig(model="r50", encoder_weights=str(path)), classes)
    with pytest.raises(ValueError, match="width 0.5; ImageNet weights need their own encoder at width 1.0"):
        build_model(TrainConfig(model="small", encoder_weights=str(path)), classes)
    with pytest.raises(ValueError, match="set only one of them"):
        build_model(TrainConfig(model="r18", encoder_weights=str(path), init="x.safetensors"), classes)


@pytest.mark.parametrize("case", ["pickle", "missing", "tiny"])
def test_cli_train_reports_bad_weights_in_one_line(tmp_path, capsys, case) -> None:
    if case == "pickle":
        weights = tmp_path / "w.pth"
        torch.save({"trainer": NotWeights()}, weights)
    elif case == "missing":
        weights = tmp_path / "absent.pth"
    else:
        weights = write_torchvision(tmp_path)
    model = "tiny" if case == "tiny" else "r18"
    out = tmp_path / "run"
    rc = main(["train", "--threads", "1", "--set", f"encoder_weights={weights}", "--set", f"model={model}",
               "--set", "synthetic_n=2", "--set", "synthetic_size=64", "--set", "iterations=1",
               "--out", str(out), "--device", "cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and err[0].startswith("qgn train: error: ") and str(weights) in err[0]
    assert not (out / "final.safetensors").exists()


def test_model_configs_written_before_the_stem_option_still_rebuild() -> None:
    from qgn.model.qgn import QGNConfig

    doc = QGNConfig.from_preset("r18", ClassSet.generic(3, 255)).to_json()
    assert (doc["encoder_stem"], doc["encoder_shortcut"]) == ("deep", "conv")
    del doc["encoder_stem"], doc["encoder_shortcut"]
    config = QGNConfig.from_json(doc)
    assert (config.encoder_stem, config.encoder_shortcut) == ("deep", "conv")
