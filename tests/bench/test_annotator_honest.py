"""The honest simulated annotator (issue #21): void never blocks a fill, the best fill touching the
region is taken, collateral stays within beta, the boundary tolerance counts right what it should
(checked by brute force), the cheaper start is taken at one action, and the image-aware tools are
proposed through the library's own functions."""
from __future__ import annotations

import numpy as np
import pytest

from qgn.bench.annotate_sim import BETA, simulate_annotator, tolerance_bits
from qgn.classes import ClassSet

C = ClassSet(("a", "b", "c"), (), 255)


def test_void_pixels_do_not_block_the_first_fill():
    gt = np.zeros((64, 64), np.int64)
    gt[:, 40:] = 1
    gt[10:14, 5:9] = 255  # unlabelled pixels inside class 0
    gt[50:52, 50:60] = 255
    empty = np.full(gt.shape, 255)
    trace = []
    effort, fixed = simulate_annotator(gt, empty, C, trace=trace)
    assert trace[0][0] == "fill"  # flooding the empty map with the largest class is the first click
    assert effort.accuracy_end == 1.0 and effort.actions <= 3


def test_the_best_fill_touching_the_region_is_taken():
    gt = np.zeros((32, 64), np.int64)
    gt[:, 37:] = 1  # not aligned to the cells: no coarse cell fits the right part
    start = gt.copy()
    start[:, 37:] = 2  # the right part is wrong (2 instead of 1) …
    start[0, 37] = 0   # … and its first pixel belongs to the left part's label region (a fill there breaks it)
    trace = []
    effort, fixed = simulate_annotator(gt, start, C, trace=trace)
    assert trace[0][0] == "fill" and trace[0][2] == 32 * 27 - 1  # the fill on the 2-region, not at the first pixel
    assert effort.actions == 1 and effort.accuracy_end >= 0.99  # one pixel left: within the 99 % target


def test_collateral_stays_within_beta_and_every_action_gains():
    pytest.importorskip("skimage")
    from qgn.annotation.superpixels import oversegment
    from qgn.bench.annotate_tools import ImageTools
    from qgn.data.synthetic import make_scene

    image, gt = make_scene(7, 96, 128)
    gt = gt.astype(np.int64)
    classes = ClassSet(tuple(f"c{i}" for i in range(8)), (), 255)
    trace = []
    effort, fixed = simulate_annotator(gt, np.full(gt.shape, 255), classes, tools=[ImageTools(oversegment(image))],
                                       trace=trace)
    assert all(t[3] <= BETA * t[2] for t in trace) and all(t[2] > t[3] for t in trace)
    assert effort.accuracy_end >= 0.99 and (fixed == gt).mean() >= 0.99
    assert sum(effort.tools.values()) == effort.actions == len(trace)
    assert effort.milestones["95"] <= effort.milestones["98"] <= effort.milestones["99"] == effort.actions


def brute_force_right(label, gt, ignore, t):
    """A labelled pixel is right when its label is the truth of a labelled pixel within t (Chebyshev)."""
    h, w = gt.shape
    right = np.zeros(gt.shape, bool)
    for y in range(h):
        for x in range(w):
            block = gt[max(0, y - t):y + t + 1, max(0, x - t):x + t + 1]
            right[y, x] = (block[block != ignore] == label[y, x]).any()
    return right


def test_tolerance_counts_near_misses_right_and_ends_at_the_target():
    rng = np.random.default_rng(2)
    gt = np.kron(rng.integers(0, 3, (4, 5)), np.ones((9, 11), np.int64))
    gt[rng.random(gt.shape) < 0.02] = 255
    bits = tolerance_bits(gt, 255, 1)
    clean = np.kron(rng.integers(0, 3, (4, 5)), np.ones((9, 11), np.int64))
    shifted = clean.copy()
    shifted[:, 1:] = clean[:, :-1]  # every boundary off by one pixel
    mine = ((tolerance_bits(clean, 255, 1) >> shifted.astype(np.uint64)) & np.uint64(1)) == 1
    assert mine.all()
    effort, _ = simulate_annotator(clean, shifted, C, tolerance=1)
    assert effort.actions == 0 and effort.accuracy_start == 1.0  # a 1-px shift needs nothing
    shifted = np.where(gt == 255, 0, gt)
    mine = ((bits >> shifted.astype(np.uint64)) & np.uint64(1)) == 1
    assert np.array_equal(mine, brute_force_right(shifted, gt, 255, 1))
    start = np.where(rng.random(gt.shape) < 0.3, rng.integers(0, 3, gt.shape), gt)
    start[start == 255] = 0
    effort, fixed = simulate_annotator(gt, start, C, tolerance=1)
    labelled = gt != 255
    assert brute_force_right(fixed, gt, 255, 1)[labelled].mean() >= 0.99


def test_the_cheaper_start_costs_one_action():
    from qgn.bench.annotate import _choose
    from qgn.bench.annotate_sim import Effort

    model = Effort(40, 10, 30, 0.5, 0.99, [0] * 6)
    empty = Effort(30, 5, 25, 0.0, 0.99, [0] * 6)
    name, effort = _choose({"model": model, "empty": empty}, {"empty": 1})
    assert name == "empty" and effort.actions == 31 and effort.start == "empty"
    name, effort = _choose({"model": Effort(31, 0, 31, 0.5, 0.99, [0] * 6), "empty": empty}, {"empty": 1})
    assert name == "model" and effort.actions == 31  # ties keep the default start
