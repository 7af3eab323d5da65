"""How much of an annotation differs from its reference (the prediction it started from), kept up to
date by the rows each edit touched instead of counted over the whole map after every edit.

The app shows "Changed: N px (S %) · M cells of k×k px" (vs the prediction) after every stroke. Counted afresh (a
comparison of every pixel, then ``changed_cells``) that held the UI thread 30-450 ms on a
6000×4000 photo; with ``ChangeTally`` only the touched rows are compared again.
"""
from __future__ import annotations

import weakref

import numpy as np

from .edit import _check_level, _cover_level, changed_cells_of_size

#: Rows counted together: a band's count is one flat ``count_nonzero`` (a per-row count along an
#: axis takes numpy's slower summing path: 124 ms against 53 ms for the first count of a 24 MP map
#: in the app under load).
BAND_ROWS = 64


class ChangeTally:
    """Differing pixels and level-``l`` cells between ``label`` and ``reference`` (both (H, W), the
    same dtype), as of the last query, plus the rows edited since (``touched``).

    ``version``: the caller's count of edits; a query at another version than the one the last
    ``touched`` (or query) left counts everything again, so an edit that was not reported costs
    time, never a wrong number. A different ``label`` or ``reference`` array does too."""

    def __init__(self):
        self._arrays: tuple = (None, None)  # weak references to the label and reference counted
        self._version: int | None = None
        self._band_counts: np.ndarray | None = None  # int64 (ceil(H / BAND_ROWS),): differing pixels per band
        self._cells: dict[int, np.ndarray] = {}  # cell size → bool grid (ceil(H/size), ceil(W/size))
        self._stale: dict[object, list[tuple[int, int]]] = {}  # "rows" or a cell size → row ranges
        self._epoch = 0  # bumped whenever everything is to be counted anew (``plan`` / ``adopt``)

    def touched(self, y0: int, y1: int, version: int) -> None:
        """Rows ``y0:y1`` changed, which made the map ``version``."""
        if self._version is not None and version == self._version + 1:
            for ranges in self._stale.values():
                ranges.append((int(y0), int(y1)))
            self._version = version
        else:
            self._version = None  # a step was missed: count anew at the next query

    def pixels(self, label: np.ndarray, reference: np.ndarray, version: int) -> int:
        """The number of pixels where ``label`` differs from ``reference``."""
        self._check(label, reference, version)
        if self._band_counts is None:
            self._band_counts = np.zeros(-(-label.shape[0] // BAND_ROWS), np.int64)
            self._stale["rows"] = [(0, label.shape[0])]
        for y0, y1 in _merged(self._stale["rows"]):
            for band in range(y0 // BAND_ROWS, -(-y1 // BAND_ROWS)):
                rows = slice(band * BAND_ROWS, (band + 1) * BAND_ROWS)
                self._band_counts[band] = np.count_nonzero(label[rows] != reference[rows])
        self._stale["rows"] = []
        return int(self._band_counts.sum())

    def cells(self, label: np.ndarray, reference: np.ndarray, level: int, version: int) -> int:
        """The number of level-``level`` cells where ``label`` differs from ``reference`` in at
        least one pixel (as ``changed_cells(label, reference, level).sum()``)."""
        self._check(label, reference, version)
        size = _cell_size(label.shape, level)
        grid = self._cells.get(size)
        if grid is None:
            grid = self._cells[size] = changed_cells_of_size(label, reference, size)
            self._stale[size] = []
        for y0, y1 in _merged(self._stale[size]):
            top, bottom = y0 // size * size, min(label.shape[0], -(-y1 // size) * size)
            grid[top // size:-(-bottom // size)] = changed_cells_of_size(label[top:bottom], reference[top:bottom], size)
        self._stale[size] = []
        return int(np.count_nonzero(grid))

    # A first count of a 24 MP map (its pixels, or the cells of a level not counted yet: [ and ]) held
    # the UI thread ~50 ms. ``counted`` says whether ``pixels`` and ``cells`` answer from what is kept;
    # when not, the UI thread ``plan``s the count, another thread ``count``s and the UI thread
    # ``adopt``s it. The rows edited from the plan on are counted again at the next query (the other
    # thread may have read them mid-edit), so an adopted count is exact.
    def counted(self, label: np.ndarray, reference: np.ndarray, level: int, version: int) -> bool:
        """Whether ``pixels`` and ``cells(..., level, ...)`` answer without counting the whole map."""
        self._check(label, reference, version)
        return self._band_counts is not None and _cell_size(label.shape, level) in self._cells

    def plan(self, label: np.ndarray, reference: np.ndarray, level: int, version: int) -> tuple:
        """(The thread that edits) what ``count`` is to make for ``counted`` to become true; from
        now on the rows edited are kept for ``adopt``."""
        self._check(label, reference, version)
        size = _cell_size(label.shape, level)
        rows = self._band_counts is None
        if rows:
            self._stale.setdefault("rows", [])
        if size not in self._cells:
            self._stale.setdefault(size, [])
        return self._epoch, rows, None if size in self._cells else size

    @staticmethod
    def count(label: np.ndarray, reference: np.ndarray, plan: tuple) -> tuple:
        """(Any thread) the counts ``plan`` asks for, for ``adopt``."""
        epoch, rows, size = plan
        bands = None
        if rows:
            bands = np.array([np.count_nonzero(label[y:y + BAND_ROWS] != reference[y:y + BAND_ROWS])
                              for y in range(0, label.shape[0], BAND_ROWS)], np.int64)
        grid = None if size is None else changed_cells_of_size(label, reference, size)
        return epoch, bands, size, grid

    def adopt(self, label: np.ndarray, reference: np.ndarray, counts: tuple) -> bool:
        """(The thread that edits) keep ``count``'s ``counts`` of ``label`` against ``reference``
        unless everything was to be counted anew since its ``plan``; False when not kept."""
        epoch, bands, size, grid = counts
        arrays = [ref() if ref is not None else None for ref in self._arrays]
        if epoch != self._epoch or arrays[0] is not label or arrays[1] is not reference:
            return False
        if bands is not None and self._band_counts is None and "rows" in self._stale:
            self._band_counts = bands
        if grid is not None and size not in self._cells and size in self._stale:
            self._cells[size] = grid
        return True

    def _check(self, label: np.ndarray, reference: np.ndarray, version: int) -> None:
        if label.shape != reference.shape or label.ndim != 2:
            raise ValueError(f"ChangeTally: label {label.shape} and reference {reference.shape} must be the "
                             "same 2-D size")
        counted = [ref() if ref is not None else None for ref in self._arrays]
        if counted[0] is not label or counted[1] is not reference or version != self._version:
            self._arrays, self._version = (weakref.ref(label), weakref.ref(reference)), version
            self._band_counts, self._cells, self._stale = None, {}, {}
            self._epoch += 1


def _cell_size(shape: tuple[int, ...], level: int) -> int:
    return 1 << min(_check_level(level), _cover_level(shape))


def _merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Row ranges sorted and joined where they overlap or meet."""
    out: list[list[int]] = []
    for y0, y1 in sorted(ranges):
        if out and y0 <= out[-1][1]:
            out[-1][1] = max(out[-1][1], y1)
        else:
            out.append([y0, y1])
    return [(a, b) for a, b in out]
