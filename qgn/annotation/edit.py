"""Label edits: what the annotation tools change in a label map, and how to undo it (Qt-free).

A label map is an ``np.ndarray (H, W)`` of an unsigned integer dtype (uint8 or uint16) holding class
ids ``0..k-1`` and, optionally, the class set's ignore value. A *cell at level l* is the
``2**l × 2**l`` block of pixels aligned to (0, 0) — rows ``[cy·2^l, (cy+1)·2^l)``, columns
``[cx·2^l, (cx+1)·2^l)`` — clipped at the image border; a point ``(x, y)`` in image coordinates lies
in pixel ``(floor(x), floor(y))``.

Every tool returns a ``LabelEdit`` without touching the map: the flat indices of the pixels that
change, their values before and after. Applying and reverting an edit are O(changed pixels), so an
undo stack of edits costs memory in proportion to what the user changed, not to the image size.
Painting at a coarse level merges cells, painting at a fine level splits them: the quadtree is
always derived from the label map (``Quadtree.from_label``), never edited directly.
"""
from __future__ import annotations

import numpy as np

from ..quadtree import ROOT_LEVEL


class LabelEdit:
    """A change of some pixels of one label map.

    index:  (M,) int64 flat pixel indices into the (H, W) map (row-major), sorted and unique.
    before: (M,) label dtype, the values at ``index`` before the edit.
    after:  (M,) label dtype, the values at ``index`` after the edit.

    A large edit is held instead as ``rows`` = (y0, mask): mask (R, W) bool over the map's rows
    ``y0 … y0+R-1``, True at the changed pixels (``LabelEdit.of_rows``): one byte a pixel of those
    rows instead of eight a changed pixel, applied and reverted by one masked write of those rows.
    Its ``index`` is then derived on each use (not kept: the undo log stays small).
    """

    __slots__ = ("_index", "before", "after", "rows")

    def __init__(self, index: np.ndarray, before: np.ndarray, after: np.ndarray):
        if not (index.ndim == before.ndim == after.ndim == 1):
            raise ValueError("LabelEdit: index, before and after must be 1-D")
        if not (len(index) == len(before) == len(after)):
            raise ValueError(
                f"LabelEdit: index, before and after differ in length ({len(index)}, {len(before)}, {len(after)})"
            )
        self._index, self.before, self.after, self.rows = index, before, after, None

    @classmethod
    def of_rows(cls, y0: int, mask: np.ndarray, before: np.ndarray, after: np.ndarray,
                count: int | None = None) -> "LabelEdit":
        """The edit of the pixels where ``mask`` (R, W) bool (C-contiguous) is True, rows
        ``y0 …`` of a map W wide; ``before``/``after`` (M,) in row-major order of those pixels
        (``count``: M, when the caller knows it)."""
        if mask.ndim != 2 or mask.dtype != bool or not mask.flags.c_contiguous:
            raise ValueError("LabelEdit.of_rows: the mask must be a C-contiguous 2-D bool array")
        count = int(np.count_nonzero(mask)) if count is None else count
        if not (before.ndim == after.ndim == 1 and len(before) == len(after) == count):
            raise ValueError(f"LabelEdit.of_rows: {count} pixels, but {len(before)} before and {len(after)} after values")
        edit = cls.__new__(cls)
        edit._index, edit.before, edit.after, edit.rows = None, before, after, (int(y0), mask)
        return edit

    @property
    def index(self) -> np.ndarray:
        if self._index is not None:
            return self._index
        y0, mask = self.rows
        index = np.flatnonzero(mask)
        index += y0 * mask.shape[1]
        return index

    def row_span(self, width: int) -> tuple[int, int] | None:
        """(first row, last row + 1) of the changed pixels in a map ``width`` wide (None: empty)."""
        if self.is_empty:
            return None
        if self.rows is not None:
            y0, mask = self.rows
            return y0, y0 + mask.shape[0]
        return int(self._index[0]) // width, int(self._index[-1]) // width + 1

    def fits(self, shape: tuple[int, int]) -> bool:
        """Whether every pixel of the edit lies in a map of ``shape`` (H, W)."""
        if self.is_empty:
            return True
        if self.rows is not None:
            y0, mask = self.rows
            return mask.shape[1] == shape[1] and 0 <= y0 and y0 + mask.shape[0] <= shape[0]
        return 0 <= self._index[0] and self._index[-1] < shape[0] * shape[1]

    def with_values(self, before: np.ndarray, after: np.ndarray) -> "LabelEdit":
        """The same pixels with other ``before``/``after`` values (e.g. remapped classes)."""
        if self.rows is not None:
            return LabelEdit.of_rows(*self.rows, before, after, count=len(self.after))
        return LabelEdit(self._index, before, after)

    @classmethod
    def empty(cls, dtype=np.uint16) -> "LabelEdit":
        """An edit that changes nothing."""
        return cls(np.zeros(0, np.int64), np.zeros(0, dtype), np.zeros(0, dtype))

    def apply(self, label: np.ndarray) -> None:
        """Write ``after`` into ``label`` (H, W) in place."""
        self._write(label, self.after)

    def revert(self, label: np.ndarray) -> None:
        """Write ``before`` into ``label`` (H, W) in place (undo of ``apply``)."""
        self._write(label, self.before)

    def _write(self, label: np.ndarray, values: np.ndarray) -> None:
        if self.rows is not None and self.rows[1].shape[1] == label.shape[1]:
            y0, mask = self.rows
            label[y0:y0 + mask.shape[0]][mask] = values
        else:
            _write(label, self.index, values)

    def then(self, later: "LabelEdit") -> "LabelEdit":
        """One edit equal to applying ``self`` and then ``later`` (e.g. a whole drag stroke as one
        undo step). ``later`` must have been computed on the map after ``self``. Pixels that end
        with their original value are dropped, so the result never outgrows the pixels changed."""
        index = np.concatenate([self.index, later.index])
        dtype = np.result_type(self.after.dtype, later.after.dtype)
        before_all = np.concatenate([self.before, later.before]).astype(dtype, copy=False)
        after_all = np.concatenate([self.after, later.after]).astype(dtype, copy=False)
        union, first = np.unique(index, return_index=True)  # first occurrence: self's before wins
        _, last_rev = np.unique(index[::-1], return_index=True)  # last occurrence: later's after wins
        before = before_all[first]
        after = after_all[::-1][last_rev]
        keep = before != after
        return LabelEdit(union[keep], before[keep], after[keep])

    @property
    def nbytes(self) -> int:
        """Memory held by the edit's arrays."""
        held = self.rows[1].nbytes if self.rows is not None else self._index.nbytes
        return held + self.before.nbytes + self.after.nbytes

    @property
    def is_empty(self) -> bool:
        return len(self.after) == 0

    @property
    def pixel_count(self) -> int:
        return len(self.after)


def _write(label: np.ndarray, index: np.ndarray, values: np.ndarray) -> None:
    """``label.flat[index] = values``; through a flat view when there is one (several times faster
    than ``np.put`` on millions of pixels)."""
    if label.flags.c_contiguous:
        label.reshape(-1)[index] = values
    else:
        np.put(label, index, values)


def _check_map(label: np.ndarray) -> None:
    if not isinstance(label, np.ndarray) or label.ndim != 2 or label.size == 0:
        raise ValueError(f"a label map must be a non-empty 2-D array (H, W); got {getattr(label, 'shape', label)!r}")
    if not np.issubdtype(label.dtype, np.unsignedinteger):
        raise ValueError(f"a label map for editing must be uint8 or uint16; got dtype {label.dtype}")


def _check_value(label: np.ndarray, value: int | None) -> int:
    if value is None:
        raise ValueError("no label value to paint: erasing paints the ignore value, and this class set has none")
    value = int(value)
    top = np.iinfo(label.dtype).max
    if not 0 <= value <= top:
        raise ValueError(f"label value {value} does not fit the {label.dtype} label map (0..{top})")
    return value


def _check_level(level: int) -> int:
    level = int(level)
    if not 0 <= level <= 30:
        raise ValueError(f"cell level must be in 0..30; got {level}")
    return level


def _cover_level(shape: tuple[int, int]) -> int:
    """The finest level at which one cell covers a map of ``shape`` (H, W)."""
    return (max(shape) - 1).bit_length()


def _check_map_level(label: np.ndarray, level: int) -> int:
    """``level`` checked against the map: up to the level where one cell covers it (or the quadtree's
    root level, on a map smaller than a root cell); a coarser cell would not fit in memory."""
    level = _check_level(level)
    top = max(ROOT_LEVEL, _cover_level(label.shape))
    if level > top:
        h, w = label.shape
        raise ValueError(f"cell level {level} is beyond this {w}×{h} label map: choose a level in 0..{top} "
                         f"(at level {_cover_level(label.shape)} one cell covers the whole map)")
    return level


def _edit_of(label: np.ndarray, index: np.ndarray, value: int) -> LabelEdit:
    """The edit setting the pixels ``index`` (unique, any order) of ``label`` to ``value``."""
    flat = label.reshape(-1) if label.flags.c_contiguous else label.ravel()
    before = flat[index]
    changed = before != value
    index, before = index[changed], before[changed]
    if len(index) > 1 and not (index[1:] > index[:-1]).all():  # the image-aware tools give them sorted
        order = np.argsort(index, kind="stable")
        index, before = index[order], before[order]
    return LabelEdit(index, before, np.full(len(index), value, label.dtype))


class StrokeRecorder:
    """Collects the edits of one gesture (a drag) on one label map into one ``LabelEdit``.

    ``record`` costs O(pixels of that edit) and ``edit`` O(k log k) for the k pixels recorded, so
    neither the press, a long drag nor its release costs a pass over the map (a (H*W,) mask for
    each stroke held the UI thread ~70 ms at the press on a 6000×4000 map). Each recorded edit must
    already be applied to ``label`` (the map the recorder watches) when ``edit`` is called.

    Holds the recorded edits' pixels and the values they overwrote, in order.
    """

    def __init__(self, label: np.ndarray):
        self._label = label
        self._index: list[np.ndarray] = []
        self._before: list[np.ndarray] = []

    def record(self, edit: LabelEdit) -> None:
        """Remember the pixels ``edit`` set and the values it overwrote."""
        self._index.append(edit.index)
        self._before.append(np.asarray(edit.before, self._label.dtype))

    def edit(self) -> LabelEdit:
        """The whole stroke as one edit: pixels whose value differs from before the stroke."""
        if not self._index:
            empty = np.empty(0, self._label.dtype)
            return LabelEdit(np.empty(0, np.int64), empty, empty.copy())
        index, first = np.unique(np.concatenate(self._index), return_index=True)  # (a pixel's first record)
        before = np.concatenate(self._before)[first]
        after = self._label.reshape(-1)[index]
        keep = before != after
        return LabelEdit(index[keep], before[keep], after[keep])


def paint_cells(label: np.ndarray, level: int, points: np.ndarray, value: int) -> LabelEdit:
    """Set every level-``level`` cell that contains one of ``points`` to ``value``.

    label:  (H, W) uint8/uint16 label map (not modified).
    points: (P, 2) float or int ``x, y`` image coordinates; points outside the image are ignored.
    Returns the edit of the pixels that actually change (empty if none).
    """
    _check_map(label)
    level = _check_map_level(label, level)
    value = _check_value(label, value)
    h, w = label.shape
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    pts = pts[np.isfinite(pts).all(axis=1)]
    px = np.floor(pts[:, 0]).astype(np.int64)
    py = np.floor(pts[:, 1]).astype(np.int64)
    inside = (px >= 0) & (px < w) & (py >= 0) & (py < h)
    if not inside.any():
        return LabelEdit.empty(label.dtype)
    grid_w = ((w - 1) >> level) + 1
    cells = np.unique((py[inside] >> level) * grid_w + (px[inside] >> level))
    cy, cx = cells // grid_w, cells % grid_w
    size = 1 << level
    # a cell's rows beyond its first min(size, h) all lie below the map (its columns likewise)
    dy, dx = np.divmod(np.arange(min(size, h) * min(size, w), dtype=np.int64), min(size, w))
    ys = (cy[:, None] << level) + dy[None, :]
    xs = (cx[:, None] << level) + dx[None, :]
    keep = (ys < h) & (xs < w)
    index = ys[keep] * w + xs[keep]
    return _edit_of(label, index, value)


def cells_along(level: int, start: tuple[float, float], end: tuple[float, float],
                shape: tuple[int, int] | None = None, margin: int = 0) -> np.ndarray:
    """One point in every level-``level`` cell that the segment ``start → end`` passes through.

    start, end: ``(x, y)`` image coordinates. Returns (P, 2) int64 ``x, y``: the top-left pixel of
    each cell, in order along the segment, no cell twice in a row. A segment that only touches a
    cell's corner does not pass through it. Cells outside the image are included (``paint_cells``
    ignores them).

    shape: (H, W) of the image: the segment is first clipped to the image widened by ``margin``
    + 1 cells on every side (a brush of radius ``margin`` cells reaches the image from no cell
    further out), so a pointer flung far outside costs the cells near the image, not the length
    of the segment. A segment inside that area gives exactly the cells it gives without ``shape``.
    """
    level = _check_level(level)
    size = float(1 << level)
    x0, y0 = float(start[0]), float(start[1])
    x1, y1 = float(end[0]), float(end[1])
    if not all(np.isfinite([x0, y0, x1, y1])):
        raise ValueError(f"cells_along: coordinates must be finite; got {start} → {end}")
    if shape is not None:
        pad = (int(margin) + 1) * size
        gh, gw = -(-int(shape[0]) // int(size)), -(-int(shape[1]) // int(size))
        clipped = _clip_segment((x0, y0, x1, y1), (-pad, -pad, gw * size + pad, gh * size + pad))
        if clipped is None:
            return np.zeros((0, 2), np.int64)
        x0, y0, x1, y1 = clipped
    ts = [np.array([0.0, 1.0])]
    for a, b in ((x0, x1), (y0, y1)):
        if a != b:
            lo, hi = sorted((a, b))
            lines = np.arange(np.floor(lo / size) + 1, np.ceil(hi / size)) * size  # grid lines strictly inside
            ts.append((lines - a) / (b - a))
    t = np.unique(np.clip(np.concatenate(ts), 0.0, 1.0))
    mid = (t[:-1] + t[1:]) / 2 if len(t) > 1 else t
    cx = np.floor((x0 + mid * (x1 - x0)) / size).astype(np.int64)
    cy = np.floor((y0 + mid * (y1 - y0)) / size).astype(np.int64)
    # An endpoint exactly on a grid line lies in the cell to its right/below; the open segment
    # midpoints miss that cell when the segment leaves it at once, so add both endpoints' cells.
    ex = np.floor(np.array([x0, x1]) / size).astype(np.int64)
    ey = np.floor(np.array([y0, y1]) / size).astype(np.int64)
    cx = np.concatenate([ex[:1], cx, ex[1:]])
    cy = np.concatenate([ey[:1], cy, ey[1:]])
    new = np.ones(len(cx), bool)
    new[1:] = (cx[1:] != cx[:-1]) | (cy[1:] != cy[:-1])
    step = int(size)
    return np.stack([cx[new] * step, cy[new] * step], axis=1)


def _clip_segment(segment: tuple[float, float, float, float],
                  box: tuple[float, float, float, float]) -> tuple[float, float, float, float] | None:
    """The part ``(x0, y0, x1, y1)`` of a segment inside the closed box ``(left, top, right,
    bottom)`` (Liang–Barsky), the segment itself when it lies inside; None when it misses the box."""
    x0, y0, x1, y1 = segment
    left, top, right, bottom = box
    dx, dy = x1 - x0, y1 - y0
    t0, t1 = 0.0, 1.0
    for p, q in ((-dx, x0 - left), (dx, right - x0), (-dy, y0 - top), (dy, bottom - y0)):
        if p == 0:
            if q < 0:
                return None
        elif p < 0:
            t0 = max(t0, q / p)
        else:
            t1 = min(t1, q / p)
    if t0 > t1:
        return None
    if t0 == 0.0 and t1 == 1.0:
        return segment
    return (x0 + t0 * dx if t0 > 0 else x0, y0 + t0 * dy if t0 > 0 else y0,
            x0 + t1 * dx if t1 < 1 else x1, y0 + t1 * dy if t1 < 1 else y1)


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Horizontal runs of True in a (H, W) bool mask: (R,) int64 row, start, end (exclusive),
    ordered by row then start."""
    h, w = mask.shape
    padded = np.zeros((h, w + 2), np.int8)
    padded[:, 1:-1] = mask
    d = np.diff(padded, axis=1)
    rows, starts = np.nonzero(d == 1)
    _, ends = np.nonzero(d == -1)
    return rows.astype(np.int64), starts.astype(np.int64), ends.astype(np.int64)


def _run_edges(rows: np.ndarray, starts: np.ndarray, ends: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (u, v) of runs in adjacent rows that overlap in at least one column (4-connected)."""
    stride = w + 1
    start_key = rows * stride + starts
    end_key = rows * stride + ends
    above = rows - 1
    # Runs of the row above overlapping [s, e): their end > s and their start < e (a contiguous range).
    lo = np.searchsorted(end_key, above * stride + starts, side="right")
    hi = np.searchsorted(start_key, above * stride + ends, side="left")
    count = np.clip(hi - lo, 0, None)
    v = np.repeat(np.arange(len(rows)), count)
    offsets = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    u = np.repeat(lo, count) + offsets
    return u, v


def _components(n: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(n,) int64 component representative of each node of the graph with edges (u, v)."""
    parent = np.arange(n)
    while True:
        ru, rv = parent[u], parent[v]
        diff = ru != rv
        if not diff.any():
            return parent
        np.minimum.at(parent, np.maximum(ru, rv)[diff], np.minimum(ru, rv)[diff])  # link roots, smaller wins
        while True:  # pointer jumping until every node points at its root
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand


def fill_region(label: np.ndarray, x: int, y: int, value: int) -> LabelEdit:
    """Set the 4-connected region of pixels equal to ``label[y, x]`` (containing (x, y)) to ``value``.

    label: (H, W) uint8/uint16 (not modified). Raises ValueError if (x, y) is outside the image.
    OpenCV's ``floodFill`` grows the region over the map's equal-value mask; only the region's
    rows are scanned for its pixels, and a large region is kept as those rows' mask (``of_rows``).
    """
    import cv2

    _check_map(label)
    value = _check_value(label, value)
    x, y = _check_pixel(label, x, y)
    seed = label[y, x]
    if int(seed) == value:
        return LabelEdit.empty(label.dtype)
    h, w = label.shape
    same = (label == seed).view(np.uint8)
    mask = np.zeros((h + 2, w + 2), np.uint8)
    flags = 4 | cv2.FLOODFILL_FIXED_RANGE | cv2.FLOODFILL_MASK_ONLY | (1 << 8)
    _, _, _, (_rx, ry, _rw, rh) = cv2.floodFill(same, mask, (x, y), 0, 0, 0, flags)
    rows = np.ascontiguousarray(mask[1 + ry:1 + ry + rh, 1:-1]).view(bool)  # the region's rows (0/1)
    count = int(np.count_nonzero(rows))
    before, after = np.full(count, seed, label.dtype), np.full(count, value, label.dtype)
    if 8 * count > rows.size:  # the rows' mask is smaller than the pixels' indices
        return LabelEdit.of_rows(ry, rows, before, after, count)
    index = np.flatnonzero(rows)
    index += ry * w  # the rows have the map's width: their flat indices are the map's, shifted
    return LabelEdit(index, before, after)


def _check_pixel(label: np.ndarray, x, y) -> tuple[int, int]:
    h, w = label.shape
    xi, yi = int(np.floor(x)), int(np.floor(y))
    if not (0 <= xi < w and 0 <= yi < h):
        raise ValueError(f"pixel ({x}, {y}) is outside the {w}×{h} label map")
    return xi, yi


def pick(label: np.ndarray, x: int, y: int) -> int:
    """The label value at pixel (x, y) (image coordinates). ValueError outside the image."""
    _check_map(label)
    x, y = _check_pixel(label, x, y)
    return int(label[y, x])


def changed_cells(label: np.ndarray, reference: np.ndarray, level: int) -> np.ndarray:
    """bool (ceil(H/2^l), ceil(W/2^l)): the level-``level`` cells where ``label`` and
    ``reference`` (both (H, W)) differ in at least one pixel."""
    level = _check_level(level)
    label, reference = np.asarray(label), np.asarray(reference)
    if label.shape != reference.shape or label.ndim != 2:
        raise ValueError(f"changed_cells: label {label.shape} and reference {reference.shape} must be the same 2-D size")
    size = 1 << min(level, _cover_level(label.shape))  # coarser cells than one over the map: the same one cell
    return changed_cells_of_size(label, reference, size)


def changed_cells_of_size(label: np.ndarray, reference: np.ndarray, size: int) -> np.ndarray:
    """``changed_cells`` with cells of ``size`` px (a power of two) given: bool (ceil(H/size),
    ceil(W/size)). Rows ``y0:y1`` of a map with ``y0`` a multiple of ``size`` give the grid's rows
    ``y0 // size`` on (``qgn.annotation.changes``)."""
    h, w = label.shape
    gh, gw = -(-h // size), -(-w // size)
    out = np.zeros((gh, gw), bool)
    word = {1: np.uint8, 2: np.uint16, 4: np.uint32}.get(size, np.uint64)  # one word per cell's row
    step = max(size, (1 << 18) // w // size * size)  # a band of rows at a time: small temporaries
    for y in range(0, h, step):
        diff = label[y:y + step] != reference[y:y + step]
        rows = diff.shape[0]
        if w % size:
            diff = np.pad(diff, ((0, 0), (0, -w % size)))
        words = diff.view(word)
        cols = words.reshape(rows, gw, -1).any(axis=2) if size > 8 else words != 0
        if rows % size:
            cols = np.pad(cols, ((0, -rows % size), (0, 0)))
        out[y // size:y // size + -(-rows // size)] = np.logical_or.reduce(cols.reshape(-1, size, gw), axis=1)
    return out
