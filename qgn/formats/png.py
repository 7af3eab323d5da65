"""``png``: ``<stem>.png``, an indexed-palette PNG whose palette index is the class id, the ignore
value kept (coloured with the ignore colour); 16-bit grayscale when a value exceeds 255.

A dataset export (a project's, or a folder of ``.qgt``) also writes ``classes.txt`` beside the PNGs
(``qgn.data.folder``'s class list: names, colours, the ignore value), which the import of the folder
reads (``scan_label_folder``): the PNGs' ids alone name no class, and a new project would otherwise
need ``--classes``."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..classes import ClassSet
from ..quadtree import NUM_LEVELS
from ..fileio import atomic_write_bytes
from ..quadtree.label_io import read_label, write_label_png
from .base import DatasetWriter, Format, MaskProbe, as_label, check_export_file, out_file
from .source import DatasetProbe, SourceDataset, scan_label_folder


def write_png_file(label, classes: ClassSet, out_dir: Path, stem: str, levels: int = NUM_LEVELS) -> list[Path]:
    path = out_file(out_dir, f"{stem}.png")
    write_label_png(path, label, classes)
    return [path]


CLASSES_FILE = "classes.txt"  # beside the PNGs: where ``scan_label_folder`` (``find_classes_file``) looks


def classes_file_text(classes: ClassSet) -> bytes | None:
    """``classes.txt`` of ``classes``; None when a name cannot be a line of it (the export then goes
    without one)."""
    from ..quadtree.label_io import format_classes_file

    try:
        return format_classes_file(classes).encode("utf-8")
    except ValueError:
        return None


class PngWriter(DatasetWriter):
    """The PNGs, then ``classes.txt`` when there are some (none when a class name cannot be a line of it)."""

    def __init__(self, classes: ClassSet, out_dir: Path, levels: int = NUM_LEVELS):
        super().__init__(write_png_file, classes, out_dir, levels)
        self.classes_text, self.classes_file = classes_file_text(classes), self.out_dir / CLASSES_FILE
        check_export_file(self.classes_file, self.classes_text)  # before any PNG is written
        self.added = 0

    def add(self, item) -> list[Path]:
        written = super().add(item)
        self.added += 1
        return written

    def mark(self):
        return self.added

    def undo(self, mark, item, paths: list[Path]) -> None:
        super().undo(mark, item, paths)
        self.added = mark

    def finish(self) -> list[Path]:
        if self.classes_text is None or not self.added:  # an export of nothing writes nothing
            return []
        atomic_write_bytes(out_file(self.out_dir, self.classes_file.name), self.classes_text)
        return [self.classes_file]


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
                PngWriter, is_mask=is_png_mask, scan=scan_png_folder, is_dataset=is_png_dataset)
