"""Cells straddling the image's right/bottom edge (#22): the image is padded to a multiple of the
32-px root cell, and a cell reaching into the padding is drawn as one cell clipped at the border —
never as a strip of tiny cells (the padding is not part of the image, so it never splits a cell).
"""
from __future__ import annotations

import numpy as np
import pytest

from studio_steps import wait_for_image

SIZE = (70, 100)  # (H, W): neither a multiple of 32 nor of 4 (70 = 2·32 + 6, 100 = 3·32 + 4)


def drawn_cells(path) -> int:
    """Leaves in one level's grid path: each is drawn as its top and left edge (3 points)."""
    assert path.elementCount() % 3 == 0
    return path.elementCount() // 3


@pytest.fixture
def image_100x70(tmp_path):
    from qgn_studio.testing import write_samples

    return write_samples(tmp_path / "odd", 1, SIZE, layout="none")[0]


@pytest.mark.parametrize("depth", [5, 2])
def test_a_cell_across_the_edge_is_one_cell(qtbot, window, model_path, image_100x70, depth):
    from qgn_studio.document import SchemeChoice

    window.explore.set_setting(SchemeChoice("pc", depth=depth))
    window.start([image_100x70], str(model_path))
    wait_for_image(qtbot, window, image_100x70)
    window.set_layer_visible("grid", True)
    result = window.current.result
    grid = window.canvas.layers["grid"]
    level, x, y = result.leaves
    h, w = SIZE
    # No leaf finer than the prediction's depth (the strips were cells of 4 and 2 px at Q5).
    assert int(level.min()) >= depth
    counts = {lv: drawn_cells(grid.over[lv].path()) for lv in range(6)}
    assert sum(counts.values()) == len(level)
    assert all(counts[lv] == 0 for lv in range(depth))
    if depth == 5:  # at Q5 every root cell is one leaf: ceil(100/32) × ceil(70/32)
        assert counts[5] == -(-w // 32) * -(-h // 32) == 12
    # The leaves tile the image once: a cell across the edge covers what is inside, once.
    cover = np.zeros(SIZE, int)
    for lv, cx, cy in zip(level.tolist(), x.tolist(), y.tolist()):
        cover[cy << lv:(cy + 1) << lv, cx << lv:(cx + 1) << lv] += 1
    assert (cover == 1).all()
    # and each edge cell is drawn clipped at the image border, not out into the padding
    for lv in range(6):
        bounds = grid.over[lv].path().boundingRect()
        assert bounds.isEmpty() or (bounds.right() <= w and bounds.bottom() <= h)
    clip = window.canvas.clip.rect()  # the tints and level images are clipped by the canvas
    assert (clip.width(), clip.height()) == (w, h)


def overlapping(mask: np.ndarray, level: int) -> np.ndarray:
    """The cells of a level's (padded) grid that overlap the image."""
    h, w = SIZE
    return mask[: -(-h // (1 << level)), : -(-w // (1 << level))]


def test_annotation_cells_across_the_edge_are_one_cell(qtbot, window, model_path, image_100x70):
    """The annotation's live quadtree (what "Annotation cells" draws) has the same leaves as the
    image shows them, from the start and after a stroke along the edge."""
    from qgn.quadtree.quadtree import image_leaves
    from qgn_studio.document import SchemeChoice
    from studio_steps import paint, start_annotating

    window.explore.set_setting(SchemeChoice("pc", depth=5))
    session = start_annotating(qtbot, window, [image_100x70], model_path)
    classes = window.workspace.classes

    def check(expected_root_leaves=None):
        level, x, y, _ = image_leaves(session.label, classes.num_classes, classes.ignore_index)
        for lv in range(6):
            expected = np.zeros_like(overlapping(session.pyramid.leaves[lv], lv))
            sel = level == lv
            expected[y[sel], x[sel]] = True
            np.testing.assert_array_equal(overlapping(session.pyramid.leaves[lv], lv), expected, err_msg=f"level {lv}")
        if expected_root_leaves is not None:
            assert int(level.size) == int((level == 5).sum()) == expected_root_leaves

    check(expected_root_leaves=12)  # the prediction at Q5: one leaf per root cell, straddlers included
    paint(window, 0, 1, [(99.5, 1.5), (99.5, 69.5), (50.5, 69.5)])  # the last column and row: the edge cells change
    check()
