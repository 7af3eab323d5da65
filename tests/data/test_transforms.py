"""Transforms keep image and label aligned; padding is removed exactly by cropping back."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from qgn.data.augmented import AugmentedDataset
from qgn.data.base import Sample
from qgn.data.synthetic import SyntheticDataset
from qgn.data.transforms import (
    IMAGENET_MEAN,
    augment,
    collate,
    crop_to_size,
    normalize_image,
    pad_to_multiple,
    random_horizontal_flip,
    random_scale,
    resize_label,
)

# Well-separated colours: the class of a pixel can be read back from its colour.
COLOURS = np.array(
    [[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [255, 255, 255]], dtype=np.uint8
)


def blocky_label(seed: int, height: int, width: int) -> np.ndarray:
    """(H, W) int64 label of random overlapping rectangles (ids 0..5), including 1-2 px slivers."""
    rng = np.random.default_rng(seed)
    label = np.zeros((height, width), dtype=np.int64)
    for _ in range(12):
        y, x = rng.integers(0, height), rng.integers(0, width)
        h, w = rng.integers(1, height // 2 + 2), rng.integers(1, width // 2 + 2)
        label[y : y + h, x : x + w] = rng.integers(0, len(COLOURS))
    return label


def label_from_image(image: np.ndarray) -> np.ndarray:
    """Nearest palette colour of each pixel of (H, W, 3) uint8 → (H, W) int64."""
    distance = ((image[:, :, None, :].astype(np.int32) - COLOURS[None, None].astype(np.int32)) ** 2).sum(-1)
    return distance.argmin(-1)


def uniform_neighbourhood(label: np.ndarray, radius: int) -> np.ndarray:
    """(H, W) bool: pixels whose (2r+1)² neighbourhood (clipped at the border) has a single label."""
    padded = np.pad(label, radius, mode="edge")
    same = np.ones(label.shape, dtype=bool)
    for dy in range(2 * radius + 1):
        for dx in range(2 * radius + 1):
            same &= padded[dy : dy + label.shape[0], dx : dx + label.shape[1]] == label
    return same


@pytest.mark.parametrize("seed", range(6))
def test_random_scale_keeps_image_and_label_aligned(seed: int) -> None:
    height, width = [(37, 53), (64, 64), (90, 41)][seed % 3]
    label = blocky_label(seed, height, width)
    image = COLOURS[label]
    rng = np.random.default_rng(seed)
    scaled_image, scaled_label = random_scale(image, label, rng, (0.45, 2.3))
    assert scaled_image.shape[:2] == scaled_label.shape and scaled_image.dtype == np.uint8
    assert set(np.unique(scaled_label)) <= set(np.unique(label))
    derived = label_from_image(scaled_image)
    interior = uniform_neighbourhood(scaled_label, 1)
    assert interior.mean() > 0.3
    np.testing.assert_array_equal(derived[interior], scaled_label[interior])
    # Only pixels where bilinear blending of 3-4 colours is ambiguous may differ; a half-pixel
    # misalignment of the label would disagree along every boundary (≥ 1.5 % of pixels here).
    assert (derived != scaled_label).mean() < 0.015


def test_resize_label_is_exact_for_integer_factors() -> None:
    label = blocky_label(1, 8, 12)
    up = resize_label(label, (32, 36))
    np.testing.assert_array_equal(up, np.repeat(np.repeat(label, 4, axis=0), 3, axis=1))
    np.testing.assert_array_equal(resize_label(up, (8, 12)), label)


def test_flip_keeps_alignment_and_respects_probability() -> None:
    label = blocky_label(3, 20, 31)
    image = COLOURS[label]
    flipped_image, flipped_label = random_horizontal_flip(image, label, np.random.default_rng(0), 1.0)
    np.testing.assert_array_equal(flipped_label, label[:, ::-1])
    np.testing.assert_array_equal(label_from_image(flipped_image), flipped_label)
    same_image, same_label = random_horizontal_flip(image, label, np.random.default_rng(0), 0.0)
    assert same_image is image and same_label is label


def test_augment_is_reproducible_and_aligned() -> None:
    label = blocky_label(4, 48, 40)
    sample = Sample(image=COLOURS[label], label=label, name="blocks")
    first = augment(sample, np.random.default_rng(7))
    second = augment(sample, np.random.default_rng(7))
    np.testing.assert_array_equal(first.image, second.image)
    np.testing.assert_array_equal(first.label, second.label)
    interior = uniform_neighbourhood(first.label, 2)
    np.testing.assert_array_equal(label_from_image(first.image)[interior], first.label[interior])


@pytest.mark.parametrize("size", [(1, 1), (32, 64), (360, 480), (33, 31)])
def test_padding_never_shows_after_cropping_back(size: tuple[int, int]) -> None:
    label = blocky_label(5, *size)
    image = COLOURS[label]
    padded_image, padded_label, original = pad_to_multiple(image, label, ignore_index=11)
    assert original == size
    assert padded_label.shape[0] % 32 == 0 and padded_label.shape[1] % 32 == 0
    assert padded_label.shape[0] - size[0] < 32 and padded_label.shape[1] - size[1] < 32
    outside = np.ones(padded_label.shape, dtype=bool)
    outside[: size[0], : size[1]] = False
    assert (padded_label[outside] == 11).all() and (padded_image[outside] == 0).all()
    np.testing.assert_array_equal(crop_to_size(padded_label, original), label)
    cropped_image = crop_to_size(padded_image.transpose(2, 0, 1), original)
    np.testing.assert_array_equal(cropped_image, image.transpose(2, 0, 1))


def test_normalize_image_uses_imagenet_statistics() -> None:
    mean_colour = np.round(np.array(IMAGENET_MEAN) * 255).astype(np.uint8)
    tensor = normalize_image(np.broadcast_to(mean_colour, (2, 3, 3)))
    assert tensor.shape == (3, 2, 3) and tensor.dtype == torch.float32
    assert tensor.abs().max() < 0.01
    assert normalize_image(np.full((1, 1, 3), 255, np.uint8))[0, 0, 0] == pytest.approx((1 - 0.485) / 0.229)


def test_collate_pads_to_a_common_multiple_and_crops_back() -> None:
    samples = []
    for i, size in enumerate([(50, 70), (33, 100), (64, 20)]):
        label = blocky_label(i, *size)
        samples.append(Sample(image=COLOURS[label], label=label, name=f"s{i}"))
    batch = collate(samples, ignore_index=255)
    assert tuple(batch.images.shape) == (3, 3, 64, 128) and tuple(batch.labels.shape) == (3, 64, 128)
    assert batch.sizes == [(50, 70), (33, 100), (64, 20)] and batch.names == ["s0", "s1", "s2"]
    for i, sample in enumerate(samples):
        cropped_label = crop_to_size(batch.labels[i], batch.sizes[i])
        np.testing.assert_array_equal(cropped_label.numpy(), sample.label)
        assert not (cropped_label == 255).any()
        cropped_image = crop_to_size(batch.images[i], batch.sizes[i])
        torch.testing.assert_close(cropped_image, normalize_image(sample.image))
        padding = torch.ones(batch.labels[i].shape, dtype=torch.bool)
        padding[: sample.label.shape[0], : sample.label.shape[1]] = False
        assert (batch.labels[i][padding] == 255).all()
    with pytest.raises(ValueError, match="ignore value"):
        collate(samples, ignore_index=None)


def test_augmented_dataset_is_deterministic_per_epoch() -> None:
    dataset = AugmentedDataset(SyntheticDataset(2, seed0=3, size=64), seed=1, scale_range=(0.5, 1.5))
    first, again = dataset[1], dataset[1]
    np.testing.assert_array_equal(first.image, again.image)
    assert first.image.shape[:2] == first.label.shape and first.name == "synthetic_000004"
    shapes = set()
    for epoch in range(4):
        dataset.set_epoch(epoch)
        shapes.add(dataset[1].label.shape)
    assert len(shapes) > 1
