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


def cell_edges_path(horizontal: np.ndarray, vertical: np.ndarray, cell: int) -> QtGui.QPainterPath:
    """Cell edges as line segments, each straight run of edges one segment (a full grid of h x w
    cells is h + w + 2 lines, not 4hw: the raster engine strokes per segment).

    horizontal: (h+1, w) bool, the edge along y = row from x = col to col + 1 (in cells).
    vertical:   (h, w+1) bool, the edge along x = col from y = row to row + 1.
    """
    rows, start, stop = mask_runs(horizontal)
    cols, vstart, vstop = mask_runs(vertical.T)
    x0 = np.concatenate([start, cols]) * cell
    y0 = np.concatenate([rows, vstart]) * cell
    x1 = np.concatenate([stop, cols]) * cell
    y1 = np.concatenate([rows, vstop]) * cell
    xs = np.stack([x0, x1], axis=1).ravel()
    ys = np.stack([y0, y1], axis=1).ravel()
    return _path(xs, ys, np.tile(np.array([1, 0]), len(x0)))


def mask_boundary_path(mask: np.ndarray, cell: int) -> QtGui.QPainterPath:
    """The outline of the True region of ``mask``: every cell edge between True and False."""
    padded = np.zeros((mask.shape[0] + 2, mask.shape[1] + 2), bool)
    padded[1:-1, 1:-1] = mask
    horizontal = padded[1:, 1:-1] != padded[:-1, 1:-1]  # (h+1, w)
    vertical = padded[1:-1, 1:] != padded[1:-1, :-1]  # (h, w+1)
    return cell_edges_path(horizontal, vertical, cell)


def cell_outlines_path(mask: np.ndarray, cell: int) -> QtGui.QPainterPath | None:
    """Every True cell of ``mask`` outlined; None when there are more than MAX_OUTLINED_CELLS."""
    if int(np.count_nonzero(mask)) > MAX_OUTLINED_CELLS:
        return None
    h, w = mask.shape
    horizontal = np.zeros((h + 1, w), bool)
    horizontal[:-1] |= mask
    horizontal[1:] |= mask
    vertical = np.zeros((h, w + 1), bool)
    vertical[:, :-1] |= mask
    vertical[:, 1:] |= mask
    return cell_edges_path(horizontal, vertical, cell)


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
