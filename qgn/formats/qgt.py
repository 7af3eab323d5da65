"""``qgt``: ``<stem>.qgt``, the quadtree (``qgn.quadtree.qgt``) with the class names and colours;
lossless and compact."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..classes import ClassSet
from ..quadtree import NUM_LEVELS, Quadtree, read_qgt, write_qgt
from ..quadtree.label_io import quadtree_label
from .base import Format, MaskProbe, check_same_classes, out_file


def write_qgt_file(label, classes: ClassSet, out_dir: Path, stem: str, levels: int = NUM_LEVELS) -> list[Path]:
    qt = Quadtree.from_label(label, classes.num_classes, classes.ignore_index, levels)
    path = out_file(out_dir, f"{stem}.qgt")
    write_qgt(path, qt, classes)
    return [path]


def read_qgt_file(path: Path, classes: ClassSet, file=None) -> np.ndarray:
    """The .qgt's label map in ``classes`` (``qgn.quadtree.label_io.quadtree_label``, as ``read_label_file``), which must be the file's own classes in
    its order: an import names a class set change (ValueError naming the first class that differs). ``file``:
    ``path`` opened already (a binary file object, read here and closed: ``qgn.project_kept.open_kept_copy``)."""
    qt, file_classes = read_qgt(path, file=file)
    check_same_classes(path, qt.num_classes, file_classes.names if file_classes else None, classes)
    return quadtree_label(qt, file_classes, classes, path)


def is_qgt_mask(probe: MaskProbe) -> bool:
    return probe.suffix == ".qgt"


FORMAT = Format("qgt", "quadtree labels (.qgt), lossless and compact", ".qgt", write_qgt_file, read_qgt_file,
                is_mask=is_qgt_mask)
