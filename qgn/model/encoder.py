"""Dense ResNet encoders behind one registry (no torchvision).

Every encoder maps an image batch ``x: (B, 3, H, W) float32`` to a list of five feature maps,
finest first, at strides ``(2, 4, 8, 16, 32)`` (supplement A.1, Table 7: Block0..Block4):

    stride 2   the deep stem (three 3x3 convs), before the max-pool       Block0  3 -> 64
    stride 4   stage 1 (``layer1``), after the 3x3 / stride-2 max-pool    Block1
    stride 8   stage 2 (``layer2``)                                       Block2
    stride 16  stage 3 (``layer3``)                                       Block3
    stride 32  stage 4 (``layer4``)                                       Block4

With ``dilated=True`` stages 3 and 4 keep the stride-8 resolution and use dilation 2 and 4 instead
(DRN / PSPNet, the paper's "Dil" baseline, §4.4); the strides are then ``(2, 4, 8, 8, 8)``. As in
torchvision's ``replace_stride_with_dilation``, the first block of a dilated stage uses the
previous stage's dilation (1 for stage 3, 2 for stage 4) and the remaining blocks the new one.
Dilation changes no parameter shape, so a dilated encoder has exactly the undilated parameter count.

Two layout options exist so that ImageNet weights of other libraries load unchanged
(``qgn.model.pretrained``): ``stem="classic"`` replaces the deep stem by the original single 7x7 /
stride-2 conv (torchvision's ``conv1``/``bn1``), and ``shortcut="avgpool"`` makes every projection
shortcut a 2x2 / stride-2 average pool followed by a stride-1 1x1 conv (timm's ``resnet*d``).
Both keep the five feature strides and channels; defaults are the deep stem and 1x1-conv shortcuts.

Encoders are named in ``ENCODERS`` (name -> ``EncoderSpec``) and made by ``build_encoder``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

BASE_WIDTH: int = 64
"""Stem output channels (and stage-1 planes) of a width-1.0 ResNet."""

STAGE_PLANES: tuple[int, int, int, int] = (64, 128, 256, 512)
"""Inner ("planes") channels of stages 1..4 at width 1.0; a block outputs planes * expansion."""


def scale_channels(channels: int, width: float) -> int:
    """``channels * width`` rounded to the nearest multiple of 8, at least 8."""
    return max(8, int(round(channels * width / 8.0)) * 8)


def conv3x3(in_ch: int, out_ch: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    """3x3 conv without bias; padding = dilation keeps the size at stride 1."""
    return nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)


def conv1x1(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    """1x1 conv without bias."""
    return nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convs (+BN) with an identity or projection shortcut (ResNet-18/34).

    ``forward(x: (B, in_ch, H, W)) -> (B, planes, H/stride, W/stride)``, float32.
    """

    expansion: int = 1

    def __init__(
        self, in_ch: int, planes: int, stride: int = 1, dilation: int = 1, shortcut: str = "conv"
    ) -> None:
        super().__init__()
        out_ch = planes * self.expansion
        self.conv1 = conv3x3(in_ch, planes, stride, dilation)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, out_ch, 1, dilation)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = make_shortcut(in_ch, out_ch, stride, shortcut)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carries the stride, "ResNet v1.5"), 1x1 expand x4, + shortcut (ResNet-50/101).

    ``forward(x: (B, in_ch, H, W)) -> (B, 4 * planes, H/stride, W/stride)``, float32.
    """

    expansion: int = 4

    def __init__(
        self, in_ch: int, planes: int, stride: int = 1, dilation: int = 1, shortcut: str = "conv"
    ) -> None:
        super().__init__()
        out_ch = planes * self.expansion
        self.conv1 = conv1x1(in_ch, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride, dilation)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, out_ch)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = make_shortcut(in_ch, out_ch, stride, shortcut)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


Block = type[BasicBlock] | type[Bottleneck]


STEMS: tuple[str, ...] = ("deep", "classic")
"""Stem layouts: three 3x3 convs 32-32-64 (default) or the original 7x7 conv."""

SHORTCUTS: tuple[str, ...] = ("conv", "avgpool")
"""Projection shortcuts: strided 1x1 conv (default) or average pool + stride-1 1x1 conv."""


def make_shortcut(in_ch: int, out_ch: int, stride: int, kind: str = "conv") -> nn.Sequential | None:
    """Projection when the shape changes, else None (identity shortcut).

    ``kind="conv"``:    ``[conv1x1(stride), BN]``.
    ``kind="avgpool"``: ``[AvgPool2d(2, stride, ceil_mode, count_include_pad=False) or Identity when
    stride is 1, conv1x1, BN]`` -- the layout of timm's ``downsample_avg``, so parameters sit at
    indices 1 and 2 as in timm's state dicts. (In a dilated stage, stride 1, the pool is the
    identity; timm pools 2x2 with "same" padding there.)
    """
    if kind not in SHORTCUTS:
        raise ValueError(f"shortcut must be one of {', '.join(SHORTCUTS)}; got {kind!r}")
    if stride == 1 and in_ch == out_ch:
        return None
    if kind == "avgpool":
        pool: nn.Module = nn.Identity()
        if stride != 1:
            pool = nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False)
        return nn.Sequential(pool, conv1x1(in_ch, out_ch), nn.BatchNorm2d(out_ch))
    return nn.Sequential(conv1x1(in_ch, out_ch, stride), nn.BatchNorm2d(out_ch))


def conv_bn_relu(in_ch: int, out_ch: int, stride: int) -> nn.Sequential:
    """One deep-stem unit: 3x3 conv, BN, ReLU."""
    return nn.Sequential(conv3x3(in_ch, out_ch, stride), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))


def make_stem(width: float) -> nn.Sequential:
    """Deep stem: 3x3 convs 3 -> w/2 (stride 2), w/2 -> w/2, w/2 -> w, with w = 64 * width.

    ``(B, 3, H, W) -> (B, w, H/2, W/2)``.
    """
    mid = scale_channels(BASE_WIDTH // 2, width)
    out = scale_channels(BASE_WIDTH, width)
    return nn.Sequential(conv_bn_relu(3, mid, 2), conv_bn_relu(mid, mid, 1), conv_bn_relu(mid, out, 1))


def make_classic_stem(width: float) -> nn.Sequential:
    """The original ResNet stem: one 7x7 / stride-2 conv 3 -> w (padding 3), BN, ReLU; w = 64 * width.

    ``(B, 3, H, W) -> (B, w, H/2, W/2)``; the conv is ``stem[0][0]``, its BN ``stem[0][1]``.
    """
    out = scale_channels(BASE_WIDTH, width)
    conv = nn.Conv2d(3, out, 7, stride=2, padding=3, bias=False)
    return nn.Sequential(nn.Sequential(conv, nn.BatchNorm2d(out), nn.ReLU(inplace=True)))


def make_stage(
    block: Block, in_ch: int, planes: int, depth: int, stride: int, first_dilation: int, dilation: int,
    shortcut: str = "conv",
) -> nn.Sequential:
    """``depth`` blocks; the first carries ``stride``, ``first_dilation`` and the projection
    shortcut of kind ``shortcut``, the rest ``dilation``."""
    blocks: list[nn.Module] = [block(in_ch, planes, stride, first_dilation, shortcut)]
    out_ch = planes * block.expansion
    for _ in range(depth - 1):
        blocks.append(block(out_ch, planes, 1, dilation))
    return nn.Sequential(*blocks)


class Encoder(nn.Module):
    """What every encoder offers: ``forward(x, progress=None) -> list`` of feature maps, finest
    first (``progress(k)`` after the k-th).

    out_channels: channels of each returned map.
    strides:      input-to-map downsampling factor of each returned map.
    output_stride: ``strides[-1]``; input H and W must be multiples of it.
    """

    out_channels: tuple[int, ...]
    strides: tuple[int, ...]

    @property
    def output_stride(self) -> int:
        return self.strides[-1]

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ValueError unless ``x`` is ``(B, 3, H, W)`` with H, W multiples of output_stride."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"encoder input must be (B, 3, H, W), got shape {tuple(x.shape)}")
        h, w = int(x.shape[2]), int(x.shape[3])
        s = self.output_stride
        if h % s != 0 or w % s != 0 or h == 0 or w == 0:
            raise ValueError(
                f"encoder input H and W must be positive multiples of {s} (the output stride), "
                f"got H={h}, W={w}; pad or resize the image first"
            )


class ResNetEncoder(Encoder):
    """ResNet with a deep stem and no classifier, returning the stride 2/4/8/16/32 features.

    block:   BasicBlock or Bottleneck.
    depths:  number of blocks in stages 1..4, e.g. (3, 4, 6, 3).
    width:   channel multiplier; every channel count is ``scale_channels(c, width)``.
    dilated: stages 3 and 4 use dilation 2 and 4 instead of stride 2 (output stride 8).
    stem:    ``"deep"`` (3x3 convs) or ``"classic"`` (one 7x7 conv), see ``STEMS``.
    shortcut: ``"conv"`` or ``"avgpool"`` projection shortcuts, see ``SHORTCUTS``.

    ``forward(x: (B, 3, H, W) float32) -> [f2, f4, f8, f16, f32]`` with
    ``f_s: (B, out_channels[i], H / strides[i], W / strides[i]) float32``.
    """

    def __init__(
        self, block: Block, depths: tuple[int, int, int, int], width: float = 1.0, dilated: bool = False,
        stem: str = "deep", shortcut: str = "conv",
    ) -> None:
        super().__init__()
        if len(depths) != 4 or any(int(d) < 1 for d in depths):
            raise ValueError(f"depths must be four positive block counts, got {depths}")
        if not width > 0:
            raise ValueError(f"width must be > 0, got {width}")
        if stem not in STEMS:
            raise ValueError(f"stem must be one of {', '.join(STEMS)}; got {stem!r}")
        if shortcut not in SHORTCUTS:
            raise ValueError(f"shortcut must be one of {', '.join(SHORTCUTS)}; got {shortcut!r}")
        self.stem_kind: str = stem
        self.shortcut_kind: str = shortcut
        self.depths: tuple[int, ...] = tuple(int(d) for d in depths)
        self.width: float = float(width)
        self.dilated: bool = bool(dilated)
        planes = [scale_channels(p, width) for p in STAGE_PLANES]
        stem_ch = scale_channels(BASE_WIDTH, width)
        stage_ch = [p * block.expansion for p in planes]
        # (stride, first-block dilation, dilation) of stages 1..4
        if dilated:
            layout = [(1, 1, 1), (2, 1, 1), (1, 1, 2), (1, 2, 4)]
        else:
            layout = [(1, 1, 1), (2, 1, 1), (2, 1, 1), (2, 1, 1)]

        self.stem = make_stem(width) if stem == "deep" else make_classic_stem(width)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        in_chs = [stem_ch] + stage_ch[:3]
        stages = [
            make_stage(block, in_chs[i], planes[i], self.depths[i], *layout[i], shortcut) for i in range(4)
        ]
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.out_channels = (stem_ch, *stage_ch)
        self.strides = (2, 4, 8, 8, 8) if dilated else (2, 4, 8, 16, 32)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He (fan-out) init for convs, BN weight 1 / bias 0, as in torchvision's ResNet.

        Tensors on the meta device (a model built only for its shapes, as loading checks a file's
        header) are left alone: ``normal_`` there imports torch._dynamo, a second of imports that
        held the GIL in 100-ms pieces while the app's window waited."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d) and not m.weight.is_meta:
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor, progress: Callable[[int], None] | None = None) -> list[torch.Tensor]:
        """The five feature maps; ``progress(k)`` after the k-th map (``len(strides)`` in all; a 24 MP
        photo's encoder takes seconds)."""
        self.check_input(x)
        report = progress or _nothing
        f2 = self.stem(x)
        report(1)
        f4 = self.layer1(self.maxpool(f2))
        report(2)
        f8 = self.layer2(f4)
        report(3)
        f16 = self.layer3(f8)
        report(4)
        f32 = self.layer4(f16)
        report(5)
        return [f2, f4, f8, f16, f32]


def _nothing(_: int) -> None:
    pass


@dataclass(frozen=True)
class EncoderSpec:
    """A named encoder configuration: block type, stage depths and base width multiplier."""

    block: Block
    depths: tuple[int, int, int, int]
    width: float = 1.0


ENCODERS: dict[str, EncoderSpec] = {
    "resnet18": EncoderSpec(BasicBlock, (2, 2, 2, 2)),
    "resnet34": EncoderSpec(BasicBlock, (3, 4, 6, 3)),
    "resnet50": EncoderSpec(Bottleneck, (3, 4, 6, 3)),
    "resnet101": EncoderSpec(Bottleneck, (3, 4, 23, 3)),
    # Small enough to train on a 2-core CPU: channels 16, 16, 32, 64, 128.
    "tiny": EncoderSpec(BasicBlock, (1, 1, 1, 1), width=0.25),
}


def list_encoders() -> list[str]:
    """Registered encoder names, in registration order."""
    return list(ENCODERS)


def build_encoder(
    name: str,
    width: float = 1.0,
    dilated: bool = False,
    depths: tuple[int, int, int, int] | None = None,
    stem: str = "deep",
    shortcut: str = "conv",
) -> Encoder:
    """Make the registered encoder ``name``.

    width:   multiplies the spec's own width (``tiny`` at width 2.0 has channels 32..256).
    dilated: output stride 8 instead of 32 (see the module docstring).
    depths:  optional stage depths replacing the spec's.
    stem, shortcut: layout options of ``ResNetEncoder`` (for ImageNet weights of other libraries).
    Raises ValueError for an unknown name.
    """
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; known encoders: {', '.join(list_encoders())}")
    spec = ENCODERS[name]
    stage_depths = spec.depths if depths is None else depths
    return ResNetEncoder(
        spec.block, stage_depths, width=spec.width * width, dilated=dilated, stem=stem, shortcut=shortcut
    )
