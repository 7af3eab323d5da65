"""The previous image's labels carried onto the next one by optical flow: a start for video frames.

Consecutive frames of a video show nearly the same scene, moved. ``carried_start`` estimates where
every pixel of the new image was in the previous one (dense optical flow, OpenCV's DIS — fast,
coarse-to-fine, on grey levels) and takes the label found there; a pixel whose source lies outside
the previous image (the scene entering the frame) stays unlabelled (``ignore``).

The flow is computed at most at ``FLOW_PIXELS`` pixels, then scaled up to the label map; labels are
read by nearest neighbour (classes are never blended).

It pays when the frames are close in time: on CamVid's 15 Hz frames the simulated annotator needs
about half the actions of the model's start (9.0 against 19.8 at 1 px), on frames 0.8–1 s apart
about as many as from the model's or an empty start (``benchmarks/RESULTS.md``, "The previous
image's labels as a start"); so the app makes it the default only once it has beaten the other
starts on saved images (``prefer_carried``).
"""
from __future__ import annotations

import numpy as np

FLOW_PIXELS = 1 << 19  # the flow's working size: at most this many pixels (as the image tools')
# The least side of the flow's working size. OpenCV's DIS (dis_flow.cpp, calc) takes its coarsest
# pyramid level as min(int(log2(max side / (4 * patch)) + 0.5), int(log2(min side / patch))), patch 8
# in the MEDIUM preset, and errors below 0; below the preset's finest level (1) it picks its levels
# from the width alone, and a thin image (8×100, 12×200) then crashes the process (SIGSEGV). At 48 px
# on both sides the first term is 1 and the second at least 2: neither path is taken.
MIN_FLOW_SIDE = 48


def carried_start(previous_image: np.ndarray, previous_label: np.ndarray, image: np.ndarray,
                  ignore: int) -> np.ndarray:
    """(H, W) ints — uint8 or uint16 when the labels and ``ignore`` fit, else int64: ``previous_label``
    ((H, W) ints, the labels of ``previous_image``, (H, W, 3) uint8 RGB) moved onto ``image`` ((H, W, 3)
    uint8 RGB) along the optical flow from ``image`` to ``previous_image``; pixels that come from
    outside the previous image are ``ignore``.

    Raises ValueError when the two images or the label differ in size (frames of one video do not)."""
    import cv2

    previous_image, image = np.asarray(previous_image), np.asarray(image)
    previous_label = np.asarray(previous_label)
    for name, picture in (("previous image", previous_image), ("image", image)):
        if picture.ndim != 3 or picture.shape[2] != 3 or picture.dtype != np.uint8:
            raise ValueError(f"the {name} must be (H, W, 3) uint8 RGB; got {picture.shape} {picture.dtype}")
    h, w = image.shape[:2]
    if previous_image.shape[:2] != (h, w) or previous_label.shape != (h, w):
        raise ValueError(f"the previous image is {previous_image.shape[1]}×{previous_image.shape[0]} and its labels "
                         f"{previous_label.shape[1] if previous_label.ndim == 2 else '?'}×{previous_label.shape[0]}, "
                         f"this image {w}×{h}: labels are carried only between images of one size")
    if not h * w:
        raise ValueError(f"the image is {w}×{h}: it has no pixels to carry labels onto")
    sh, sw = flow_size(h, w)
    grey_now, grey_before = (cv2.resize(cv2.cvtColor(p, cv2.COLOR_RGB2GRAY), (sw, sh), interpolation=cv2.INTER_AREA)
                             for p in (image, previous_image))
    flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(grey_now, grey_before, None)
    if (sh, sw) != (h, w):
        flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR)
        flow[..., 0] *= w / sw
        flow[..., 1] *= h / sh
    flow[..., 0] += np.arange(w, dtype=np.float32)[None, :]  # displacements → source coordinates, in place
    flow[..., 1] += np.arange(h, dtype=np.float32)[:, None]
    return _sample(previous_label, flow, ignore)


def flow_size(h: int, w: int) -> tuple[int, int]:
    """(rows, columns) the flow of an h×w image is computed at: at most about ``FLOW_PIXELS``, each
    side at least ``MIN_FLOW_SIDE`` (a small or thin image is stretched, a long strip shortened)."""
    scale = min(1.0, (FLOW_PIXELS / float(h * w)) ** 0.5)
    longest = max(MIN_FLOW_SIDE, FLOW_PIXELS // MIN_FLOW_SIDE)
    return tuple(min(longest, max(MIN_FLOW_SIDE, round(side * scale))) for side in (h, w))


def _sample(label: np.ndarray, sources: np.ndarray, ignore: int) -> np.ndarray:
    """``label`` at the nearest pixel of each (x, y) of ``sources`` ((H, W, 2) float32); ``ignore``
    outside it. OpenCV's remap reads 8- and 16-bit maps of sides under 32767; wider ids, and a
    panorama's long side, go through indexing by rows (``_sample_by_index``)."""
    import cv2

    top = max(int(label.max(initial=0)), int(ignore))
    fits = int(label.min(initial=0)) >= 0 and int(ignore) >= 0 and top <= np.iinfo(np.uint16).max
    compact = (np.uint8 if top <= np.iinfo(np.uint8).max else np.uint16) if fits else np.int64
    if fits and max(label.shape) < np.iinfo(np.int16).max:
        return cv2.remap(label.astype(compact, copy=False), sources, None, cv2.INTER_NEAREST,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=int(ignore))
    return _sample_by_index(label, sources, ignore, compact)


STRIP_PIXELS = 1 << 18  # pixels of ``_sample_by_index``'s strip: its temporaries stay a few MB


def _sample_by_index(label: np.ndarray, sources: np.ndarray, ignore: int, dtype) -> np.ndarray:
    """``_sample`` by numpy indexing, in ``dtype``, a strip of rows at a time with int32 indices:
    the memory beyond the output is a strip's, not 4× the image's (int64 indices and output)."""
    h, w = label.shape
    out = np.empty((h, w), dtype)
    step = max(1, STRIP_PIXELS // w)
    for top in range(0, h, step):
        cols, rows = (_nearest(sources[top:top + step, :, axis], side) for axis, side in ((0, w), (1, h)))
        inside = (cols >= 0) & (cols < w) & (rows >= 0) & (rows < h)
        strip = out[top:top + step]
        strip[...] = ignore
        strip[inside] = label[rows[inside], cols[inside]]
    return out


def _nearest(coordinates: np.ndarray, side: int) -> np.ndarray:
    """int32 nearest indices of float ``coordinates``; any beyond [0, side) (NaN included) is -1 or ``side``."""
    rounded = np.rint(coordinates)
    np.nan_to_num(rounded, copy=False, nan=-1.0)
    np.clip(rounded, -1, side, out=rounded)
    return rounded.astype(np.int32)


def prefer_carried(record, window: int | None = None) -> bool:
    """Whether a new image should start from its predecessor's labels carried by the flow rather than
    from the app's other default. ``record``: per saved image whose predecessor was saved, in order,
    (carried start's, the best other start's) pixel accuracy against its saved annotation
    (``qgn.project_head.judge_start``); preferred when over the last ``window`` such images the
    carried start got at least as many pixels right (``window`` None: the head's, 3). Nothing judged
    yet: not preferred. A model change keeps the record (the app's ``CarryController``, the bench's
    session walk): the carried start does not read the model, its entries say how it did against
    the starts those images were offered, and the last ``window`` images judge it against the new
    model's start; forgetting it made the image after every fine-tune lose the carried start
    (benchmarks/RESULTS.md, "The carried start's record kept across a model change"). Its cost is
    inertia: until ``window`` images have been judged against the new model's starts the entries
    from before the change count with them, so for up to ``window`` (3) judged images the kept
    record, not the new model, decides — entries judged against the empty start (the other side 0)
    say nothing of the new model and keep the carried start the default whatever the new model's
    start is like. The gain was measured for fine-tunes of one model only; for a switch to another
    model the rule is argued (the carried start does not read the model), not measured.

    One record for all images, whatever each was judged against: an entry judged against the empty
    start (a frame the domain check flagged: the carried start against 0, ``judge_carried``) counts
    for the following images whether or not they are flagged, so it can make the carried start the
    default of an unflagged image where it lost to the model's start on every unflagged image judged.
    Measured on one sequence only, where it helped: after the encoder's fine-tune (no frame flagged
    from then on) frames 49–51 of 0001TP took the carried start because their last three entries held
    one to three of flagged frames 46–48 (against 0) — 10, 11 and 16 actions against 25, 20 and 26
    from the same fine-tuned model's start (the walk rerun with one record per verdict), while pixel
    accuracy ranked the model's start higher (0.84–0.88 against 0.93–0.95; benchmarks/RESULTS.md,
    "The carried start's record kept across a model change" and "The 62-frame Automatic walk, one
    record per verdict").
    On a walk whose verdict flips (runs of four frames of 0001TP, flagged, and of 0006R0, not) one
    record per verdict (the bench's ``--carry-records verdict``, ``carry_record_key``) cost 11 actions
    fewer over 32 frames — within noise — and the same where the verdict does not flip; one record is
    kept (benchmarks/RESULTS.md, "One carried-start record or one per verdict, on a walk whose verdict
    flips", says why and what would decide it); ``tests/annotation/test_carry.py`` pins this rule so
    that a change to it is deliberate."""
    from qgn.project_head import HEAD_WINDOW, prefer_head

    return prefer_head(record, HEAD_WINDOW if window is None else window)


#: how the carried start's records are kept (the bench's ``--carry-records``): ``one`` — one record for
#: every image, the app's rule (``prefer_carried``) —, or ``verdict`` — one per domain verdict: a flagged
#: image reads and adds to the flagged images' record, any other image to the others' (measured, not
#: taken: benchmarks/RESULTS.md, "One carried-start record or one per verdict, on a walk that flips")
CARRY_RECORDS = ("one", "verdict")


def carry_record_key(inside: bool | None, rule: str = "one") -> str:
    """The record (of ``CARRY_RECORDS``' ``rule``) an image whose domain verdict is ``inside`` (False:
    flagged; True or None: not) reads its carried start's preference from and adds its entry to."""
    if rule not in CARRY_RECORDS:
        raise ValueError(f"the carried start's records are kept {' or '.join(CARRY_RECORDS)}; got {rule!r}")
    if rule == "one":
        return "all"
    return "flagged" if inside is False else "unflagged"


def judge_carried(carried: np.ndarray, others, label: np.ndarray, ignore_index: int | None,
                  flagged: bool = False):
    """The carried start's record entry for a saved image (``prefer_carried``): (carried start's, the
    start it would replace's) pixel accuracy on the labelled pixels of ``label``, the image's saved
    annotation (``qgn.project_head.judge_start``); None when nothing is labelled or nothing to judge
    against.

    The start it would replace is the one the image gets when the carried start is refused. Where the
    model's domain check flags the image (``flagged``) and the classes have an ignore value, that is
    the empty map (``HeadController.default_source``; the bench's ``app_domain``): every pixel
    ``ignore_index``, none of the labelled ones right, so the carried start is judged against 0.
    Elsewhere it is the best of ``others`` (the prediction; the head, where it had not trained on the
    image). Judging a flagged image's carried start against the model's start, which it is not even
    offered, let a more accurate fine-tuned start (a frozen encoder keeps every frame flagged) make
    the carried start lose its place to empty (benchmarks/RESULTS.md, "A whole session")."""
    from qgn.project_head import judge_start

    label = np.asarray(label)
    if flagged and ignore_index is not None:
        others = [np.full(label.shape, ignore_index, dtype=label.dtype)]
    judged = [judge_start(carried, other, label, ignore_index) for other in others
              if np.shape(other) == label.shape == np.shape(carried)]
    judged = [j for j in judged if j is not None]
    return max(judged, key=lambda j: j[1]) if judged else None
