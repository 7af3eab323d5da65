"""``ids``: ``<stem>.png``, a grayscale id PNG. For the Cityscapes 19-class set the Cityscapes
``labelIds`` (ignore → 0 "unlabeled"); otherwise the class ids themselves with the ignore value
(8-bit, or 16-bit above 255) — the layout of CamVid's id masks."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..classes import ClassSet
from ..label_map import check_label
from ..quadtree import NUM_LEVELS
from ..quadtree.label_io import read_label, write_label_png
from .base import Format, MaskProbe, as_label, out_file
from .cityscapes import read_gtfine_label_ids
from .source import DatasetProbe, SourceDataset, scan_label_folder


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


def write_ids_file(label, classes: ClassSet, out_dir: Path, stem: str, levels: int = NUM_LEVELS) -> list[Path]:
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


def scan_ids_folder(src: Path, images: Path | None) -> SourceDataset:
    return scan_label_folder(src, images, "ids", read_ids_file)


def is_ids_mask(probe: MaskProbe) -> bool:
    return probe.mode == "L"


def is_ids_dataset(probe: DatasetProbe) -> bool:
    return probe.label_png_mode not in (None, "P")


FORMAT = Format("ids", "grayscale id PNG (Cityscapes labelIds for the Cityscapes classes)", ".png", write_ids_file,
                read_ids_file, is_mask=is_ids_mask, scan=scan_ids_folder, is_dataset=is_ids_dataset)
