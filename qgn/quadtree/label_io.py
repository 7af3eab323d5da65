"""Label map files: read/write single-channel PNG label maps and class list files.

* ``read_label_file(path, classes=None)`` → (H, W) label map of a label file, a ``.qgt`` or a
  single-channel image: *the* way to read a label file for a class set. A ``.qgt`` stores its class
  names, and with ``classes`` its classes are matched onto them by *name* (``code_table_by_name``),
  so a file written before a rename or a reorder still reads right; a name ``classes`` lacks is an
  error naming it, never a silent guess. An image holds class ids by convention: its stored values
  (``read_label``), checked by the caller where it needs to. Other tools' mask formats (colour
  masks, Cityscapes ids, JSON) are ``qgn.formats.import_annotation``.
* ``read_label(path)`` → (H, W) integer array of the *stored values*: 8-bit grayscale (L),
  indexed (P: the palette indices are the labels), 16-bit (I;16*) and 32-bit (I) PNGs, bilevel (1).
  Colour (RGB/RGBA) "masks" are refused with an error that says how to convert them.
* ``write_label_png(path, label, classes=None)`` writes an indexed-palette PNG when every value is
  in 0..255 (colours from ``classes``, the ignore colour at the ignore index) and a 16-bit
  grayscale PNG when values reach 256..65535. Reading it back with ``read_label`` gives exactly
  ``label``. Written atomically (temporary file + rename).
* ``read_classes_file(path)`` / ``write_classes_file(path, classes)``: the ``classes.txt`` format of
  ``qgn.data.folder`` — one class name per line in id order, optionally followed by ``R G B``;
  ``#`` comments and blank lines skipped; ``ignore: V`` (default 255) or ``ignore: none``. A class
  list is a few lines of text: a file over ``MAX_CLASSES_FILE_BYTES`` or with NUL bytes is refused
  before it is read whole. ``find_classes_file(folder)``: the ``classes.txt`` of a dataset folder
  (in it, else beside it).

Every failure on a user's file is a ValueError (or FileNotFoundError) with a message naming it.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..classes import JSON_CLASSES_HELP, ClassSet, classes_from_json, default_palette, parse_classes_txt
from ..fileio import MAX_LIST_FILE_BYTES, atomic_write_bytes, read_text_within
from ..label_map import label_dtype
from .qgt import read_qgt
from .quadtree import Quadtree

SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
LABEL_MODES = ("L", "P", "I", "1") + SIXTEEN_BIT_MODES
COLOUR_MODES = ("RGB", "RGBA", "RGBX", "RGBa", "CMYK", "YCbCr", "LAB", "HSV", "LA", "La", "PA")


def read_label(path: str | os.PathLike) -> np.ndarray:
    """The stored values of a single-channel label image as (H, W) uint8/uint16/int32.

    Raises FileNotFoundError if the file is missing, ValueError if it is empty, not an image,
    a colour image, or in another unsupported mode.
    """
    from ..imagefile import load_checked, open_image  # the pixel limit and the errors of every image reader

    path = Path(path)
    try:
        with open_image(path) as image:
            mode = image.mode
            if mode in COLOUR_MODES:
                raise ValueError(
                    f"{path} is a {mode} colour image, not a label map of class ids; convert colour-coded "
                    "masks to an indexed-palette (mode P) or grayscale PNG whose pixel values are the class "
                    "ids, e.g. by mapping each class colour of your palette to its id"
                )
            if mode not in LABEL_MODES:
                raise ValueError(
                    f"{path} is a {mode} image; a label map must be single-channel integer "
                    "(PNG mode L, P, I;16 or I)"
                )
            load_checked(image, path)  # PIL makes the rows a short data stream lacks zeros: class 0, silently
            values = np.asarray(image)
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise ValueError(f"{path} is not a readable image: {exc}") from None
    except (OSError, SyntaxError) as exc:  # truncated / corrupt image data
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValueError(f"{path} could not be decoded (corrupt or truncated image?): {exc}") from None
    if values.ndim != 2 or values.size == 0:
        raise ValueError(f"{path}: expected a non-empty 2-D label map, got shape {values.shape}")
    if values.dtype == bool:
        return values.astype(np.uint8)
    if values.dtype.byteorder == ">":
        values = values.astype(values.dtype.newbyteorder("="))
    return np.array(values, copy=True)


class ClassMismatchError(ValueError):
    """A label file that reads but whose classes do not fit the class set it is read with (a class
    it names that the set lacks, ignore pixels without an ignore value): the classes are the cause."""


def code_table_by_name(file_classes: ClassSet | None, file_k: int, classes: ClassSet, source) -> np.ndarray:
    """(file_k + 2,) int64: a .qgt's level-0 T-pyramid code (0 composite, c+1 class c, file_k+1
    VOID) → value of ``classes``, matching class *names* (exact). Without stored names the ids
    must agree in number. ClassMismatchError (a ValueError) naming the classes ``classes`` lacks."""
    table = np.full(file_k + 2, -1, np.int64)
    if file_classes is None:
        if file_k != classes.num_classes:
            raise ClassMismatchError(
                f"{source} has {file_k} unnamed classes but the class set has {classes.num_classes}")
        table[1 : file_k + 1] = np.arange(file_k)
    else:
        where = {name: i for i, name in enumerate(classes.names)}
        missing = [n for n in file_classes.names if n not in where]
        if missing:
            raise ClassMismatchError(
                f"{source} was labelled with classes this project does not have: {', '.join(map(repr, missing[:5]))} "
                f"(the project has {', '.join(map(repr, classes.names[:12]))}); add or rename a class to match"
            )
        table[1 : file_k + 1] = [where[n] for n in file_classes.names]
    table[file_k + 1] = classes.ignore_index if classes.ignore_index is not None else -2
    return table


def read_label_file(path: str | os.PathLike, classes: ClassSet | None = None) -> np.ndarray:
    """The label map (H, W) of a ``.qgt`` or a single-channel label image (see the module docstring).

    ``.qgt`` with ``classes``: values of ``classes`` matched by class name, ``label_dtype(classes)``;
    without: the stored values (its own ignore value). Other files: ``read_label``'s stored values.
    ValueError (QgtFormatError) when the file is unreadable, names a class ``classes`` lacks, or has
    ignore pixels and ``classes`` no ignore value; FileNotFoundError."""
    path = Path(path)
    if path.suffix.lower() != ".qgt":
        return read_label(path)
    qt, file_classes = read_qgt(path)
    return qt.to_label() if classes is None else quadtree_label(qt, file_classes, classes, path)


def quadtree_label(qt: Quadtree, file_classes: ClassSet | None, classes: ClassSet, source) -> np.ndarray:
    """The (H, W) label map of a quadtree read from ``source`` (its classes ``file_classes``, None
    when unnamed) as values of ``classes`` matched by name, ``label_dtype(classes)``."""
    table = code_table_by_name(file_classes, qt.num_classes, classes, source)
    label = table[qt.to_tpyramid().levels[0][: qt.height, : qt.width].astype(np.int64)]
    if (label == -2).any():
        raise ClassMismatchError(f"{source} has ignore pixels but the class set has no ignore value")
    return label.astype(label_dtype(classes))


def _check_label(label: np.ndarray) -> np.ndarray:
    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f"a label map must be 2-D (H, W); got shape {label.shape}")
    if label.size == 0:
        raise ValueError("a label map must not be empty")
    if not (np.issubdtype(label.dtype, np.integer) or label.dtype == np.bool_):
        raise ValueError(f"a label map must hold integers; got dtype {label.dtype}")
    return label


def label_palette(classes: ClassSet | None, max_value: int) -> list[int]:
    """768 ints: colours of ids 0..k-1, the ignore colour at the ignore index, black elsewhere."""
    colours = [(0, 0, 0)] * 256
    if classes is None:
        for i, rgb in enumerate(default_palette(min(max_value + 1, 256))):
            colours[i] = rgb
    else:
        for i, rgb in enumerate(classes.palette[:256]):
            colours[i] = rgb
        if classes.ignore_index is not None and 0 <= classes.ignore_index < 256:
            colours[classes.ignore_index] = classes.ignore_color
    return [c for rgb in colours for c in rgb]


def encode_label_png(label: np.ndarray, classes: ClassSet | None = None, *, indexed: bool = True) -> bytes:
    """PNG bytes of a label map (see ``write_label_png``); ``indexed=False`` writes 8-bit
    grayscale (mode L, no palette) instead of an indexed-palette PNG when all values are <= 255.

    Encoded here, a band of rows at a time (PNG: ISO/IEC 15948 — IHDR, PLTE, IDAT of zlib-deflated
    scanlines each led by filter type 0, IEND; 16-bit samples big-endian): the memory it needs
    beyond the label map is the compressed output, about 1 byte per pixel less than Pillow's
    encoder, which copies the map twice."""
    import struct
    import zlib

    label = _check_label(label)
    lo, hi = int(label.min()), int(label.max())
    if lo < 0 or hi > 65535:
        raise ValueError(
            f"label values {lo}..{hi} cannot be stored in a PNG label map (values must be 0..65535)"
        )
    h, w = label.shape
    depth, dtype = (8, np.dtype(np.uint8)) if hi < 256 else (16, np.dtype(">u2"))
    colour_type = 3 if depth == 8 and indexed else 0

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    out = [b"\x89PNG\r\n\x1a\n", chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, colour_type, 0, 0, 0))]
    if colour_type == 3:
        out.append(chunk(b"PLTE", bytes(label_palette(classes, hi))))
    compressor = zlib.compressobj(6)
    row_bytes = w * dtype.itemsize
    band = max(1, (1 << 20) // (row_bytes + 1))
    idat = []
    for y in range(0, h, band):
        rows = np.ascontiguousarray(label[y:y + band], dtype)
        lines = np.zeros((rows.shape[0], row_bytes + 1), np.uint8)  # column 0: filter type 0 (None)
        lines[:, 1:] = rows.view(np.uint8).reshape(rows.shape[0], row_bytes)
        idat.append(compressor.compress(lines.tobytes()))
    idat.append(compressor.flush())
    out += [chunk(b"IDAT", b"".join(idat)), chunk(b"IEND", b"")]
    return b"".join(out)


def write_label_png(
    path: str | os.PathLike, label: np.ndarray, classes: ClassSet | None = None, *, indexed: bool = True
) -> None:
    """Write a label map as PNG: indexed-palette (mode P, colours from ``classes``; 8-bit grayscale
    with ``indexed=False``) when all values are in 0..255, 16-bit grayscale when they reach 65535.
    ValueError for other values/shapes."""
    atomic_write_bytes(path, encode_label_png(label, classes, indexed=indexed))


# ---------------------------------------------------------------------------------------- classes
MAX_CLASSES_FILE_BYTES = MAX_LIST_FILE_BYTES  # a class list is a few lines; a bigger "classes.txt" is not one


def read_classes_file(path: str | os.PathLike, named: bool = False) -> ClassSet:
    """Parse a ``classes.txt`` (format of ``qgn.data.folder``) into a ClassSet.

    At most ``MAX_CLASSES_FILE_BYTES`` + 1 bytes are read, whatever size the file claims: a bigger
    file, one with NUL bytes (binary) or one that is not UTF-8 is a ValueError naming it.
    ``named``: the user named ``path`` directly (``--classes``), so a named pipe is read too, within
    a bounded wait (``qgn.fileio.read_at_most``); one found in a folder is refused."""
    path = Path(path)
    if path.is_dir():
        inside = find_classes_file(path)
        hint = f"; did you mean {inside}?" if inside is not None else "; name a classes.txt file"
        raise ValueError(f"{path} is a folder, not a classes file{hint}")
    if path.exists() and not path.is_file() and not (named and stat.S_ISFIFO(path.stat().st_mode)):
        raise ValueError(f"{path} is not a regular file (a device, pipe or socket), not a classes file")
    if not path.exists():
        from qgn.fileio import missing_file_error

        raise missing_file_error(path, what="classes file")  # a loop of links said as one
    text = read_text_within(path, "class list (one class name per line)", named=named)
    doc = _class_list_json(text, path)
    return parse_classes_txt(text, str(path)) if doc is _NOT_JSON else classes_from_json(doc, str(path))


_NOT_JSON = object()


def _class_list_json(text: str, path: Path):
    """The parsed JSON of a ``.json`` class list (a UTF-8 byte order mark before it read past, as
    ``qgn.fileio.read_json`` does), else ``_NOT_JSON``: any other file is a classes.txt, whatever its
    text (``[road]``, ``[1]``, ``[]`` on its one line: a class of that name). ValueError naming
    ``path`` for a ``.json`` file that is no JSON."""
    import json

    if path.suffix.lower() != ".json":
        return _NOT_JSON
    try:
        return json.loads(text.removeprefix("\ufeff"))
    except RecursionError:
        problem = "nested too deeply"
    except ValueError as exc:
        problem = str(exc)
    raise ValueError(f"{path}: not valid JSON ({problem}); {JSON_CLASSES_HELP}")


def find_classes_file(folder: str | os.PathLike) -> Path | None:
    """The ``classes.txt`` of a dataset whose labels are in ``folder``: in it, else beside it
    (``root/labels`` ↔ ``root/classes.txt``); None when neither exists."""
    folder = Path(folder)
    return next((p for p in (folder / "classes.txt", folder.parent / "classes.txt") if p.is_file()), None)


def format_classes_file(classes: ClassSet) -> str:
    """The ``classes.txt`` text of a ClassSet (names with colours, then the ignore line)."""
    lines = []
    for i, (name, (r, g, b)) in enumerate(zip(classes.names, classes.palette)):
        if not name or name != " ".join(name.split()) or name.startswith("#") or name.lower().startswith("ignore:"):
            raise ValueError(f"class {i} name {name!r} cannot be written to a classes file")
        lines.append(f"{name} {r} {g} {b}")
    ignore = "none" if classes.ignore_index is None else str(classes.ignore_index)
    if classes.ignore_index is not None and classes.ignore_index < 0:
        raise ValueError(f"a classes file cannot hold a negative ignore value ({classes.ignore_index})")
    lines.append(f"ignore: {ignore}")
    return "\n".join(lines) + "\n"


def write_classes_file(path: str | os.PathLike, classes: ClassSet) -> None:
    """Write ``classes`` in the ``classes.txt`` format (read back by ``read_classes_file``).

    The ignore colour is not part of the format (readers use the ClassSet default)."""
    atomic_write_bytes(path, format_classes_file(classes).encode("utf-8"))
