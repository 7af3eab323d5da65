"""The dataset interface shared by every loader: ``Sample`` and ``SegmentationDataset``.

A dataset is a map-style dataset of ``Sample``s (``__len__`` + ``__getitem__``, so it works with
``torch.utils.data.DataLoader`` without importing torch here) plus the ``ClassSet`` that names its
label values. Every loader converts its on-disk encoding to the same in-memory form:

- ``Sample.image``: (H, W, 3) uint8 RGB.
- ``Sample.label``: (H, W) int64, class ids ``0..k-1`` and ``classes.ignore_index`` for void.

``PairedFileDataset`` is the common implementation for datasets stored as image/label file pairs;
the per-dataset modules only find the pairs and build the label lookup table.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qgn.classes import ClassSet
from qgn.data.imageio import read_rgb
from qgn.quadtree.label_io import read_label


class DatasetLayoutError(FileNotFoundError):
    """The files on disk do not have the layout a loader expects (message says what, where)."""


class LabelSizeError(ValueError):
    """A label map's size differs from its image's size."""


@dataclass(frozen=True, eq=False)
class Sample:
    """One image and its label map.

    image: (H, W, 3) uint8 RGB.
    label: (H, W) int64; class ids 0..k-1, or the dataset's ``classes.ignore_index`` for void.
    name:  identifier of the sample within its dataset (usually the file stem).

    Samples compare by identity (``eq=False``): array fields have no single truth value.
    """

    image: np.ndarray
    label: np.ndarray
    name: str


class SegmentationDataset:
    """Map-style dataset of ``Sample``s; subclasses set ``classes`` and implement the two methods."""

    classes: ClassSet

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, index: int) -> Sample:
        raise NotImplementedError

    def __iter__(self) -> Iterator[Sample]:
        """Iterate over all samples in order."""
        for index in range(len(self)):
            yield self[index]


def identity_lookup(num_classes: int, ignore_index: int, size: int = 256) -> np.ndarray:
    """A lookup table (size,) int64 mapping ``0..num_classes-1`` to themselves, all else to ignore."""
    table = np.full(size, ignore_index, dtype=np.int64)
    table[:num_classes] = np.arange(num_classes)
    return table


def apply_lookup(raw_label: np.ndarray, table: np.ndarray, label_path: Path) -> np.ndarray:
    """Map raw label values (H, W) uint8/uint16/int32 through ``table`` (N,) int64 → (H, W) int64."""
    if raw_label.size and (raw_label.min() < 0 or raw_label.max() >= len(table)):
        raise ValueError(
            f"label {label_path} has values in {raw_label.min()}..{raw_label.max()}; "
            f"expected 0..{len(table) - 1}"
        )
    return table[raw_label]


class PairedFileDataset(SegmentationDataset):
    """Samples read lazily from (image file, label file) pairs, labels mapped by a lookup table.

    pairs:        list of (image path, label path), in sample order.
    classes:      the label space after mapping.
    label_lookup: (N,) int64 table, raw label value → class id or ``classes.ignore_index``;
                  raw values ≥ N are an error. None keeps the raw values (they must be valid ids).
    names:        one name per pair (default: the image file stems).
    """

    def __init__(
        self,
        pairs: list[tuple[Path, Path]],
        classes: ClassSet,
        label_lookup: np.ndarray | None,
        names: list[str] | None = None,
    ) -> None:
        self.pairs = [(Path(image), Path(label)) for image, label in pairs]
        self.classes = classes
        self.label_lookup = label_lookup
        self.names = names if names is not None else [image.stem for image, _ in self.pairs]
        if len(self.names) != len(self.pairs):
            raise ValueError(f"{len(self.names)} names for {len(self.pairs)} image/label pairs")

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> Sample:
        if not -len(self) <= index < len(self):
            raise IndexError(f"sample index {index} out of range for {len(self)} samples")
        image_path, label_path = self.pairs[index]
        image = read_rgb(image_path)
        raw_label = self.read_raw_label(label_path)
        if raw_label.shape != image.shape[:2]:
            (lh, lw), (ih, iw) = raw_label.shape, image.shape[:2]
            raise LabelSizeError(
                f"label {label_path} is {lw}×{lh} but its image {image_path} is {iw}×{ih} (width×height)"
            )
        label = self.map_label(raw_label, label_path)
        return Sample(image=image, label=label, name=self.names[index])

    def read_raw_label(self, label_path: Path) -> np.ndarray:
        """The label file's values as stored, (H, W) integer array (overridable, e.g. colour-coded)."""
        return read_label(label_path)

    def map_label(self, raw_label: np.ndarray, label_path: Path) -> np.ndarray:
        """Raw values (H, W) → (H, W) int64 class ids / ignore, via ``label_lookup``."""
        if self.label_lookup is None:
            return raw_label.astype(np.int64)
        return apply_lookup(raw_label, self.label_lookup, label_path)


def list_subdirectories(directory: Path) -> str:
    """Comma-separated names of ``directory``'s subfolders, for error messages ('' if none)."""
    if not directory.is_dir():
        return ""
    return ", ".join(sorted(p.name for p in directory.iterdir() if p.is_dir()))


def no_images_error(pattern: Path, parent: Path) -> DatasetLayoutError:
    """The error for "no image matched ``pattern``", listing what ``parent`` does contain."""
    message = f"expected images under {pattern}; found none"
    if not parent.is_dir():
        message += f" ({parent} does not exist)"
    elif existing := list_subdirectories(parent):
        message += f" ({parent} has: {existing})"
    return DatasetLayoutError(message)


def missing_labels_error(missing: list[tuple[Path, Path]], total: int) -> DatasetLayoutError:
    """The error for images without a label file; ``missing`` is (image, expected label) pairs."""
    image, label = missing[0]
    return DatasetLayoutError(
        f"{len(missing)} of {total} images have no label file; e.g. expected {label} for {image}"
    )


def pair_by_rule(images: list[Path], label_for: Callable[[Path], Path]) -> list[tuple[Path, Path]]:
    """Pair each image with ``label_for(image)``; raise ``DatasetLayoutError`` if any label is absent."""
    pairs = [(image, label_for(image)) for image in images]
    missing = [(image, label) for image, label in pairs if not label.is_file()]
    if missing:
        raise missing_labels_error(missing, len(pairs))
    return pairs
