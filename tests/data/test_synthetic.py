"""The synthetic scene generator: determinism, shapes, class coverage, thin structures, texture."""
from __future__ import annotations

import numpy as np
import pytest

from qgn.data.synthetic import SYNTHETIC_CLASSES, SyntheticDataset, make_scene
from qgn.data.synthetic_classes import POLE

NUM_CLASSES = SYNTHETIC_CLASSES.num_classes


def horizontal_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows (R,) and lengths (R,) of every horizontal run of True pixels in a (H, W) bool mask."""
    steps = np.diff(np.pad(mask, ((0, 0), (1, 1))).astype(np.int8), axis=1)
    starts, ends = np.argwhere(steps == 1), np.argwhere(steps == -1)
    return starts[:, 0], ends[:, 1] - starts[:, 1]


def test_same_seed_same_scene_and_different_seeds_differ() -> None:
    image, label = make_scene(12)
    image_again, label_again = make_scene(12)
    np.testing.assert_array_equal(image, image_again)
    np.testing.assert_array_equal(label, label_again)
    other_image, other_label = make_scene(13)
    assert not np.array_equal(image, other_image) and not np.array_equal(label, other_label)


@pytest.mark.parametrize("size", [(256, 256), (96, 160), (33, 20)])
def test_shapes_and_dtypes(size: tuple[int, int]) -> None:
    image, label = make_scene(3, *size)
    assert image.shape == (*size, 3) and image.dtype == np.uint8
    assert label.shape == size and label.dtype == np.uint8
    assert label.max() < NUM_CLASSES


def test_every_class_appears_across_a_few_seeds() -> None:
    seen = set()
    for seed in range(8):
        seen |= set(np.unique(make_scene(seed)[1]).tolist())
    assert seen == set(range(NUM_CLASSES))
    assert 6 <= NUM_CLASSES <= 8 and len(set(SYNTHETIC_CLASSES.palette)) == NUM_CLASSES


def test_scenes_have_thin_structures_and_large_uniform_regions() -> None:
    scenes_with_thin_poles = 0
    for seed in range(6):
        label = make_scene(seed)[1]
        rows, lengths = horizontal_runs(label == POLE)
        # A pole 1-4 px wide standing at least 20 rows tall (not a sliver of a wider region).
        scenes_with_thin_poles += len(np.unique(rows[lengths <= 4])) >= 20
        blocks = label.reshape(8, 32, 8, 32).transpose(0, 2, 1, 3).reshape(64, -1)
        uniform = (blocks == blocks[:, :1]).all(axis=1).mean()
        assert 0.15 < uniform < 0.9, f"seed {seed}: {uniform:.0%} of 32×32 blocks uniform"
    assert scenes_with_thin_poles >= 4


def test_pixel_colour_alone_does_not_determine_the_class() -> None:
    """The best per-colour lookup (16³ bins) learnt on 24 scenes stays far from perfect on 8 others."""
    bins = 16

    def colour_bins(image: np.ndarray) -> np.ndarray:
        q = image.astype(np.int64) // (256 // bins)
        return ((q[..., 0] * bins + q[..., 1]) * bins + q[..., 2]).ravel()

    counts = np.zeros((bins**3, NUM_CLASSES))
    for seed in range(24):
        image, label = make_scene(seed, 128, 128)
        np.add.at(counts, (colour_bins(image), label.ravel()), 1)
    predict = counts.argmax(axis=1)
    confusion = np.zeros((NUM_CLASSES, NUM_CLASSES))
    for seed in range(100, 108):
        image, label = make_scene(seed, 128, 128)
        np.add.at(confusion, (label.ravel(), predict[colour_bins(image)]), 1)
    iou = np.diag(confusion) / np.maximum(confusion.sum(0) + confusion.sum(1) - np.diag(confusion), 1)
    assert iou.mean() < 0.7


def test_synthetic_dataset_interface() -> None:
    dataset = SyntheticDataset(4, seed0=100, size=(64, 96))
    assert len(dataset) == 4 and dataset.classes is SYNTHETIC_CLASSES
    sample = dataset[2]
    image, label = make_scene(102, 64, 96)
    np.testing.assert_array_equal(sample.image, image)
    np.testing.assert_array_equal(sample.label, label)
    assert sample.label.dtype == np.int64 and sample.name == "synthetic_000102"
    assert dataset[-1].name == "synthetic_000103"
    with pytest.raises(IndexError):
        dataset[4]
