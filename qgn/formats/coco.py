"""``coco``: one COCO instances file, ``annotations/instances_default.json`` (the layout CVAT and
Datumaro's ``coco_instances`` use), with one annotation per class region per image.

Each annotation's ``segmentation`` is a compressed RLE as pycocotools writes it
(``{"size": [H, W], "counts": "..."}``): run lengths of the mask in column-major order, starting
with the run of zeros, packed by cocoapi common/maskApi.c ``rleToString`` ("Similar to LEB128 but
using 6 bits/char and ascii chars 48-111"; each count after the second is stored as the difference
to the count two before). ``iscrowd`` is 0 (as COCO-Stuff's class regions), ``category_id`` = class
id + 1, ``area`` the pixel count, ``bbox`` [x, y, w, h]. Void pixels are in no annotation.
``images`` name the image files (``file_name``; ``<name>.png`` when the project has no image file);
with ``images="copy"`` (or ``"link"``) the files go to ``images/default/<file_name>``, where
Datumaro's and CVAT's COCO readers look for the images of the ``default`` subset.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..classes import ClassSet
from ..fileio import atomic_write_bytes
from .base import DEFAULT_LEVELS, DatasetWriter, ExportItem, Format, out_file

ANNOTATION_FILE = Path("annotations") / "instances_default.json"


def rle_counts(mask: np.ndarray) -> list[int]:
    """Run lengths of a bool (H, W) mask in column-major order, the first run being zeros."""
    flat = np.asarray(mask, bool).ravel(order="F")
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], change, [flat.size]))
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts.insert(0, 0)
    return counts


def counts_to_string(counts) -> str:
    """maskApi.c ``rleToString``: 5 bits per character + a continuation bit, ASCII 48..111."""
    out = []
    for i, count in enumerate(counts):
        x = int(count) - (int(counts[i - 2]) if i > 2 else 0)
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def string_to_counts(text: str) -> list[int]:
    """maskApi.c ``rleFrString``: the inverse of ``counts_to_string``."""
    counts: list[int] = []
    p = 0
    while p < len(text):
        x = k = 0
        more = True
        while more:
            if p >= len(text):
                raise ValueError("truncated COCO RLE string")
            c = ord(text[p]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def decode_rle(segmentation: dict, source, expected: tuple[int, int] | None = None) -> np.ndarray:
    """bool (H, W) of a COCO RLE (compressed string or uncompressed list of counts). Its claimed
    size is checked against ``expected`` (H, W) and the pixel limit, and its counts against that
    size, before the mask is allocated."""
    from .guards import claimed_size, whole

    try:
        size = segmentation["size"]
        if not isinstance(size, list) or len(size) != 2:
            raise ValueError(f"'size' is {size!r}; expected [height, width]")
        height, width = (whole(v, "'size'") for v in size)
        counts = segmentation["counts"]
        if isinstance(counts, str):
            if len(counts) > 2 * (height * width + 2) + 64:
                raise ValueError("the counts string is longer than any mask of that size needs")
            counts = string_to_counts(counts)
        elif isinstance(counts, list):
            if len(counts) > height * width + 1:
                raise ValueError("more runs than pixels")
            counts = [whole(c, "a count") for c in counts]
        else:
            raise ValueError(f"'counts' is {type(counts).__name__}; expected a string or a list")
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{source}: malformed RLE segmentation ({exc})") from None
    if expected is not None and (height, width) != tuple(expected):
        raise ValueError(f"{source}: the RLE is {width}×{height} but its image is {expected[1]}×{expected[0]}")
    claimed_size(width, height, source, "RLE")
    if sum(counts) != height * width or min(counts, default=0) < 0:
        raise ValueError(f"{source}: RLE counts cover {sum(counts)} pixels, not {height}×{width}")
    values = np.zeros(len(counts), bool)
    values[1::2] = True
    flat = np.repeat(values, counts)
    return flat.reshape((width, height)).T


IMAGES_DIR = Path("images") / "default"


class CocoWriter(DatasetWriter):
    """Collects each image's RLE annotations; ``finish`` writes the one JSON file."""

    takes_images = True

    def __init__(self, classes: ClassSet, out_dir: Path, levels: int = DEFAULT_LEVELS):
        super().__init__(None, classes, out_dir, levels)
        self.entries: list[dict] = []
        self.annotations: list[dict] = []
        self._names: set[str] = set()

    def add(self, item: ExportItem) -> list[Path]:
        from .base import place_image

        image_id = len(self.entries) + 1
        height, width = item.label.shape
        file_name = item.image.name if item.image is not None else f"{item.name}.png"
        if file_name.lower() in self._names:  # two images of one name from two folders
            file_name = f"{item.name}{Path(file_name).suffix}"
        self._names.add(file_name.lower())
        written = []
        if self.images in ("copy", "link") and item.image is not None and Path(item.image).is_file():
            written.append(place_image(Path(item.image), self.out_dir / IMAGES_DIR, file_name, self.images))
        self.entries.append({"id": image_id, "file_name": file_name, "width": width, "height": height})
        for c in range(self.classes.num_classes):
            mask = item.label == c
            if not mask.any():
                continue
            ys, xs = np.nonzero(mask)
            self.annotations.append({
                "id": len(self.annotations) + 1, "image_id": image_id, "category_id": c + 1,
                "segmentation": {"size": [height, width], "counts": counts_to_string(rle_counts(mask))},
                "area": int(mask.sum()), "iscrowd": 0,
                "bbox": [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)],
            })
        return written

    def finish(self) -> list[Path]:
        categories = [{"id": i + 1, "name": name, "supercategory": ""} for i, name in enumerate(self.classes.names)]
        doc = {"info": {"description": "exported by QGN Studio"}, "licenses": [], "categories": categories,
               "images": self.entries, "annotations": self.annotations}
        path = out_file(self.out_dir / ANNOTATION_FILE.parent, ANNOTATION_FILE.name)
        atomic_write_bytes(path, json.dumps(doc, separators=(",", ":")).encode("utf-8"))
        return [path]


FORMAT = Format("coco", "COCO instances JSON, one RLE mask per class region",
                ".json", None, None, CocoWriter, image_names=True)
