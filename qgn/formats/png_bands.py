"""RGB and palette PNG files byte for byte as Pillow writes them, encoded a band of rows at a time.

Exports that other tools read (CVAT class and object masks, Cityscapes ``_color.png``) were written
with ``Image.fromarray(...).save(format="PNG")``, which holds the whole picture twice (an (H, W, 3)
array and Pillow's 4 bytes per pixel). ``encode_png(height, width, mode, rows)`` writes the same
bytes from bands of rows that the caller makes on demand (``rows(y0, y1)``), so a colour mask of a
64-megapixel label map costs a few megabytes beyond the label map and the compressed file.

What Pillow 12 does (src/PIL/PngImagePlugin.py ``_save``, ImageFile.py ``_save``,
src/libImaging/ZipEncode.c ``ImagingZipEncode``), and this module repeats:

* chunks ``IHDR`` (8-bit; colour type 2 for RGB, 3 for P), for P a ``PLTE`` of the palette's
  colours (256 for a full 768-value palette), the ``IDAT`` chunks, ``IEND``;
* scanlines deflated by zlib at level 6 (``compress_level`` -1), window 15, memLevel 9, strategy
  ``Z_FILTERED`` for RGB and ``Z_DEFAULT_STRATEGY`` for P;
* P lines unfiltered (filter byte 0); RGB lines each with the filter of least sum of
  ``min(v, 256 - v)`` over its filtered bytes, tried in the order None, Up, Sub, Paeth (Average only
  with ``optimize``), a later one taken only when strictly smaller;
* one ``IDAT`` per full encoder buffer of ``max(65536, 4 * width)`` bytes, the last one shorter.

Before the first use ``matches_pillow()`` checks that this module's zlib gives Pillow's bytes on a
small picture (Pillow wheels may bundle another deflate); where it does not, and in the one case
whose chunking is not known here (compressed data of an exact multiple of the buffer size), the
picture is made whole and Pillow writes it.
"""
from __future__ import annotations

import io
import struct
import zlib
from functools import cache
from typing import Callable

import numpy as np

MAXBLOCK = 65536  # PIL.ImageFile.MAXBLOCK
BAND_BYTES = 1 << 16  # raw bytes per band of rows (its filtering needs about 25 times that)


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def _cost(filtered: np.ndarray) -> np.ndarray:
    """(n,) int64: each row's sum of ``min(v, 256 - v)`` (ZipEncode.c's distance from zero)."""
    v = filtered.astype(np.int16)
    return np.where(v < 128, v, 256 - v).sum(axis=1, dtype=np.int64)


def _filter_rgb(raw: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """(n, B + 1) uint8 scanlines of the (n, B) bytes ``raw``, each with Pillow's adaptive filter;
    ``previous``: the (B,) raw bytes of the line above the band (zeros above the first line)."""
    bpp = 3
    x = raw.astype(np.int16)
    b = np.empty_like(x)  # the line above
    b[0] = previous
    b[1:] = x[:-1]
    a = np.zeros_like(x)  # the byte one pixel to the left
    a[:, bpp:] = x[:, :-bpp]
    c = np.zeros_like(x)
    c[:, bpp:] = b[:, :-bpp]
    pa, pb, pc = np.abs(b - c), np.abs(a - c), np.abs(a + b - 2 * c)
    predictor = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    candidates = (raw, (x - b).astype(np.uint8), (x - a).astype(np.uint8), (x - predictor).astype(np.uint8))
    types = np.array([0, 2, 1, 4], np.uint8)  # the order ZipEncode.c tries them in
    costs = np.stack([_cost(f) for f in candidates])
    choice = np.argmin(costs, axis=0)  # the first of equal sums, as "a later one only when smaller"
    lines = np.empty((raw.shape[0], raw.shape[1] + 1), np.uint8)
    lines[:, 0] = types[choice]
    for k, filtered in enumerate(candidates):
        rows = choice == k
        lines[rows, 1:] = filtered[rows]
    return lines


def _encode_ours(height: int, width: int, mode: str, rows: Callable[[int, int], np.ndarray],
                 palette: bytes | None) -> bytes | None:
    channels = 3 if mode == "RGB" else 1
    row_bytes = width * channels
    strategy = zlib.Z_FILTERED if mode == "RGB" else zlib.Z_DEFAULT_STRATEGY
    compressor = zlib.compressobj(6, zlib.DEFLATED, 15, 9, strategy)
    band = max(1, BAND_BYTES // row_bytes)
    previous = np.zeros(row_bytes, np.uint8)
    parts = []
    for y in range(0, height, band):
        raw = np.ascontiguousarray(rows(y, min(y + band, height)), np.uint8).reshape(-1, row_bytes)
        if mode == "RGB":
            lines = _filter_rgb(raw, previous)
            previous = raw[-1].copy()
        else:
            lines = np.zeros((raw.shape[0], row_bytes + 1), np.uint8)
            lines[:, 1:] = raw
        parts.append(compressor.compress(lines.tobytes()))
    parts.append(compressor.flush())
    data = b"".join(parts)
    del parts
    block = max(MAXBLOCK, width * 4)
    if len(data) % block == 0:
        return None  # Pillow may end with an empty IDAT here; let it write this one
    colour_type = 2 if mode == "RGB" else 3
    out = [b"\x89PNG\r\n\x1a\n", _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0))]
    if mode == "P":
        out.append(_chunk(b"PLTE", palette))
    out += [_chunk(b"IDAT", data[i:i + block]) for i in range(0, len(data), block)]
    out.append(_chunk(b"IEND", b""))
    return b"".join(out)


def _encode_pillow(height: int, width: int, mode: str, rows, palette: bytes | None) -> bytes:
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(rows(0, height), np.uint8), mode)
    if mode == "P":
        image.putpalette(list(palette))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def encode_png(height: int, width: int, mode: str, rows: Callable[[int, int], np.ndarray],
               palette: bytes | None = None) -> bytes:
    """The PNG file Pillow writes for ``Image.fromarray(rows(0, height), mode)`` (with
    ``putpalette(palette)`` for P) saved as PNG. ``mode``: "RGB" (``rows(y0, y1)`` → (y1 - y0,
    width, 3) uint8) or "P" (→ (y1 - y0, width) uint8 palette indices; ``palette``: 768 bytes)."""
    if mode not in ("RGB", "P"):
        raise ValueError(f"encode_png: mode {mode!r} is not RGB or P")
    if mode == "P" and (palette is None or len(palette) != 768):
        raise ValueError("encode_png: a P picture needs a palette of 768 bytes (256 colours)")
    if matches_pillow():
        data = _encode_ours(height, width, mode, rows, palette)
        if data is not None:
            return data
    return _encode_pillow(height, width, mode, rows, palette)


@cache
def matches_pillow() -> bool:
    """Whether this module writes Pillow's bytes here (a 61×47 picture of regions and noise, both modes)."""
    rng = np.random.default_rng(7)
    index = np.repeat(np.repeat(rng.integers(0, 6, (9, 8)), 6, axis=0), 8, axis=1)[:47, :61].astype(np.uint8)
    index[rng.random(index.shape) < 0.05] = 7
    colours = rng.integers(0, 256, (256, 3)).astype(np.uint8)
    palette = colours.tobytes()
    for mode, picture in (("RGB", colours[index]), ("P", index)):
        def rows(y0, y1, _picture=picture):
            return _picture[y0:y1]

        if _encode_ours(47, 61, mode, rows, palette) != _encode_pillow(47, 61, mode, rows, palette):
            return False
    return True
