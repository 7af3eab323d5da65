"""Quadtree labels (paper §3.1): the merge operator, T-pyramids and leaf sets against brute-force
references written as plain loops over cells, property-based round trips, and bad input."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from qgn.quadtree import COMPOSITE, LevelStats, Quadtree, QuadtreeError, build_tpyramid, merge_2x2
from qgn.quadtree.tpyramid import merge_2x2_wildcard

HYP = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------- brute-force references
def ref_merge(codes: np.ndarray) -> np.ndarray:
    """Eq. 2 cell by cell: a 2×2 block's common value, else composite (0)."""
    h, w = codes.shape[0] // 2, codes.shape[1] // 2
    out = np.zeros((h, w), codes.dtype)
    for y in range(h):
        for x in range(w):
            a, b = codes[2 * y, 2 * x], codes[2 * y, 2 * x + 1]
            c, d = codes[2 * y + 1, 2 * x], codes[2 * y + 1, 2 * x + 1]
            out[y, x] = a if a == b == c == d else COMPOSITE
    return out


def ref_merge_wildcard(codes: np.ndarray, void: int) -> np.ndarray:
    """Void agrees with anything; all-void stays void; composite children make a composite."""
    h, w = codes.shape[0] // 2, codes.shape[1] // 2
    out = np.zeros((h, w), codes.dtype)
    for y in range(h):
        for x in range(w):
            kids = [int(codes[2 * y + i, 2 * x + j]) for i in (0, 1) for j in (0, 1)]
            real = {k for k in kids if k != void}
            if not real:
                out[y, x] = void
            elif len(real) == 1 and COMPOSITE not in real:
                out[y, x] = real.pop()
            else:
                out[y, x] = COMPOSITE
    return out


def ref_codes(label: np.ndarray, k: int, ignore: int | None, levels: int) -> np.ndarray:
    """Level-0 codes pixel by pixel: class c → c+1, ignore and padding → k+1."""
    cell = 2 ** (levels - 1)
    h, w = label.shape
    ph, pw = -(-h // cell) * cell, -(-w // cell) * cell
    codes = np.full((ph, pw), k + 1, np.int64)
    for y in range(h):
        for x in range(w):
            v = int(label[y, x])
            codes[y, x] = k + 1 if (ignore is not None and v == ignore) else v + 1
    return codes


def ref_leaves(label: np.ndarray, k: int, ignore: int | None, levels: int) -> set[tuple[int, int, int, int]]:
    """The leaf set Q = {(l, x, y, v)} straight from the definition: a cell is a leaf when all its
    pixels share one code and it is a root or its parent's pixels do not."""
    codes = ref_codes(label, k, ignore, levels)
    ph, pw = codes.shape

    def uniform(l: int, x: int, y: int) -> int | None:
        block = codes[y << l : (y + 1) << l, x << l : (x + 1) << l]
        first = int(block.flat[0])
        return first if (block == first).all() else None

    leaves = set()
    for l in range(levels):
        for y in range(ph >> l):
            for x in range(pw >> l):
                v = uniform(l, x, y)
                if v is None:
                    continue
                if l == levels - 1 or uniform(l + 1, x // 2, y // 2) is None:
                    leaves.add((l, x, y, v))
    return leaves


def leaf_set(qt: Quadtree) -> set[tuple[int, int, int, int]]:
    return {(int(l), int(x), int(y), int(v)) for l, x, y, v in zip(qt.level, qt.x, qt.y, qt.value)}


# --------------------------------------------------------------------------- mask generator
def random_mask(seed: int, h: int, w: int, k: int, ignore: int | None, p_ignore: float = 0.1) -> np.ndarray:
    """Blocky random masks (regions of several sizes, some noise), so that every level occurs."""
    rng = np.random.default_rng(seed)
    block = int(rng.choice([1, 2, 3, 4, 8, 16]))
    small = rng.integers(0, k, (-(-h // block), -(-w // block)))
    mask = np.repeat(np.repeat(small, block, 0), block, 1)[:h, :w]
    noise = rng.random((h, w)) < 0.05
    mask = np.where(noise, rng.integers(0, k, (h, w)), mask)
    if ignore is not None:
        mask = np.where(rng.random((h, w)) < p_ignore, ignore, mask)
    return mask.astype(np.int64)


mask_params = st.tuples(
    st.integers(0, 2**32 - 1),  # seed
    st.integers(1, 45),  # height
    st.integers(1, 45),  # width
    st.integers(1, 6),  # classes
    st.integers(1, 7),  # levels
    st.sampled_from(["none", "above", "255"]),  # ignore value
    st.sampled_from([0.1, 0.0, 1.0]),  # share of ignore pixels (1.0: all ignore)
)


def unpack(params):
    seed, h, w, k, levels, ig, p_ignore = params
    ignore = {"none": None, "above": k, "255": 255}[ig]
    return random_mask(seed, h, w, k, ignore, p_ignore), k, ignore, levels


# --------------------------------------------------------------------------- merge operator
@HYP
@given(st.integers(0, 2**32 - 1), st.integers(1, 12), st.integers(1, 12), st.integers(1, 4))
def test_merge_matches_reference(seed, h, w, k):
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, k + 2, (2 * h, 2 * w)).astype(np.uint8)
    codes[: 2 * (h // 2), :] = np.repeat(codes[: 2 * (h // 2) : 2, :], 2, 0)  # some uniform blocks too
    assert np.array_equal(merge_2x2(codes), ref_merge(codes))
    void = k + 1
    assert np.array_equal(merge_2x2_wildcard(codes, void), ref_merge_wildcard(codes, void))


def test_merge_examples():
    c = np.array([[1, 1, 2, 3], [1, 1, 2, 2]], np.uint8)
    assert merge_2x2(c).tolist() == [[1, 0]]
    four_composites = np.zeros((2, 2), np.uint8)
    assert merge_2x2(four_composites).tolist() == [[COMPOSITE]]


def test_wildcard_semantics():
    void = 4
    c = np.array(
        [[1, void, void, void, 1, 2, 0, 1],
         [1, 1, void, void, 1, 1, 1, 1]], np.uint8)
    # void agrees with 1; all-void stays void; two classes are composite; a composite child too.
    assert merge_2x2_wildcard(c, void).tolist() == [[1, void, COMPOSITE, COMPOSITE]]
    label = np.array([[0, 3], [0, 0]])  # 3 = ignore
    tp = build_tpyramid(label, 3, 3, levels=2, policy="wildcard")
    assert tp.levels[1].tolist() == [[1]]  # ignore does not break uniformity
    assert build_tpyramid(label, 3, 3, levels=2).levels[1].tolist() == [[COMPOSITE]]
    assert np.array_equal(tp.to_label(), label)  # level 0 still keeps the ignore pixels
    assert tp.loss_target(0).tolist() == [[1, -1], [1, 1]]
    with pytest.raises(ValueError, match="class"):
        Quadtree.from_tpyramid(tp)


@HYP
@given(mask_params)
def test_tpyramid_levels_match_reference(params):
    label, k, ignore, levels = unpack(params)
    tp = build_tpyramid(label, k, ignore, levels)
    codes = ref_codes(label, k, ignore, levels)
    assert np.array_equal(tp.levels[0], codes)
    for l in range(1, levels):
        assert np.array_equal(tp.levels[l], ref_merge(tp.levels[l - 1]))
    wild = build_tpyramid(label, k, ignore, levels, policy="wildcard")
    for l in range(1, levels):
        assert np.array_equal(wild.levels[l], ref_merge_wildcard(wild.levels[l - 1], k + 1))
    assert np.array_equal(wild.to_label(), np.where(label == ignore, ignore, label) if ignore is not None else label)


# --------------------------------------------------------------------------- leaves and round trips
@HYP
@given(mask_params)
@example((0, 1, 1, 1, 1, "none", 0.0))  # 1×1, one level
@example((0, 1, 1, 3, 7, "above", 0.1))  # 1×1 padded to 64×64
@example((1, 33, 17, 1, 6, "none", 0.0))  # one class, odd size
@example((2, 20, 30, 2, 3, "255", 1.0))  # all ignore
def test_leaves_match_reference_and_round_trip(params):
    label, k, ignore, levels = unpack(params)
    qt = Quadtree.from_label(label, k, ignore, levels)
    assert leaf_set(qt) == ref_leaves(label, k, ignore, levels)
    assert len(leaf_set(qt)) == len(qt)  # no duplicates
    # label -> TPyramid -> Quadtree -> label
    assert np.array_equal(qt.to_label(), label)
    # a Quadtree rebuilt from bare leaves (no cached pyramid) validates and paints the same map
    bare = Quadtree(qt.level, qt.x, qt.y, qt.value, levels, k, ignore, *label.shape)
    bare.validate()
    assert np.array_equal(bare.to_label(), label)
    assert bare == qt
    # leaves tile the padded map exactly
    ph, pw = qt.padded_shape
    assert int((4 ** qt.level.astype(np.int64)).sum()) == ph * pw


def test_edge_cases():
    one = np.zeros((1, 1), np.uint8)
    qt = Quadtree.from_label(one, 1, None, 1)
    assert leaf_set(qt) == {(0, 0, 0, 1)}
    assert qt.to_label().tolist() == [[0]]
    # all ignore: the whole padded map is VOID, one root leaf per root cell
    allvoid = np.full((40, 70), 255)
    qt = Quadtree.from_label(allvoid, 5, 255, 6)
    assert set(qt.level.tolist()) == {5} and len(qt) == 2 * 3
    assert np.array_equal(qt.to_label(), allvoid)
    # one class, size a multiple of the root: one leaf per root cell
    qt = Quadtree.from_label(np.full((64, 32), 2), 3, None, 6)
    assert leaf_set(qt) == {(5, 0, 0, 3), (5, 0, 1, 3)}
    # one class, odd size: padding (VOID) makes the border composite
    qt = Quadtree.from_label(np.full((5, 7), 0), 1, None, 3)
    assert np.array_equal(qt.to_label(), np.zeros((5, 7)))
    assert (qt.labels() >= -1).all()


def test_ignore_none_void_only_from_padding():
    label = np.array([[0, 1, 1], [1, 1, 0]])
    qt = Quadtree.from_label(label, 2, None, 2)
    assert np.array_equal(qt.to_label(), label)
    void_leaves = qt.value == qt.void
    assert void_leaves.any()  # padding column/row
    assert (qt.labels()[void_leaves] == -1).all()


def test_stats_counts_pixels_per_level():
    label = np.zeros((32, 64), np.uint8)
    label[0, 0] = 1
    st_ = LevelStats(6).add(Quadtree.from_label(label, 2, None, 6))
    js = st_.to_json()
    assert js["images"] == 1 and list(js)[:6] == ["Q5", "Q4", "Q3", "Q2", "Q1", "Q0"]
    assert js["Q5"] == pytest.approx(50.0)  # the right root cell is uniform
    assert js["Q0"] == pytest.approx(100 * 4 / 2048)
    # the right root, 3 uniform siblings on each of levels 4..1, and 4 pixels
    assert js["ratio"] == pytest.approx(100 * (1 + 3 * 4 + 4) / 2048)


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "label, k, match",
    [
        (np.zeros((4, 4), np.float32), 2, "integers"),
        (np.zeros((4, 4, 3), np.uint8), 2, "2-D"),
        (np.zeros((4,), np.uint8), 2, "2-D"),
        (np.zeros((0, 4), np.uint8), 2, "empty"),
        (np.array([[0, 5], [1, 1]]), 3, r"\[5\].*outside the classes 0..2"),
        (np.array([[0, -1], [1, 1]]), 3, r"\[-1\]"),
        (np.full((2, 2), 2**40), 3, "outside"),
    ],
)
def test_bad_labels_raise_clear_value_errors(label, k, match):
    with pytest.raises(ValueError, match=match):
        Quadtree.from_label(label, k, None, 3)


def test_bad_arguments():
    label = np.zeros((4, 4), np.uint8)
    with pytest.raises(ValueError, match="levels"):
        build_tpyramid(label, 2, None, 0)
    with pytest.raises(ValueError, match="policy"):
        build_tpyramid(label, 2, None, 3, policy="nope")
    with pytest.raises(ValueError, match="num_classes"):
        build_tpyramid(label, 0, None, 3)
    with pytest.raises(ValueError, match="ignore value 9"):
        build_tpyramid(np.array([[3]]), 2, 9, 1)


# --------------------------------------------------------------------------- validate
def sample_tree() -> Quadtree:
    label = np.zeros((8, 8), np.int64)
    label[:4, :4] = 1
    label[5, 6] = 2
    return Quadtree.from_label(label, 3, None, 3)


def rebuilt(qt: Quadtree, keep=None, extra=()) -> Quadtree:
    keep = np.ones(len(qt), bool) if keep is None else keep
    lv, xs, ys, vs = [qt.level[keep]], [qt.x[keep]], [qt.y[keep]], [qt.value[keep]]
    for l, x, y, v in extra:
        lv.append(np.array([l], np.uint8))
        xs.append(np.array([x], np.int32))
        ys.append(np.array([y], np.int32))
        vs.append(np.array([v], qt.value.dtype))
    return Quadtree(np.concatenate(lv), np.concatenate(xs), np.concatenate(ys), np.concatenate(vs),
                    qt.num_levels, qt.num_classes, qt.ignore_value, qt.height, qt.width)


def test_validate_accepts_valid_tree():
    rebuilt(sample_tree()).validate()


def test_validate_catches_gap():
    qt = sample_tree()
    keep = np.ones(len(qt), bool)
    keep[np.flatnonzero(qt.level == 0)[0]] = False
    with pytest.raises(QuadtreeError, match="uncovered"):
        rebuilt(qt, keep).validate()


def test_validate_catches_overlap():
    qt = sample_tree()
    root = (int(qt.level[0]), int(qt.x[0]), int(qt.y[0]), int(qt.value[0]))
    assert root[0] == 2
    with pytest.raises(QuadtreeError, match="overlap"):
        rebuilt(qt, extra=[(1, 2 * root[1], 2 * root[2], root[3])]).validate()  # a child under a leaf
    with pytest.raises(QuadtreeError, match="share a cell"):
        rebuilt(qt, extra=[root]).validate()  # the same leaf twice


def test_validate_catches_non_canonical_siblings():
    qt = sample_tree()
    # the level-1 leaf at x=2, y=2 (pixels 4..5 × 4..5, class 0) split into four equal children
    is_target = (qt.level == 1) & (qt.x == 2) & (qt.y == 2)
    assert is_target.sum() == 1
    v = int(qt.value[is_target][0])
    kids = [(0, x, y, v) for y in (4, 5) for x in (4, 5)]
    with pytest.raises(QuadtreeError, match="not canonical"):
        rebuilt(qt, ~is_target, kids).validate()


def test_validate_catches_bad_codes_and_positions():
    qt = sample_tree()
    with pytest.raises(QuadtreeError, match="outside"):
        rebuilt(qt, extra=[(0, 99, 0, 1)]).validate()
    bad = rebuilt(qt)
    bad.value[0] = bad.void + 1
    with pytest.raises(QuadtreeError, match="code"):
        bad.validate()


# -------------------------------------------------------------------------------- the smallest dtype
@pytest.mark.parametrize("k, ignore, dtype", [(3, 255, np.uint8), (3, None, np.int8), (300, 65535, np.uint16),
                                              (2, 70000, np.uint32), (3, -5, np.int8)])
def test_label_from_quadtree_in_smallest_dtype(k, ignore, dtype):
    from qgn.quadtree import Quadtree

    rng = np.random.default_rng(0)
    label = rng.integers(0, k, (37, 45))
    if ignore is not None:
        label[rng.random(label.shape) < 0.1] = ignore
    back = Quadtree.from_label(label, k, ignore, 4).to_label()
    assert back.dtype == dtype and np.array_equal(back, label)


# --------------------------------------------------------------------------- leaves as the image shows them
def ref_image_leaves(label: np.ndarray, levels: int) -> set:
    """Cell by cell: a cell overlapping the image is a leaf when its part inside the image holds one
    value and it is a root cell or its parent's part inside does not (the padding takes no part)."""
    h, w = label.shape

    def uniform(lv, x, y):
        part = label[y << lv:(y + 1) << lv, x << lv:(x + 1) << lv]
        return part.size > 0 and (part == part.flat[0]).all()

    leaves = set()
    for lv in range(levels):
        for y in range(-(-h // (1 << lv))):
            for x in range(-(-w // (1 << lv))):
                if uniform(lv, x, y) and (lv == levels - 1 or not uniform(lv + 1, x // 2, y // 2)):
                    leaves.add((lv, x, y, int(label[y << lv, x << lv]) + 1))
    return leaves


@HYP
@given(st.integers(1, 70), st.integers(1, 70), st.integers(1, 3), st.integers(0, 2**32 - 1))
@example(70, 100, 1, 0)  # a 100×70 map of one class: one leaf per root cell, straddlers included
def test_image_leaves_ignore_the_padding(h, w, classes, seed):
    from qgn.quadtree.quadtree import image_leaves

    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, classes, (-(-h // 8), -(-w // 8)))
    label = np.kron(blocks, np.ones((8, 8), np.int64))[:h, :w]  # blocky: leaves of several levels
    label[rng.random((h, w)) < 0.02] = classes - 1
    level, x, y, value = image_leaves(label, classes, levels=6)
    got = set(zip(level.tolist(), x.tolist(), y.tolist(), value.tolist()))
    assert len(got) == len(level) and got == ref_image_leaves(label, 6)
    # they tile the image once, and where the size is a multiple of 32 they are the Quadtree's leaves
    cover = np.zeros((h, w), int)
    for lv, cx, cy, v in got:
        cover[cy << lv:(cy + 1) << lv, cx << lv:(cx + 1) << lv] += 1
        assert (label[cy << lv:(cy + 1) << lv, cx << lv:(cx + 1) << lv] == v - 1).all()
    assert (cover == 1).all()
    if classes == 1:
        assert len(got) == -(-h // 32) * -(-w // 32)
    crop = label[: h // 32 * 32, : w // 32 * 32]
    if crop.size:
        qt = Quadtree.from_label(crop, classes)
        lv2, x2, y2, v2 = image_leaves(crop, classes, levels=6)
        assert set(zip(lv2.tolist(), x2.tolist(), y2.tolist(), v2.tolist())) == set(
            zip(qt.level.tolist(), qt.x.tolist(), qt.y.tolist(), qt.value.tolist()))
