"""``labelme``: one labelme JSON per image (``<stem>.json``), a polygon per class region.

The document is what labelme's ``LabelFile.save`` writes (labelme/label_file.py: ``version``,
``flags``, ``shapes``, ``imagePath``, ``imageData``, ``imageHeight``, ``imageWidth``; each shape
``label``, ``points``, ``group_id``, ``description``, ``shape_type`` "polygon", ``flags``, ``mask``).
Polygons are exact: labelme's ``shape_to_mask`` (labelme/utils/shape.py) rasterises a polygon with
``PIL.ImageDraw.polygon(xy, outline=1, fill=1)``, pixel centres at integer coordinates, and each
region's polygon runs through the centres of its border pixels (``qgn.formats.polygons``), so that
rasterisation gives back exactly the region. They are written in order of decreasing area, because
``shapes_to_label`` paints shapes in file order, each over the ones before. Void regions are written
as ``__ignore__`` shapes (labelme2voc's name for ignored pixels) so that a region's hole stays void;
pixels in no shape are void too. Reading uses the same rasteriser (polygon and rectangle shapes;
others are refused).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..classes import UNMATCHED, VOID, ClassSet, match_class_names, unmatched_message
from ..fileio import atomic_write_bytes
from ..label_map import check_label
from .base import DEFAULT_LEVELS, DatasetWriter, ExportItem, Format, as_label, out_file
from .polygons import pil_polygon_mask, pixel_centre_polygon, region_polygons

IGNORE_LABEL = "__ignore__"
LABELME_VERSION = "5.5.0"


def labelme_document(label: np.ndarray, classes: ClassSet, image_path: str) -> dict:
    values = list(range(classes.num_classes))
    if classes.ignore_index is not None:
        values.append(classes.ignore_index)
    shapes = []
    for value, loop, _ in region_polygons(label, values):
        name = classes.names[value] if value < classes.num_classes else IGNORE_LABEL
        points = [[float(x), float(y)] for x, y in pixel_centre_polygon(loop)]
        shapes.append({"label": name, "points": points, "group_id": None,
                       "description": "", "shape_type": "polygon", "flags": {}, "mask": None})
    height, width = label.shape
    return {"version": LABELME_VERSION, "flags": {}, "shapes": shapes, "imagePath": image_path,
            "imageData": None, "imageHeight": height, "imageWidth": width}


def write_labelme_file(label, classes: ClassSet, out_dir: Path, stem: str, levels: int = DEFAULT_LEVELS,
                       image_name: str | None = None, image_data: str | None = None) -> list[Path]:
    """``<stem>.json``; ``image_name``: its ``imagePath`` (relative to the JSON's folder, as labelme
    resolves it); ``image_data``: base64 of the image file, or None."""
    label = check_label(label, classes)
    path = out_file(out_dir, f"{stem}.json")
    doc = labelme_document(label, classes, image_name or f"{stem}.png")
    doc["imageData"] = image_data
    atomic_write_bytes(path, json.dumps(doc, indent=1).encode("utf-8"))
    return [path]


def relative_image_path(image: Path, folder: Path) -> str:
    """``image`` as labelme resolves ``imagePath``: relative to the JSON's ``folder`` (POSIX
    separators), or absolute where no relative path exists (another drive)."""
    import os

    try:
        return Path(os.path.relpath(Path(image).resolve(), Path(folder).resolve())).as_posix()
    except ValueError:
        return Path(image).resolve().as_posix()


class LabelmeWriter(DatasetWriter):
    """One JSON per image whose ``imagePath`` resolves from the JSON's folder (labelme opens
    ``dirname(json) / imagePath`` when ``imageData`` is null). ``images="copy"``: the image file
    is copied beside the JSON and embedded as ``imageData`` (base64 of the file, as labelme saves
    it), so each JSON opens on its own; ``"link"``: a symbolic link beside the JSON."""

    takes_images = True

    def __init__(self, classes: ClassSet, out_dir: Path, levels: int = DEFAULT_LEVELS):
        super().__init__(None, classes, out_dir, levels)

    def add(self, item: ExportItem) -> list[Path]:
        import base64

        from .base import place_image

        written: list[Path] = []
        image_name = image_data = None
        if item.image is not None and Path(item.image).is_file():
            if self.images in ("copy", "link"):
                name = f"{item.name}{Path(item.image).suffix.lower()}"
                written.append(place_image(Path(item.image), self.out_dir, name, self.images))
                image_name = name
                if self.images == "copy":
                    image_data = base64.b64encode(Path(item.image).read_bytes()).decode("ascii")
            else:
                self.out_dir.mkdir(parents=True, exist_ok=True)
                image_name = relative_image_path(Path(item.image), self.out_dir)
        elif item.image is not None:
            image_name = Path(item.image).name
        return write_labelme_file(item.label, self.classes, self.out_dir, item.name, self.levels, image_name,
                                  image_data) + written


def is_labelme_file(path: Path) -> bool:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(doc, dict) and "shapes" in doc and "imageHeight" in doc


def shape_mask(shape: dict, height: int, width: int, source) -> np.ndarray:
    """bool (H, W) of one labelme shape."""
    points = shape.get("points") or []
    kind = shape.get("shape_type") or "polygon"
    try:
        xy = [(float(x), float(y)) for x, y in points]
    except (TypeError, ValueError):
        raise ValueError(f"{source}: shape {shape.get('label')!r} has malformed points") from None
    if kind == "rectangle" and len(xy) == 2:
        (x0, y0), (x1, y1) = xy
        xy = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
        kind = "polygon"
    if kind != "polygon" or len(xy) < 3:
        raise ValueError(f"{source}: shape type {kind!r} with {len(xy)} points is not an area (polygon or rectangle)")
    return pil_polygon_mask(xy, height, width)


def read_labelme_document(doc: dict, classes: ClassSet, source, mapping=None) -> np.ndarray:
    if not isinstance(doc, dict) or "shapes" not in doc:
        raise ValueError(f"{source} is not a labelme JSON file (no 'shapes')")
    try:
        height, width = int(doc["imageHeight"]), int(doc["imageWidth"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{source}: labelme file without imageHeight/imageWidth") from None
    shapes = doc["shapes"]
    ids = match_class_names([s.get("label", "") for s in shapes], classes, mapping)
    label = np.full((height, width), VOID, np.int64)
    for shape, value in zip(shapes, ids):
        if value == UNMATCHED:
            raise ValueError(unmatched_message(shape.get("label", ""), classes, source))
        label[shape_mask(shape, height, width, source)] = value
    if (label == VOID).any():
        if classes.ignore_index is None:
            raise ValueError(f"{source}: some pixels are in no shape (void), but the class set has no ignore value")
        label[label == VOID] = classes.ignore_index
    return as_label(label, classes, source)


def read_labelme_file(path: Path, classes: ClassSet, mapping=None) -> np.ndarray:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not a JSON file: {exc}") from None
    return read_labelme_document(doc, classes, path, mapping)


FORMAT = Format("labelme", "labelme JSON per image, exact polygons per class region", ".json",
                write_labelme_file, read_labelme_file, LabelmeWriter, image_names=True)
