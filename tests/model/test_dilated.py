"""The "Dil" baseline (dilated encoder + 1x1 conv + bilinear upsampling) and the MAC counter."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from qgn.model.dilated import DilatedBaseline
from qgn.model.encoder import build_encoder
from qgn.model.macs import count_macs

# ---------------------------------------------------------------- count_macs


def test_count_macs_by_hand() -> None:
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),  # -> (2, 4, 8, 8)
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 8, 3, stride=2, padding=1, groups=2),  # -> (2, 8, 4, 4)
        nn.Flatten(),
        nn.Linear(8 * 4 * 4, 10),  # -> (2, 10)
    )
    conv1 = (2 * 4 * 8 * 8) * 3 * 3 * 3  # out elements x in_ch x kh x kw = 13824
    conv2 = (2 * 8 * 4 * 4) * (4 // 2) * 3 * 3  # grouped: in_ch / groups = 2 -> 4608
    linear = (2 * 10) * 128  # out elements x in_features = 2560
    assert count_macs(net, torch.randn(2, 3, 8, 8)) == conv1 + conv2 + linear == 20992


def test_count_macs_dilation_changes_nothing_but_output_size() -> None:
    x = torch.randn(1, 3, 8, 8)
    dilated = nn.Conv2d(3, 4, 3, padding=2, dilation=2)
    assert count_macs(dilated, x) == (4 * 8 * 8) * 3 * 3 * 3


def test_count_macs_has_no_side_effects() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    net.train()
    net[1].eval()  # a frozen BatchNorm inside a training net keeps its own mode
    before = net[1].running_mean.clone()
    count_macs(net, torch.randn(2, 3, 8, 8) + 5.0)
    assert net.training and net[0].training and not net[1].training
    assert torch.equal(net[1].running_mean, before)
    assert all(len(m._forward_hooks) == 0 for m in net.modules())


def test_count_macs_works_on_meta_tensors() -> None:
    with torch.device("meta"):
        conv = nn.Conv2d(16, 32, 3, padding=1)
    assert count_macs(conv, torch.empty(1, 16, 10, 10, device="meta")) == (32 * 100) * 16 * 9


def test_dilation_multiplies_stage_3_and_4_macs_by_4_and_16() -> None:
    torch.manual_seed(0)
    x = torch.randn(1, 3, 64, 64)
    plain, dil = build_encoder("tiny"), build_encoder("tiny", dilated=True)
    plain.eval()
    with torch.no_grad():
        f2, f4, f8, f16, f32 = plain(x)
    stage3, stage4 = count_macs(plain.layer3, f8), count_macs(plain.layer4, f16)
    # every conv of stage 3 has 4x, of stage 4 16x, the output elements once undilated
    assert count_macs(dil, x) - count_macs(plain, x) == 3 * stage3 + 15 * stage4


# ---------------------------------------------------------------- DilatedBaseline


def test_baseline_output_shape_and_dtype() -> None:
    torch.manual_seed(0)
    model = DilatedBaseline("tiny", num_classes=5)
    out = model(torch.randn(2, 3, 64, 96))
    assert tuple(out.shape) == (2, 5, 64, 96)
    assert out.dtype == torch.float32
    assert model.output_stride == 8


def test_baseline_big_encoder_shapes_on_meta() -> None:
    with torch.device("meta"):
        model = DilatedBaseline("resnet50", num_classes=19)
    assert model.head.in_channels == 2048
    assert tuple(model(torch.empty(1, 3, 64, 64, device="meta")).shape) == (1, 19, 64, 64)


def test_baseline_parameters_are_encoder_plus_one_1x1_conv() -> None:
    with torch.device("meta"):
        model = DilatedBaseline("resnet50", num_classes=19)
        encoder = build_encoder("resnet50", dilated=True)
    n_model = sum(p.numel() for p in model.parameters())
    n_encoder = sum(p.numel() for p in encoder.parameters())
    assert n_model == n_encoder + 2048 * 19 + 19


def test_decoder_forward_is_head_plus_bilinear_upsampling() -> None:
    torch.manual_seed(0)
    model = DilatedBaseline("tiny", num_classes=3).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        feats = model.encoder(x)
        assert tuple(feats[-1].shape[2:]) == (8, 8)
        out = model.decoder_forward(feats)
        coarse = model.head(feats[-1])
        expected = F.interpolate(coarse, size=(64, 64), mode="bilinear", align_corners=False)
        assert torch.allclose(out, expected)
        assert torch.allclose(model(x), out)


def test_decoder_macs_are_one_1x1_conv_on_stride_8_features() -> None:
    model = DilatedBaseline("tiny", num_classes=7)
    x = torch.randn(1, 3, 64, 96)
    decoder_macs = count_macs(model, x) - count_macs(model.encoder, x)
    assert decoder_macs == (7 * 8 * 12) * 128


def test_baseline_rejects_bad_inputs() -> None:
    model = DilatedBaseline("tiny", num_classes=2)
    with pytest.raises(ValueError):
        model(torch.randn(1, 3, 60, 64))
    with pytest.raises(ValueError):
        DilatedBaseline("vgg16", num_classes=2)
    with pytest.raises(ValueError):
        DilatedBaseline("tiny", num_classes=0)


def test_baseline_learns_a_single_image() -> None:
    torch.manual_seed(0)
    model = DilatedBaseline("tiny", num_classes=2)
    x = torch.randn(2, 3, 32, 32)
    target = torch.zeros(2, 32, 32, dtype=torch.long)
    target[:, :, 16:] = 1  # left half class 0, right half class 1
    optim = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        optim.zero_grad()
        loss = F.cross_entropy(model(x), target)
        loss.backward()
        optim.step()
        losses.append(loss.item())
    assert model.encoder.stem[0][0].weight.grad.abs().sum() > 0
    assert losses[-1] < 0.5 * losses[0]
