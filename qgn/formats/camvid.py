"""``camvid``: the CamVid layout of Datumaro (datumaro/plugins/data_formats/camvid.py)::

    label_colors.txt              "r g b name" per label, "0 0 0 background" first (void)
    default.txt                   one line per image: "/default/<image file> /defaultannot/<stem>.png"
                                  (``CamvidExporter.save_segm_lists``; quoted when a path has spaces)
    default/<image file>          the image, copied byte for byte
    defaultannot/<stem>.png       RGB colour mask: the class colours, void black

Masks are colour masks, so readers map colours, not line numbers, to labels (Datumaro's
``lazy_mask(path, inverse_colormap)``); class colours must be distinct and not black.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..classes import ClassSet
from ..fileio import atomic_write_bytes
from .base import DEFAULT_LEVELS, DatasetWriter, ExportItem, Format, out_file, png_bytes, void_to
from .label_colors import label_colors_entries, write_label_colors

SUBSET = "default"


class CamvidWriter(DatasetWriter):
    def __init__(self, classes: ClassSet, out_dir: Path, levels: int = DEFAULT_LEVELS):
        super().__init__(None, classes, out_dir, levels)
        entries = label_colors_entries(classes, "CamVid export")
        self.header = [write_label_colors(out_file(out_dir, "label_colors.txt"), entries)]
        self.colours = np.array([rgb for _, rgb in entries], np.uint8)  # index = class id + 1, 0 = void
        self.lines: list[str] = []

    def add(self, item: ExportItem) -> list[Path]:
        mask = out_file(self.out_dir / f"{SUBSET}annot", f"{item.name}.png")
        index = void_to(item.label, self.classes, -1) + 1
        atomic_write_bytes(mask, png_bytes(Image.fromarray(self.colours[index], "RGB")))
        written = self.header + [mask]
        self.header = []
        image_name = item.image.name if item.image is not None else f"{item.name}.png"
        if item.image is not None:
            image = out_file(self.out_dir / SUBSET, image_name)
            atomic_write_bytes(image, Path(item.image).read_bytes())
            written.append(image)
        image_path, mask_path = f"/{SUBSET}/{image_name}", f"/{SUBSET}annot/{item.name}.png"
        if len(image_path.split()) > 1 or len(mask_path.split()) > 1:
            image_path, mask_path = f'"{image_path}"', f'"{mask_path}"'
        self.lines.append(f"{image_path} {mask_path}\n")
        return written

    def finish(self) -> list[Path]:
        path = out_file(self.out_dir, f"{SUBSET}.txt")
        atomic_write_bytes(path, "".join(self.lines).encode("utf-8"))
        return [path]


FORMAT = Format("camvid", "CamVid as Datumaro writes it (label_colors.txt, colour masks)",
                ".png", None, None, CamvidWriter, image_names=True)
