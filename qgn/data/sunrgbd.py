"""SUN RGB-D indoor scenes, in the 13-class and the 37-class label spaces (RGB only, no depth).

SUN RGB-D has no single canonical file layout, so QGN Studio expects this one under ``root``::

    image/{split}/{stem}.jpg          (or .png) RGB images
    label13/{split}/{stem}.png        8-bit class ids, 13-class variant
    label37/{split}/{stem}.png        8-bit class ids, 37-class variant

``split`` is train (5285 images in the standard split) or test (5050); ``val`` is accepted as an
alias of test, since SUN RGB-D has no separate validation set. Only the label folder of the
variant being opened needs to exist. Stored value 0 is void → 255 (ignore); 1..k → 0..k-1.

The 37 classes are those of the SUN RGB-D benchmark (Song et al., CVPR 2015); the 13 classes are
the NYUv2-13 grouping of Couprie et al. / Handa et al. Palettes are the library's default ones.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from qgn.classes import ClassSet
from qgn.data.base import PairedFileDataset, no_images_error, pair_by_rule

IGNORE_INDEX = 255
SPLIT_FOLDERS = {"train": "train", "test": "test", "val": "test"}
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")

SUNRGBD13_NAMES: tuple[str, ...] = (
    "bed", "books", "ceiling", "chair", "floor", "furniture", "objects", "picture", "sofa",
    "table", "tv", "wall", "window",
)

SUNRGBD37_NAMES: tuple[str, ...] = (
    "wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf",
    "picture", "counter", "blinds", "desk", "shelves", "curtain", "dresser", "pillow", "mirror",
    "floor mat", "clothes", "ceiling", "books", "fridge", "tv", "paper", "towel", "shower curtain",
    "box", "whiteboard", "person", "night stand", "toilet", "sink", "lamp", "bathtub", "bag",
)

SUNRGBD13_CLASSES = ClassSet(names=SUNRGBD13_NAMES, ignore_index=IGNORE_INDEX)
SUNRGBD37_CLASSES = ClassSet(names=SUNRGBD37_NAMES, ignore_index=IGNORE_INDEX)
CLASSES_BY_VARIANT = {13: SUNRGBD13_CLASSES, 37: SUNRGBD37_CLASSES}


def void_first_lookup(num_classes: int) -> np.ndarray:
    """Lookup table (256,) int64: 0 → 255 (ignore), 1..k → 0..k-1, larger values → 255."""
    table = np.full(256, IGNORE_INDEX, dtype=np.int64)
    table[1 : num_classes + 1] = np.arange(num_classes)
    return table


class SUNRGBDDataset(PairedFileDataset):
    """SUN RGB-D split ``split`` (train / test) under ``root`` with ``num_classes`` 13 or 37."""

    def __init__(self, root: Path | str, split: str = "train", num_classes: int = 37) -> None:
        if num_classes not in CLASSES_BY_VARIANT:
            raise ValueError(f"SUN RGB-D has 13- and 37-class variants, not {num_classes}")
        if split not in SPLIT_FOLDERS:
            raise ValueError(f"SUN RGB-D split {split!r} unknown; expected one of {sorted(SPLIT_FOLDERS)}")
        root = Path(root)
        folder = SPLIT_FOLDERS[split]
        image_dir = root / "image" / folder
        images = sorted(p for p in image_dir.glob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not images:
            raise no_images_error(image_dir / "*.jpg", root / "image")
        label_dir = root / f"label{num_classes}" / folder
        pairs = pair_by_rule(images, lambda image: label_dir / f"{image.stem}.png")
        super().__init__(pairs, CLASSES_BY_VARIANT[num_classes], void_first_lookup(num_classes))
