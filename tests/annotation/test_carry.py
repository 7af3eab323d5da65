"""Labels carried from the previous frame by optical flow (qgn.annotation.carry)."""
import numpy as np
import pytest

from qgn.annotation.carry import carried_start, judge_carried, prefer_carried

IGNORE = 255


def texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    """(h, w, 3) uint8: smooth random texture (blurred noise), so the flow is well defined everywhere."""
    import cv2

    rng = np.random.default_rng(seed)
    noise = rng.random((h, w)).astype(np.float32)
    grey = cv2.GaussianBlur(noise, (0, 0), 3)
    grey = (255 * (grey - grey.min()) / (grey.max() - grey.min())).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def blocks(h: int, w: int) -> np.ndarray:
    label = np.zeros((h, w), np.int64)
    label[:, w // 3:] = 1
    label[h // 2:, 2 * w // 3:] = 2
    label[h // 4: h // 4 + 30, w // 5: w // 5 + 40] = 3
    return label


@pytest.mark.parametrize("dx, dy", [(6, 0), (-4, 5), (0, 0)])
def test_a_shifted_frame_gets_its_predecessors_labels_shifted(dx, dy):
    """The scene moves by (dx, dy): every pixel's label is the one (dx, dy) back in the previous
    frame (np.roll is the independent reference); pixels whose source left the frame are ignore."""
    h, w = 160, 224
    big = texture(h + 40, w + 40)
    before = big[20:20 + h, 20:20 + w]
    now = big[20 - dy:20 - dy + h, 20 - dx:20 - dx + w]  # the camera moved: content moves by (dx, dy)
    big_label = np.zeros((h + 40, w + 40), np.int64)
    big_label[20:20 + h, 20:20 + w] = blocks(h, w)
    label = big_label[20:20 + h, 20:20 + w]
    expected = big_label[20 - dy:20 - dy + h, 20 - dx:20 - dx + w]
    carried = carried_start(before, label, now, IGNORE)
    assert carried.shape == (h, w) and carried.dtype == np.uint8  # ids and ignore fit 8 bits
    m = 12  # the flow's edges are uncertain a few pixels in from the border
    inner = (slice(m, h - m), slice(m, w - m))
    assert (carried[inner] == expected[inner]).mean() > 0.99
    if dx > 0:  # the left columns came from outside the previous frame
        assert (carried[m:h - m, : dx - 1] == IGNORE).mean() > 0.9
    assert set(np.unique(carried)) <= {0, 1, 2, 3, IGNORE}  # classes are never blended


def test_a_big_photo_is_carried_at_the_flow_working_size_with_the_same_result():
    """A photo above FLOW_PIXELS: the flow runs on a smaller copy and is scaled back; a shift of the
    whole scene still carries the labels (in the interior)."""
    import cv2

    from qgn.annotation import carry

    h, w = 300, 400
    before = texture(h, w, seed=1)
    shift = np.float32([[1, 0, 8], [0, 1, 0]])  # content moves 8 px right
    now = cv2.warpAffine(before, shift, (w, h), borderMode=cv2.BORDER_REFLECT)
    label = blocks(h, w)
    expected = cv2.warpAffine(label.astype(np.uint8), shift, (w, h), flags=cv2.INTER_NEAREST).astype(np.int64)
    old = carry.FLOW_PIXELS
    carry.FLOW_PIXELS = (h * w) // 4  # half the side
    try:
        carried = carried_start(before, label, now, IGNORE)
    finally:
        carry.FLOW_PIXELS = old
    inner = (slice(20, h - 20), slice(20, w - 20))
    assert (carried[inner] == expected[inner]).mean() > 0.98


def test_wide_class_ids_are_carried_exactly():
    """Ids past 16 bits (and a negative ignore) take the int64 path: the same labels, moved."""
    h, w = 120, 160
    big = texture(h + 20, w + 20, seed=2)
    before, now = big[10:10 + h, 10:10 + w], big[10:10 + h, 6:6 + w]  # content moves 4 px right
    label = blocks(h, w) * 70000
    carried = carried_start(before, label, now, -1)
    narrow = carried_start(before, blocks(h, w), now, IGNORE)
    assert carried.dtype == np.int64
    known = narrow != IGNORE
    np.testing.assert_array_equal(carried[known], narrow[known].astype(np.int64) * 70000)
    assert (carried[~known] == -1).all()


def shifted_sources(h: int, w: int, dx: float, dy: float) -> np.ndarray:
    """(h, w, 2) float32 source coordinates: every pixel comes from (x + dx, y + dy)."""
    sources = np.empty((h, w, 2), np.float32)
    sources[..., 0] = np.arange(w, dtype=np.float32)[None, :] + dx
    sources[..., 1] = np.arange(h, dtype=np.float32)[:, None] + dy
    return sources


def test_a_very_long_image_keeps_compact_labels_in_bounded_memory():
    """A side of 32767 px or more skips OpenCV's remap; that path built int64 indices and an int64
    output (about 4× the memory: 1.7 GB for 1000×33000 labels) instead of the uint8 promised."""
    import tracemalloc

    from qgn.annotation.carry import _sample

    h, w = 200, 33000
    label = (np.arange(w, dtype=np.int64)[None, :] % 7 + np.arange(h)[:, None] % 3).astype(np.uint8)
    sources = shifted_sources(h, w, 3.2, -1.1)  # from 3 px right and 1 px up
    tracemalloc.start()
    try:
        carried = _sample(label, sources, IGNORE)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert carried.dtype == np.uint8
    assert peak < 2 * label.nbytes + (16 << 20), peak
    np.testing.assert_array_equal(carried[1:, :-3], label[:-1, 3:])
    assert (carried[0] == IGNORE).all() and (carried[:, -3:] == IGNORE).all()


def test_a_long_strips_carried_start_is_compact():
    h, w = 48, 33000
    image = texture(h, 2000, seed=3)[:, np.arange(w) % 2000]
    assert carried_start(image, blocks(h, w) % 3, image, IGNORE).dtype == np.uint8


@pytest.mark.parametrize("top", [3, 60000])
def test_sampling_by_index_matches_opencvs_remap(top):
    """The numpy path (long sides, wide ids) reads the same pixels as OpenCV's nearest remap."""
    import cv2

    from qgn.annotation.carry import _sample_by_index

    rng = np.random.default_rng(top)
    h, w = 90, 130
    label = rng.integers(0, top + 1, (h, w)).astype(np.uint16)  # 65535 (outside) never a label
    sources = shifted_sources(h, w, 0, 0) + rng.uniform(-9, 9, (h, w, 2)).astype(np.float32)
    sources[0, :5] = np.nan
    remapped = cv2.remap(label, sources, None, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=65535)
    np.testing.assert_array_equal(_sample_by_index(label, sources, 65535, np.uint16), remapped)
    wide = _sample_by_index(label.astype(np.int64) * 70000, sources, -1, np.int64)  # wide ids, as int64
    np.testing.assert_array_equal(wide, np.where(remapped == 65535, -1, remapped.astype(np.int64) * 70000))


def test_frames_of_another_size_are_refused_with_both_sizes_named():
    with pytest.raises(ValueError, match=r"224×160.*100×80"):
        carried_start(texture(160, 224), blocks(160, 224), texture(80, 100), IGNORE)
    with pytest.raises(ValueError, match="uint8"):
        carried_start(texture(80, 100).astype(np.float32), blocks(80, 100), texture(80, 100), IGNORE)


def test_the_carried_start_is_preferred_only_after_it_beat_the_other_start():
    assert not prefer_carried([])
    assert prefer_carried([(0.98, 0.95)])
    assert not prefer_carried([(0.98, 0.95), (0.90, 0.95), (0.90, 0.95)])
    assert prefer_carried([(0.50, 0.95), (0.99, 0.95), (0.99, 0.95), (0.99, 0.95)])  # the last three decide


THIN_SHAPES = [(1, 1), (1, 5000), (5000, 1), (8, 8), (8, 100), (11, 100), (12, 200), (14, 200), (10, 50), (13, 400),
               (2, 2_000_000)]


def test_small_and_thin_images_are_carried_and_never_crash():
    """OpenCV's DIS flow refuses images under 12 px on a side ("must have either width or height >=
    12", the app showed that as the reason) and crashes the process (SIGSEGV, the app and its unsaved
    work gone) on thin ones such as 8×100 or 12×200. Each shape runs in a child process, so a crash
    is a failure here; two identical frames carry every label unchanged (the reference: the labels)."""
    import subprocess
    import sys

    script = (
        "import sys, numpy as np\n"
        "from qgn.annotation.carry import carried_start\n"
        "for shape in %r:\n"
        "    h, w = shape\n"
        "    rng = np.random.default_rng(h * 7 + w)\n"
        "    image = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)\n"
        "    label = (np.arange(h * w).reshape(h, w) %% 3).astype(np.uint8)\n"
        "    carried = carried_start(image, label, image, 255)\n"
        "    assert carried.shape == (h, w), (shape, carried.shape)\n"
        "    assert (carried == label).mean() > 0.95, (shape, (carried == label).mean())\n"
        "    print(shape, 'ok', flush=True)\n" % (THIN_SHAPES,))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (done.returncode, done.stdout[-500:], done.stderr[-1500:])


def test_an_empty_image_is_refused_with_a_reason():
    with pytest.raises(ValueError, match="no pixels"):
        carried_start(np.zeros((0, 0, 3), np.uint8), np.zeros((0, 0), np.uint8), np.zeros((0, 0, 3), np.uint8), IGNORE)


def test_judge_carried_takes_the_start_it_would_replace():
    """(carried's, the other start's) pixel accuracy on the labelled pixels of the saved map: the best
    of the other starts offered; on a flagged image (with an ignore value) the empty map, which gets
    none right, whatever the others; None with nothing labelled or nothing to judge against."""
    label = np.array([[0, 1], [2, 255]])
    carried = np.array([[0, 1], [0, 0]])  # 2 of the 3 labelled pixels right
    model, head = np.array([[0, 1], [2, 2]]), np.array([[1, 1], [1, 1]])
    assert judge_carried(carried, [head, model], label, 255) == (2 / 3, 1.0)
    assert judge_carried(carried, [head, model], label, 255, flagged=True) == (2 / 3, 0.0)
    assert judge_carried(carried, [], label, 255, flagged=True) == (2 / 3, 0.0)
    assert judge_carried(carried, [head], label, None, flagged=True) == (0.5, 0.25)  # no empty map without ignore
    assert judge_carried(carried, [], label, 255) is None
    assert judge_carried(carried, [model], np.full((2, 2), 255), 255, flagged=True) is None
    assert judge_carried(carried, [np.zeros((3, 3), int)], label, 255) is None  # another size: not judged


def test_a_flagged_frames_entry_counts_for_the_unflagged_frames_after_it():
    """The rule as it stands, pinned so that changing it is deliberate: one record whatever each entry
    was judged against. An entry of a frame the domain check flagged (the carried start against the
    empty start it replaced: 0) counts for the next frames whether or not they are flagged, so it
    makes the carried start the default of an unflagged frame where it lost to the model's start on
    every unflagged frame judged (the gain on 0001TP's frames 49–51, benchmarks/RESULTS.md, "The
    carried start's record kept across a model change"); the bench's app_domain follows the same
    record (review repro: mixed_record.py)."""
    from types import SimpleNamespace as Run

    from qgn.bench.annotate import _scenario_choices

    truth = np.zeros((10, 10), np.int64)
    truth[:, 5:] = 1
    carried, model = truth.copy(), truth.copy()
    carried[:2, :] = 2  # 80 % right
    model[:1, :3] = 2  # 97 % right
    unflagged = [judge_carried(carried, [model], truth, IGNORE) for _ in range(2)]
    flagged = judge_carried(carried, [model], truth, IGNORE, flagged=True)
    assert unflagged == [(0.8, 0.97)] * 2 and flagged == (0.8, 0.0)
    assert not prefer_carried(unflagged)  # the unflagged frames alone: the model's start
    assert prefer_carried(unflagged + [flagged])  # one flagged frame among the last three: carried
    assert prefer_carried([flagged] + unflagged)  # wherever it is among them
    assert not prefer_carried([flagged] + unflagged * 2)  # out of the last three: no longer counts
    runs = {"assist_carried": Run(actions=10), "assist_model_start": Run(actions=22), "assist_empty": Run(actions=30)}
    choices = _scenario_choices(runs, [], unflagged, inside=True, domain_carry_record=unflagged + [flagged])
    assert list(choices["app_domain"][0]) == ["previous"] and list(choices["app_carry"][0]) == ["model"]


def test_after_a_model_change_the_kept_entries_decide_for_up_to_three_judged_frames():
    """The rule as it stands, pinned so that changing it is deliberate: the record kept across a model
    change is read whatever model each entry was judged with, so the entries from before the change
    count until three frames have been judged against the new model's starts; flagged frames' entries
    (against the empty start: 0) keep the carried start the default even where the new model's start
    is far more accurate (prefer_carried's docstring; benchmarks/RESULTS.md, "The carried start's record
    kept across a model change"; review repro test_inertia_after_flagged_entries)."""
    old = [(0.85, 0.0)] * 3  # flagged frames before the change: judged against the empty start
    new = [(0.80, 0.99)] * 3  # the new model's start 19 points more accurate on every frame since
    assert prefer_carried(old + new[:1]) and prefer_carried(old + new[:2])  # still the carried start
    assert not prefer_carried(old + new)  # three frames judged against the new model: they alone decide


def test_carry_record_key_names_one_record_or_one_per_verdict() -> None:
    from qgn.annotation.carry import carry_record_key

    assert {carry_record_key(v) for v in (False, True, None)} == {"all"}
    assert [carry_record_key(v, "verdict") for v in (False, True, None)] == ["flagged", "unflagged", "unflagged"]
    with pytest.raises(ValueError, match="one or verdict"):
        carry_record_key(False, "each")
