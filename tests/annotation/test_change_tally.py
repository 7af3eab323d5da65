"""``ChangeTally`` (qgn.annotation.changes): the changed-vs-reference pixels and cells, kept up to
date by the rows each edit touched, equal the brute-force count after every edit."""
from __future__ import annotations

import numpy as np
import pytest

from qgn.annotation import changed_cells
from qgn.annotation.changes import ChangeTally


def brute(label, reference, level):
    return int(np.count_nonzero(label != reference)), int(changed_cells(label, reference, level).sum())


@pytest.mark.parametrize("shape", [(37, 53), (64, 64), (200, 31), (5, 300)])
def test_the_tally_equals_a_fresh_count_after_every_edit(shape):
    rng = np.random.default_rng(sum(shape))
    reference = rng.integers(0, 4, shape).astype(np.uint8)
    label = reference.copy()
    tally, version = ChangeTally(), 0
    h, w = shape
    for step in range(60):
        y0, x0 = int(rng.integers(0, h)), int(rng.integers(0, w))
        y1, x1 = min(h, y0 + int(rng.integers(1, 12))), min(w, x0 + int(rng.integers(1, 12)))
        label[y0:y1, x0:x1] = rng.integers(0, 4)
        if step % 7 == 3:
            label[y0:y1, x0:x1] = reference[y0:y1, x0:x1]  # an edit that undoes changes
        version += 1
        tally.touched(y0, y1, version)
        for level in (0, 1, 3, 5, 12):
            assert (tally.pixels(label, reference, version), tally.cells(label, reference, level, version)) == \
                brute(label, reference, level), (step, level)


def test_an_edit_not_reported_or_a_new_reference_is_counted_anew():
    reference = np.zeros((40, 40), np.uint8)
    label = reference.copy()
    tally = ChangeTally()
    assert tally.pixels(label, reference, 0) == 0 and tally.cells(label, reference, 2, 0) == 0
    label[5:7, 5:7] = 1  # version 1, not reported through touched()
    assert tally.pixels(label, reference, 1) == 4 and tally.cells(label, reference, 2, 1) == 1
    label[30, 30] = 2
    tally.touched(30, 31, 3)  # a step (2) was missed
    assert tally.pixels(label, reference, 3) == 5
    other = np.ones_like(reference)  # the prediction came again, another map, same version
    assert tally.pixels(label, other, 3) == brute(label, other, 0)[0]
    assert tally.cells(label, other, 3, 3) == brute(label, other, 3)[1]


@pytest.mark.parametrize("shape", [(37, 53), (200, 31), (130, 70)])
def test_a_count_made_elsewhere_while_edits_go_on_is_exact_once_adopted(shape, monkeypatch):
    """A level not counted yet ([ ]) is counted on the job thread: ``plan`` on the thread that
    edits, ``count`` on another (which may read rows mid-edit: here a half-applied edit), ``adopt``
    back; the rows edited from the plan on are counted again, so the answers equal a fresh count.
    A count planned before everything was to be counted anew (another reference) is not kept."""
    rng = np.random.default_rng(shape[0])
    reference = rng.integers(0, 4, shape).astype(np.uint8)
    label = reference.copy()
    label[3:9, 4:20] = 3
    tally, version, h = ChangeTally(), 0, shape[0]
    assert not tally.counted(label, reference, 2, version)
    plan = tally.plan(label, reference, 2, version)
    half = label.copy()  # what the other thread read: an edit applied to half its rows
    y0, y1 = h // 3, h // 3 + 10
    half[y0:y0 + 5, :] = 1
    counts = ChangeTally.count(half, reference, plan)
    label[y0:y1, :] = 1  # the edit, on the editing thread, after the plan
    version += 1
    tally.touched(y0, y1, version)
    assert tally.adopt(label, reference, counts)
    assert tally.counted(label, reference, 2, version)
    import qgn.annotation.changes as changes_module

    cells_of_size = changes_module.changed_cells_of_size

    def no_whole_map(label_rows, reference_rows, size):
        assert label_rows.shape[0] < h, "the whole map counted again"
        return cells_of_size(label_rows, reference_rows, size)

    monkeypatch.setattr(changes_module, "changed_cells_of_size", no_whole_map)
    assert (tally.pixels(label, reference, version), tally.cells(label, reference, 2, version)) == \
        brute(label, reference, 2)
    monkeypatch.undo()
    assert not tally.counted(label, reference, 4, version)
    stale = ChangeTally.count(label, reference, tally.plan(label, reference, 4, version))
    other = np.ones_like(reference)
    assert tally.pixels(label, other, version) == brute(label, other, 0)[0]  # everything anew
    assert not tally.adopt(label, reference, stale) and not tally.counted(label, other, 4, version)
