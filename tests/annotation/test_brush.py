"""A brush of more than one cell (issue #14): the cells painted are exactly those within the radius."""
import numpy as np
import pytest

from qgn.annotation.brush import brush_offsets, brush_points
from qgn.annotation.edit import paint_cells


def test_brush_offsets():
    assert brush_offsets(0).tolist() == [[0, 0]]
    assert sorted(map(tuple, brush_offsets(1).tolist())) == sorted(
        (dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1))  # 1 + 1 >= 2: the diagonals are in
    two = {tuple(o) for o in brush_offsets(2).tolist()}
    assert (2, 0) in two and (1, 2) in two and (2, 2) not in two and len(two) == 21
    with pytest.raises(ValueError):
        brush_offsets(-1)


def test_brush_paints_the_disk_of_cells_at_a_level():
    label = np.zeros((64, 64), np.uint8)
    edit = paint_cells(label, 2, brush_points(2, np.array([[21.5, 30.0]]), 1), 3)  # cell (5, 7) of 4-px cells
    edit.apply(label)
    cells = label.reshape(16, 4, 16, 4).max(axis=(1, 3))
    want = np.zeros((16, 16), np.uint8)
    want[6:9, 4:7] = 3  # rows 6..8, columns 4..6
    assert np.array_equal(cells, want)
    assert (label.reshape(16, 4, 16, 4).min(axis=(1, 3)) == cells).all()  # whole cells only
