"""``json``: ``<stem>.json``, the quadtree leaf list.

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
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..classes import ClassSet
from ..fileio import atomic_write_bytes
from ..quadtree import NUM_LEVELS, Quadtree
from .base import Format, MaskProbe, check_same_classes, codes_to_label, out_file
from .guards import load_json

JSON_FORMAT, JSON_VERSION = "qgn-leaves", 1


def leaves_json(label, classes: ClassSet, levels: int = NUM_LEVELS) -> dict:
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


def write_json_file(label, classes: ClassSet, out_dir: Path, stem: str, levels: int = NUM_LEVELS) -> list[Path]:
    path = out_file(out_dir, f"{stem}.json")
    text = json.dumps(leaves_json(label, classes, levels), separators=(",", ":"))
    atomic_write_bytes(path, text.encode("utf-8"))
    return [path]


def label_from_leaves_json(doc: dict, classes: ClassSet, source: str = "leaf list") -> np.ndarray:
    """The label map (H, W) of a ``qgn-leaves`` document; ValueError for anything malformed."""
    if not isinstance(doc, dict) or doc.get("format") != JSON_FORMAT:
        raise ValueError(f"{source} is not a {JSON_FORMAT!r} JSON document (a COCO or Label Studio file holds a "
                         "whole dataset: use qgn import)")
    if doc.get("version") != JSON_VERSION:
        raise ValueError(
            f"{source}: {JSON_FORMAT} version {doc.get('version')!r} is not supported (this reader knows {JSON_VERSION})"
        )
    try:
        height, width, levels = int(doc["height"]), int(doc["width"]), int(doc["levels"])
        names, ignore, leaves = list(doc["classes"]), doc["ignore_index"], doc["leaves"]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{source}: missing or malformed field {exc}") from None
    check_same_classes(source, len(names), tuple(names), classes)
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
    return codes_to_label(codes0, classes, source)


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
    return label_from_leaves_json(load_json(path), classes, str(path))  # within guards.max_json_bytes()


def is_json_mask(probe: MaskProbe) -> bool:
    """Any other ``.json`` (labelme's are tried first)."""
    return probe.suffix == ".json"


FORMAT = Format("json", "quadtree leaf list (JSON, format 'qgn-leaves')", ".json", write_json_file, read_json_file,
                is_mask=is_json_mask)
