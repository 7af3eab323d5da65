"""``png``: ``<stem>.png``, an indexed-palette PNG whose palette index is the class id, the ignore
value kept (coloured with the ignore colour); 16-bit grayscale when a value exceeds 255."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..classes import ClassSet
from ..quadtree import NUM_LEVELS
from ..quadtree.label_io import read_label, write_label_png
from .base import Format, MaskProbe, as_label, out_file
from .source import DatasetProbe, SourceDataset, scan_label_folder


def write_png_file(label, classes: ClassSet, out_dir: Path, stem: str, levels: int = NUM_LEVELS) -> list[Path]:
    path = out_file(out_dir, f"{stem}.png")
    write_label_png(path, label, classes)
    return [path]


def read_png_file(path: Path, classes: ClassSet) -> np.ndarray:
    return as_label(read_label(path), classes, path)


def scan_png_folder(src: Path, images: Path | None) -> SourceDataset:
    return scan_label_folder(src, images, "png", read_png_file)


def is_png_mask(probe: MaskProbe) -> bool:
    """Palette (P), bilevel (1) and 16/32-bit (I;16, I) images hold the ids themselves."""
    return probe.mode in ("P", "1") or probe.mode.startswith("I")


def is_png_dataset(probe: DatasetProbe) -> bool:
    return probe.label_png_mode == "P"


FORMAT = Format("png", "indexed-palette PNG of class ids, ignore value kept", ".png", write_png_file, read_png_file,
                is_mask=is_png_mask, scan=scan_png_folder, is_dataset=is_png_dataset)
