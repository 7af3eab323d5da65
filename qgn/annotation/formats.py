"""Annotation file formats: export a label map to the formats other tools read, and import it back.

``FORMATS`` maps a name to a ``Format`` (``write`` and, for importable formats, ``read``). Every
importable format round-trips exactly: ``read(write(label)) == label`` (values; the dtype is
``label_dtype(classes)``). Each ``write(label, classes, out_dir, stem, levels=6)`` writes into
``out_dir`` (created if needed) atomically and returns the paths it wrote.

=======  ==================================================================================
name     files (in ``out_dir``)
=======  ==================================================================================
qgt      ``<stem>.qgt``: the quadtree (``qgn.quadtree.qgt``) with the class names and colours.
png      ``<stem>.png``: indexed-palette PNG, palette index = class id, the ignore value kept
         (coloured with the ignore colour); 16-bit grayscale when a value exceeds 255.
ids      ``<stem>.png``: grayscale id PNG. For the Cityscapes 19-class set the Cityscapes
         ``labelIds`` (ignore → 0 "unlabeled"); otherwise the class ids themselves with the
         ignore value (8-bit, or 16-bit above 255) — the layout of CamVid's id masks.
cvat     The Pascal-VOC "Segmentation mask 1.1" folder CVAT imports: ``labelmap.txt``
         (``name:r,g,b::`` per class, the ignore value as ``background``),
         ``SegmentationClass/<stem>.png`` (RGB, one colour per class) and
         ``ImageSets/Segmentation/default.txt`` (one stem per line). Colours must be unique.
levels   ``<stem>_L<l>.png`` for l = 0 … levels-1 (export only): each level-l cell of the
         T-pyramid in its class colour, the ignore colour for void, composite cells hatched
         grey; cells of 4 px and more get a darker outline.
json     ``<stem>.json``: the quadtree leaf list, see below.
=======  ==================================================================================

The ``json`` leaf list (``format`` "qgn-leaves", ``version`` 1)::

    {"format": "qgn-leaves", "version": 1,
     "height": H, "width": W,          # label map size in pixels
     "levels": L,                       # quadtree levels: cells of 1 … 2**(L-1) pixels
     "ignore_index": 255 | null,        # the label value of ignore pixels
     "classes": ["sky", ...],           # k class names, index = class id
     "palette": [[r, g, b], ...],       # k colours
     "leaves": [[level, x, y, value], ...]}

A leaf ``[l, x, y, v]`` is the uniform cell of ``2**l × 2**l`` pixels at column ``x``, row ``y`` of
level ``l``'s grid (pixels ``[y·2^l, (y+1)·2^l) × [x·2^l, (x+1)·2^l)``), holding value ``v``: a class
id, or ``ignore_index`` for ignore pixels (``null`` when there is none). The leaves tile the map
padded to a multiple of ``2**(L-1)``; cells in the padding are ignore. Leaves come level by level
from the root down, row-major within a level; the set is canonical (no four siblings share a value).

Import (``import_annotation(path, classes, format="auto")``) also reads Cityscapes ``labelIds``
masks and CamVid id masks. Auto-detection: ``.qgt`` → qgt, ``.json`` → json; a PNG by its mode:
P → png (palette indices are the ids), L → ids (Cityscapes ``labelIds`` for the Cityscapes class
set unless the name ends in ``labelTrainIds.png``), I;16/I → png (values are the ids), RGB/RGBA →
cvat (needs the export's ``labelmap.txt`` beside ``SegmentationClass/`` or beside the mask).
"""
from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..classes import ClassSet
from ..fileio import atomic_write_bytes, path_inside
from ..imagefile import ImageTooLargeError, open_image
from ..quadtree import COMPOSITE, Quadtree, build_tpyramid, read_qgt, write_qgt
from ..quadtree.label_io import read_label, write_label_png
from .annotation import check_label, label_dtype

DEFAULT_LEVELS = 6
JSON_FORMAT, JSON_VERSION = "qgn-leaves", 1
CVAT_IGNORE_NAME = "background"
CVAT_HEADER = "# label:color_rgb:parts:actions\n"


@dataclass(frozen=True)
class Format:
    """One file format. ``write(label, classes, out_dir, stem, levels=6) -> list[Path]``;
    ``read(path, classes) -> (H, W) label`` (None for export-only formats)."""

    name: str
    description: str
    suffix: str
    write: Callable[..., list[Path]]
    read: Callable[[Path, ClassSet], np.ndarray] | None


# ------------------------------------------------------------------------------------------ qgt
def write_qgt_file(label, classes: ClassSet, out_dir: Path, stem: str, levels: int = DEFAULT_LEVELS) -> list[Path]:
    qt = Quadtree.from_label(label, classes.num_classes, classes.ignore_index, levels)
    path = _out(out_dir, f"{stem}.qgt")
    write_qgt(path, qt, classes)
    return [path]


def read_qgt_file(path: Path, classes: ClassSet) -> np.ndarray:
    qt, file_classes = read_qgt(path)
    _check_same_classes(path, qt.num_classes, file_classes.names if file_classes else None, classes)
    return _codes_to_label(qt.to_tpyramid().levels[0][: qt.height, : qt.width], classes, path)


# ------------------------------------------------------------------------------------------ png / ids
def write_png_file(label, classes: ClassSet, out_dir: Path, stem: str, levels: int = DEFAULT_LEVELS) -> list[Path]:
    path = _out(out_dir, f"{stem}.png")
    write_label_png(path, label, classes)
    return [path]


def read_png_file(path: Path, classes: ClassSet) -> np.ndarray:
    return _as_label(read_label(path), classes, path)


def is_cityscapes(classes: ClassSet) -> bool:
    """Whether ``classes`` is the Cityscapes 19-class (train id) set with ignore 255."""
    from ..data.cityscapes import CITYSCAPES_CLASSES

    return classes.names == CITYSCAPES_CLASSES.names and classes.ignore_index == CITYSCAPES_CLASSES.ignore_index


def _train_to_label_id() -> np.ndarray:
    """(256,) uint8: Cityscapes train id → label id; the ignore value 255 → 0 (unlabeled)."""
    from ..data.cityscapes import CITYSCAPES_TRAIN_CLASSES

    table = np.zeros(256, np.uint8)
    for label_id, train_id, _, _ in CITYSCAPES_TRAIN_CLASSES:
        table[train_id] = label_id
    return table


def write_ids_file(label, classes: ClassSet, out_dir: Path, stem: str, levels: int = DEFAULT_LEVELS) -> list[Path]:
    path = _out(out_dir, f"{stem}.png")
    if is_cityscapes(classes):
        label = _train_to_label_id()[check_label(label, classes)]
    write_label_png(path, label, indexed=False)
    return [path]


def read_ids_file(path: Path, classes: ClassSet) -> np.ndarray:
    values = read_label(path)
    if is_cityscapes(classes) and not path.name.endswith("labelTrainIds.png"):
        from ..data.cityscapes import label_id_to_train_id

        if values.min() < 0 or values.max() > 255:
            raise ValueError(f"{path}: values {values.min()}..{values.max()} are not Cityscapes labelIds (0..33)")
        values = label_id_to_train_id()[values]
    return _as_label(values, classes, path)


# ------------------------------------------------------------------------------------------ cvat
def cvat_labelmap(classes: ClassSet) -> list[tuple[str, tuple[int, int, int], int | None]]:
    """(name, colour, label value) of every labelmap.txt line: the classes in id order, then the
    ignore value as ``background`` (``ignore`` if a class is already called background).
    ValueError when a name cannot be written or two lines share a colour."""
    entries = [(name, tuple(rgb), i) for i, (name, rgb) in enumerate(zip(classes.names, classes.palette))]
    ignore_name = CVAT_IGNORE_NAME if CVAT_IGNORE_NAME not in classes.names else "ignore"
    if ignore_name in classes.names:
        raise ValueError("CVAT export: classes named both 'background' and 'ignore' leave no name for the ignore value")
    entries.append((ignore_name, tuple(classes.ignore_color), classes.ignore_index))
    for name, _, _ in entries:
        if not name or any(c in name for c in ":\n\r") or name.startswith("#") or name != name.strip():
            raise ValueError(f"CVAT export: class name {name!r} cannot be written to labelmap.txt (no ':', line breaks, "
                             "leading '#' or surrounding spaces)")
    seen: dict[tuple[int, int, int], str] = {}
    for name, rgb, _ in entries:
        if rgb in seen:
            raise ValueError(
                f"CVAT masks tell classes apart by colour, but {seen[rgb]!r} and {name!r} share the colour {rgb}; "
                "give every class (and the ignore colour) a distinct colour in the class set"
            )
        seen[rgb] = name
    return entries


def _format_labelmap(entries) -> str:
    return CVAT_HEADER + "".join(f"{name}:{r},{g},{b}::\n" for name, (r, g, b), _ in entries)


def write_cvat_files(label, classes: ClassSet, out_dir: Path, stem: str, levels: int = DEFAULT_LEVELS) -> list[Path]:
    label = check_label(label, classes)
    entries = cvat_labelmap(classes)
    labelmap = _out(out_dir, "labelmap.txt")
    text = _format_labelmap(entries)
    if labelmap.exists() and labelmap.read_text(encoding="utf-8") != text:
        raise ValueError(f"{labelmap} belongs to an export with other classes; export into an empty folder")
    lut = np.zeros((max(int(label.max()), classes.num_classes) + 1, 3), np.uint8)
    for _, rgb, value in entries:
        if value is not None and value < len(lut):
            lut[value] = rgb
    mask = _out(out_dir / "SegmentationClass", f"{stem}.png")
    atomic_write_bytes(mask, _png_bytes(Image.fromarray(lut[label], "RGB")))
    image_set = _out(out_dir / "ImageSets" / "Segmentation", "default.txt")
    stems = image_set.read_text(encoding="utf-8").split() if image_set.exists() else []
    if stem not in stems:
        atomic_write_bytes(image_set, "".join(s + "\n" for s in [*stems, stem]).encode("utf-8"))
    if not labelmap.exists():
        atomic_write_bytes(labelmap, text.encode("utf-8"))
    return [mask, labelmap, image_set]


def read_labelmap(path: Path) -> list[tuple[str, tuple[int, int, int]]]:
    """(name, colour) of each line of a CVAT/VOC ``labelmap.txt``."""
    entries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split(":")
        try:
            rgb = tuple(int(c) for c in parts[1].split(","))
            if len(rgb) != 3 or not all(0 <= c <= 255 for c in rgb):
                raise ValueError
        except (IndexError, ValueError):
            raise ValueError(f"{path} line {number}: expected 'name:r,g,b::', got {line!r}") from None
        entries.append((parts[0].strip(), rgb))
    if not entries:
        raise ValueError(f"{path}: no labels")
    return entries


def find_labelmap(mask: Path) -> Path:
    """The labelmap.txt of a CVAT mask: beside its SegmentationClass/ folder, or beside the mask."""
    for candidate in (mask.parent.parent / "labelmap.txt", mask.parent / "labelmap.txt"):
        if candidate.is_file():
            return candidate
    raise ValueError(
        f"{mask} is a colour mask; reading it needs the labelmap.txt of its CVAT/Pascal-VOC folder "
        f"(looked for {mask.parent.parent / 'labelmap.txt'} and {mask.parent / 'labelmap.txt'})"
    )


def read_cvat_file(path: Path, classes: ClassSet) -> np.ndarray:
    labelmap = find_labelmap(path)
    keys, values = [], []
    for name, (r, g, b) in read_labelmap(labelmap):
        if name in classes.names:
            value = classes.names.index(name)
        elif name.lower() in (CVAT_IGNORE_NAME, "ignore", "void"):
            value = classes.ignore_index
        else:
            raise ValueError(f"{labelmap}: label {name!r} is not one of the classes ({', '.join(classes.names[:8])}…)")
        key = (r << 16) | (g << 8) | b
        if key in keys:
            raise ValueError(f"{labelmap}: two labels share the colour {(r, g, b)}")
        keys.append(key)
        values.append(-1 if value is None else value)
    rgb = _read_rgb(path)
    pixel_keys = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    order = np.argsort(keys)
    sorted_keys = np.asarray(keys, np.int64)[order]
    pos = np.clip(np.searchsorted(sorted_keys, pixel_keys), 0, len(keys) - 1)
    unknown = sorted_keys[pos] != pixel_keys
    if unknown.any():
        bad = np.unique(pixel_keys[unknown])[:5]
        colours = [((k >> 16) & 255, (k >> 8) & 255, k & 255) for k in bad.tolist()]
        raise ValueError(f"{path}: colours {colours} are not in {labelmap}")
    label = np.asarray(values, np.int64)[order][pos]
    if (label < 0).any():
        raise ValueError(f"{path} has background (ignore) pixels but the class set has no ignore value")
    return _as_label(label, classes, path)


def _read_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 of a colour (RGB/RGBA/P) mask."""
    try:
        with open_image(path) as image:
            if image.mode not in ("RGB", "RGBA", "P", "PA"):
                raise ValueError(f"{path} is a {image.mode} image; a CVAT mask is RGB (or palette)")
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValueError(f"{path} is not a readable image: {exc}") from None


# ------------------------------------------------------------------------------------------ levels
HATCH_DARK, HATCH_LIGHT = (150, 150, 150), (205, 205, 205)


def level_image(tp, classes: ClassSet, level: int) -> np.ndarray:
    """(H, W, 3) uint8 picture of T-pyramid level ``level``: class colours, the ignore colour for
    void, composite cells hatched grey, a darker outline around cells of 4 px and more."""
    k = classes.num_classes
    table = np.zeros((k + 2, 3), np.uint8)
    table[1 : k + 1] = classes.palette
    table[k + 1] = classes.ignore_color
    codes = tp.levels[level]
    size = 1 << level
    h, w = tp.height, tp.width
    rows = np.arange(h, dtype=np.int64) >> level  # pixel row -> cell row (no H×W index arrays)
    cols = np.arange(w, dtype=np.int64) >> level
    full = codes[rows[:, None], cols[None, :]]  # (H, W) codes, the code grid's dtype
    rgb = table[full]
    composite = full == COMPOSITE
    del full
    hatch = np.add.outer((np.arange(h) % 6).astype(np.uint8), (np.arange(w) % 6).astype(np.uint8)) % 6 < 3
    rgb[composite & hatch] = HATCH_DARK  # ((x + y) // 3) % 2 == 0  <=>  (x + y) % 6 < 3
    rgb[composite & ~hatch] = HATCH_LIGHT
    del hatch
    if size >= 4:
        edge = np.logical_or.outer(np.arange(h) % size == 0, np.arange(w) % size == 0) & ~composite
        rgb[edge] = (rgb[edge].astype(np.uint16) * 55 // 100).astype(np.uint8)  # = int(v * 0.55), exactly
    return rgb


def write_level_files(label, classes: ClassSet, out_dir: Path, stem: str, levels: int = DEFAULT_LEVELS) -> list[Path]:
    tp = build_tpyramid(check_label(label, classes), classes.num_classes, classes.ignore_index, levels, "class")
    paths = []
    for level in range(levels):
        path = _out(out_dir, f"{stem}_L{level}.png")
        atomic_write_bytes(path, _png_bytes(Image.fromarray(level_image(tp, classes, level), "RGB")))
        paths.append(path)
    return paths


# ------------------------------------------------------------------------------------------ json
def leaves_json(label, classes: ClassSet, levels: int = DEFAULT_LEVELS) -> dict:
    """The ``qgn-leaves`` document of a label map (see the module docstring)."""
    qt = Quadtree.from_label(label, classes.num_classes, classes.ignore_index, levels)
    values: list = qt.labels().tolist()
    if classes.ignore_index is None:
        values = [None if v < 0 else v for v in values]
    leaves = [list(t) for t in zip(qt.level.tolist(), qt.x.tolist(), qt.y.tolist(), values)]
    return {
        "format": JSON_FORMAT, "version": JSON_VERSION, "height": qt.height, "width": qt.width, "levels": levels,
        "ignore_index": classes.ignore_index, "classes": list(classes.names),
        "palette": [list(c) for c in classes.palette], "leaves": leaves,
    }


def write_json_file(label, classes: ClassSet, out_dir: Path, stem: str, levels: int = DEFAULT_LEVELS) -> list[Path]:
    path = _out(out_dir, f"{stem}.json")
    text = json.dumps(leaves_json(label, classes, levels), separators=(",", ":"))
    atomic_write_bytes(path, text.encode("utf-8"))
    return [path]


def label_from_leaves_json(doc: dict, classes: ClassSet, source: str = "leaf list") -> np.ndarray:
    """The label map (H, W) of a ``qgn-leaves`` document; ValueError for anything malformed."""
    if not isinstance(doc, dict) or doc.get("format") != JSON_FORMAT:
        raise ValueError(f"{source} is not a {JSON_FORMAT!r} JSON document")
    if doc.get("version") != JSON_VERSION:
        raise ValueError(
            f"{source}: {JSON_FORMAT} version {doc.get('version')!r} is not supported (this reader knows {JSON_VERSION})"
        )
    try:
        height, width, levels = int(doc["height"]), int(doc["width"]), int(doc["levels"])
        names, ignore, leaves = list(doc["classes"]), doc["ignore_index"], doc["leaves"]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{source}: missing or malformed field {exc}") from None
    _check_same_classes(source, len(names), tuple(names), classes)
    if height < 1 or width < 1 or not 1 <= levels <= 16:
        raise ValueError(f"{source}: bad size {width}×{height} or levels {levels}")
    table = _leaf_table(leaves, source)
    value = table[:, 3]
    void = value == (-1 if ignore is None else int(ignore))
    bad = ~void & ((value < 0) | (value >= len(names)))
    if bad.any():
        values = np.unique(value[bad])[:8].tolist()
        raise ValueError(f"{source}: leaf values {values} are neither classes nor the ignore value")
    codes = np.where(void, len(names) + 1, value + 1)
    dtype = np.uint8 if len(names) + 1 <= 255 else np.uint16
    if (table[:, 0] < 0).any() or (table[:, 0] >= levels).any():
        raise ValueError(f"{source}: leaf levels must be in 0..{levels - 1}")
    qt = Quadtree(table[:, 0].astype(np.uint8), table[:, 1].astype(np.int32), table[:, 2].astype(np.int32),
                  codes.astype(dtype), levels, len(names), None if ignore is None else int(ignore), height, width)
    codes0 = qt.to_tpyramid().levels[0][:height, :width]  # QuadtreeError (a ValueError) if the leaves are bad
    return _codes_to_label(codes0, classes, source)


def _leaf_table(leaves, source) -> np.ndarray:
    """(N, 4) int64 [level, x, y, value] of a JSON leaf list; a null value becomes -1."""
    if not isinstance(leaves, list):
        raise ValueError(f"{source}: 'leaves' must be a list of [level, x, y, value]")
    try:
        table = np.array(leaves, dtype=np.int64)  # fast path: integers only
    except (TypeError, ValueError):
        try:
            table = np.array([[int(a), int(b), int(c), -1 if v is None else int(v)] for a, b, c, v in leaves], np.int64)
        except (TypeError, ValueError):
            raise ValueError(f"{source}: each leaf must be [level, x, y, value] with integers") from None
    if table.size and (table.ndim != 2 or table.shape[1] != 4):
        raise ValueError(f"{source}: each leaf must be [level, x, y, value] with integers")
    return table.reshape(-1, 4)


def read_json_file(path: Path, classes: ClassSet) -> np.ndarray:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not a JSON file: {exc}") from None
    return label_from_leaves_json(doc, classes, str(path))


# ------------------------------------------------------------------------------------------ registry
FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("qgt", "quadtree labels (.qgt), lossless and compact", ".qgt", write_qgt_file, read_qgt_file),
        Format("png", "indexed-palette PNG of class ids, ignore value kept", ".png", write_png_file, read_png_file),
        Format("ids", "grayscale id PNG (Cityscapes labelIds for the Cityscapes classes)", ".png", write_ids_file,
               read_ids_file),
        Format("cvat", "Pascal-VOC segmentation-mask folder for CVAT (labelmap.txt + SegmentationClass/)", ".png",
               write_cvat_files, read_cvat_file),
        Format("levels", "one visualisation PNG per quadtree level (<stem>_L<l>.png); export only", ".png",
               write_level_files, None),
        Format("json", "quadtree leaf list (JSON, format 'qgn-leaves')", ".json", write_json_file, read_json_file),
    )
}


def check_format_names(names) -> list[str]:
    """``names`` as a list, ValueError naming the known formats if one is unknown."""
    names = [names] if isinstance(names, str) else list(names)
    unknown = [n for n in names if n not in FORMATS]
    if unknown or not names:
        raise ValueError(f"unknown export format(s) {unknown or names}; choose from {', '.join(FORMATS)}")
    return names


def export_annotation(
    label: np.ndarray, classes: ClassSet, out_dir: str | os.PathLike, stem: str, formats, levels: int = DEFAULT_LEVELS
) -> list[Path]:
    """Write ``label`` (H, W) in each of ``formats`` into ``out_dir/<format name>/``; the paths written."""
    names = check_format_names(formats)
    label = check_label(label, classes)
    paths: list[Path] = []
    for name in names:
        paths += FORMATS[name].write(label, classes, Path(out_dir) / name, stem, levels=levels)
    return paths


def detect_format(path: str | os.PathLike) -> str:
    """The format name of a mask file (see the module docstring). ValueError when unknown."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".qgt", ".json"):
        return suffix[1:]
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with open_image(path) as image:
            mode = image.mode
    except ImageTooLargeError:
        raise
    except (UnidentifiedImageError, OSError, ValueError):
        raise ValueError(f"{path}: not a .qgt, .json or image file; cannot tell its format") from None
    if mode in ("P", "1") or mode.startswith("I"):
        return "png"
    if mode == "L":
        return "ids"
    if mode in ("RGB", "RGBA", "PA"):
        return "cvat"
    raise ValueError(f"{path} is a {mode} image; a mask must be indexed (P), grayscale (L, I;16) or an RGB CVAT mask")


def import_annotation(path: str | os.PathLike, classes: ClassSet, format: str = "auto") -> np.ndarray:
    """Read a mask file as a label map (H, W) of ``label_dtype(classes)``.

    ``format``: "auto" (``detect_format``) or a name in ``FORMATS`` with a reader. ValueError when the
    file does not hold ids of ``classes`` (naming the values) or is malformed; FileNotFoundError."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    name = detect_format(path) if format == "auto" else format
    if name not in FORMATS or FORMATS[name].read is None:
        readable = [n for n, f in FORMATS.items() if f.read is not None]
        raise ValueError(f"cannot import format {name!r}; importable: auto, {', '.join(readable)}")
    return FORMATS[name].read(path, classes)


# ------------------------------------------------------------------------------------------ helpers
def _out(folder: Path, name: str) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return path_inside(folder, name)  # a stem such as "../x" never writes outside ``folder``


def _png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _codes_to_label(codes: np.ndarray, classes: ClassSet, source) -> np.ndarray:
    """Level-0 T-pyramid codes (H, W) (c+1 class c, k+1 void) → label map of ``classes``."""
    k = classes.num_classes
    table = np.arange(-1, k + 1, dtype=np.int64)  # code → value; code 0 (composite) cannot occur
    if classes.ignore_index is not None:
        table[k + 1] = classes.ignore_index
    elif (codes == k + 1).any():
        raise ValueError(f"{source} has ignore pixels but the class set has no ignore value")
    table[0] = 0  # composite never occurs on level 0; the lookup is done in the label's own dtype
    return table.astype(label_dtype(classes))[codes]


def _as_label(values: np.ndarray, classes: ClassSet, source) -> np.ndarray:
    return check_label(values, classes, str(source))


def _check_same_classes(source, num_classes: int, names, classes: ClassSet) -> None:
    if num_classes != classes.num_classes:
        raise ValueError(f"{source} has {num_classes} classes but the class set has {classes.num_classes}")
    if names is not None and tuple(names) != classes.names:
        diff = next(i for i, (a, b) in enumerate(zip(names, classes.names)) if a != b)
        raise ValueError(
            f"{source} was labelled with other classes: class {diff} is {names[diff]!r} there but "
            f"{classes.names[diff]!r} here"
        )
