"""``levels``: ``<stem>_L<l>.png`` for l = 0 … levels-1 (export only): each level-l cell of the
T-pyramid in its class colour, the ignore colour for void, composite cells hatched grey; cells of
4 px and more get a darker outline."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..classes import ClassSet
from ..fileio import atomic_write_bytes
from ..label_map import check_label
from ..quadtree import COMPOSITE, build_tpyramid
from .base import DEFAULT_LEVELS, Format, out_file, png_bytes

HATCH_DARK, HATCH_LIGHT = (150, 150, 150), (205, 205, 205)


def level_image(tp, classes: ClassSet, level: int) -> np.ndarray:
    """(H, W, 3) uint8 picture of T-pyramid level ``level``: class colours, the ignore colour for
    void, composite cells hatched grey, a darker outline around cells of 4 px and more."""
    k = classes.num_classes
    table = np.zeros((k + 2, 3), np.uint8)
    table[1 : k + 1] = classes.palette
    table[k + 1] = classes.ignore_color
    codes = tp.levels[level]
    size = 1 << level
    full = np.repeat(np.repeat(codes, size, axis=0), size, axis=1)[: tp.height, : tp.width]
    rgb = table[full]
    yy, xx = np.mgrid[: tp.height, : tp.width]
    composite = full == COMPOSITE
    hatch = ((xx + yy) // 3) % 2 == 0
    rgb[composite & hatch] = HATCH_DARK
    rgb[composite & ~hatch] = HATCH_LIGHT
    if size >= 4:
        edge = ((xx % size == 0) | (yy % size == 0)) & ~composite
        rgb[edge] = (rgb[edge] * 0.55).astype(np.uint8)
    return rgb


def write_level_files(label, classes: ClassSet, out_dir: Path, stem: str, levels: int = DEFAULT_LEVELS) -> list[Path]:
    tp = build_tpyramid(check_label(label, classes), classes.num_classes, classes.ignore_index, levels, "class")
    paths = []
    for level in range(levels):
        path = out_file(out_dir, f"{stem}_L{level}.png")
        atomic_write_bytes(path, png_bytes(Image.fromarray(level_image(tp, classes, level), "RGB")))
        paths.append(path)
    return paths


FORMAT = Format("levels", "one visualisation PNG per quadtree level (<stem>_L<l>.png); export only", ".png",
                write_level_files, None)
