"""The label space of the synthetic scenes: class ids and ``SYNTHETIC_CLASSES``."""
from __future__ import annotations

from qgn.classes import ClassSet

SKY, GRASS, ROAD, BUILDING, TREE, POLE, SIGN, FENCE = range(8)

SYNTHETIC_CLASSES = ClassSet(
    names=("sky", "grass", "road", "building", "tree", "pole", "sign", "fence"),
    palette=(
        (70, 130, 180), (152, 251, 152), (128, 64, 128), (70, 70, 70),
        (107, 142, 35), (153, 153, 153), (220, 220, 0), (190, 153, 153),
    ),
    ignore_index=255,
)
