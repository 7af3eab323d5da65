"""The canvas's colour helpers: levels stacked finer-on-top into one image equal the levels
painted one over another (Qt's own compositing, the reference), and composite cells' shade."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtCore, QtGui

from qgn.classes import ClassSet
from qgn_studio.canvas.colours import COMPOSITE_RGBA, colour_codes, colour_labels, colour_values, finest_on_top


def painted(levels: dict[int, np.ndarray], height: int, width: int) -> np.ndarray:
    """(height, width, 4): each level's RGBA drawn coarse to fine with QPainter, a pixel of level l
    covering 2^l x 2^l image pixels (what the canvas did with one image item per level)."""
    canvas = QtGui.QImage(width, height, QtGui.QImage.Format.Format_RGBA8888)
    canvas.fill(QtCore.Qt.GlobalColor.transparent)
    painter = QtGui.QPainter(canvas)
    for level in sorted(levels, reverse=True):
        rgba = np.ascontiguousarray(levels[level])
        h, w = rgba.shape[:2]
        image = QtGui.QImage(rgba.data, w, h, 4 * w, QtGui.QImage.Format.Format_RGBA8888)
        painter.drawImage(QtCore.QRectF(0, 0, w << level, h << level), image)
    painter.end()
    bits = canvas.constBits()
    return np.frombuffer(bits, np.uint8, count=height * width * 4).reshape(height, width, 4).copy()


@pytest.mark.parametrize("size", [(40, 56), (37, 61), (1, 1)])
def test_finest_on_top_equals_the_levels_painted_over_each_other(size) -> None:
    height, width = size
    rng = np.random.default_rng(height)
    levels = {}
    for level in (5, 4, 3, 2):  # computed down to level 2, as a depth-2 run
        h, w = -(-height // (1 << level)), -(-width // (1 << level))
        rgba = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
        rgba[..., 3] = np.where(rng.random((h, w)) < 0.5, 255, 0)  # opaque or transparent
        rgba[rgba[..., 3] == 0] = 0
        levels[level] = rgba
    stacked, level = finest_on_top(levels)
    assert level == 2 and stacked.shape == levels[2].shape
    up = stacked.repeat(4, 0).repeat(4, 1)[:height, :width]
    np.testing.assert_array_equal(up, painted(levels, height, width))


def test_finest_on_top_of_nothing_is_none() -> None:
    assert finest_on_top({}) is None


def test_composite_cells_take_the_shade_colour() -> None:
    classes = ClassSet.generic(2)
    codes = np.array([[-1, 0, 1, 2]], np.int16)
    plain, shaded = colour_codes(codes, classes), colour_codes(codes, classes, COMPOSITE_RGBA)
    assert plain[0, 0, 3] == plain[0, 1, 3] == 0 and shaded[0, 0, 3] == 0
    assert tuple(shaded[0, 1]) == COMPOSITE_RGBA
    np.testing.assert_array_equal(plain[0, 2:], shaded[0, 2:])
    assert (plain[0, 2:, 3] == 255).all()


def reference_labels(label, classes):
    """Pixel by pixel: class c < k its palette colour, opaque; anything else transparent."""
    out = np.zeros(label.shape + (4,), np.uint8)
    for (y, x), c in np.ndenumerate(label):
        if 0 <= c < classes.num_classes:
            out[y, x, :3] = classes.palette[c]
            out[y, x, 3] = 255
    return out


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int64])
def test_colour_labels_equals_a_pixel_by_pixel_reference(dtype) -> None:
    classes = ClassSet.generic(5)
    rng = np.random.default_rng(0)
    label = rng.integers(0, 7, (9, 11)).astype(dtype)
    if np.issubdtype(dtype, np.signedinteger):
        label[0, :3] = (-1, -300, 7)
    label[1, 1] = 255 if dtype == np.uint8 else 70_000 if dtype == np.int64 else 255  # ignore, far out
    np.testing.assert_array_equal(colour_labels(label, classes), reference_labels(label, classes))
    assert colour_labels(np.zeros((0, 4), dtype), classes).shape == (0, 4, 4)


@pytest.mark.parametrize("dtype", [np.int16, np.int64])
def test_colour_codes_equals_a_pixel_by_pixel_reference(dtype) -> None:
    classes = ClassSet.generic(4)
    codes = np.array([[-1, 0, 1, 2, 3, 4, 5, 900, -2, -30000]], dtype)
    got = colour_codes(codes, classes, COMPOSITE_RGBA)
    want = np.zeros(codes.shape + (4,), np.uint8)
    for x, c in enumerate(codes[0]):
        if c == 0:
            want[0, x] = COMPOSITE_RGBA
        elif c >= 1:
            want[0, x, :3] = classes.palette[min(c, 4) - 1]  # above k: the last class
            want[0, x, 3] = 255
    np.testing.assert_array_equal(got, want)


def test_colour_values_map_0_to_1_onto_the_colour_map_and_nan_to_nothing() -> None:
    from qgn_studio.canvas.colours import colormap_lut

    lut = colormap_lut()
    values = np.array([[0.0, 1.0, 0.5, 0.25, np.nan, np.inf, -np.inf, -0.2, 1.7, 0.001]], np.float32)
    got = colour_values(values)
    for x, v in enumerate(values[0]):
        if not np.isfinite(v):
            assert tuple(got[0, x]) == (0, 0, 0, 0)
        else:
            np.testing.assert_array_equal(got[0, x], lut[int(np.clip(v * 255 + 0.5, 0, 255))])


@pytest.mark.parametrize("channels", [3, 4])
def test_an_array_is_shown_pixel_for_pixel_over_its_cells(qapp, channels: int) -> None:
    """`show_array` hands pyqtgraph the array without levels (no per-pixel conversion): the image
    item's picture is the array itself, pixel for pixel, covering ``cell`` image pixels each."""
    import pyqtgraph as pg

    from qgn_studio.canvas.layers import show_array

    pg.setConfigOptions(imageAxisOrder="row-major")
    rgba = np.random.default_rng(channels).integers(0, 256, (23, 31, channels), dtype=np.uint8)
    rgba[0, 0] = 0  # the extremes, where a level mapping would show
    rgba[-1, -1] = 255
    item = pg.ImageItem()
    show_array(item, rgba, cell=4)
    item.render()
    image = item.qimage.convertToFormat(QtGui.QImage.Format.Format_RGBA8888)
    shown = np.frombuffer(image.constBits(), np.uint8, count=23 * 31 * 4).reshape(23, 31, 4)
    assert np.array_equal(shown[..., :channels], rgba)
    assert item.mapRectToParent(item.boundingRect()) == QtCore.QRectF(0, 0, 31 * 4, 23 * 4)
    show_array(item, None)
    assert item.image is None
