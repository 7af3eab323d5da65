"""Augmentation, padding, normalisation and batching of ``Sample``s (numpy + torch, no torchvision).

Images are (H, W, 3) uint8 and labels (H, W) int64 until ``normalize_image`` / ``collate`` turn
them into tensors. Random transforms take an explicit ``numpy.random.Generator`` so that a
pipeline is reproducible from one seed. Geometry follows the pixel-centre convention of
``torch.nn.functional.interpolate(..., align_corners=False)``: a label resized with
``resize_label`` (nearest) stays aligned with its image resized with ``resize_image`` (bilinear).

Following the paper (supplement A.2), training pads to a multiple of 32 instead of cropping;
``pad_to_multiple`` returns the original size so predictions can be cropped back with
``crop_to_size``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from qgn.data.base import Sample

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Size = tuple[int, int]  # (height, width)


def resize_image(image: np.ndarray, size: Size) -> np.ndarray:
    """Bilinear resize of (H, W, 3) uint8 to (h, w, 3) uint8 (antialiased when shrinking)."""
    if image.shape[:2] == tuple(size):
        return image.copy()
    # float32 in numpy: one copy, writable even when the caller's array is not (np.asarray of a PIL image)
    tensor = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]
    shrinking = size[0] < image.shape[0] or size[1] < image.shape[1]
    resized = F.interpolate(
        tensor, size=tuple(size), mode="bilinear", align_corners=False, antialias=shrinking
    )
    return resized[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


#: The shortest side a ``--scale`` may make an image: one cell of the model's coarsest level (the
#: stride-32 encoder's output). Below it every image is that one padded cell, and the scores say
#: nothing (``qgn eval --scale 1e-9`` evaluated 1×1 images and exited 0).
MIN_SCALED_SIDE = 32


def scaled_size(height: int, width: int, scale: float, source) -> Size:
    """(height, width) of an image scaled by ``scale``; ValueError naming --scale when its shorter
    side falls below ``MIN_SCALED_SIDE`` (an image already that small may stay at scale 1 or more)
    or the size is above the pixel limit (``QGN_MAX_PIXELS``), before anything of the size is allocated."""
    from qgn.imagefile import MAX_PIXELS_ENV, max_pixels

    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    if min(size) < MIN_SCALED_SIDE and scale < 1:
        lowest = MIN_SCALED_SIDE / min(height, width)
        advice = f"use --scale {math.ceil(lowest * 1000) / 1000:g} or more" if lowest < 1 else "use --scale 1"
        raise ValueError(f"--scale {scale:g} makes {source} {size[1]}×{size[0]} pixels, less than one cell of the "
                         f"model's coarsest level ({MIN_SCALED_SIDE} px) on its shorter side; {advice}")
    limit = max_pixels()
    if size[0] * size[1] > limit:
        raise ValueError(f"--scale {scale:g} makes {source} {size[1]}×{size[0]} = {size[0] * size[1] / 1e6:.4g} "
                         f"megapixels, more than the limit of {limit / 1e6:.1f} ({MAX_PIXELS_ENV}); use a smaller --scale")
    return size


def rescale(sample: Sample, scale: float) -> Sample:
    """The sample resized by ``scale`` (image bilinear, label nearest; ``scaled_size``); unchanged at 1.0."""
    if scale == 1.0:
        return sample
    h, w = sample.label.shape
    size = scaled_size(h, w, scale, sample.name)
    return Sample(resize_image(sample.image, size), resize_label(sample.label, size), sample.name)


def nearest_indices(source: int, target: int) -> np.ndarray:
    """Source index (target,) int64 whose pixel contains each target pixel centre."""
    centres = (np.arange(target, dtype=np.float64) + 0.5) * (source / target)
    return np.minimum(np.floor(centres).astype(np.int64), source - 1)


def resize_label(label: np.ndarray, size: Size) -> np.ndarray:
    """Nearest-neighbour resize of (H, W) labels to (h, w), same dtype (no new values)."""
    rows = nearest_indices(label.shape[0], size[0])
    cols = nearest_indices(label.shape[1], size[1])
    return label[rows[:, None], cols[None, :]]


def random_scale(
    image: np.ndarray, label: np.ndarray, rng: np.random.Generator,
    scale_range: tuple[float, float] = (0.5, 2.0),
) -> tuple[np.ndarray, np.ndarray]:
    """Resize image (H, W, 3) uint8 and label (H, W) by one factor drawn uniformly from ``scale_range``."""
    scale = rng.uniform(*scale_range)
    size = (max(1, round(image.shape[0] * scale)), max(1, round(image.shape[1] * scale)))
    return resize_image(image, size), resize_label(label, size)


def random_horizontal_flip(
    image: np.ndarray, label: np.ndarray, rng: np.random.Generator, probability: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Mirror image (H, W, 3) and label (H, W) left-right together with ``probability``."""
    if rng.random() < probability:
        return image[:, ::-1].copy(), label[:, ::-1].copy()
    return image, label


def padded_size(size: Size, multiple: int = 32) -> Size:
    """(H, W) rounded up to multiples of ``multiple``."""
    return (math.ceil(size[0] / multiple) * multiple, math.ceil(size[1] / multiple) * multiple)


def pad_to_multiple(
    image: np.ndarray, label: np.ndarray, ignore_index: int, multiple: int = 32
) -> tuple[np.ndarray, np.ndarray, Size]:
    """Pad bottom/right to multiples of ``multiple``: image (H, W, 3) with 0, label (H, W) with ignore.

    Returns (image (H', W', 3), label (H', W'), original size (H, W)).
    """
    original = (image.shape[0], image.shape[1])
    target = padded_size(original, multiple)
    padded_image = np.zeros((*target, image.shape[2]), dtype=image.dtype)
    padded_image[: original[0], : original[1]] = image
    padded_label = np.full(target, ignore_index, dtype=label.dtype)
    padded_label[: original[0], : original[1]] = label
    return padded_image, padded_label, original


def crop_to_size(array: np.ndarray | torch.Tensor, size: Size) -> np.ndarray | torch.Tensor:
    """Undo padding: keep the top-left ``size`` (H, W) of the last two axes ((..., H', W') arrays)."""
    return array[..., : size[0], : size[1]]


def normalize_image(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 RGB → (3, H, W) float32 tensor, ImageNet mean/std normalised."""
    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255.0)
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32)[:, None, None]
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32)[:, None, None]
    return tensor.sub_(mean).div_(std)


def augment(
    sample: Sample, rng: np.random.Generator,
    scale_range: tuple[float, float] = (0.5, 2.0), flip_probability: float = 0.5,
) -> Sample:
    """Random scale then random horizontal flip of a sample (paper A.2's training augmentation)."""
    image, label = random_scale(sample.image, sample.label, rng, scale_range)
    image, label = random_horizontal_flip(image, label, rng, flip_probability)
    return Sample(image=image, label=label, name=sample.name)


@dataclass(frozen=True, eq=False)
class Batch:
    """Samples padded to one size and stacked.

    images: (B, 3, H, W) float32, normalised; padding is black (uint8 0) before normalisation.
    labels: (B, H, W) int64; padding is ``ignore_index``.
    sizes:  each sample's (height, width) before padding (crop predictions back with ``crop_to_size``).
    names:  sample names.
    """

    images: torch.Tensor
    labels: torch.Tensor
    sizes: list[Size]
    names: list[str]


def collate(samples: Sequence[Sample], ignore_index: int, multiple: int = 32) -> Batch:
    """Pad every sample to the batch's largest height and width, rounded up to ``multiple``.

    Use as ``DataLoader(..., collate_fn=functools.partial(collate, ignore_index=classes.ignore_index))``.
    """
    if not samples:
        raise ValueError("collate: empty batch")
    if ignore_index is None:
        raise ValueError("collate: padding needs an ignore value, and the class set has none; pass e.g. 255")
    height = max(s.image.shape[0] for s in samples)
    width = max(s.image.shape[1] for s in samples)
    target = padded_size((height, width), multiple)
    images = torch.zeros((len(samples), 3, *target), dtype=torch.float32)
    labels = torch.full((len(samples), *target), ignore_index, dtype=torch.int64)
    black = normalize_image(np.zeros((1, 1, 3), dtype=np.uint8))
    images[:] = black[None]
    for i, sample in enumerate(samples):
        h, w = sample.image.shape[:2]
        if sample.label.shape != (h, w):
            raise ValueError(f"collate: sample {sample.name!r} has image {w}×{h} but label "
                             f"{sample.label.shape[1]}×{sample.label.shape[0]} (width×height)")
        images[i, :, :h, :w] = normalize_image(sample.image)
        labels[i, :h, :w] = torch.from_numpy(np.ascontiguousarray(sample.label)).to(torch.int64)
    sizes = [(int(s.image.shape[0]), int(s.image.shape[1])) for s in samples]
    return Batch(images=images, labels=labels, sizes=sizes, names=[s.name for s in samples])
