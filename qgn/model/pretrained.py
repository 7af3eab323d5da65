"""ImageNet ResNet weights that users already have, loaded into our encoder (nothing is downloaded).

Three state-dict layouts are read. Their key names and shapes are those of the libraries' own
sources (read with the project's code search, not recalled):

``torchvision``  torchvision/models/resnet.py (pytorch/vision), ``ResNet``: stem ``conv1`` (64, 3, 7, 7)
                 + ``bn1``; stages ``layer1..4``, blocks ``conv1/bn1, conv2/bn2[, conv3/bn3]`` with the
                 stride on the 3x3 conv; projection ``downsample.0`` (strided 1x1 conv) + ``.1`` (BN);
                 classifier ``fc``. timm's plain ``resnet18/34/50/101`` have the same keys
                 (timm/models/resnet.py, stem type ``''``), and so does mmseg's ``ResNet`` (V1b)
                 except that it has no ``fc``.
``mmseg-v1c``    mmseg/models/backbones/resnet.py (open-mmlab/mmsegmentation), ``ResNetV1c`` =
                 ``ResNet(deep_stem=True, avg_down=False)``: ``stem`` is one ``nn.Sequential`` of
                 conv, BN, ReLU x3 -- convs at ``stem.0/3/6`` (3->32 stride 2, 32->32, 32->64), BNs at
                 ``stem.1/4/7``; blocks as torchvision (``build_norm_layer`` of mmcv/cnn/bricks/norm.py
                 names a BatchNorm ``bn`` + postfix, so ``bn1``, ``bn2``, ``bn3``); shortcuts from
                 mmseg/models/utils/res_layer.py: ``downsample.0`` conv, ``downsample.1`` BN. No ``fc``.
``timm-d``       timm/models/resnet.py (huggingface/pytorch-image-models), ``resnet*d`` =
                 ``stem_width=32, stem_type='deep', avg_down=True``: ``conv1`` is a Sequential with convs
                 at ``conv1.0/3/6`` (3->32 stride 2, 32->32, 32->64) and BNs at ``conv1.1/4``, the third
                 BN is ``bn1``; ``downsample_avg`` is ``[AvgPool2d(2, stride, ceil_mode=True,
                 count_include_pad=False) or Identity, 1x1 conv, BN]``, so ``downsample.1`` / ``.2``;
                 classifier ``fc`` (``head.fc`` in some timm models). ``timm-c`` is timm's deep stem with
                 ``downsample_conv`` shortcuts (``downsample.0`` / ``.1``).

The deep-stem layouts match our default encoder exactly (``stem="deep"``); torchvision weights need
``stem="classic"`` and timm ``resnet*d`` weights ``shortcut="avgpool"`` (``qgn.model.encoder``).
Only width-1.0 encoders (resnet18/34/50/101 at ``encoder_width`` 1.0) have these shapes.

Files: ``.safetensors``, or a ``.pth``/``.pt``/``.bin``/``.ckpt`` state dict read with
``torch.load(weights_only=True)`` -- never unpickled otherwise. A ``state_dict`` or ``model`` entry
holding the tensors is unwrapped, and a ``module.`` or ``backbone.`` prefix on every key is removed.
BatchNorm ``num_batches_tracked`` counters are optional; the classifier (``fc.*``, ``head.fc.*``) is
ignored; any other missing, extra or misshapen key is an error that names it and the file.
"""
from __future__ import annotations

import os
import pickle
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from qgn.model.encoder import ENCODERS, Bottleneck, ResNetEncoder

BN_ENTRIES: tuple[str, ...] = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
CLASSIFIER_PREFIXES: tuple[str, ...] = ("fc.", "head.fc.")
CONTAINER_KEYS: tuple[str, ...] = ("state_dict", "model")
STRIPPED_PREFIXES: tuple[str, ...] = ("module.", "backbone.")
PRETRAINED_ENCODERS: tuple[str, ...] = ("resnet18", "resnet34", "resnet50", "resnet101")


@dataclass(frozen=True)
class Layout:
    """How one library names the stem and shortcuts of a ResNet.

    stem_keys: file key prefix -> our encoder's key prefix, for every stem conv and BN.
    stem, shortcut: the ``ResNetEncoder`` options whose parameters have these names and shapes.
    """

    name: str
    stem: str
    shortcut: str
    stem_keys: dict[str, str]
    describes: str


def _deep_stem_keys(convs: tuple[str, str, str], bns: tuple[str, str, str]) -> dict[str, str]:
    keys = {f"{c}.": f"stem.{i}.0." for i, c in enumerate(convs)}
    keys.update({f"{b}.": f"stem.{i}.1." for i, b in enumerate(bns)})
    return keys


LAYOUTS: dict[str, Layout] = {
    "torchvision": Layout("torchvision", "classic", "conv", {"conv1.": "stem.0.0.", "bn1.": "stem.0.1."},
                          "torchvision ResNet (7x7 stem)"),
    "mmseg-v1c": Layout("mmseg-v1c", "deep", "conv",
                        _deep_stem_keys(("stem.0", "stem.3", "stem.6"), ("stem.1", "stem.4", "stem.7")),
                        "mmseg/mmcv ResNetV1c (deep stem)"),
    "timm-c": Layout("timm-c", "deep", "conv",
                     _deep_stem_keys(("conv1.0", "conv1.3", "conv1.6"), ("conv1.1", "conv1.4", "bn1")),
                     "timm deep-stem ResNet (resnet*c)"),
    "timm-d": Layout("timm-d", "deep", "avgpool",
                     _deep_stem_keys(("conv1.0", "conv1.3", "conv1.6"), ("conv1.1", "conv1.4", "bn1")),
                     "timm ResNet-D (resnet*d: deep stem, average-pool shortcuts)"),
}

_BLOCK_KEY = re.compile(r"^layer([1-4])\.(\d+)\.")
_AVGPOOL_SHORTCUT = re.compile(r"^layer[1-4]\.\d+\.downsample\.2\.")


@dataclass(frozen=True)
class ImageNetWeights:
    """What a weight file holds: the layout it is named in and the encoder it fits.

    tensors: the file's tensors under the file's own key names (containers, prefixes removed,
             classifier dropped), ``name -> Tensor``.
    """

    path: Path
    layout: Layout
    encoder: str
    tensors: dict[str, torch.Tensor]

    def encoder_options(self) -> dict:
        """QGNConfig fields that build an encoder these weights fit (width 1.0)."""
        return dict(encoder=self.encoder, encoder_width=1.0, encoder_stem=self.layout.stem,
                    encoder_shortcut=self.layout.shortcut)


def file_key_to_encoder_key(key: str, layout: Layout) -> str:
    """A file key under ``layout`` -> our ``ResNetEncoder`` state-dict key (stages keep their names)."""
    for prefix, ours in layout.stem_keys.items():
        if key.startswith(prefix):
            return ours + key[len(prefix):]
    return key


def encoder_key_to_file_key(key: str, layout: Layout) -> str:
    """Inverse of ``file_key_to_encoder_key``."""
    for prefix, ours in layout.stem_keys.items():
        if key.startswith(ours):
            return prefix + key[len(ours):]
    return key


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of ``path`` by name, on the CPU: safetensors, or a plain state dict read with
    ``torch.load(weights_only=True)``; one ``state_dict``/``model`` container and a ``module.`` or
    ``backbone.`` prefix common to every key are removed. Raises FileNotFoundError / ValueError."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"encoder weights {path} not found")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as exc:
            raise ValueError(f"{path} is not a readable safetensors file: {exc}") from exc
    try:
        doc = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(
            f"{path} is not a plain state dict of tensors ({reason[:160]}); qgn reads .pth files with "
            f"torch.load(weights_only=True) and never unpickles anything else: save model.state_dict() "
            f"alone, or convert the weights to .safetensors"
        ) from exc
    return _unwrap(doc, path)


def _unwrap(doc: object, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(doc, dict) and not any(torch.is_tensor(v) for v in doc.values()):
        for key in CONTAINER_KEYS:
            if isinstance(doc.get(key), dict):
                doc = doc[key]
                break
    if not isinstance(doc, dict) or not doc:
        raise ValueError(f"{path} holds no state dict (a mapping of names to tensors)")
    bad = next((k for k, v in doc.items() if not isinstance(k, str) or not torch.is_tensor(v)), None)
    if bad is not None:
        raise ValueError(f"{path}: entry {bad!r} is not a tensor; expected a state dict of tensors")
    for prefix in STRIPPED_PREFIXES:
        if all(k.startswith(prefix) for k in doc):
            doc = {k[len(prefix):]: v for k, v in doc.items()}
    return dict(doc)


def detect_layout(tensors: dict[str, torch.Tensor], path: Path) -> Layout:
    """The ``LAYOUTS`` entry whose stem keys the file has; ValueError naming what it saw otherwise."""
    avgpool = any(_AVGPOOL_SHORTCUT.match(k) for k in tensors)
    if "stem.0.weight" in tensors:
        if avgpool:
            raise ValueError(f"{path} looks like mmseg ResNetV1d (average-pool shortcuts), which qgn does "
                             f"not read; use ResNetV1c, torchvision or timm resnet*d weights")
        return LAYOUTS["mmseg-v1c"]
    if "conv1.0.weight" in tensors:
        return LAYOUTS["timm-d" if avgpool else "timm-c"]
    if "conv1.weight" in tensors and not avgpool:
        return LAYOUTS["torchvision"]
    raise ValueError(
        f"{path} is not a ResNet state dict qgn reads: no 'conv1.weight' (torchvision), 'stem.0.weight' "
        f"(mmseg ResNetV1c) or 'conv1.0.weight' (timm resnet*d); first keys: {sorted(tensors)[:4]}"
    )


def detect_encoder(tensors: dict[str, torch.Tensor], path: Path) -> str:
    """Which of resnet18/34/50/101 the stage depths and block type of ``tensors`` are."""
    depths = [0, 0, 0, 0]
    for key in tensors:
        match = _BLOCK_KEY.match(key)
        if match:
            stage, block = int(match.group(1)) - 1, int(match.group(2))
            depths[stage] = max(depths[stage], block + 1)
    bottleneck = "layer1.0.conv3.weight" in tensors
    for name in PRETRAINED_ENCODERS:
        spec = ENCODERS[name]
        if tuple(depths) == spec.depths and (spec.block is Bottleneck) == bottleneck:
            return name
    kind = "bottleneck" if bottleneck else "basic"
    raise ValueError(f"{path} holds a ResNet with {kind} blocks and stage depths {tuple(depths)}; qgn "
                     f"encoders with ImageNet weights are {', '.join(PRETRAINED_ENCODERS)}")


def inspect_weights(path: str | os.PathLike) -> ImageNetWeights:
    """Read ``path`` and tell its layout and encoder (no model is built)."""
    path = Path(path)
    tensors = read_state_dict(path)
    tensors = {k: v for k, v in tensors.items() if not k.startswith(CLASSIFIER_PREFIXES)}
    layout = detect_layout(tensors, path)
    return ImageNetWeights(path, layout, detect_encoder(tensors, path), tensors)


def load_encoder_weights(encoder: ResNetEncoder, path: str | os.PathLike) -> ImageNetWeights:
    """Copy the ImageNet weights of ``path`` into ``encoder`` (in place) and return what was read.

    The encoder must be width 1.0 with the stem and shortcut of the file's layout; every parameter
    and BN statistic of the encoder must be in the file with its shape, and the file may hold
    nothing else (but its classifier and BN ``num_batches_tracked`` counters). Raises ValueError
    naming the file and the first offending keys; nothing is copied then.
    """
    return copy_into_encoder(encoder, inspect_weights(path))


def copy_into_encoder(encoder: ResNetEncoder, weights: ImageNetWeights) -> ImageNetWeights:
    """``load_encoder_weights`` for weights already read by ``inspect_weights``."""
    check_encoder_fits(encoder, weights)
    ours = encoder.state_dict()
    state = {file_key_to_encoder_key(k, weights.layout): v for k, v in weights.tensors.items()}
    problems = key_problems(ours, state, weights.layout)
    if problems:
        raise ValueError(f"{weights.path} does not fit the {weights.encoder} encoder "
                         f"({weights.layout.describes}): {problems}")
    for key, value in ours.items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = value
    encoder.load_state_dict(state, strict=True)
    return weights


def check_encoder_fits(encoder: ResNetEncoder, weights: ImageNetWeights) -> None:
    """ValueError unless ``encoder`` has width 1.0 and the stem/shortcut of ``weights.layout``."""
    path, layout = weights.path, weights.layout
    if abs(encoder.width - 1.0) > 1e-9:
        raise ValueError(f"{path}: ImageNet weights need a width-1.0 encoder (resnet18/34/50/101 with "
                         f"encoder_width 1.0); this encoder has width {encoder.width:g} -- use model "
                         f"r18, r34, r50 or r101")
    if encoder.stem_kind != layout.stem or encoder.shortcut_kind != layout.shortcut:
        raise ValueError(f"{path} is a {layout.describes}: it needs encoder_stem={layout.stem!r} and "
                         f"encoder_shortcut={layout.shortcut!r}; the encoder has {encoder.stem_kind!r} "
                         f"and {encoder.shortcut_kind!r}")


def key_problems(ours: dict[str, torch.Tensor], state: dict[str, torch.Tensor], layout: Layout) -> str:
    """'' when ``state`` (our key names) has exactly ``ours``'s keys and shapes, else a sentence that
    names the missing, extra and misshapen keys in the file's own names."""
    optional = {k for k in ours if k.endswith("num_batches_tracked")}
    missing = sorted(set(ours) - set(state) - optional)
    extra = sorted(set(state) - set(ours))
    misshapen = sorted(k for k in set(ours) & set(state) if tuple(ours[k].shape) != tuple(state[k].shape))
    def name(k):
        return encoder_key_to_file_key(k, layout)
    parts = []
    if missing:
        parts.append(f"missing {len(missing)} key(s): {', '.join(name(k) for k in missing[:4])}")
    if extra:
        parts.append(f"{len(extra)} unexpected key(s): {', '.join(name(k) for k in extra[:4])}")
    for k in misshapen[:4]:
        parts.append(f"{name(k)} has shape {tuple(state[k].shape)}, the encoder needs {tuple(ours[k].shape)}")
    return "; ".join(parts)
