"""``qgn.formats.png_bands`` writes Pillow's PNG bytes from bands of rows: RGB with Pillow's adaptive
filters, palette pictures, IDAT chunks of Pillow's buffer size (also past 16384 px wide, where it
is 4 bytes per pixel of a row), and falls back to Pillow itself where it cannot be sure."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from qgn.formats import png_bands


def _pillow(array: np.ndarray, mode: str, palette: bytes | None = None) -> bytes:
    image = Image.fromarray(array, mode)
    if palette is not None:
        image.putpalette(list(palette))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _ours(array: np.ndarray, mode: str, palette: bytes | None = None) -> bytes:
    return png_bands.encode_png(array.shape[0], array.shape[1], mode, lambda y0, y1: array[y0:y1], palette)


PICTURES = {
    # smooth regions (Up/Sub/Paeth all win somewhere), noise (no filter wins), and a wide noisy
    # strip whose compressed data spans several IDAT chunks of 4 × 17001 bytes
    "regions": np.repeat(np.repeat(np.random.default_rng(1).integers(0, 9, (40, 50)), 7, 0), 5, 1),
    "noise": np.random.default_rng(2).integers(0, 256, (300, 211)),
    "wide": np.random.default_rng(3).integers(0, 256, (12, 17001)),
}


@pytest.mark.parametrize("name", PICTURES)
def test_rgb_and_palette_pictures_are_pillows_bytes(name):
    index = PICTURES[name].astype(np.uint8)
    colours = np.random.default_rng(4).integers(0, 256, (256, 3)).astype(np.uint8)
    assert _ours(colours[index], "RGB") == _pillow(colours[index], "RGB")
    assert _ours(index, "P", colours.tobytes()) == _pillow(index, "P", colours.tobytes())


def test_small_bands_give_the_same_bytes(monkeypatch):
    """A band of one row (filters reach across band borders through the line above)."""
    rgb = np.random.default_rng(5).integers(0, 4, (30, 40, 3)).astype(np.uint8) * 60
    monkeypatch.setattr(png_bands, "BAND_BYTES", 1)
    assert _ours(rgb, "RGB") == _pillow(rgb, "RGB")


def test_pillow_writes_where_the_chunking_is_not_known(monkeypatch):
    """Compressed data of an exact multiple of the buffer size, or a zlib other than Pillow's."""
    rgb = np.random.default_rng(6).integers(0, 256, (20, 30, 3)).astype(np.uint8)
    expected = _pillow(rgb, "RGB")
    idat = len(expected) - 8 - 25 - 12 - 12  # signature, IHDR, IDAT and IEND framing
    monkeypatch.setattr(png_bands, "MAXBLOCK", idat)
    assert png_bands._encode_ours(20, 30, "RGB", lambda y0, y1: rgb[y0:y1], None) is None
    assert _ours(rgb, "RGB") == expected
    monkeypatch.setattr(png_bands, "matches_pillow", lambda: False)
    assert _ours(rgb, "RGB") == expected


def test_here_the_streaming_encoder_is_used():
    assert png_bands.matches_pillow()
