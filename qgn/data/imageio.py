"""Reading image and label files into the arrays every dataset returns.

``read_rgb`` turns any image Pillow can open (grayscale, palette, RGBA, CMYK, 16-bit, float) into
(H, W, 3) uint8 RGB; label files are read by ``qgn.quadtree.label_io`` (``read_label``, ``read_label_file``).
Photos are read upright: their EXIF orientation is applied (``qgn.imagefile.oriented``), as cameras,
viewers and annotation tools show them; label files carry no orientation and are read as stored.
Every reader refuses images above the pixel limit (``qgn.imagefile``, ``QGN_MAX_PIXELS``).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from qgn.imagefile import load_checked, open_image, oriented

SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


def native_byte_order(values: np.ndarray) -> np.ndarray:
    """``values`` with a native-endian dtype (Pillow's I;16B gives big-endian arrays)."""
    if values.dtype.byteorder == ">":
        return values.astype(values.dtype.newbyteorder("="))
    return values


def gray_to_uint8(values: np.ndarray) -> np.ndarray:
    """Rescale a grayscale array (H, W) of any numeric dtype to (H, W) uint8.

    uint16 keeps its high byte; int32 / float values already in 0..255 are kept, values in
    0..65535 are divided by 257, larger ranges are scaled by their maximum; floats in 0..1 are
    multiplied by 255.
    """
    values = native_byte_order(values)
    if values.dtype == np.uint8:
        return values
    if values.dtype == np.uint16:
        return (values >> 8).astype(np.uint8)
    if values.dtype == bool:
        return values.astype(np.uint8) * 255
    is_float = np.issubdtype(values.dtype, np.floating)
    values = values.astype(np.float64)
    top = float(values.max()) if values.size else 0.0
    if is_float and top <= 1.0:
        values = values * 255.0
    elif top > 65535.0:
        values = values * (255.0 / top)
    elif top > 255.0:
        values = values / 257.0
    return np.clip(np.round(values), 0, 255).astype(np.uint8)


def read_rgb(path: Path | str, should_stop: Callable[[], bool] | None = None) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 RGB, whatever its mode (alpha is dropped), turned
    upright by its EXIF orientation. ValueError naming the file if it is not a readable image or
    is larger than the pixel limit; FileNotFoundError if it is missing. ``should_stop()`` (None:
    never) is polled as the file's blocks are read: ImageReadStopped when true. A PNG stops through
    most of its read, a JPEG in its first part, an uncompressed TIFF/BMP/TGA/PPM while its pixels
    are copied, a WebP or AVIF only after its one-step decode, a compressed TIFF or JPEG 2000 never
    (``qgn.imagefile.polling_reads`` says it of every format)."""
    with open_image(path) as stored:
        load_checked(stored, path, should_stop)  # a PNG whose data lacks rows: refused, never read as black
        image = oriented(stored)
        if image.mode == "RGB":
            return np.asarray(image, dtype=np.uint8).copy()
        if image.mode in SIXTEEN_BIT_MODES or image.mode in ("I", "F", "1"):
            gray = gray_to_uint8(np.asarray(image))
            return np.repeat(gray[:, :, None], 3, axis=2)
        return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def read_label_rgb(path: Path | str) -> np.ndarray:
    """Read a colour-coded label file as (H, W, 3) uint8 RGB (alpha dropped)."""
    with open_image(path) as image:
        load_checked(image, path)
        return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
