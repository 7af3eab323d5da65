"""``png``: ``<stem>.png``, an indexed-palette PNG whose palette index is the class id, the ignore
value kept (coloured with the ignore colour); 16-bit grayscale when a value exceeds 255."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..classes import ClassSet
from ..quadtree.label_io import read_label, write_label_png
from .base import DEFAULT_LEVELS, Format, as_label, out_file


def write_png_file(label, classes: ClassSet, out_dir: Path, stem: str, levels: int = DEFAULT_LEVELS) -> list[Path]:
    path = out_file(out_dir, f"{stem}.png")
    write_label_png(path, label, classes)
    return [path]


def read_png_file(path: Path, classes: ClassSet) -> np.ndarray:
    return as_label(read_label(path), classes, path)


FORMAT = Format("png", "indexed-palette PNG of class ids, ignore value kept", ".png", write_png_file, read_png_file)
