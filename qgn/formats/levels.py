"""``levels``: ``<stem>_L<l>.png`` for l = 0 … levels-1 (export only): each level-l cell of the
T-pyramid in its class colour, the ignore colour for void, composite cells hatched grey; cells of
4 px and more get a darker outline."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..classes import ClassSet
from ..fileio import atomic_write_bytes
from ..label_map import check_label
from ..quadtree import COMPOSITE, NUM_LEVELS, build_tpyramid
from .base import Format, out_file
from .png_bands import encode_png

HATCH_DARK, HATCH_LIGHT = (150, 150, 150), (205, 205, 205)


def level_image(tp, classes: ClassSet, level: int) -> np.ndarray:
    """(H, W, 3) uint8 picture of T-pyramid level ``level``: class colours, the ignore colour for
    void, composite cells hatched grey, a darker outline around cells of 4 px and more."""
    return level_rows(tp, classes, level, 0, tp.height)


def level_rows(tp, classes: ClassSet, level: int, y0: int, y1: int) -> np.ndarray:
    """Rows ``y0 … y1-1`` of ``level_image`` ((y1 - y0, W, 3) uint8), made on their own."""
    k = classes.num_classes
    table = np.zeros((k + 2, 3), np.uint8)
    table[1 : k + 1] = classes.palette
    table[k + 1] = classes.ignore_color
    codes = tp.levels[level]
    size = 1 << level
    w = tp.width
    ys = np.arange(y0, y1, dtype=np.int64)
    rows = ys >> level  # pixel row -> cell row (no H×W index arrays)
    cols = np.arange(w, dtype=np.int64) >> level
    full = codes[rows[:, None], cols[None, :]]  # (rows, W) codes, the code grid's dtype
    rgb = table[full]
    composite = full == COMPOSITE
    del full
    hatch = np.add.outer((ys % 6).astype(np.uint8), (np.arange(w) % 6).astype(np.uint8)) % 6 < 3
    rgb[composite & hatch] = HATCH_DARK  # ((x + y) // 3) % 2 == 0  <=>  (x + y) % 6 < 3
    rgb[composite & ~hatch] = HATCH_LIGHT
    del hatch
    if size >= 4:
        edge = np.logical_or.outer(ys % size == 0, np.arange(w) % size == 0) & ~composite
        rgb[edge] = (rgb[edge].astype(np.uint16) * 55 // 100).astype(np.uint8)  # = int(v * 0.55), exactly
    return rgb


def write_level_files(label, classes: ClassSet, out_dir: Path, stem: str, levels: int = NUM_LEVELS) -> list[Path]:
    """One picture per level, each encoded a band of rows at a time (``qgn.formats.png_bands``):
    the memory beyond the label map is the T-pyramid (1⅓ B/px) and the files."""
    tp = build_tpyramid(check_label(label, classes, copy=False), classes.num_classes, classes.ignore_index, levels,
                        "class")
    paths = []
    for level in range(levels):
        path = out_file(out_dir, f"{stem}_L{level}.png")
        atomic_write_bytes(path, encode_png(tp.height, tp.width, "RGB",
                                            lambda y0, y1, _level=level: level_rows(tp, classes, _level, y0, y1)))
        paths.append(path)
    return paths


FORMAT = Format("levels", "one visualisation PNG per quadtree level (<stem>_L<l>.png); export only", ".png",
                write_level_files, None)
