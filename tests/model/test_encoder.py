"""Dense ResNet encoders: registry, feature shapes and channels, parameter counts, dilation, grads.

The big encoders are built and run on the ``meta`` device (shapes only, no arithmetic), so these
tests stay fast on a CPU; the tiny preset and resnet18 also run on real tensors.
"""
from __future__ import annotations

import pytest
import torch

from qgn.model.encoder import ENCODERS, Encoder, build_encoder, list_encoders

EXPECTED_CHANNELS: dict[str, tuple[int, ...]] = {
    "resnet18": (64, 64, 128, 256, 512),
    "resnet34": (64, 64, 128, 256, 512),
    "resnet50": (64, 256, 512, 1024, 2048),
    "resnet101": (64, 256, 512, 1024, 2048),
    "tiny": (16, 16, 32, 64, 128),
}


def num_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def build_meta(name: str, **kwargs) -> Encoder:
    with torch.device("meta"):
        return build_encoder(name, **kwargs)


# ---------------------------------------------------------------- closed-form parameter counts
# Written from the architecture (He et al. 2016; deep stem of supplement A.1), not read off the
# module. Convs have no bias; every BatchNorm has 2 parameters per channel (weight, bias).


def conv(c_in: int, c_out: int, k: int) -> int:
    return c_in * c_out * k * k


def bn(c: int) -> int:
    return 2 * c


def basic_block(c_in: int, planes: int, projection: bool) -> int:
    body = conv(c_in, planes, 3) + bn(planes) + conv(planes, planes, 3) + bn(planes)
    return body + (conv(c_in, planes, 1) + bn(planes) if projection else 0)


def bottleneck_block(c_in: int, planes: int, projection: bool) -> int:
    out = 4 * planes
    body = conv(c_in, planes, 1) + bn(planes) + conv(planes, planes, 3) + bn(planes)
    body += conv(planes, out, 1) + bn(out)
    return body + (conv(c_in, out, 1) + bn(out) if projection else 0)


def resnet_body(bottleneck: bool, depths: tuple[int, ...]) -> int:
    """Stages 1..4 of a width-1 ResNet whose stem outputs 64 channels."""
    expansion = 4 if bottleneck else 1
    block = bottleneck_block if bottleneck else basic_block
    total, c_in = 0, 64
    for stage, (planes, depth) in enumerate(zip((64, 128, 256, 512), depths)):
        stride = 1 if stage == 0 else 2
        c_out = planes * expansion
        total += block(c_in, planes, projection=stride != 1 or c_in != c_out)
        total += (depth - 1) * block(c_out, planes, projection=False)
        c_in = c_out
    return total


DEEP_STEM = conv(3, 32, 3) + bn(32) + conv(32, 32, 3) + bn(32) + conv(32, 64, 3) + bn(64)
ORIGINAL_STEM = conv(3, 64, 7) + bn(64)  # the 7x7 stem that the deep stem replaces

ARCHS: dict[str, tuple[bool, tuple[int, int, int, int]]] = {
    "resnet18": (False, (2, 2, 2, 2)),
    "resnet34": (False, (3, 4, 6, 3)),
    "resnet50": (True, (3, 4, 6, 3)),
    "resnet101": (True, (3, 4, 23, 3)),
}

# Published parameter counts of the original ImageNet ResNets (7x7 stem, 1000-way fc), used only
# to check the closed form above.
TORCHVISION_COUNTS: dict[str, int] = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
}


@pytest.mark.parametrize("name", list(ARCHS))
def test_closed_form_matches_the_published_original_resnets(name: str) -> None:
    bottleneck, depths = ARCHS[name]
    last = 2048 if bottleneck else 512
    fc = last * 1000 + 1000
    assert ORIGINAL_STEM + resnet_body(bottleneck, depths) + fc == TORCHVISION_COUNTS[name]


def test_resnet50_parameter_count_equals_closed_form() -> None:
    expected = DEEP_STEM + resnet_body(True, (3, 4, 6, 3))
    assert expected == 23_527_264
    assert num_params(build_meta("resnet50")) == expected


@pytest.mark.parametrize("name", list(ARCHS))
def test_parameter_count_equals_closed_form(name: str) -> None:
    bottleneck, depths = ARCHS[name]
    assert num_params(build_meta(name)) == DEEP_STEM + resnet_body(bottleneck, depths)


# ---------------------------------------------------------------- registry


def test_registry_names() -> None:
    assert list_encoders() == ["resnet18", "resnet34", "resnet50", "resnet101", "tiny"]
    assert set(ENCODERS) == set(list_encoders())


def test_unknown_name_lists_known_names() -> None:
    with pytest.raises(ValueError) as info:
        build_encoder("resnet152")
    for name in list_encoders():
        assert name in str(info.value)


# ---------------------------------------------------------------- shapes


@pytest.mark.parametrize("name", list(EXPECTED_CHANNELS))
def test_feature_shapes_and_channels(name: str) -> None:
    enc = build_meta(name)
    assert enc.out_channels == EXPECTED_CHANNELS[name]
    assert enc.strides == (2, 4, 8, 16, 32)
    feats = enc(torch.empty(2, 3, 64, 96, device="meta"))
    assert len(feats) == 5
    for f, c, s in zip(feats, enc.out_channels, enc.strides):
        assert tuple(f.shape) == (2, c, 64 // s, 96 // s)


@pytest.mark.parametrize("name", ["tiny", "resnet18"])
def test_real_forward_shapes_and_dtype(name: str) -> None:
    torch.manual_seed(0)
    enc = build_encoder(name)
    feats = enc(torch.randn(1, 3, 64, 64))
    for f, c, s in zip(feats, enc.out_channels, enc.strides):
        assert tuple(f.shape) == (1, c, 64 // s, 64 // s)
        assert f.dtype == torch.float32
        assert torch.isfinite(f).all()


@pytest.mark.parametrize(
    "shape", [(1, 3, 48, 64), (1, 3, 64, 100), (1, 3, 0, 64), (1, 1, 64, 64), (3, 64, 64)]
)
def test_invalid_input_raises(shape: tuple[int, ...]) -> None:
    enc = build_meta("tiny")
    with pytest.raises(ValueError):
        enc(torch.empty(*shape, device="meta"))


def test_width_multiplier_rounds_to_multiples_of_8() -> None:
    assert build_meta("resnet18", width=0.5).out_channels == (32, 32, 64, 128, 256)
    assert build_meta("resnet50", width=0.5).out_channels == (32, 128, 256, 512, 1024)
    # 64*0.3 = 19.2 -> 16, 128*0.3 = 38.4 -> 40, 256*0.3 = 76.8 -> 80, 512*0.3 = 153.6 -> 152
    enc = build_meta("resnet18", width=0.3)
    assert enc.out_channels == (16, 16, 40, 80, 152)
    feats = enc(torch.empty(1, 3, 64, 64, device="meta"))
    assert [f.shape[1] for f in feats] == list(enc.out_channels)
    assert build_meta("resnet18", width=0.01).out_channels == (8, 8, 8, 8, 8)
    # width multiplies the preset's own width
    assert build_meta("tiny", width=2.0).out_channels == (32, 32, 64, 128, 256)


def test_custom_depths() -> None:
    enc = build_meta("resnet50", depths=(1, 1, 1, 1))
    assert [len(s) for s in (enc.layer1, enc.layer2, enc.layer3, enc.layer4)] == [1, 1, 1, 1]
    assert num_params(enc) == DEEP_STEM + resnet_body(True, (1, 1, 1, 1))
    feats = enc(torch.empty(1, 3, 64, 64, device="meta"))
    assert tuple(feats[-1].shape) == (1, 2048, 2, 2)
    with pytest.raises(ValueError):
        build_meta("resnet50", depths=(1, 1, 0, 1))


# ---------------------------------------------------------------- dilation


@pytest.mark.parametrize("name", list(EXPECTED_CHANNELS))
def test_dilated_keeps_stride_8_with_same_parameters(name: str) -> None:
    plain, dil = build_meta(name), build_meta(name, dilated=True)
    assert dil.strides == (2, 4, 8, 8, 8)
    assert dil.out_channels == plain.out_channels
    assert num_params(dil) == num_params(plain)
    feats = dil(torch.empty(1, 3, 64, 96, device="meta"))
    for f, c in zip(feats[2:], dil.out_channels[2:]):
        assert tuple(f.shape) == (1, c, 8, 12)


def test_dilated_weights_are_interchangeable_with_undilated() -> None:
    plain, dil = build_encoder("tiny"), build_encoder("tiny", dilated=True)
    dil.load_state_dict(plain.state_dict(), strict=True)


def test_dilated_stages_use_dilation_2_and_4() -> None:
    enc = build_meta("resnet50", dilated=True)
    for stage, first, rest in ((enc.layer3, 1, 2), (enc.layer4, 2, 4)):
        dilations = [block.conv2.dilation[0] for block in stage]
        assert dilations == [first] + [rest] * (len(stage) - 1)
        assert all(m.stride == (1, 1) for m in stage.modules() if isinstance(m, torch.nn.Conv2d))


def test_dilated_accepts_multiples_of_8() -> None:
    enc = build_meta("tiny", dilated=True)
    assert tuple(enc(torch.empty(1, 3, 40, 48, device="meta"))[-1].shape) == (1, 128, 5, 6)
    with pytest.raises(ValueError):
        enc(torch.empty(1, 3, 36, 48, device="meta"))


# ---------------------------------------------------------------- gradients / training


def test_gradient_reaches_the_stem() -> None:
    torch.manual_seed(0)
    enc = build_encoder("tiny")
    feats = enc(torch.randn(2, 3, 64, 64))
    feats[-1].square().mean().backward()  # only the stride-32 output
    first_conv = enc.stem[0][0]
    assert first_conv.weight.grad is not None
    assert torch.isfinite(first_conv.weight.grad).all()
    assert first_conv.weight.grad.abs().sum() > 0


def test_tiny_forward_backward_reaches_every_parameter() -> None:
    torch.manual_seed(0)
    enc = build_encoder("tiny")
    feats = enc(torch.randn(1, 3, 128, 128))
    sum(f.square().mean() for f in feats).backward()
    for name, p in enc.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name


# ---------------------------------------------------------------- layouts of other libraries' ImageNet weights


@pytest.mark.parametrize("name", list(ARCHS))
def test_classic_stem_has_the_original_resnets_parameter_count(name: str) -> None:
    bottleneck, depths = ARCHS[name]
    enc = build_meta(name, stem="classic")
    assert num_params(enc) == ORIGINAL_STEM + resnet_body(bottleneck, depths)
    assert tuple(enc.stem[0][0].weight.shape) == (64, 3, 7, 7)
    feats = enc(torch.empty(1, 3, 64, 96, device="meta"))
    assert [tuple(f.shape[2:]) for f in feats] == [(64 // s, 96 // s) for s in (2, 4, 8, 16, 32)]


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_avgpool_shortcuts_keep_parameters_and_shapes(name: str) -> None:
    plain, pooled = build_meta(name), build_meta(name, shortcut="avgpool")
    assert num_params(pooled) == num_params(plain)
    assert isinstance(pooled.layer2[0].downsample[0], torch.nn.AvgPool2d)
    assert pooled.layer2[0].downsample[1].stride == (1, 1)
    feats = pooled(torch.empty(1, 3, 64, 64, device="meta"))
    assert [f.shape[1] for f in feats] == list(plain.out_channels)


def test_avgpool_shortcut_averages_2x2_cells() -> None:
    enc = build_encoder("resnet18", shortcut="avgpool")
    pool = enc.layer2[0].downsample[0]
    x = torch.arange(16.0).view(1, 1, 4, 4)
    assert torch.equal(pool(x), torch.tensor([[[[2.5, 4.5], [10.5, 12.5]]]]))


def test_unknown_stem_or_shortcut_is_refused() -> None:
    with pytest.raises(ValueError, match="stem must be one of deep, classic"):
        build_meta("resnet18", stem="7x7")
    with pytest.raises(ValueError, match="shortcut must be one of conv, avgpool"):
        build_meta("resnet18", shortcut="pool")
