"""Quadtree labels (paper Eq. 1): the set of leaves Q = {(l, x, y, v)} of a label map.

A cell (l, x, y) is a *leaf* when it is uniform (its T-pyramid code is not COMPOSITE) and either it
is a root cell (l = L-1) or its parent is composite. The leaves tile the padded label map exactly
once, and no four sibling leaves share a value (that is what makes the set *canonical*: the merge
operator would have merged them). ``x`` is the column and ``y`` the row of a cell on its level's
grid; a level-l cell covers pixels [y·2^l, (y+1)·2^l) × [x·2^l, (x+1)·2^l).

Values are T-pyramid codes: 1..k for classes 0..k-1 and k+1 for VOID (ignore or padding); see
``qgn.quadtree.tpyramid``. Conversions label ↔ TPyramid ↔ Quadtree are lossless.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .tpyramid import COMPOSITE, NUM_LEVELS, TPyramid, build_tpyramid, code_dtype, label_to_codes, merge_2x2


class QuadtreeError(ValueError):
    """Leaves that do not form a canonical quadtree of the stated size."""


# Offsets of a cell's four children in Z order: (0,0) (0,1) (1,0) (1,1) as (dy, dx).
_CHILD_DY = np.array([0, 0, 1, 1], np.int64)
_CHILD_DX = np.array([0, 1, 0, 1], np.int64)


def _count_composite(grid: np.ndarray) -> int:
    """Composite cells of a code grid, counted a band of rows at a time (no full-size temporary)."""
    band = max(1, (1 << 22) // max(grid.shape[1], 1))
    return sum(int(np.count_nonzero(grid[r:r + band] == COMPOSITE)) for r in range(0, grid.shape[0], band))


def _upsample(codes: np.ndarray) -> np.ndarray:
    """(h, w) → (2h, 2w): nearest-neighbour 2× upsampling of a code grid (four strided writes,
    about 3× faster than two np.repeat calls)."""
    h, w = codes.shape
    out = np.empty((2 * h, 2 * w), codes.dtype)
    for dy in (0, 1):
        for dx in (0, 1):
            out[dy::2, dx::2] = codes
    return out


@dataclass(frozen=True, eq=False)
class Quadtree:
    """The leaves of a quadtree label map.

    level:  (N,) uint8, the leaf's level l (cell size 2^l pixels).
    x, y:   (N,) int32, column and row of the leaf on its level's grid.
    value:  (N,) uint8/uint16, the leaf's code (1..k class c+1, k+1 VOID).
    num_levels, num_classes, ignore_value, height, width: as in ``TPyramid`` (height/width are the
    original, unpadded size; the padded size is a multiple of 2^(num_levels-1)).
    Leaves from ``from_tpyramid`` come level by level from the root down; equality ignores order.
    """

    level: np.ndarray
    x: np.ndarray
    y: np.ndarray
    value: np.ndarray
    num_levels: int
    num_classes: int
    ignore_value: int | None
    height: int
    width: int

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_tpyramid(cls, tp: TPyramid) -> "Quadtree":
        """The leaves of a T-pyramid built with the lossless "class" ignore policy."""
        if tp.policy != "class":
            raise ValueError("a Quadtree needs a T-pyramid built with ignore policy 'class' (lossless)")
        top = tp.num_levels - 1
        root = tp.levels[top]
        y, x = np.nonzero(root != COMPOSITE)
        levels, ys, xs, vals = [np.full(len(y), top, np.uint8)], [y], [x], [root[y, x]]
        comp_y, comp_x = np.nonzero(root == COMPOSITE)
        for lvl in range(top - 1, -1, -1):
            # Only children of composite parents can be leaves: O(leaves), not O(pixels).
            y = (2 * comp_y[:, None] + _CHILD_DY).ravel()
            x = (2 * comp_x[:, None] + _CHILD_DX).ravel()
            v = tp.levels[lvl][y, x]
            is_leaf = v != COMPOSITE
            levels.append(np.full(int(is_leaf.sum()), lvl, np.uint8))
            ys.append(y[is_leaf])
            xs.append(x[is_leaf])
            vals.append(v[is_leaf])
            comp_y, comp_x = y[~is_leaf], x[~is_leaf]
        ys = [a.astype(np.int32) for a in ys]
        xs = [a.astype(np.int32) for a in xs]
        qt = cls(
            np.concatenate(levels), np.concatenate(xs), np.concatenate(ys), np.concatenate(vals),
            tp.num_levels, tp.num_classes, tp.ignore_value, tp.height, tp.width,
        )
        qt.__dict__["_pyramid"] = tp  # already known; skip the repaint in to_tpyramid()
        return qt

    @classmethod
    def from_label(
        cls, label: np.ndarray, num_classes: int, ignore_value: int | None = None, levels: int = NUM_LEVELS
    ) -> "Quadtree":
        """Leaves of a label map (H, W) int; see ``build_tpyramid`` for the arguments."""
        return cls.from_tpyramid(build_tpyramid(label, num_classes, ignore_value, levels, "class"))

    # ------------------------------------------------------------------ conversions
    @property
    def padded_shape(self) -> tuple[int, int]:
        cell = 1 << (self.num_levels - 1)
        return -(-self.height // cell) * cell, -(-self.width // cell) * cell

    @property
    def void(self) -> int:
        return self.num_classes + 1

    def __len__(self) -> int:
        return len(self.value)

    def to_tpyramid(self) -> TPyramid:
        """The T-pyramid these leaves describe (cached). Raises QuadtreeError if the leaves do not
        tile the padded size exactly once or are not canonical."""
        return self._pyramid

    @cached_property
    def _pyramid(self) -> TPyramid:
        return TPyramid(self._paint(), self.num_classes, self.ignore_value, self.height, self.width)

    def _leaves_of_level(self, lvl: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(y, x, value) of the level-``lvl`` leaves: views (no copy) when the leaves come level by
        level from the root down, as every reader and ``from_tpyramid`` give them."""
        bounds = self.__dict__.get("_level_bounds")
        if bounds is None:
            descending = bool(len(self.level) < 2 or (np.diff(self.level.astype(np.int8)) <= 0).all())
            if descending:
                order = -self.level.astype(np.int8)
                starts = np.searchsorted(order, -np.arange(self.num_levels), "left")
                ends = np.searchsorted(order, -np.arange(self.num_levels), "right")
                bounds = list(zip(starts.tolist(), ends.tolist()))
            else:
                bounds = False
            self.__dict__["_level_bounds"] = bounds
        if bounds:
            a, b = bounds[lvl]
            return self.y[a:b], self.x[a:b], self.value[a:b]
        sel = self.level == lvl
        return self.y[sel], self.x[sel], self.value[sel]

    def _paint(self) -> tuple[np.ndarray, ...]:
        """Paint leaves top-down into per-level code grids, checking tiling and canonical form."""
        ph, pw = self.padded_shape
        top = self.num_levels - 1
        dtype = code_dtype(self.num_classes)
        grids: list[np.ndarray] = [np.empty(0)] * self.num_levels
        grid = np.zeros((ph >> top, pw >> top), dtype)
        open_cells = grid.size  # composite (not yet covered) cells of the current level: no full-size temporaries
        for lvl in range(top, -1, -1):
            if lvl < top:
                grid = _upsample(grids[lvl + 1])
                open_cells *= 4
            y, x, v = self._leaves_of_level(lvl)
            if len(y):
                gh, gw = grid.shape
                if y.min() < 0 or x.min() < 0 or y.max() >= gh or x.max() >= gw:
                    raise QuadtreeError(f"a level-{lvl} leaf lies outside the {gw}×{gh} grid of that level")
                if (grid[y, x] != COMPOSITE).any():
                    raise QuadtreeError(f"level-{lvl} leaves overlap cells already covered by coarser leaves")
                if (v == COMPOSITE).any() or (v > self.void).any():
                    raise QuadtreeError(f"a level-{lvl} leaf has a code outside 1..{self.void}")
                grid[y, x] = v
                if open_cells - _count_composite(grid) != len(y):
                    raise QuadtreeError(f"two level-{lvl} leaves share a cell")
                open_cells -= len(y)
            grids[lvl] = grid
        if open_cells:
            raise QuadtreeError("the leaves leave part of the label map uncovered")
        for lvl in range(top):
            band = max(2, (1 << 22) // max(grids[lvl].shape[1], 1)) & ~1  # rows per check: bounded temporaries
            for r in range(0, grids[lvl].shape[0], band):
                merged = merge_2x2(grids[lvl][r:r + band])
                if not np.array_equal(merged, grids[lvl + 1][r // 2:(r + band) // 2]):
                    raise QuadtreeError(f"four sibling leaves at level {lvl} share one value (not canonical)")
        return tuple(grids)

    def to_label(self) -> np.ndarray:
        """The label map (height, width), ignore pixels = ``ignore_value``; the smallest integer
        dtype that holds the values (``TPyramid.to_label``)."""
        return self.to_tpyramid().to_label()

    def value_at(self, level: int, x: int, y: int) -> int:
        """T(l, x, y): the code of any cell (not only leaves): O(1) after the first call."""
        return self.to_tpyramid().value(level, x, y)

    def labels(self) -> np.ndarray:
        """(N,) int64: each leaf's label-space value (class id, or the ignore value / -1 for VOID)."""
        v = self.value.astype(np.int64)
        void_out = self.ignore_value if self.ignore_value is not None else -1
        return np.where(v == self.void, void_out, v - 1)

    def validate(self) -> None:
        """Raise QuadtreeError unless the leaves tile the padded size once and are canonical."""
        self.to_tpyramid()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Quadtree):
            return NotImplemented
        meta = ("num_levels", "num_classes", "ignore_value", "height", "width")
        if any(getattr(self, m) != getattr(other, m) for m in meta):
            return False
        mine, theirs = self._canonical_order(), other._canonical_order()
        return all(
            np.array_equal(getattr(self, a)[mine], getattr(other, a)[theirs]) for a in ("level", "x", "y", "value")
        )

    def _canonical_order(self) -> np.ndarray:
        """(N,) int64 permutation: root level first, then row-major within a level."""
        return np.lexsort((self.x, self.y, -self.level.astype(np.int64)))

    __hash__ = None  # type: ignore[assignment]


def image_leaves(
    label: np.ndarray, num_classes: int, ignore_value: int | None = None, levels: int = NUM_LEVELS
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The leaves of ``label``'s quadtree as a picture of the image shows them: (level, x, y, value)
    arrays like ``Quadtree``'s, of the cells that overlap the (H, W) image, the padding up to the
    root size taking no part in the merge.

    The canonical ``Quadtree`` pads with VOID (right for files: lossless, one representation), so a
    root cell straddling the right or bottom edge is composite wherever the image part is not void,
    and splits into a strip of cells down to the edge. Here such a cell is one leaf when its part
    inside the image is uniform. The label is padded by repeating its last row and column: the
    padding inside any cell that overlaps the image copies pixels of that same cell, so the cell is
    uniform exactly when its part inside the image is. Cells wholly in the padding are left out.
    """
    codes = label_to_codes(label, num_classes, ignore_value, levels)  # VOID-padded, 1-2 bytes a pixel
    height, width = np.asarray(label).shape
    codes[height:, :width] = codes[height - 1, :width]  # the padding repeats the last row and column,
    codes[:, width:] = codes[:, width - 1:width]  # in place: no copy of the label at its own dtype
    pyramid = [codes]
    for _ in range(levels - 1):
        pyramid.append(merge_2x2(pyramid[-1]))
    tree = Quadtree.from_tpyramid(TPyramid(tuple(pyramid), num_classes, ignore_value, *codes.shape))
    size = np.left_shift(1, tree.level.astype(np.int64))
    inside = (tree.x.astype(np.int64) * size < width) & (tree.y.astype(np.int64) * size < height)
    return tree.level[inside], tree.x[inside], tree.y[inside], tree.value[inside]
