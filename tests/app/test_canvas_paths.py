"""The canvas's cell outlines against an independent reference: the unit cell edges of a
brute-force loop over the cells. Merged runs must cover exactly those edges, each once."""
from __future__ import annotations

import numpy as np
import pytest

from qgn_studio.canvas.paths import MAX_OUTLINED_CELLS, cell_outlines_path, mask_boundary_path


def unit_edges(path, cell: int) -> list[tuple]:
    """Every segment of ``path`` (moveTo / lineTo pairs) cut into edges one cell long."""
    edges, last = [], None
    for i in range(path.elementCount()):
        e = path.elementAt(i)
        point = (round(e.x), round(e.y))
        if e.isLineTo():
            (ax, ay), (bx, by) = last, point
            assert ax == bx or ay == by, "segments run along cell edges"
            steps = max(abs(bx - ax), abs(by - ay)) // cell
            for k in range(steps):
                p = (ax + (bx - ax) * k // steps, ay + (by - ay) * k // steps)
                q = (ax + (bx - ax) * (k + 1) // steps, ay + (by - ay) * (k + 1) // steps)
                edges.append(tuple(sorted((p, q))))
        last = point
    return edges


def brute_force(mask: np.ndarray, cell: int, boundary: bool) -> set:
    """The four edges of every True cell; for the boundary, only edges with a False (or no) cell
    on the other side."""
    h, w = mask.shape
    def at(y, x):
        return 0 <= y < h and 0 <= x < w and bool(mask[y, x])
    edges = set()
    for y in range(h):
        for x in range(w):
            if not mask[y, x]:
                continue
            for (dy, dx), (p, q) in {(-1, 0): ((x, y), (x + 1, y)), (1, 0): ((x, y + 1), (x + 1, y + 1)),
                                     (0, -1): ((x, y), (x, y + 1)), (0, 1): ((x + 1, y), (x + 1, y + 1))}.items():
                if boundary and at(y + dy, x + dx):
                    continue
                edges.add(((p[0] * cell, p[1] * cell), (q[0] * cell, q[1] * cell)))
    return edges


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("cell", [1, 4])
def test_outlines_and_boundary_cover_each_cell_edge_once(seed: int, cell: int) -> None:
    rng = np.random.default_rng(seed)
    mask = rng.random((9, 13)) < (0.2, 0.5, 0.9, 1.0)[seed]
    for fn, boundary in ((cell_outlines_path, False), (mask_boundary_path, True)):
        edges = unit_edges(fn(mask, cell), cell)
        assert len(edges) == len(set(edges)), "no edge is drawn twice"
        assert set(edges) == brute_force(mask, cell, boundary)


def test_a_full_grid_is_one_line_per_row_and_column_edge() -> None:
    path = cell_outlines_path(np.ones((6, 8), bool), 2)
    assert path.elementCount() == 2 * ((6 + 1) + (8 + 1))


def test_too_many_cells_are_not_outlined() -> None:
    assert cell_outlines_path(np.ones((1, MAX_OUTLINED_CELLS + 1), bool), 1) is None
    assert cell_outlines_path(np.zeros((3, 3), bool), 1).isEmpty()
