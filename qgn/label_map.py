"""Label maps as the annotation layer stores them: the dtype a class set needs and the check that
every value is a class id or the ignore value. The bottom of the annotation/format layering: it
imports only ``qgn.classes``."""
from __future__ import annotations

import numpy as np

from .classes import ClassSet


def label_dtype(classes: ClassSet) -> np.dtype:
    """uint8 when every class id and the ignore value fit in 0..255, else uint16.

    Raises ValueError for class sets whose values an unsigned 16-bit map cannot hold (a negative
    ignore value, or more than 65535 values)."""
    top = classes.num_classes - 1
    if classes.ignore_index is not None:
        if not 0 <= classes.ignore_index <= 65535:
            raise ValueError(
                f"an annotation stores labels as unsigned integers; the ignore value {classes.ignore_index} "
                "must be in 0..65535 (choose a non-negative ignore value for this class set)"
            )
        top = max(top, classes.ignore_index)
    if top > 65535:
        raise ValueError(f"{classes.num_classes} classes do not fit a 16-bit label map")
    return np.dtype(np.uint8) if top <= 255 else np.dtype(np.uint16)


def present_values(label: np.ndarray) -> np.ndarray:
    """(V,) int64: the distinct values of an integer array, ascending (a histogram when the value
    range is small, which is many times faster than sorting)."""
    lo, hi = int(label.min()), int(label.max())
    if hi - lo <= 1 << 20:
        # counted a band at a time, so that bincount's int64 copy is a band, not the whole map
        # (and a part of a row, for rows of more than 2^16 values: an edit's values are one long row)
        rows = label if label.ndim == 2 else label.reshape(1, -1)
        band = 1 << 16
        step = max(1, band // max(rows.shape[1], 1))
        counts = np.zeros(hi - lo + 1, np.int64)
        for r in range(0, rows.shape[0], step):
            for c in range(0, rows.shape[1], band):
                part = rows[r:r + step, c:c + band].astype(np.int64).ravel()
                counts += np.bincount(part - lo if lo else part, minlength=hi - lo + 1)
        return np.flatnonzero(counts).astype(np.int64) + lo
    return np.unique(label).astype(np.int64)


def _all_valid(lo: int, hi: int, classes: ClassSet) -> bool:
    """Whether every value in ``lo..hi`` is a class id or the ignore value."""
    ignore = classes.ignore_index
    top = classes.num_classes if ignore == classes.num_classes else classes.num_classes - 1
    return (0 <= lo and hi <= top) or lo == hi == ignore


def check_label(label: np.ndarray, classes: ClassSet, what: str = "label map", copy: bool = True) -> np.ndarray:
    """``label`` (H, W) integer as a new array of ``label_dtype(classes)`` (``copy=False``: ``label``
    itself when it has that dtype, for readers that keep it unchanged); ValueError naming the
    offending values when some are neither a class id nor the ignore value."""
    label = np.asarray(label)
    if label.ndim != 2 or label.size == 0:
        raise ValueError(f"{what}: expected a non-empty 2-D (H, W) array; got shape {label.shape}")
    if not np.issubdtype(label.dtype, np.integer):
        raise ValueError(f"{what}: expected integer class ids; got dtype {label.dtype}")
    if label.dtype.kind in "ui" and _all_valid(int(label.min()), int(label.max()), classes):
        return label.astype(label_dtype(classes), copy=copy)  # two passes instead of a histogram
    values = present_values(label)
    valid = (values >= 0) & (values < classes.num_classes)
    if classes.ignore_index is not None:
        valid |= values == classes.ignore_index
    if not valid.all():
        bad = values[~valid][:8].tolist()
        ignore = f" or the ignore value {classes.ignore_index}" if classes.ignore_index is not None else " (no ignore value)"
        raise ValueError(
            f"{what}: values {bad} are not class ids 0..{classes.num_classes - 1}{ignore}; "
            "is it labelled with another class set?"
        )
    return label.astype(label_dtype(classes), copy=copy)


def table_index(label: np.ndarray, classes: ClassSet) -> tuple[np.ndarray, int]:
    """(index, n): ``label`` (H, W) as an index into a table of ``n`` entries whose first ``k``
    are the classes' and the rest void, for writers that map values through a lookup table. The
    usual maps (values in 0..65535) are their own index; a map whose ignore value is far from the
    classes (-1, 2**40) becomes a copy with every value that is not a class id as ``k``: a table
    spanning its values would need an entry per value up to the largest, or fail on a negative one."""
    k = classes.num_classes
    lo, hi = int(label.min()), int(label.max())
    if 0 <= lo and hi < 1 << 16:
        return label, max(hi, k) + 1
    index = np.where((label >= 0) & (label < k), label, k).astype(np.uint8 if k <= 255 else np.uint16)
    return index, k + 1
