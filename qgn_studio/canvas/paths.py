"""Vector outlines for the overlays, built from numpy arrays (safe to build on the worker thread).

Coordinates are image pixels: a level-l cell (x, y) covers [x·2^l, (x+1)·2^l) × [y·2^l, (y+1)·2^l).
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtGui

# Cell outlines are drawn for a level only up to this many cells; beyond, the cells are a few
# pixels wide at any zoom that shows them all, and the tint alone reads better (and paints faster).
MAX_OUTLINED_CELLS = 60_000


def _path(xs: np.ndarray, ys: np.ndarray, connect: np.ndarray) -> QtGui.QPainterPath:
    if xs.size == 0:
        return QtGui.QPainterPath()
    return pg.arrayToQPath(xs.astype(np.float64), ys.astype(np.float64), connect.astype(np.int32), finiteCheck=False)


def rectangles_path(x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray) -> QtGui.QPainterPath:
    """Closed rectangles [x0, x1] × [y0, y1] (one subpath each), fillable."""
    xs = np.stack([x0, x1, x1, x0, x0], axis=1).ravel()
    ys = np.stack([y0, y0, y1, y1, y0], axis=1).ravel()
    connect = np.tile(np.array([1, 1, 1, 1, 0]), len(x0))
    return _path(xs, ys, connect)


def mask_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Horizontal runs of True in a (h, w) bool mask → (row, start, stop) arrays (stop exclusive)."""
    padded = np.zeros((mask.shape[0], mask.shape[1] + 2), np.int8)
    padded[:, 1:-1] = mask
    rows, cols = np.nonzero(np.diff(padded, axis=1))
    return rows[0::2], cols[0::2], cols[1::2]


def cells_region_path(mask: np.ndarray, cell: int) -> QtGui.QPainterPath:
    """The union of the True cells of ``mask`` (cells of ``cell`` pixels), as row runs."""
    rows, start, stop = mask_runs(mask)
    return rectangles_path(start * cell, rows * cell, stop * cell, (rows + 1) * cell)


def mask_boundary_path(mask: np.ndarray, cell: int) -> QtGui.QPainterPath:
    """The outline of the True region of ``mask``: every cell edge between True and False."""
    padded = np.zeros((mask.shape[0] + 2, mask.shape[1] + 2), bool)
    padded[1:-1, 1:-1] = mask
    # Vertical edges at x = column index, between padded columns x and x+1 (row y-1 of mask).
    ys, xs = np.nonzero(padded[1:-1, 1:] != padded[1:-1, :-1])
    vx0, vy0, vx1, vy1 = xs, ys, xs, ys + 1
    ys, xs = np.nonzero(padded[1:, 1:-1] != padded[:-1, 1:-1])
    hx0, hy0, hx1, hy1 = xs, ys, xs + 1, ys
    x0 = np.concatenate([vx0, hx0]) * cell
    y0 = np.concatenate([vy0, hy0]) * cell
    x1 = np.concatenate([vx1, hx1]) * cell
    y1 = np.concatenate([vy1, hy1]) * cell
    xs = np.stack([x0, x1], axis=1).ravel()
    ys = np.stack([y0, y1], axis=1).ravel()
    return _path(xs, ys, np.tile(np.array([1, 0]), len(x0)))


def cell_outlines_path(mask: np.ndarray, cell: int) -> QtGui.QPainterPath | None:
    """Every True cell of ``mask`` outlined; None when there are more than MAX_OUTLINED_CELLS."""
    ys, xs = np.nonzero(mask)
    if len(xs) > MAX_OUTLINED_CELLS:
        return None
    return rectangles_path(xs * cell, ys * cell, (xs + 1) * cell, (ys + 1) * cell)


def leaf_grid_paths(level: np.ndarray, x: np.ndarray, y: np.ndarray, width: int, height: int) -> dict:
    """Outlines of quadtree leaves at their true size, one path per level: each leaf's top and left
    edge (every boundary between two leaves is one of them; the image border is ``"border"``), a
    leaf across the right/bottom edge clipped there."""
    paths: dict = {}
    for lv in np.unique(level):
        sel = level == lv
        size = 1 << int(lv)
        x0, y0 = x[sel].astype(np.int64) * size, y[sel].astype(np.int64) * size
        keep = (x0 < width) & (y0 < height)
        x0, y0 = x0[keep], y0[keep]
        x1, y1 = np.minimum(x0 + size, width), np.minimum(y0 + size, height)  # a cell across the edge ends there
        xs = np.stack([x0, x0, x1], axis=1).ravel()
        ys = np.stack([y1, y0, y0], axis=1).ravel()
        paths[int(lv)] = _path(xs, ys, np.tile(np.array([1, 1, 0]), len(x0)))
    border = QtGui.QPainterPath()
    border.addRect(0, 0, width, height)
    paths["border"] = border
    return paths


def leaf_masks(level: np.ndarray, x: np.ndarray, y: np.ndarray, width: int, height: int) -> dict[int, np.ndarray]:
    """Per level, (h_l, w_l) bool: the leaves of that level (cells covering the image)."""
    masks = {}
    for lv in np.unique(level):
        lv = int(lv)
        sel = level == lv
        h, w = -(-height // (1 << lv)), -(-width // (1 << lv))
        mask = np.zeros((h, w), bool)
        ys, xs = y[sel].astype(np.int64), x[sel].astype(np.int64)
        keep = (ys < h) & (xs < w)
        mask[ys[keep], xs[keep]] = True
        masks[lv] = mask
    return masks
