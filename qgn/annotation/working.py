"""The working resolution of the image-aware annotation tools.

Superpixels, the magic wand and the snapped brush look at the image. On a 480×360 frame they run at
full size; on a 6000×4000 photo they run on a copy resized to at most ``TOOL_PIXELS`` pixels, and
what they select is mapped back to the label map's pixels by nearest neighbour (every full-size
pixel takes the selection of the working pixel whose area holds its centre). A gesture therefore
costs at most a working-size pass plus the pixels it changes, whatever the photo's size.

``WorkingImage`` holds the resized copy and the two coordinate maps; ``full_index(mask, box)``
turns a working-size bool mask into the flat indices of the full-size pixels it covers.
"""
from __future__ import annotations

import numpy as np

TOOL_PIXELS = 1 << 19  # 524,288 pixels (about 840×630): a gesture's working pass stays well under 100 ms


class WorkingImage:
    """An (H, W, 3) uint8 RGB image and its copy at the tools' working size.

    image:  (h, w, 3) uint8 RGB working copy (the image itself when it has <= ``pixels`` pixels).
    shape:  (H, W) of the full image; ``working_shape`` (h, w).
    rows, cols: (H,) / (W,) int64: the working row / column of every full-size row / column.
    """

    def __init__(self, image: np.ndarray, pixels: int = TOOL_PIXELS):
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"the tools need an (H, W, 3) uint8 RGB image; got {image.shape} {image.dtype}")
        h, w = image.shape[:2]
        self.shape = (h, w)
        scale = min(1.0, (pixels / float(h * w)) ** 0.5)
        if scale < 1.0:
            import cv2

            sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
            self.image = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
        else:
            self.image = np.ascontiguousarray(image)
        sh, sw = self.image.shape[:2]
        self.working_shape = (sh, sw)
        self.rows = np.minimum(((np.arange(h) + 0.5) * sh / h).astype(np.int64), sh - 1)
        self.cols = np.minimum(((np.arange(w) + 0.5) * sw / w).astype(np.int64), sw - 1)

    @property
    def resized(self) -> bool:
        return self.working_shape != self.shape

    def to_working(self, x: float, y: float) -> tuple[int, int]:
        """Working (x, y) pixel of full-size image coordinates (clipped to the image)."""
        h, w = self.shape
        xi = min(max(int(np.floor(x)), 0), w - 1)
        yi = min(max(int(np.floor(y)), 0), h - 1)
        return int(self.cols[xi]), int(self.rows[yi])

    def working_label(self, label: np.ndarray) -> np.ndarray:
        """(h, w) the label map (H, W) sampled at the working pixels' centres."""
        if not self.resized:
            return label
        sh, sw = self.working_shape
        h, w = self.shape
        ys = np.minimum(((np.arange(sh) + 0.5) * h / sh).astype(np.int64), h - 1)
        xs = np.minimum(((np.arange(sw) + 0.5) * w / sw).astype(np.int64), w - 1)
        return label[np.ix_(ys, xs)]

    def full_index(self, mask: np.ndarray, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
        """Sorted flat full-size indices of the pixels whose working pixel is True in ``mask``.

        mask: (h, w) bool at the working size, or the part of it inside ``box`` = (y0, y1, x0, x1)
        (working rows/columns, half-open) when given."""
        h, w = self.shape
        if box is None:
            box = (0, mask.shape[0], 0, mask.shape[1])
        y0, y1, x0, x1 = box
        if not self.resized:
            ys, xs = np.nonzero(mask)
            return (ys.astype(np.int64) + y0) * w + xs + x0
        # full-size rows / columns whose working pixel lies in the box
        fr = np.nonzero((self.rows >= y0) & (self.rows < y1))[0]
        fc = np.nonzero((self.cols >= x0) & (self.cols < x1))[0]
        if len(fr) == 0 or len(fc) == 0:
            return np.zeros(0, np.int64)
        sub = mask[np.ix_(self.rows[fr] - y0, self.cols[fc] - x0)]
        ys, xs = np.nonzero(sub)
        return fr[ys].astype(np.int64) * w + fc[xs]


def bounding_box(mask: np.ndarray, margin: int = 0) -> tuple[int, int, int, int] | None:
    """(y0, y1, x0, x1) half-open box of the True pixels of a (h, w) mask, widened by ``margin``
    and clipped to the mask; None when nothing is True."""
    rows = np.flatnonzero(mask.any(axis=1))
    if len(rows) == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    h, w = mask.shape
    return (max(0, rows[0] - margin), min(h, rows[-1] + 1 + margin),
            max(0, cols[0] - margin), min(w, cols[-1] + 1 + margin))
