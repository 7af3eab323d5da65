"""The Quadtree Generating Network: encoder + sparse decoder, its config and named presets."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from qgn.classes import ClassSet
from qgn.model.decoder import TABLE7_UNITS, LevelOutput, QGNDecoder
from qgn.model.encoder import build_encoder
from qgn.propagation import Scheme
from qgn.quadtree import NUM_LEVELS

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_MAX_WORKING_PIXELS = 1 << 22  # 4.2 megapixels (2048×2048); QGN_MAX_WORKING_PIXELS overrides
MAX_WORKING_PIXELS_ENV = "QGN_MAX_WORKING_PIXELS"
#: The network's input is the image padded to whole root cells (32 px): at most this many times the
#: pixel limit in all. Photos pad by a few per cent; a 1-pixel-tall strip pads 32-fold.
PADDED_SLACK = 2


def max_working_pixels() -> int:
    """The most pixels a network input may have: ``QGN_MAX_WORKING_PIXELS`` when set, else
    ``DEFAULT_MAX_WORKING_PIXELS``. Larger photos run resized to this many pixels (a 24-megapixel
    photo would otherwise take gigabytes and tens of seconds, at a scale no bundled model learnt)."""
    from qgn.env import env_count

    return env_count(MAX_WORKING_PIXELS_ENV, DEFAULT_MAX_WORKING_PIXELS, "pixel count", example=16777216, low=1024)

RESOLUTIONS = ("auto", "working", "native")
DEFAULT_MAX_NATIVE_PIXELS = 1 << 25  # 33.6 megapixels; QGN_MAX_NATIVE_PIXELS overrides
MAX_NATIVE_PIXELS_ENV = "QGN_MAX_NATIVE_PIXELS"


def max_native_pixels() -> int:
    """The most pixels a photo may have to run at full resolution (``QGN_MAX_NATIVE_PIXELS``, else
    ``DEFAULT_MAX_NATIVE_PIXELS``); a larger one runs resized to that many."""
    from qgn.env import env_count

    return env_count(MAX_NATIVE_PIXELS_ENV, DEFAULT_MAX_NATIVE_PIXELS, "pixel count", example=50000000, low=1024)


# name -> architecture fields of QGNConfig
PRESETS: dict[str, dict] = {
    "tiny": dict(encoder="tiny", encoder_width=1.0, decoder_width=0.25, decoder_units=(1, 1, 1, 1, 1)),
    # a ResNet-18 encoder at half width with the tiny decoder: the encoder is dense and cheap at
    # half resolution, the All decoder is what a CPU pays for (qgn train --preset camvid-street)
    "street": dict(encoder="resnet18", encoder_width=0.5, decoder_width=0.25, decoder_units=(1, 1, 1, 1, 1)),
    "small": dict(encoder="resnet18", encoder_width=0.5, decoder_width=0.5, decoder_units=(2, 2, 2, 2, 2)),
    "r18": dict(encoder="resnet18", encoder_width=1.0, decoder_width=1.0, decoder_units=TABLE7_UNITS),
    "r34": dict(encoder="resnet34", encoder_width=1.0, decoder_width=1.0, decoder_units=TABLE7_UNITS),
    "r50": dict(encoder="resnet50", encoder_width=1.0, decoder_width=1.0, decoder_units=TABLE7_UNITS),
    "r101": dict(encoder="resnet101", encoder_width=1.0, decoder_width=1.0, decoder_units=TABLE7_UNITS),
}


@dataclass
class QGNConfig:
    """Everything needed to rebuild a QGN (stored as JSON beside the weights)."""

    classes: ClassSet
    encoder: str = "tiny"
    encoder_width: float = 1.0
    encoder_stem: str = "deep"  # "classic": the 7x7 stem of torchvision's ImageNet ResNets
    encoder_shortcut: str = "conv"  # "avgpool": the shortcuts of timm's resnet*d
    decoder_width: float = 0.25
    decoder_units: tuple[int, ...] = (1, 1, 1, 1, 1)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    num_levels: int = NUM_LEVELS
    input_scale: float = 1.0  # working resolution: see ``working_size``
    input_size: tuple[int, int] | None = None  # (H, W) of the training images input_scale refers to
    extra: dict = field(default_factory=dict)  # training metadata, free-form

    @classmethod
    def from_preset(cls, preset: str, classes: ClassSet, **overrides) -> "QGNConfig":
        if preset not in PRESETS:
            raise ValueError(f"unknown model preset {preset!r}; choose one of {', '.join(PRESETS)}")
        return cls(classes=classes, **{**PRESETS[preset], **overrides})

    @property
    def num_classes(self) -> int:
        return self.classes.num_classes

    def working_scale(self, height: int, width: int) -> float:
        """The factor an image of ``height``×``width`` is resized by before the network.

        ``input_scale`` alone: that factor for every image. With ``input_size`` (H0, W0) too, the
        factor that gives the image as many pixels as an ``input_size`` image at ``input_scale``:
        ``input_scale * sqrt(H0 W0 / (H W))``. A CamVid model (``input_scale`` 0.5, ``input_size``
        360×480) then runs a 480×360 frame at 240×180 and a 4032×3024 phone photo at 240×180 too,
        where its objects have the size it was trained on.

        Whatever the model, the working size has at most ``max_working_pixels()`` pixels (4.2 M by
        default): a larger image runs resized to that many.
        """
        scale = float(self.input_scale)
        if self.input_size is not None:
            h0, w0 = self.input_size
            scale *= ((h0 * w0) / max(1, height * width)) ** 0.5
        limit = max_working_pixels()
        if height * width * scale * scale > limit:
            scale = (limit / (height * width)) ** 0.5
        return self.within_padding(height, width, scale, limit)

    def within_padding(self, height: int, width: int, scale: float, limit: int) -> float:
        """``scale``, made smaller where the image at that scale, padded to whole root cells, would
        have more than ``PADDED_SLACK * limit`` pixels: a 1×1,000,000 strip (1 MB, within every
        pixel limit) pads to 32×1,000,000 and took 2.5 GB where a 1000×1000 photo takes 0.5 GB."""
        cell, bound = 1 << (self.num_levels - 1), PADDED_SLACK * limit
        for _ in range(64):
            h, w = max(1, round(height * scale)), max(1, round(width * scale))
            padded = -(-h // cell) * cell * (-(-w // cell) * cell)
            if padded <= bound:
                break
            scale *= bound / padded
        return scale

    def working_size(self, height: int, width: int) -> tuple[int, int]:
        """(h, w) the network sees for an image of ``height``×``width`` (unchanged at scale 1)."""
        scale = self.working_scale(height, width)
        if abs(scale - 1.0) < 1e-9:
            return height, width
        return max(1, round(height * scale)), max(1, round(width * scale))

    def learnt_scale(self) -> float | None:
        """How many times its training images' side the largest objects a model learnt were: the
        top of its training scale range (``scale_wide`` when it trained on wide scales, else
        ``scale_max``) from its JSON; None when the JSON does not say."""
        train = self.extra.get("train", {}) if isinstance(self.extra, dict) else {}
        values = [v for v in (train.get("scale_wide"), train.get("scale_max")) if isinstance(v, (int, float)) and v > 0]
        return max(values) if values else None

    def resolution_for(self, height: int, width: int, resolution: str = "auto") -> str:
        """"working" or "native" for an image of ``height``×``width``.

        ``auto`` picks native (full resolution) only for a model that works at its training
        images' own scale (``input_scale`` 1) and trained on wide scales (``scale_wide`` in its
        JSON) reaching the photo's size relative to its training images (``input_size``): there the
        working size differs from the photo only past the working pixel cap. A model with a working
        scale (the street model: 0.5) is best at the scale most of its training saw, so ``auto``
        keeps it there even where it also learnt wide scales: the wide-trained street model scores
        61.10 / 62.51 mIoU (All / PC) on CamVid val at 240x180 and 59.58 / 61.69 at the frames'
        own 480x360, and full resolution costs 2.7x the time (benchmarks/RESULTS.md, #26).
        ``working`` and ``native`` force one.
        """
        if resolution not in RESOLUTIONS:
            raise ValueError(f"resolution must be one of {', '.join(RESOLUTIONS)}; got {resolution!r}")
        if resolution != "auto":
            return resolution
        train = self.extra.get("train", {}) if isinstance(self.extra, dict) else {}
        if not train.get("scale_wide") or self.input_size is None or abs(self.input_scale - 1.0) > 1e-9:
            return "working"
        h0, w0 = self.input_size
        side = ((height * width) / max(1, h0 * w0)) ** 0.5
        return "native" if side <= float(train["scale_wide"]) * 1.0001 else "working"

    def network_size(self, height: int, width: int, resolution: str = "auto") -> tuple[int, int]:
        """(h, w) the network sees: ``working_size``, or the image as given (at most
        ``max_native_pixels()``) where ``resolution_for`` says native."""
        if self.resolution_for(height, width, resolution) == "working":
            return self.working_size(height, width)
        limit = max_native_pixels()
        scale = self.within_padding(height, width, min(1.0, (limit / (height * width)) ** 0.5), limit)
        if scale == 1.0:
            return height, width
        return max(1, int(height * scale)), max(1, int(width * scale))  # rounded down: within the limit

    def to_json(self) -> dict:
        d = asdict(self)
        d["classes"] = self.classes.to_json()
        d["decoder_units"] = list(self.decoder_units)
        if self.input_size is not None:
            d["input_size"] = list(self.input_size)
        return d

    @classmethod
    def from_json(cls, d: dict) -> "QGNConfig":
        d = dict(d)
        d["classes"] = ClassSet.from_json(d["classes"])
        for key in ("decoder_units", "mean", "std"):
            if key in d:
                d[key] = tuple(d[key])
        if d.get("input_size") is not None:
            d["input_size"] = tuple(int(v) for v in d["input_size"])
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model config fields {sorted(unknown)}")
        if d.get("num_levels", NUM_LEVELS) != NUM_LEVELS:
            raise ValueError(f"only {NUM_LEVELS}-level models (stride-32 encoders) are supported")
        return cls(**d)


class QGN(nn.Module):
    """Encoder (dense, strides 2..32) + sparse decoder (levels 5..0).

    forward(images (B, 3, H, W) normalised float, H and W multiples of 32, scheme, …)
        -> list of LevelOutput, root first (see ``QGNDecoder.forward``).
    """

    def __init__(self, config: QGNConfig):
        super().__init__()
        self.config = config
        self.encoder = build_encoder(config.encoder, width=config.encoder_width,
                                     stem=config.encoder_stem, shortcut=config.encoder_shortcut)
        self.decoder = QGNDecoder(
            self.encoder.out_channels, config.num_classes, config.decoder_width, config.decoder_units
        )

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) uint8 or float in 0..255 → normalised float32 (ImageNet statistics)."""
        mean = torch.tensor(self.config.mean, device=images.device).view(1, 3, 1, 1) * 255.0
        std = torch.tensor(self.config.std, device=images.device).view(1, 3, 1, 1) * 255.0
        return (images.float() - mean) / std

    def encode(self, images: torch.Tensor, progress: Callable[[int], None] | None = None) -> list[torch.Tensor]:
        """The encoder's five feature maps at strides 2, 4, 8, 16, 32; ``progress(k)`` after the k-th."""
        return self.encoder(images) if progress is None else self.encoder(images, progress=progress)

    def forward(
        self,
        images: torch.Tensor,
        scheme: Scheme,
        gt_composite: list[torch.Tensor] | None = None,
        features: list[torch.Tensor] | None = None,
        resume: list[LevelOutput] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> list[LevelOutput]:
        """The decoder's outputs, root first (``Decoder.forward``); ``progress(level)`` after each
        level the decoder computes."""
        if features is None:
            features = self.encode(images)
        if progress is None:
            return self.decoder(features, images, scheme, gt_composite, resume)
        return self.decoder(features, images, scheme, gt_composite, resume, progress=progress)
