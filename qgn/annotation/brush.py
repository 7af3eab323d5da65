"""A brush of more than one cell: the cells within a radius (in cells) around each stroke point.

``brush_offsets(radius)`` are the cell offsets ``(dx, dy)`` with ``dx² + dy² <= radius² + radius``
(a round disk of cells: radius 0 is one cell, radius 1 the 3×3 block, radius 2 21 cells), and ``brush_points(level, points, radius)`` turns stroke points into
one point per cell of the brush, ready for ``qgn.annotation.edit.paint_cells``.
"""
from __future__ import annotations

import numpy as np

MAX_RADIUS = 16


def brush_offsets(radius: int) -> np.ndarray:
    """(K, 2) int64 cell offsets ``dx, dy`` of a round brush of ``radius`` cells (0 … MAX_RADIUS)."""
    radius = int(radius)
    if not 0 <= radius <= MAX_RADIUS:
        raise ValueError(f"brush radius must be 0 … {MAX_RADIUS} cells; got {radius}")
    d = np.arange(-radius, radius + 1)
    dy, dx = np.meshgrid(d, d, indexing="ij")
    inside = dx * dx + dy * dy <= radius * radius + radius
    return np.stack([dx[inside], dy[inside]], axis=1).astype(np.int64)


def brush_points(level: int, points: np.ndarray, radius: int) -> np.ndarray:
    """(P·K, 2) int64 ``x, y``: the top-left pixel of every level-``level`` cell of the brush
    around each of ``points`` (P, 2) ``x, y`` image coordinates (duplicates and cells outside
    the image are left in; ``paint_cells`` ignores them)."""
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    size = 1 << int(level)
    cells = np.floor(pts / size).astype(np.int64)
    if radius == 0:
        return cells * size
    around = cells[:, None, :] + brush_offsets(radius)[None, :, :]
    return around.reshape(-1, 2) * size
