"""``ids``: ``<stem>.png``, a grayscale id PNG. For the Cityscapes 19-class set the Cityscapes
``labelIds`` (ignore → 0 "unlabeled"); otherwise the class ids themselves with the ignore value
(8-bit, or 16-bit above 255) — the layout of CamVid's id masks."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..classes import ClassSet
from ..label_map import check_label
from ..quadtree.label_io import read_label, write_label_png
from .base import DEFAULT_LEVELS, Format, as_label, out_file


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
    path = out_file(out_dir, f"{stem}.png")
    if is_cityscapes(classes):
        label = _train_to_label_id()[check_label(label, classes)]
    write_label_png(path, label, indexed=False)
    return [path]


def read_ids_file(path: Path, classes: ClassSet) -> np.ndarray:
    if Path(path).name.endswith("_gtFine_labelIds.png"):
        return read_gtfine_label_ids(Path(path), classes)
    values = read_label(path)
    if is_cityscapes(classes) and not path.name.endswith("labelTrainIds.png"):
        from ..data.cityscapes import label_id_to_train_id

        if values.min() < 0 or values.max() > 255:
            raise ValueError(f"{path}: values {values.min()}..{values.max()} are not Cityscapes labelIds (0..33)")
        values = label_id_to_train_id()[values]
    return as_label(values, classes, path)


def read_gtfine_label_ids(path: Path, classes: ClassSet) -> np.ndarray:
    """A Cityscapes-tree ``*_gtFine_labelIds.png``: numbered by the tree's ``label_colors.txt`` when it
    has one (Datumaro's exports: ``background`` = 0), else Cityscapes' label ids (checked against the
    ``_color.png`` beside it; labels without a train id are void unless a class has their name).
    Never read as bare class ids, which would shift every class of a Datumaro export by one."""
    from .dataset import _index_reader
    from .label_colors import label_order, read_label_colors

    parents = list(path.absolute().parents)
    root = next((p.parent for p in parents if p.name == "gtFine"), path.parent)
    if (root / "label_colors.txt").is_file():
        names = [n for n, _ in label_order(read_label_colors(root / "label_colors.txt"))]
        return _index_reader(path, names)(classes)
    from .cityscapes import LABEL_NAMES

    return _index_reader(path, list(LABEL_NAMES), cityscapes_void=True)(classes)


FORMAT = Format("ids", "grayscale id PNG (Cityscapes labelIds for the Cityscapes classes)", ".png", write_ids_file,
                read_ids_file)
