"""Cityscapes (fine annotations), 19 evaluation classes.

Layout under ``root``::

    leftImg8bit/{split}/{city}/{stem}_leftImg8bit.png
    gtFine/{split}/{city}/{stem}_gtFine_labelIds.png

``split`` is train, val or test. The 34 stored label ids are mapped to the 19 train ids of the
official table (cityscapesScripts ``labels.py``); every other value becomes 255 (ignore).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from qgn.classes import ClassSet
from qgn.data.base import PairedFileDataset, no_images_error, pair_by_rule

IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_SUFFIX = "_gtFine_labelIds.png"
IGNORE_INDEX = 255

# (label id, train id, name, colour) for the 19 evaluated classes.
CITYSCAPES_TRAIN_CLASSES: tuple[tuple[int, int, str, tuple[int, int, int]], ...] = (
    (7, 0, "road", (128, 64, 128)),
    (8, 1, "sidewalk", (244, 35, 232)),
    (11, 2, "building", (70, 70, 70)),
    (12, 3, "wall", (102, 102, 156)),
    (13, 4, "fence", (190, 153, 153)),
    (17, 5, "pole", (153, 153, 153)),
    (19, 6, "traffic light", (250, 170, 30)),
    (20, 7, "traffic sign", (220, 220, 0)),
    (21, 8, "vegetation", (107, 142, 35)),
    (22, 9, "terrain", (152, 251, 152)),
    (23, 10, "sky", (70, 130, 180)),
    (24, 11, "person", (220, 20, 60)),
    (25, 12, "rider", (255, 0, 0)),
    (26, 13, "car", (0, 0, 142)),
    (27, 14, "truck", (0, 0, 70)),
    (28, 15, "bus", (0, 60, 100)),
    (31, 16, "train", (0, 80, 100)),
    (32, 17, "motorcycle", (0, 0, 230)),
    (33, 18, "bicycle", (119, 11, 32)),
)

CITYSCAPES_CLASSES = ClassSet(
    names=tuple(name for _, _, name, _ in CITYSCAPES_TRAIN_CLASSES),
    palette=tuple(colour for _, _, _, colour in CITYSCAPES_TRAIN_CLASSES),
    ignore_index=IGNORE_INDEX,
)


def label_id_to_train_id() -> np.ndarray:
    """Lookup table (256,) int64: Cityscapes label id → train id 0..18, or 255 (ignore)."""
    table = np.full(256, IGNORE_INDEX, dtype=np.int64)
    for label_id, train_id, _, _ in CITYSCAPES_TRAIN_CLASSES:
        table[label_id] = train_id
    return table


class CityscapesDataset(PairedFileDataset):
    """Cityscapes fine-annotation split ``split`` (train / val / test) under ``root``."""

    def __init__(self, root: Path | str, split: str = "train") -> None:
        root = Path(root)
        image_dir = root / "leftImg8bit" / split
        pattern = image_dir / "*" / f"*{IMAGE_SUFFIX}"
        images = sorted(image_dir.glob(f"*/*{IMAGE_SUFFIX}"))
        if not images:
            raise no_images_error(pattern, root / "leftImg8bit")

        def label_for(image: Path) -> Path:
            stem = image.name[: -len(IMAGE_SUFFIX)]
            return root / "gtFine" / split / image.parent.name / f"{stem}{LABEL_SUFFIX}"

        pairs = pair_by_rule(images, label_for)
        names = [image.name[: -len(IMAGE_SUFFIX)] for image in images]
        super().__init__(pairs, CITYSCAPES_CLASSES, label_id_to_train_id(), names)
