"""The previous image's labels carried onto the next one by optical flow: a start for video frames.

Consecutive frames of a video show nearly the same scene, moved. ``carried_start`` estimates where
every pixel of the new image was in the previous one (dense optical flow, OpenCV's DIS — fast,
coarse-to-fine, on grey levels) and takes the label found there; a pixel whose source lies outside
the previous image (the scene entering the frame) stays unlabelled (``ignore``).

The flow is computed at most at ``FLOW_PIXELS`` pixels (a 4000×3000 photo in ~0.1 s), then scaled up
to the label map; labels are read by nearest neighbour (classes are never blended).

It pays when the frames are close in time: on CamVid's 15 Hz sequence the simulated annotator needs
a third of the actions the model's start needs, at 1 s apart more than it (``benchmarks/RESULTS.md``,
"The previous image's labels as a start"); so the app makes it the default start only once it has
beaten the other start on saved images (``prefer_carried``).
"""
from __future__ import annotations

import numpy as np

FLOW_PIXELS = 1 << 19  # the flow's working size: at most this many pixels (as the image tools')


def carried_start(previous_image: np.ndarray, previous_label: np.ndarray, image: np.ndarray,
                  ignore: int) -> np.ndarray:
    """(H, W) int64: ``previous_label`` ((H, W) ints, the labels of ``previous_image``, (H, W, 3)
    uint8 RGB) moved onto ``image`` ((H, W, 3) uint8 RGB) along the optical flow from ``image`` to
    ``previous_image``; pixels that come from outside the previous image are ``ignore``.

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
    scale = min(1.0, (FLOW_PIXELS / float(h * w)) ** 0.5)
    sh, sw = max(8, round(h * scale)), max(8, round(w * scale))
    grey_now, grey_before = (cv2.resize(cv2.cvtColor(p, cv2.COLOR_RGB2GRAY), (sw, sh), interpolation=cv2.INTER_AREA)
                             for p in (image, previous_image))
    flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(grey_now, grey_before, None)
    if (sh, sw) != (h, w):
        flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR)
        flow[..., 0] *= w / sw
        flow[..., 1] *= h / sh
    xs = np.arange(w, dtype=np.float32)[None, :] + flow[..., 0]
    ys = np.arange(h, dtype=np.float32)[:, None] + flow[..., 1]
    return _sample(previous_label.astype(np.int64, copy=False), xs, ys, ignore)


def _sample(label: np.ndarray, xs: np.ndarray, ys: np.ndarray, ignore: int) -> np.ndarray:
    """(H, W) int64: ``label`` at the nearest pixel of each (x, y) source; ``ignore`` outside it."""
    h, w = label.shape
    cols, rows = np.rint(xs).astype(np.int64), np.rint(ys).astype(np.int64)
    inside = (cols >= 0) & (cols < w) & (rows >= 0) & (rows < h)
    out = np.full((h, w), ignore, dtype=np.int64)
    out[inside] = label[rows[inside], cols[inside]]
    return out


def prefer_carried(record, window: int = 3) -> bool:
    """Whether a new image should start from its predecessor's labels carried by the flow rather than
    from the app's other default. ``record``: per saved image whose predecessor was saved, in order,
    (carried start's, the best other start's) pixel accuracy against its saved annotation
    (``qgn.project_head.judge_start``); preferred when over the last ``window`` such images the
    carried start got at least as many pixels right. Nothing judged yet: not preferred."""
    from qgn.project_head import prefer_head

    return prefer_head(record, window)
