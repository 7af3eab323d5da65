"""Random label maps for tests: blocks of classes at a chosen cell size, with optional noise and
ignore pixels — the inputs the quadtree, ``.qgt`` and format tests check against their references."""
from __future__ import annotations

import numpy as np


def blocky_label(rng, h: int, w: int, classes: int, ignore: int | None = None, *, cell=8, noise: float = 0.0,
                 p_ignore: float = 0.05, void_cells: bool = False, dtype=np.int64) -> np.ndarray:
    """(h, w) ``dtype`` map of ``cell``-pixel blocks of class ids 0..classes-1.

    rng: a seed or a ``numpy.random.Generator`` (drawn from in place).
    cell: the block size, or a sequence of sizes to draw one from.
    noise: the fraction of pixels replaced by a random class (single-pixel detail).
    ignore: the ignore value; ``p_ignore`` of the pixels take it, or with ``void_cells`` whole
        blocks do (drawn as one more class).
    """
    rng = np.random.default_rng(rng)
    if not isinstance(cell, int):
        cell = int(rng.choice(cell))
    small = rng.integers(0, classes + 1 if void_cells else classes, (-(-h // cell), -(-w // cell)))
    label = np.repeat(np.repeat(small, cell, 0), cell, 1)[:h, :w]
    if void_cells:
        label = np.where(label == classes, ignore, label)
    if noise:
        label = np.where(rng.random((h, w)) < noise, rng.integers(0, classes, (h, w)), label)
    if ignore is not None and not void_cells:
        label = np.where(rng.random((h, w)) < p_ignore, ignore, label)
    return label.astype(dtype)
