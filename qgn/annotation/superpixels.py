"""Superpixels: an image cut into segments that follow its edges, at a few granularities.

``oversegment(image)`` computes, once per image (the app does it off the UI thread when an image
opens), ``len(GRANULARITIES)`` segment maps with scikit-image — Felzenszwalb-Huttenlocher graph
segmentation for the coarse and medium steps (segments of any shape that stop at colour edges) and
SLIC for the fine one (compact segments of about ``FINE_PIXELS`` pixels that still snap to edges) —
at the tools' working size (``qgn.annotation.working``). ``paint_segments`` is the superpixel tool:
a click sets one segment, a drag every segment the pointer crosses.

Granularity 0 is the coarsest; the app steps it with ``[`` / ``]`` like the cell levels.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .edit import LabelEdit, _check_map, _check_value, _edit_of
from .working import TOOL_PIXELS, WorkingImage

# name, method, parameters at the reference size REFERENCE_PIXELS (sizes scale with the image's area)
GRANULARITIES = (
    ("coarse", "felzenszwalb", dict(scale=400.0, sigma=0.8, min_size=120)),
    ("medium", "felzenszwalb", dict(scale=100.0, sigma=0.6, min_size=30)),
    ("fine", "slic", dict(pixels=100, compactness=12.0)),
)
REFERENCE_PIXELS = 480 * 360
FINE_PIXELS = 100


@dataclass
class Oversegmentation:
    """Segment maps of one image.

    working:  the ``WorkingImage`` the maps live on (its ``shape`` is the label map's (H, W)).
    segments: per granularity (coarsest first) an (h, w) int32 map of segment ids 0..n-1 at the
              working size.
    counts:   per granularity, the number of segments n.
    """

    working: WorkingImage
    segments: list[np.ndarray]
    counts: list[int]

    @property
    def shape(self) -> tuple[int, int]:
        return self.working.shape

    @property
    def granularities(self) -> int:
        return len(self.segments)

    def segment_at(self, granularity: int, x: float, y: float) -> int:
        """The segment id under full-size image coordinates (x, y)."""
        wx, wy = self.working.to_working(x, y)
        return int(self.segments[granularity][wy, wx])

    def segments_along(self, granularity: int, points: np.ndarray) -> np.ndarray:
        """Unique segment ids under a polyline of full-size ``points`` (P, 2) ``x, y`` (the path
        between consecutive points is followed pixel by pixel at the working size)."""
        from .edit import cells_along

        seg = self.segments[granularity]
        pts = np.asarray(points, np.float64).reshape(-1, 2)
        pts = pts[np.isfinite(pts).all(axis=1)]
        if len(pts) == 0:
            return np.zeros(0, np.int64)
        h, w = self.shape
        sh, sw = seg.shape
        wpts = np.stack([pts[:, 0] * sw / w, pts[:, 1] * sh / h], axis=1)
        if len(wpts) > 1:
            wpts = np.concatenate([cells_along(0, a, b) for a, b in zip(wpts[:-1], wpts[1:])])
        xs, ys = np.floor(wpts[:, 0]).astype(np.int64), np.floor(wpts[:, 1]).astype(np.int64)
        inside = (xs >= 0) & (xs < sw) & (ys >= 0) & (ys < sh)  # a point off the image is under no segment
        return np.unique(seg[ys[inside], xs[inside]]).astype(np.int64)

    def mask(self, granularity: int, ids) -> tuple[np.ndarray, tuple[int, int, int, int]] | None:
        """(bool mask, box) of the segments ``ids`` at the working size, cut to their bounding box
        (y0, y1, x0, x1); None for no ids."""
        ids = np.asarray(ids, np.int64).reshape(-1)
        if len(ids) == 0:
            return None
        boxes = self._boxes(granularity)[ids]
        box = (int(boxes[:, 0].min()), int(boxes[:, 1].max()), int(boxes[:, 2].min()), int(boxes[:, 3].max()))
        y0, y1, x0, x1 = box
        seg = self.segments[granularity][y0:y1, x0:x1]
        if len(ids) == 1:
            return seg == ids[0], box
        member = np.zeros(self.counts[granularity], bool)
        member[ids] = True
        return member[seg], box

    def full_index(self, granularity: int, ids) -> np.ndarray:
        """Sorted flat full-size pixel indices of the segments ``ids``."""
        found = self.mask(granularity, ids)
        if found is None:
            return np.zeros(0, np.int64)
        return np.sort(self.working.full_index(*found))

    def _boxes(self, granularity: int) -> np.ndarray:
        """(n, 4) int64 y0, y1, x0, x1 of every segment (cached)."""
        cache = self.__dict__.setdefault("_box_cache", {})
        if granularity not in cache:
            from scipy import ndimage

            slices = ndimage.find_objects(self.segments[granularity] + 1, max_label=self.counts[granularity])
            cache[granularity] = np.array([(s[0].start, s[0].stop, s[1].start, s[1].stop) if s is not None
                                           else (0, 0, 0, 0) for s in slices], np.int64)
        return cache[granularity]


def import_libraries() -> None:
    """Import the libraries ``oversegment`` (and ``WorkingImage``'s resize, ``Oversegmentation``'s
    boxes) load on first use, so that a program can load them when it chooses: the app does at
    start-up, off its UI thread (``qgn_studio.torch_loading``) - loaded by the first superpixels
    job, their extension modules held the interpreter lock 5-35 ms at a time while the user waited."""
    import cv2  # noqa: F401
    from scipy import ndimage  # noqa: F401
    from skimage.segmentation import felzenszwalb, slic  # noqa: F401


def _segment(image: np.ndarray, method: str, params: dict) -> np.ndarray:
    from skimage.segmentation import felzenszwalb, slic

    area = image.shape[0] * image.shape[1] / REFERENCE_PIXELS
    if method == "felzenszwalb":
        seg = felzenszwalb(image, scale=params["scale"], sigma=params["sigma"],
                           min_size=max(4, int(params["min_size"] * area)))
    elif method == "slic":
        n = max(4, int(image.shape[0] * image.shape[1] / params["pixels"]))
        seg = slic(image, n_segments=n, compactness=params["compactness"], start_label=0, max_num_iter=6,
                   enforce_connectivity=True)
    else:
        raise ValueError(f"unknown over-segmentation method {method!r}")
    _, seg = np.unique(seg, return_inverse=True)  # ids 0..n-1
    return seg.reshape(image.shape[:2]).astype(np.int32)


def oversegment(image: np.ndarray | WorkingImage, granularities=GRANULARITIES,
                pixels: int = TOOL_PIXELS) -> Oversegmentation:
    """Segment maps of ``image`` ((H, W, 3) uint8 RGB, or its ``WorkingImage``) at every granularity
    of ``granularities`` (name, method, parameters), coarsest first."""
    working = image if isinstance(image, WorkingImage) else WorkingImage(image, pixels)
    maps = [_segment(working.image, method, params) for _name, method, params in granularities]
    return Oversegmentation(working, maps, [int(m.max()) + 1 for m in maps])


def paint_segments(label: np.ndarray, over: Oversegmentation, granularity: int, points: np.ndarray,
                   value: int) -> LabelEdit:
    """The superpixel tool: every segment of granularity ``granularity`` under ``points`` ((P, 2)
    full-size ``x, y``; one point for a click, the drag's path for a stroke) takes ``value``.

    label: (H, W) uint8/uint16 label map of the image ``over`` was computed on (not modified)."""
    _check_map(label)
    value = _check_value(label, value)
    if label.shape != over.shape:
        raise ValueError(f"the label map is {label.shape[::-1]} but the superpixels are of a {over.shape[::-1]} image")
    if not 0 <= granularity < over.granularities:
        raise ValueError(f"granularity must be 0 … {over.granularities - 1}; got {granularity}")
    ids = over.segments_along(granularity, points)
    return _edit_of(label, over.full_index(granularity, ids), value)


def majority_vote(label: np.ndarray, over: Oversegmentation, granularity: int, ignore: int | None = None) -> np.ndarray:
    """(H, W) ``label`` smoothed by superpixels: every segment takes the most frequent value of its
    pixels (``ignore`` pixels do not vote; a segment of only ``ignore`` keeps them). Works at the
    working size when the image was resized (the vote's result is mapped back)."""
    label = np.asarray(label)
    small = over.working.working_label(label).astype(np.int64)
    seg = over.segments[granularity]
    n = over.counts[granularity]
    top = int(small.max()) + 1
    valid = small != ignore if ignore is not None else np.ones(small.shape, bool)
    votes = np.bincount(seg[valid].astype(np.int64) * top + small[valid], minlength=n * top).reshape(n, top)
    winner = votes.argmax(axis=1)
    has = votes.sum(axis=1) > 0
    out_small = np.where(has[seg], winner[seg], small)
    if not over.working.resized:
        return out_small.astype(label.dtype)
    return out_small[np.ix_(over.working.rows, over.working.cols)].astype(label.dtype)
