"""The magic wand: the connected pixels whose colour is within a tolerance of the clicked one.

``magic_wand(label, working, x, y, value, tolerance)`` grows a 4-connected region from the
clicked pixel with OpenCV's ``floodFill`` in fixed-range mode: a pixel joins when each of its R,
G, B values is within ``tolerance`` (0 … 255) of the clicked pixel's. With ``same_label`` (the
default) the region also stays inside the clicked pixel's current label region, so a wand click
can only relabel what the fill tool could — a fill that stops at colour edges; tolerance 255 is
the fill tool itself. It runs at the tools' working size (``qgn.annotation.working``).
"""
from __future__ import annotations

import numpy as np

from .edit import LabelEdit, _check_map, _check_pixel, _check_value, _edit_of
from .working import WorkingImage, bounding_box

TOLERANCES = (4, 8, 12, 16, 24, 32, 48, 64)  # the steps of the app's tolerance keys
DEFAULT_TOLERANCE = 16


def wand_mask(working: WorkingImage, x: float, y: float, tolerance: int, allowed: np.ndarray | None = None) -> np.ndarray:
    """(h, w) bool at the working size: the wand's region from full-size (x, y).

    allowed: optional (h, w) bool, pixels the region may enter (the seed must be one)."""
    import cv2

    tolerance = int(tolerance)
    if not 0 <= tolerance <= 255:
        raise ValueError(f"the wand's tolerance must be 0 … 255; got {tolerance}")
    wx, wy = working.to_working(x, y)
    h, w = working.working_shape
    mask = np.zeros((h + 2, w + 2), np.uint8)
    if allowed is not None:
        mask[1:-1, 1:-1] = ~allowed
    flags = 4 | cv2.FLOODFILL_FIXED_RANGE | cv2.FLOODFILL_MASK_ONLY | (2 << 8)
    image = working.image
    if not image.flags.writeable:  # the mask-only fill writes nothing, but OpenCV takes only writable arrays
        image = image.copy()
    cv2.floodFill(image, mask, (wx, wy), 0, (tolerance,) * 3, (tolerance,) * 3, flags)
    return mask[1:-1, 1:-1] == 2


def magic_wand(label: np.ndarray, working: WorkingImage, x: float, y: float, value: int,
               tolerance: int = DEFAULT_TOLERANCE, same_label: bool = True) -> LabelEdit:
    """The edit setting the wand's region (module docstring) to ``value``.

    label: (H, W) uint8/uint16 map of the image ``working`` holds (not modified); (x, y) full-size
    image coordinates (ValueError outside)."""
    _check_map(label)
    value = _check_value(label, value)
    if label.shape != working.shape:
        raise ValueError(f"the label map is {label.shape[::-1]} but the image is {working.shape[::-1]}")
    xi, yi = _check_pixel(label, x, y)
    seed_value = label[yi, xi]
    allowed = working.working_label(label) == seed_value if same_label else None
    if allowed is not None:
        wx, wy = working.to_working(xi, yi)
        allowed[wy, wx] = True  # the working pixel may sample another label near a boundary
    region = wand_mask(working, xi + 0.5, yi + 0.5, tolerance, allowed)
    box = bounding_box(region)  # (never None: the seed is in the region)
    index = working.full_index(region[box[0]:box[1], box[2]:box[3]], box)  # that box's full-size pixels only
    if same_label and working.resized:
        index = index[label.reshape(-1)[index] == seed_value]
        index = _component_of(index, label.shape, yi, xi)
    return _edit_of(label, index, value)


def _component_of(index: np.ndarray, shape: tuple[int, int], yi: int, xi: int) -> np.ndarray:
    """The pixels of ``index`` (sorted flat full-size indices) 4-connected to (yi, xi) among them:
    the working copy samples a label map, so a 1-px wall of another label can fall between its
    pixels; at full size the wall still bounds the region, as it bounds the fill tool's."""
    import cv2

    w = shape[1]
    ys, xs = index // w, index % w
    y0, x0 = int(ys.min()), int(xs.min())
    mask = np.zeros((int(ys.max()) - y0 + 1, int(xs.max()) - x0 + 1), np.uint8)
    mask[ys - y0, xs - x0] = 1
    _, parts = cv2.connectedComponents(mask, connectivity=4)
    return index[parts[ys - y0, xs - x0] == parts[yi - y0, xi - x0]]
