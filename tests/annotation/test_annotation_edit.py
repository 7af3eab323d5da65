"""Label edits and annotations (issue #7): every tool against a brute-force loop over pixels, edits
applied/reverted/merged, the derived quadtree against ``Quadtree.from_label``, and bad input."""
from __future__ import annotations

import re
from collections import deque

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qgn.annotation import Annotation, LabelEdit, cells_along, changed_cells, fill_region, paint_cells, pick
from qgn.annotation.edit import StrokeRecorder
from qgn.classes import ClassSet
from qgn.quadtree import Quadtree

HYP = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CLASSES = ClassSet.generic(5, ignore_index=255)


# --------------------------------------------------------------------------- brute-force references
def ref_paint(label: np.ndarray, level: int, points, value: int) -> np.ndarray:
    """Loop over pixels: a pixel changes when its level cell holds a point."""
    out = label.copy()
    h, w = label.shape
    size = 2**level
    cells = set()
    for x, y in points:
        px, py = int(np.floor(x)), int(np.floor(y))
        if 0 <= px < w and 0 <= py < h:
            cells.add((px // size, py // size))
    for yy in range(h):
        for xx in range(w):
            if (xx // size, yy // size) in cells:
                out[yy, xx] = value
    return out


def ref_fill(label: np.ndarray, x: int, y: int, value: int) -> np.ndarray:
    """Breadth-first search over 4-neighbours."""
    out = label.copy()
    h, w = label.shape
    target = label[y, x]
    seen = np.zeros(label.shape, bool)
    queue = deque([(y, x)])
    seen[y, x] = True
    while queue:
        cy, cx = queue.popleft()
        out[cy, cx] = value
        for ny, nx in ((cy - 1, cx), (cy + 1, cx), (cy, cx - 1), (cy, cx + 1)):
            if 0 <= ny < h and 0 <= nx < w and not seen[ny, nx] and label[ny, nx] == target:
                seen[ny, nx] = True
                queue.append((ny, nx))
    return out


def ref_cells_along(level: int, start, end, samples: int = 20000) -> set[tuple[int, int]]:
    """Cells hit by dense samples along the open segment (a subset of the exact answer that misses
    only cells crossed over a length below 1/samples)."""
    size = 2**level
    t = (np.arange(samples) + 0.5) / samples
    x = start[0] + t * (end[0] - start[0])
    y = start[1] + t * (end[1] - start[1])
    return set(zip((np.floor(x / size)).astype(int).tolist(), (np.floor(y / size)).astype(int).tolist()))


def random_label(rng, h, w, k=5, ignore=255, blobs=True):
    """Blocky random maps (large uniform regions, like real masks) with some ignore pixels."""
    if blobs:
        small = rng.integers(0, k, (max(1, h // 4), max(1, w // 4)))
        label = np.kron(small, np.ones((4, 4), np.int64))[:h, :w]
        label = np.pad(label, ((0, h - label.shape[0]), (0, w - label.shape[1])), mode="edge")
    else:
        label = rng.integers(0, k, (h, w))
    label[rng.random((h, w)) < 0.03] = ignore
    return label.astype(np.uint8)


# --------------------------------------------------------------------------- paint_cells
@given(
    h=st.integers(1, 37), w=st.integers(1, 37), level=st.integers(0, 4), value=st.sampled_from([0, 3, 255]),
    seed=st.integers(0, 2**31), npts=st.integers(0, 6),
)
@HYP
def test_paint_cells_matches_pixel_loop(h, w, level, value, seed, npts):
    rng = np.random.default_rng(seed)
    label = random_label(rng, h, w)
    points = np.stack([rng.uniform(-5, w + 5, npts), rng.uniform(-5, h + 5, npts)], axis=1)
    edit = paint_cells(label, level, points, value)
    expected = ref_paint(label, level, points, value)
    original = label.copy()
    assert np.array_equal(label, original), "paint_cells must not modify its input"
    assert edit.pixel_count == int((expected != original).sum()), "only changed pixels are recorded"
    assert np.all(np.diff(edit.index) > 0), "index sorted and unique"
    edit.apply(label)
    assert np.array_equal(label, expected)
    edit.revert(label)
    assert np.array_equal(label, original)


def test_paint_cells_int_points_clipped_cells_and_outside():
    label = np.zeros((5, 7), np.uint8)
    edit = paint_cells(label, 2, np.array([[6, 4], [100, 100], [-1, 0]]), 2)  # cell (1, 1) is clipped to 3×1
    edit.apply(label)
    expected = np.zeros((5, 7), np.uint8)
    expected[4:, 4:] = 2
    assert np.array_equal(label, expected)
    assert paint_cells(label, 0, np.zeros((0, 2)), 1).is_empty
    assert paint_cells(label, 3, np.array([[6.5, 4.5]]), 2).pixel_count == 35 - 3


def test_paint_cells_uint16_and_bad_values():
    label = np.full((8, 8), 300, np.uint16)
    edit = paint_cells(label, 1, np.array([[0.5, 0.5]]), 1000)
    assert edit.after.dtype == np.uint16 and set(edit.after.tolist()) == {1000} and edit.pixel_count == 4
    with pytest.raises(ValueError, match="does not fit"):
        paint_cells(np.zeros((4, 4), np.uint8), 0, np.array([[1, 1]]), 256)
    with pytest.raises(ValueError, match="uint8 or uint16"):
        paint_cells(np.zeros((4, 4), np.int64), 0, np.array([[1, 1]]), 1)
    with pytest.raises(ValueError, match="erasing paints the ignore value"):
        paint_cells(np.zeros((4, 4), np.uint8), 0, np.array([[1, 1]]), ClassSet.generic(3).ignore_index)
    with pytest.raises(ValueError, match="level"):
        paint_cells(np.zeros((4, 4), np.uint8), -1, np.array([[1, 1]]), 1)


def test_paint_cells_large_image_stroke_is_small():
    """A drag over a 2048×1024 map at level 0 records only the touched pixels."""
    label = np.zeros((1024, 2048), np.uint8)
    points = cells_along(0, (3.5, 7.5), (2000.2, 1000.9))
    edit = paint_cells(label, 0, points, 4)
    assert edit.pixel_count == len(points)
    assert edit.nbytes == edit.pixel_count * (8 + 1 + 1)


# --------------------------------------------------------------------------- cells_along
@given(
    level=st.integers(0, 4),
    coords=st.lists(st.floats(-20, 80, allow_nan=False), min_size=4, max_size=4),
)
@HYP
def test_cells_along_covers_the_segment(level, coords):
    start, end = (coords[0], coords[1]), (coords[2], coords[3])
    got = cells_along(level, start, end)
    size = 2**level
    assert got.dtype == np.int64 and got.shape[1] == 2
    assert np.all(got % size == 0), "points are cells' top-left pixels"
    cells = [(int(x) // size, int(y) // size) for x, y in got]
    assert all(a != b for a, b in zip(cells, cells[1:])), "no cell twice in a row"
    # 4-connected chain (a straight segment crosses one grid line at a time, or a corner exactly).
    assert all(abs(a[0] - b[0]) <= 1 and abs(a[1] - b[1]) <= 1 for a, b in zip(cells, cells[1:]))
    assert ref_cells_along(level, start, end) <= set(cells)
    first = (int(np.floor(start[0] / size)), int(np.floor(start[1] / size)))
    last = (int(np.floor(end[0] / size)), int(np.floor(end[1] / size)))
    assert cells[0] == first and cells[-1] == last


def test_cells_along_exact_cases():
    assert cells_along(1, (0.5, 0.5), (0.5, 0.5)).tolist() == [[0, 0]]
    assert cells_along(1, (0.5, 0.5), (7.5, 0.5)).tolist() == [[0, 0], [2, 0], [4, 0], [6, 0]]
    # A 45° diagonal through grid corners touches only the diagonal cells.
    assert cells_along(0, (0.0, 0.0), (3.0, 3.0)).tolist() == [[0, 0], [1, 1], [2, 2], [3, 3]]
    with pytest.raises(ValueError, match="finite"):
        cells_along(0, (float("nan"), 0), (1, 1))


def test_drag_stroke_leaves_no_gaps():
    """Painting cells_along a fast drag equals painting every pixel the line passes."""
    label = np.zeros((64, 64), np.uint8)
    pts = cells_along(2, (1.5, 2.5), (60.5, 40.5))
    painted = label.copy()
    paint_cells(label, 2, pts, 1).apply(painted)
    t = (np.arange(4000) + 0.5) / 4000
    dense = np.stack([1.5 + t * 59, 2.5 + t * 38], axis=1)
    assert np.array_equal(painted, ref_paint(label, 2, dense, 1))


# --------------------------------------------------------------------------- fill_region
@given(h=st.integers(1, 30), w=st.integers(1, 30), seed=st.integers(0, 2**31), k=st.integers(1, 4),
       blobs=st.booleans(), value=st.integers(0, 4))
@HYP
def test_fill_region_matches_bfs(h, w, seed, k, blobs, value):
    rng = np.random.default_rng(seed)
    label = random_label(rng, h, w, k=k, blobs=blobs)
    x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
    edit = fill_region(label, x, y, value)
    expected = ref_fill(label, x, y, value)
    original = label.copy()
    assert edit.pixel_count == int((expected != original).sum())
    assert np.all(np.diff(edit.index) > 0)
    edit.apply(label)
    assert np.array_equal(label, expected)
    edit.revert(label)
    assert np.array_equal(label, original)


def test_fill_region_spiral_and_errors():
    """A spiral corridor (a long chain of runs) is filled end to end, and only it."""
    n = 41
    label = np.ones((n, n), np.uint8)
    lo_y, hi_y, lo_x, hi_x = 0, n - 1, 0, n - 1
    while lo_y <= hi_y and lo_x <= hi_x:  # carve a spiral corridor of 0s with walls of 1s between
        label[lo_y, lo_x:hi_x + 1] = 0
        label[lo_y:hi_y + 1, hi_x] = 0
        label[hi_y, lo_x:hi_x + 1] = 0
        label[lo_y + 2:hi_y + 1, lo_x] = 0
        if lo_x + 2 <= hi_x - 2 and lo_y + 2 <= hi_y - 2:
            label[lo_y + 1, lo_x + 1:hi_x - 1] = 1
        lo_y, hi_y, lo_x, hi_x = lo_y + 2, hi_y - 2, lo_x + 2, hi_x - 2
    edit = fill_region(label, 0, 0, 3)
    filled = label.copy()
    edit.apply(filled)
    assert np.array_equal(filled, ref_fill(label, 0, 0, 3))
    assert fill_region(label, 0, 0, int(label[0, 0])).is_empty
    with pytest.raises(ValueError, match="outside"):
        fill_region(label, n, 0, 1)


# --------------------------------------------------------------------------- pick, changed_cells
def test_pick_and_changed_cells():
    label = np.arange(30, dtype=np.uint8).reshape(5, 6)
    assert pick(label, 4, 2) == 16 and pick(label, 4.7, 2.2) == 16
    with pytest.raises(ValueError, match="outside"):
        pick(label, -1, 0)
    ref = label.copy()
    edited = label.copy()
    edited[4, 5] = 0
    edited[0, 0] = 9
    for level in range(4):
        got = changed_cells(edited, ref, level)
        size = 2**level
        expected = np.zeros((-(-5 // size), -(-6 // size)), bool)
        for yy, xx in zip(*np.nonzero(edited != ref)):
            expected[yy // size, xx // size] = True
        assert np.array_equal(got, expected)
    with pytest.raises(ValueError, match="same 2-D size"):
        changed_cells(label, label[:4], 0)


# --------------------------------------------------------------------------- LabelEdit.then
@given(seed=st.integers(0, 2**31), n=st.integers(1, 6))
@HYP
def test_then_equals_sequence_and_reverts(seed, n):
    rng = np.random.default_rng(seed)
    original = random_label(rng, 23, 29)
    label = original.copy()
    combined = LabelEdit.empty(label.dtype)
    recorder = StrokeRecorder(label)
    for _ in range(n):
        if rng.random() < 0.3:
            edit = fill_region(label, int(rng.integers(0, 29)), int(rng.integers(0, 23)), int(rng.integers(0, 5)))
        else:
            level = int(rng.integers(0, 4))
            pts = cells_along(level, tuple(rng.uniform(0, 29, 2)), tuple(rng.uniform(0, 23, 2)))
            edit = paint_cells(label, level, pts, int(rng.choice([0, 1, 2, 255])))
        edit.apply(label)
        recorder.record(edit)
        combined = combined.then(edit)
    stroke = recorder.edit()  # what a drag does: record each step, one edit at the end
    for a, b in ((stroke.index, combined.index), (stroke.before, combined.before), (stroke.after, combined.after)):
        assert np.array_equal(a, b)
    replay = original.copy()
    combined.apply(replay)
    assert np.array_equal(replay, label)
    assert combined.pixel_count == int((label != original).sum()), "memory ∝ pixels changed overall"
    assert np.all(np.diff(combined.index) > 0)
    combined.revert(replay)
    assert np.array_equal(replay, original)


def test_a_stroke_recorder_allocates_by_the_pixels_painted_not_by_the_map():
    """A stroke on a 6000×4000 map allocated a (H*W,) mask and a (H*W,) copy at the press (~70 ms of
    the UI thread there); a short stroke now holds memory for its own pixels only, and its edit
    is still the combined one."""
    import tracemalloc

    label = np.zeros((2000, 2000), np.uint8)
    original = label.copy()
    tracemalloc.start()
    try:
        recorder = StrokeRecorder(label)
        combined = LabelEdit.empty(label.dtype)
        for x in range(10, 200, 10):
            edit = paint_cells(label, 2, np.array([[x // 4, 25]]), 3)
            edit.apply(label)
            recorder.record(edit)
            combined = combined.then(edit)
        stroke = recorder.edit()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < label.size // 20, peak  # 4 MB map: well under 200 KB for 19 cells of 16 px
    assert np.array_equal(stroke.index, combined.index) and np.array_equal(stroke.before, combined.before)
    assert np.array_equal(stroke.after, combined.after)
    assert stroke.pixel_count == int((label != original).sum())


def test_then_drops_pixels_painted_back():
    label = np.zeros((4, 4), np.uint8)
    a = paint_cells(label, 1, np.array([[0, 0]]), 2)
    a.apply(label)
    b = paint_cells(label, 0, np.array([[0, 0]]), 0)
    ab = a.then(b)
    assert ab.pixel_count == 3 and 0 not in ab.index.tolist()
    with pytest.raises(ValueError, match="length"):
        LabelEdit(np.zeros(2, np.int64), np.zeros(1, np.uint8), np.zeros(2, np.uint8))


# --------------------------------------------------------------------------- Annotation
def test_annotation_derived_quadtree_follows_edits():
    rng = np.random.default_rng(7)
    pred = random_label(rng, 45, 70)
    ann = Annotation.from_prediction(pred, CLASSES)
    assert ann.label.dtype == np.uint8 and ann.source == "prediction"
    assert ann.quadtree() == Quadtree.from_label(pred, 5, 255, 6)
    brute = pred.copy()
    history = []
    for i in range(8):
        level = i % 5
        pts = cells_along(level, tuple(rng.uniform(0, 70, 2)), tuple(rng.uniform(0, 45, 2)))
        value = [0, 1, 2, 3, 4, 255][i % 6]
        edit = paint_cells(ann.label, level, pts, value)
        ann.apply(edit)
        brute = ref_paint(brute, level, pts, value)
        history.append(brute.copy())
        assert np.array_equal(ann.label, brute)
        assert ann.quadtree() == Quadtree.from_label(brute, 5, 255, 6)
        assert np.array_equal(ann.tpyramid().to_label(), brute)
    assert ann.changed_cells(0).sum() == int((brute != pred).sum())
    edit = fill_region(ann.label, 0, 0, 4)
    ann.apply(edit)
    ann.revert(edit)
    assert ann.quadtree() == Quadtree.from_label(history[-1], 5, 255, 6)


def test_annotation_refuses_bad_edits_and_maps():
    ann = Annotation.empty(6, 9, CLASSES)
    assert ann.source == "empty" and np.all(ann.label == 255) and ann.shape == (6, 9)
    bad = paint_cells(ann.label, 0, np.array([[1, 1]]), 7)  # 7 is no class of 5 and not the ignore value
    with pytest.raises(ValueError, match=r"\[7\]"):
        ann.apply(bad)
    assert np.all(ann.label == 255), "a refused edit leaves the map untouched"
    with pytest.raises(ValueError, match="outside"):
        ann.apply(LabelEdit(np.array([54]), np.array([255], np.uint8), np.array([1], np.uint8)))
    with pytest.raises(ValueError, match="another class set"):
        Annotation.from_prediction(np.full((3, 3), 9), CLASSES)
    with pytest.raises(ValueError, match="no ignore value"):
        Annotation.empty(3, 3, ClassSet.generic(3))
    with pytest.raises(ValueError, match="0..65535"):
        Annotation.from_prediction(np.zeros((3, 3), np.int64), ClassSet.generic(3, ignore_index=-1))


def test_annotation_sixteen_bit_classes():
    classes = ClassSet.generic(300, ignore_index=65535)
    pred = np.arange(300 * 4).reshape(40, 30) % 300
    ann = Annotation.from_prediction(pred, classes, levels=4)
    assert ann.label.dtype == np.uint16
    ann.apply(paint_cells(ann.label, 2, np.array([[5, 5]]), 299))
    ann.apply(paint_cells(ann.label, 0, np.array([[0, 0]]), 65535))
    assert ann.quadtree() == Quadtree.from_label(ann.label, 300, 65535, 4)


# --------------------------------------------------------------------------- big maps (the 50 ms rule's data side)
def ref_component(label: np.ndarray, x: int, y: int) -> np.ndarray:
    """scipy's 4-connected labelling: the component of (x, y) among the pixels equal to it."""
    from scipy import ndimage

    parts, _ = ndimage.label(label == label[y, x])  # the default structure is 4-connected
    return parts == parts[y, x]


@pytest.mark.parametrize("dtype, region", [(np.uint8, "huge"), (np.uint8, "tiny"), (np.uint16, "huge")])
def test_fill_region_on_a_big_map_matches_scipy_and_undoes(dtype, region):
    """A fill on a 600×900 map (a huge region kept as its rows' mask, a tiny one as indices) writes
    exactly scipy's component; revert gives the map back; its index is the component's."""
    rng = np.random.default_rng(5)
    label = random_label(rng, 600, 900, k=3).astype(dtype)
    if region == "huge":
        label[200:500, :] = 1  # one region across the width
        x, y = 450, 300
    else:
        label[40:43, 50:53] = 4
        label[39, 50:53] = label[43, 50:53] = label[40:43, 49] = label[40:43, 53] = 2
        x, y = 51, 41
    mine = ref_component(label, x, y)
    original = label.copy()
    edit = fill_region(label, x, y, 0 if region == "tiny" else 2)
    assert (edit.rows is not None) == (region == "huge")
    assert np.array_equal(edit.index, np.flatnonzero(mine))
    assert edit.pixel_count == int(mine.sum()) and np.all(edit.before == original[mine])
    edit.apply(label)
    expected = original.copy()
    expected[mine] = 0 if region == "tiny" else 2
    assert np.array_equal(label, expected)
    edit.revert(label)
    assert np.array_equal(label, original)


def test_an_edit_held_as_rows_acts_as_its_indices():
    """``LabelEdit.of_rows`` and the index edit of the same pixels apply, revert, merge, remap and
    fit alike; the rows form holds a byte a pixel of its rows, not eight a changed pixel."""
    rng = np.random.default_rng(2)
    label = rng.integers(0, 5, (40, 30)).astype(np.uint8)
    mask = np.zeros((40, 30), bool)
    mask[10:25] = rng.random((15, 30)) < 0.7
    before, after = label[mask], rng.integers(0, 5, int(mask.sum())).astype(np.uint8)
    rows = LabelEdit.of_rows(10, np.ascontiguousarray(mask[10:25]), before, after)
    flat = LabelEdit(np.flatnonzero(mask), before.copy(), after.copy())
    assert np.array_equal(rows.index, flat.index) and rows.row_span(30) == flat.row_span(30)
    assert rows.nbytes < flat.nbytes
    a, b = label.copy(), label.copy()
    rows.apply(a)
    flat.apply(b)
    assert np.array_equal(a, b)
    later = paint_cells(a, 1, np.array([[3, 12], [20, 20]]), 4)
    assert np.array_equal(rows.then(later).index, flat.then(later).index)
    rows.revert(a)
    assert np.array_equal(a, label)
    table = np.array([4, 3, 2, 1, 0], np.uint8)
    remapped = rows.with_values(table[rows.before], table[rows.after])
    assert remapped.rows is not None and np.array_equal(remapped.index, flat.index)
    assert rows.fits((40, 30)) and not rows.fits((24, 30)) and not rows.fits((40, 31))
    with pytest.raises(ValueError, match="pixels"):
        LabelEdit.of_rows(0, np.ascontiguousarray(mask), before[:-1], after[:-1])


@given(h=st.integers(1, 70), w=st.integers(1, 70), level=st.integers(0, 8), seed=st.integers(0, 2**31))
@HYP
def test_changed_cells_matches_a_loop_over_cells(h, w, level, seed):
    rng = np.random.default_rng(seed)
    reference = rng.integers(0, 3, (h, w)).astype(np.uint8)
    label = reference.copy()
    label[rng.random((h, w)) < 0.02] = 7
    size = 1 << level
    expected = np.zeros((-(-h // size), -(-w // size)), bool)
    for cy in range(expected.shape[0]):
        for cx in range(expected.shape[1]):
            expected[cy, cx] = (label[cy * size:(cy + 1) * size, cx * size:(cx + 1) * size]
                                != reference[cy * size:(cy + 1) * size, cx * size:(cx + 1) * size]).any()
    assert np.array_equal(changed_cells(label, reference, level), expected)


def test_check_label_shortcut_still_refuses_values_of_no_class():
    """The min/max shortcut of ``check_label`` accepts only ranges of valid values; anything else is
    still counted value by value."""
    from qgn.label_map import check_label

    classes = ClassSet.generic(5, ignore_index=255)
    for ok in ([0, 4], [255, 255], [0, 255, 3]):
        check_label(np.array([ok], np.uint8), classes, copy=False)
    for bad, shown in (([0, 5], "[5]"), ([7, 255], "[7]"), ([6, 6], "[6]")):
        with pytest.raises(ValueError, match=re.escape(shown)):
            check_label(np.array([bad], np.uint8), classes)
    long_row = np.zeros((1, 300_000), np.uint8)
    long_row[0, 123_456] = 9  # an edit's values: one long row, counted in parts
    with pytest.raises(ValueError, match=re.escape("[9]")):
        check_label(long_row, classes)


# --------------------------------------------------------------------------- loose ends
def test_paint_cells_refuses_a_level_beyond_the_map():
    """Level 16 on a 480×360 map used to allocate 2^32 offsets (MemoryError); levels beyond the one
    whose single cell covers the map are refused by name, and that level paints the whole map."""
    label = np.zeros((360, 480), np.uint8)
    for level in (10, 16, 30):
        with pytest.raises(ValueError, match=r"cell level \d+ is beyond this 480×360 label map: choose a level in 0\.\.9"):
            paint_cells(label, level, np.array([[5.0, 5.0]]), 1)
    whole = paint_cells(label, 9, np.array([[400.0, 300.0]]), 1)
    assert whole.pixel_count == label.size and np.array_equal(whole.index, np.arange(label.size))
    tiny = np.zeros((6, 5), np.uint8)  # smaller than a root cell: the quadtree's levels still work
    assert paint_cells(tiny, 5, np.array([[1.0, 1.0]]), 2).pixel_count == 30


def test_cells_along_clipped_to_the_image_paints_the_same():
    """With the image's shape, a segment inside the image (widened by the brush) gives the same
    cells; one that leaves it paints the same pixels with any brush radius; a pointer flung ten
    million pixels away costs the cells near the image only."""
    from qgn.annotation.brush import brush_points

    rng = np.random.default_rng(9)
    h, w = 50, 70
    label = np.zeros((h, w), np.uint8)
    for _ in range(300):
        level, radius = int(rng.integers(0, 4)), int(rng.integers(0, 3))
        start, end = rng.uniform(-300, 300, 2) + (w / 2, h / 2), rng.uniform(-300, 300, 2) + (w / 2, h / 2)
        full = cells_along(level, start, end)
        clipped = cells_along(level, start, end, (h, w), radius)
        pad = (radius + 1) << level
        inside = all(-pad <= p[0] <= w + pad and -pad <= p[1] <= h + pad for p in (start, end))
        if inside:
            assert np.array_equal(clipped, full)
        painted = [paint_cells(label, level, brush_points(level, cells, radius), 1).index for cells in (full, clipped)]
        assert np.array_equal(*painted)
    far = cells_along(0, (5.5, 7.5), (1e7, 9.5), (h, w), 2)
    assert 0 < len(far) < 2 * (w + 10) and tuple(far[0]) == (5, 7)
    assert len(cells_along(2, (-1e7, -5e6), (-2e7, 3e6), (h, w), 1)) == 0  # wholly outside
