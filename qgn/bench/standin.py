"""Benchmark inputs: CamVid val images and masks fitted to a benchmark size.

Without Cityscapes here, CamVid val masks (480×360) resized by nearest neighbour to 2048×1024 are
the Cityscapes-sized stand-in whose ground-truth composite cells drive GTC (the paper's Table 6
row "Cityscapes"); at the native width they are padded instead (480×360 → 480×384 with the void
label, as ``qgn stats`` does). Images follow their masks (bilinear resize, or zero padding).
Without CamVid (``../shared/data/camvid`` or ``QGN_DATA``) synthetic scenes are used instead,
and ``StandIns.source`` says so.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from qgn.data.base import DatasetLayoutError, Sample, SegmentationDataset
from qgn.data.registry import open_dataset
from qgn.data.transforms import resize_image, resize_label

Size = tuple[int, int]  # (width, height), as the paper writes 2048×1024


@dataclass
class StandIns:
    """Up to ``count`` samples of a dataset fitted to one size, read one at a time (iterate), the
    class count of their labels, and where they came from."""

    dataset: SegmentationDataset
    count: int
    size: Size
    source: str

    @property
    def num_classes(self) -> int:
        return self.dataset.classes.num_classes

    @property
    def ignore_index(self) -> int | None:
        return self.dataset.classes.ignore_index

    def __len__(self) -> int:
        return min(self.count, len(self.dataset))

    def __iter__(self) -> Iterator[Sample]:
        for i in range(len(self)):
            yield fit_sample(self.dataset[i], self.size, self.ignore_index)


def fit_sample(sample: Sample, size: Size, ignore_index: int | None) -> Sample:
    """``sample`` at ``size`` (W, H): padded (image with 0, label with ``ignore_index``) when the
    width matches and the height fits, else resized (image bilinear, label nearest)."""
    width, height = size
    h, w = sample.label.shape
    if w == width and h <= height:
        if ignore_index is None:
            raise ValueError("padding a label needs an ignore value; this class set has none")
        image = np.zeros((height, width, 3), dtype=np.uint8)
        image[:h] = sample.image
        label = np.full((height, width), ignore_index, dtype=sample.label.dtype)
        label[:h] = sample.label
        return Sample(image, label, sample.name)
    return Sample(resize_image(sample.image, (height, width)), resize_label(sample.label, (height, width)), sample.name)


def load_standins(count: int | None, size: Size, split: str = "val", data: str = "camvid") -> StandIns:
    """The first ``count`` (None: all) samples of ``data``/``split`` at ``size`` (W, H); synthetic
    scenes when the dataset is not found."""
    try:
        dataset = open_dataset(data, split)
        source = f"{data} {split}"
    except DatasetLayoutError:
        dataset = open_dataset("synthetic", split, n=count, size=256)
        source = f"synthetic scenes ({data} not found)"
    return StandIns(dataset, len(dataset) if count is None else count, tuple(size), source)
