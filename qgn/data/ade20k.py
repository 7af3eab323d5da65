"""ADE20K scene parsing benchmark (ADEChallengeData2016), 150 classes.

Layout under ``root`` (the ``ADEChallengeData2016`` folder, or a folder containing it)::

    images/{training,validation}/{stem}.jpg
    annotations/{training,validation}/{stem}.png

``split`` is training / validation (aliases: train, val). Stored label 0 ("other objects") becomes
255 (ignore); 1..150 become class ids 0..149. Names are the first synonym of each entry of the
official ``objectInfo150`` table; the palette is the one used by the MIT scene-parsing tools.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from qgn.classes import ClassSet
from qgn.data.base import PairedFileDataset, no_images_error, pair_by_rule

IGNORE_INDEX = 255
SPLIT_FOLDERS = {"train": "training", "training": "training", "val": "validation", "validation": "validation"}

ADE20K_NAMES: tuple[str, ...] = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass",
    "cabinet", "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain",
    "chair", "car", "water", "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field",
    "armchair", "seat", "fence", "desk", "rock", "wardrobe", "lamp", "bathtub", "railing",
    "cushion", "base", "box", "column", "signboard", "chest of drawers", "counter", "sand", "sink",
    "skyscraper", "fireplace", "refrigerator", "grandstand", "path", "stairs", "runway", "case",
    "pool table", "pillow", "screen door", "stairway", "river", "bridge", "bookcase", "blind",
    "coffee table", "toilet", "flower", "book", "hill", "bench", "countertop", "stove", "palm",
    "kitchen island", "computer", "swivel chair", "boat", "bar", "arcade machine", "hovel", "bus",
    "towel", "light", "truck", "tower", "chandelier", "awning", "streetlight", "booth",
    "television receiver", "airplane", "dirt track", "apparel", "pole", "land", "bannister",
    "escalator", "ottoman", "bottle", "buffet", "poster", "stage", "van", "ship", "fountain",
    "conveyer belt", "canopy", "washer", "plaything", "swimming pool", "stool", "barrel", "basket",
    "waterfall", "tent", "bag", "minibike", "cradle", "oven", "ball", "food", "step", "tank",
    "trade name", "microwave", "pot", "animal", "bicycle", "lake", "dishwasher", "screen",
    "blanket", "sculpture", "hood", "sconce", "vase", "traffic light", "tray", "ashcan", "fan",
    "pier", "crt screen", "plate", "monitor", "bulletin board", "shower", "radiator", "glass",
    "clock", "flag",
)

ADE20K_PALETTE: tuple[tuple[int, int, int], ...] = (
    (120, 120, 120), (180, 120, 120), (6, 230, 230), (80, 50, 50), (4, 200, 3), (120, 120, 80),
    (140, 140, 140), (204, 5, 255), (230, 230, 230), (4, 250, 7), (224, 5, 255), (235, 255, 7),
    (150, 5, 61), (120, 120, 70), (8, 255, 51), (255, 6, 82), (143, 255, 140), (204, 255, 4),
    (255, 51, 7), (204, 70, 3), (0, 102, 200), (61, 230, 250), (255, 6, 51), (11, 102, 255),
    (255, 7, 71), (255, 9, 224), (9, 7, 230), (220, 220, 220), (255, 9, 92), (112, 9, 255),
    (8, 255, 214), (7, 255, 224), (255, 184, 6), (10, 255, 71), (255, 41, 10), (7, 255, 255),
    (224, 255, 8), (102, 8, 255), (255, 61, 6), (255, 194, 7), (255, 122, 8), (0, 255, 20),
    (255, 8, 41), (255, 5, 153), (6, 51, 255), (235, 12, 255), (160, 150, 20), (0, 163, 255),
    (140, 140, 140), (250, 10, 15), (20, 255, 0), (31, 255, 0), (255, 31, 0), (255, 224, 0),
    (153, 255, 0), (0, 0, 255), (255, 71, 0), (0, 235, 255), (0, 173, 255), (31, 0, 255),
    (11, 200, 200), (255, 82, 0), (0, 255, 245), (0, 61, 255), (0, 255, 112), (0, 255, 133),
    (255, 0, 0), (255, 163, 0), (255, 102, 0), (194, 255, 0), (0, 143, 255), (51, 255, 0),
    (0, 82, 255), (0, 255, 41), (0, 255, 173), (10, 0, 255), (173, 255, 0), (0, 255, 153),
    (255, 92, 0), (255, 0, 255), (255, 0, 245), (255, 0, 102), (255, 173, 0), (255, 0, 20),
    (255, 184, 184), (0, 31, 255), (0, 255, 61), (0, 71, 255), (255, 0, 204), (0, 255, 194),
    (0, 255, 82), (0, 10, 255), (0, 112, 255), (51, 0, 255), (0, 194, 255), (0, 122, 255),
    (0, 255, 163), (255, 153, 0), (0, 255, 10), (255, 112, 0), (143, 255, 0), (82, 0, 255),
    (163, 255, 0), (255, 235, 0), (8, 184, 170), (133, 0, 255), (0, 255, 92), (184, 0, 255),
    (255, 0, 31), (0, 184, 255), (0, 214, 255), (255, 0, 112), (92, 255, 0), (0, 224, 255),
    (112, 224, 255), (70, 184, 160), (163, 0, 255), (153, 0, 255), (71, 255, 0), (255, 0, 163),
    (255, 204, 0), (255, 0, 143), (0, 255, 235), (133, 255, 0), (255, 0, 235), (245, 0, 255),
    (255, 0, 122), (255, 245, 0), (10, 190, 212), (214, 255, 0), (0, 204, 255), (20, 0, 255),
    (255, 255, 0), (0, 153, 255), (0, 41, 255), (0, 255, 204), (41, 0, 255), (41, 255, 0),
    (173, 0, 255), (0, 245, 255), (71, 0, 255), (122, 0, 255), (0, 255, 184), (0, 92, 255),
    (184, 255, 0), (0, 133, 255), (255, 214, 0), (25, 194, 194), (102, 255, 0), (92, 0, 255),
)

ADE20K_CLASSES = ClassSet(names=ADE20K_NAMES, palette=ADE20K_PALETTE, ignore_index=IGNORE_INDEX)


def ade20k_lookup() -> np.ndarray:
    """Lookup table (256,) int64: stored value 0 → 255 (ignore), 1..150 → 0..149, others → 255."""
    table = np.full(256, IGNORE_INDEX, dtype=np.int64)
    table[1:151] = np.arange(150)
    return table


def find_ade20k_root(root: Path) -> Path:
    """``root`` itself, or ``root/ADEChallengeData2016`` when that is where ``images/`` lives."""
    nested = root / "ADEChallengeData2016"
    if not (root / "images").is_dir() and (nested / "images").is_dir():
        return nested
    return root


class ADE20kDataset(PairedFileDataset):
    """ADE20K split ``split`` (training / validation, or train / val) under ``root``."""

    def __init__(self, root: Path | str, split: str = "training") -> None:
        if split not in SPLIT_FOLDERS:
            raise ValueError(f"ADE20K split {split!r} unknown; expected one of {sorted(SPLIT_FOLDERS)}")
        root = find_ade20k_root(Path(root))
        folder = SPLIT_FOLDERS[split]
        image_dir = root / "images" / folder
        images = sorted(image_dir.glob("*.jpg"))
        if not images:
            raise no_images_error(image_dir / "*.jpg", root / "images")
        pairs = pair_by_rule(images, lambda image: root / "annotations" / folder / f"{image.stem}.png")
        super().__init__(pairs, ADE20K_CLASSES, ade20k_lookup())
