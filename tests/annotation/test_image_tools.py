"""The image-aware annotation tools of qgn.annotation (issue #21): superpixels, the magic wand, the
snapped coarse brush, the working resolution — against independent references (brute-force
flood fills, hand-built images)."""
from __future__ import annotations

import numpy as np

from qgn.annotation.snap import snapped_stroke, stroke_masks
from qgn.annotation.superpixels import majority_vote, oversegment, paint_segments
from qgn.annotation.wand import magic_wand
from qgn.annotation.working import WorkingImage


def two_tone(h=96, w=128, edge=50, noise=4, seed=0):
    """An image whose left part (x < edge) is dark red and the rest light blue, with mild noise."""
    rng = np.random.default_rng(seed)
    image = np.empty((h, w, 3), np.float64)
    image[:, :edge] = (120, 30, 30)
    image[:, edge:] = (60, 140, 220)
    image += rng.normal(0, noise, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def flood(mask, y, x):
    """Brute force: the 4-connected component of True pixels of ``mask`` holding (y, x)."""
    h, w = mask.shape
    seen = np.zeros(mask.shape, bool)
    todo = [(y, x)]
    seen[y, x] = True
    while todo:
        cy, cx = todo.pop()
        for ny, nx in ((cy - 1, cx), (cy + 1, cx), (cy, cx - 1), (cy, cx + 1)):
            if 0 <= ny < h and 0 <= nx < w and not seen[ny, nx] and mask[ny, nx]:
                seen[ny, nx] = True
                todo.append((ny, nx))
    return seen


def test_superpixels_follow_a_colour_edge_and_paint_whole_segments():
    image = two_tone()
    over = oversegment(image)
    assert over.shape == (96, 128) and over.granularities == 3
    assert over.counts[0] <= over.counts[1] <= over.counts[2]  # coarse → fine
    for seg in over.segments:  # no segment straddles the edge (a couple of pixels of slack)
        left, right = seg[:, :48], seg[:, 52:]
        assert not set(np.unique(left)) & set(np.unique(right))
    label = np.full((96, 128), 255, np.uint8)
    edit = paint_segments(label, over, 2, np.array([[10.5, 10.5]]), 1)
    seg = over.segments[2]
    assert np.array_equal(edit.index, np.flatnonzero(seg == seg[10, 10]))
    drag = paint_segments(label, over, 2, np.array([[5.5, 5.5], [40.5, 80.5]]), 1)
    crossed = {seg[int(5 + t * 75), int(5 + t * 35)] for t in np.linspace(0, 1, 400)}
    assert set(np.unique(seg.reshape(-1)[drag.index])) == crossed


def test_majority_vote_takes_each_segment_to_its_most_frequent_value():
    image = two_tone()
    over = oversegment(image)
    noisy = np.zeros((96, 128), np.int64)
    noisy[:, 50:] = 1
    rng = np.random.default_rng(1)
    flips = rng.random(noisy.shape) < 0.1
    voted = majority_vote(np.where(flips, 1 - noisy, noisy), over, 1)
    assert (voted == noisy).mean() > 0.97


def test_wand_is_a_fill_bounded_by_colour_and_label():
    image = two_tone(noise=0)
    image[40:60, 10:30] = (125, 35, 35)  # within 8 of the red
    working = WorkingImage(image)
    label = np.zeros((96, 128), np.uint8)
    edit = magic_wand(label, working, 5, 5, 2, tolerance=8)
    expected = np.zeros((96, 128), bool)
    expected[:, :50] = True
    assert np.array_equal(edit.index, np.flatnonzero(expected))
    assert len(magic_wand(label, working, 5, 5, 2, tolerance=2).index) == 50 * 96 - 20 * 20  # the patch differs by 5
    label[:, 25:] = 1  # a label boundary inside the red stops the wand (same_label)
    edit = magic_wand(label, working, 5, 5, 2, tolerance=8)
    assert np.array_equal(edit.index, np.flatnonzero(flood((label == 0) & expected, 5, 5)))
    everything = magic_wand(np.zeros((96, 128), np.uint8), working, 5, 5, 2, tolerance=255)
    assert len(everything.index) == 96 * 128  # tolerance 255 is the fill tool


def test_snapped_stroke_keeps_inside_cells_and_snaps_the_rim_to_the_edge():
    image = two_tone(edge=50)
    working = WorkingImage(image)
    label = np.full((96, 128), 255, np.uint8)
    label[:, 64:] = 7  # the blue side is already labelled something else
    # a coarse stroke (16-px cells) over x 0 … 63, all rows: its last column of cells straddles the
    # edge at x = 50; cells beyond the image border count as stroked, so the other cells are inside
    cells = np.array([[x, y] for y in range(0, 96, 16) for x in range(0, 64, 16)])
    path = np.array([[24.5, 40.5], [40.5, 40.5]])
    edit = snapped_stroke(label, working, 4, cells, 3, path=path)
    painted = np.zeros((96, 128), bool)
    painted.reshape(-1)[edit.index] = True
    stroke = np.zeros((96, 128), bool)
    stroke[:, :64] = True
    assert not painted[~stroke].any()  # nothing outside the stroke changes
    assert painted[:, :48].all()  # the inside cells take the class
    # in the rim the class stops at the colour edge (±1 px), not at the cells' edge
    assert painted[:, 48:49].all() and not painted[:, 52:64].any()
    # the model evidence decides the band instead: exactly where it says the class is
    evidence = np.zeros((96, 128), bool)
    evidence[:, :30] = True
    by_model = snapped_stroke(label, working, 4, cells, 3, path=path, evidence=evidence)
    box, s, core, _ = stroke_masks(working, 4, cells, path)
    chosen = np.zeros((96, 128), bool)
    chosen.reshape(-1)[by_model.index] = True
    full_core = np.zeros((96, 128), bool)
    full_core[box[0]:box[1], box[2]:box[3]] = core
    assert np.array_equal(chosen, stroke & (full_core | evidence))


def test_tools_at_a_working_resolution_map_back_to_full_size():
    small = two_tone(h=60, w=80, edge=30, noise=0)
    big = np.kron(small, np.ones((50, 50, 1), np.uint8))  # 3000×4000 pixels
    working = WorkingImage(big, pixels=80 * 60)
    assert working.resized and working.working_shape == (60, 80)
    label = np.zeros(big.shape[:2], np.uint8)
    edit = magic_wand(label, working, 10, 10, 1, tolerance=8)
    expected = np.zeros(big.shape[:2], bool)
    expected[:, :1500] = True  # the red part, 30 working columns of 50 px
    assert np.array_equal(edit.index, np.flatnonzero(expected))
    over = oversegment(working)
    seg_edit = paint_segments(label, over, 0, np.array([[100.0, 100.0]]), 1)
    assert set(np.flatnonzero(expected)) >= set(seg_edit.index.tolist()[:1000])


def test_on_a_resized_image_the_wand_stops_at_a_wall_the_working_copy_never_sees():
    """A 1-px wall of another label in a column the working copy does not sample: the wand ran
    through it (597,000 px relabelled beyond it at 1200×1000), though it may only relabel what the
    fill tool could. Brute force: the fill region of the click, at full size."""
    from qgn.annotation.edit import fill_region

    h, w = 100, 120
    working = WorkingImage(np.full((h, w, 3), 128, np.uint8), pixels=33 * 40)
    sampled = set(np.minimum(((np.arange(working.working_shape[1]) + 0.5) * w / working.working_shape[1])
                             .astype(int), w - 1).tolist())
    wall = next(c for c in range(50, 80) if c not in sampled)
    label = np.zeros((h, w), np.uint8)
    label[:, wall] = 1
    edit = magic_wand(label, working, 10, 10, 2, tolerance=16)
    assert working.resized and np.array_equal(edit.index, fill_region(label, 10, 10, 2).index)


def test_on_a_resized_image_a_snapped_stroke_changes_nothing_outside_its_cells():
    """A working pixel mapped back covers full-size pixels of the cells beside it: strokes wrote up
    to 48 px outside their cells at 900×700. Now nothing outside, and every inside cell is whole."""
    from qgn.annotation.brush import brush_points
    from qgn.annotation.edit import cells_along

    rng = np.random.default_rng(3)
    h, w = 90, 70
    image = np.repeat(rng.integers(0, 255, (h, 1, 3), np.uint8), w, axis=1)  # stripes
    working = WorkingImage(image, pixels=31 * 23)
    assert working.resized
    label = np.zeros((h, w), np.uint8)
    for level in (0, 2, 3):
        points = brush_points(level, cells_along(level, (10.3, 10.7), (60.2, 80.9)), 1)
        cells = {(int(y) >> level, int(x) >> level) for x, y in points if 0 <= x < w and 0 <= y < h}
        for evidence in (None, rng.random((h, w)) < 0.5):
            edit = snapped_stroke(label, working, level, points, 1, evidence=evidence)
            ys, xs = np.divmod(edit.index, w)
            assert all(((y >> level), (x >> level)) in cells for y, x in zip(ys.tolist(), xs.tolist())), level
            inside = [c for c in cells if all((c[0] + dy, c[1] + dx) in cells or not (
                0 <= (c[0] + dy) << level < h and 0 <= (c[1] + dx) << level < w)
                for dy in (-1, 0, 1) for dx in (-1, 0, 1))]
            written = set(edit.index.tolist())
            for cy, cx in inside:
                block = [y * w + x for y in range(cy << level, min((cy + 1) << level, h))
                         for x in range(cx << level, min((cx + 1) << level, w))]
                assert written.issuperset(block), (level, cy, cx)


def test_superpixels_under_points_off_the_image_are_none():
    """A point outside the image (or NaN) was clipped to the border and painted the segment there."""
    image = two_tone(h=40, w=60)
    over = oversegment(WorkingImage(image))
    label = np.zeros((40, 60), np.uint8)
    for points in ([[-50.0, -50.0]], [[np.nan, 3.0]], [[-20.0, -5.0], [-3.0, -9.0]], [[70.0, 10.0], [90.0, 30.0]]):
        assert paint_segments(label, over, 0, np.array(points), 1).index.size == 0, points
    assert paint_segments(label, over, 0, np.array([[-10.0, 20.0], [10.0, 20.0]]), 1).index.size > 0


def test_the_wand_on_a_read_only_image_selects_what_it_does_on_a_writable_one():
    """np.asarray of a PIL image is read-only: OpenCV's floodFill refused it (cv2.error), though the
    mask-only fill writes nothing into the image."""
    image = two_tone()
    label = np.zeros(image.shape[:2], np.uint8)
    frozen = image.copy()
    frozen.flags.writeable = False
    expected = magic_wand(label, WorkingImage(image), 5, 5, 2, tolerance=8)
    edit = magic_wand(label, WorkingImage(frozen), 5, 5, 2, tolerance=8)
    assert len(expected.index) > 0 and np.array_equal(edit.index, expected.index)
