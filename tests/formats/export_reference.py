"""The export writers as they were before they were made to fit in 1–2 bytes per pixel (qgn
2026-12-05, issue 22 item 12), kept as the reference the streaming writers must equal byte for byte.
Each is the straightforward whole-picture way: full-size colour arrays through Pillow, one boolean
mask per class, a dictionary of every boundary edge. Each returns {path relative to the export
folder: bytes} for one image named ``stem``."""
from __future__ import annotations

import io
import json

import numpy as np
from PIL import Image

from qgn.classes import ClassSet
from qgn.formats.coco import counts_to_string
from qgn.formats.cvat import cvat_labelmap, format_labelmap, voc_colormap
from qgn.formats.labelme import IGNORE_LABEL, LABELME_VERSION
from qgn.formats.polygons import pixel_centre_polygon, signed_area
from qgn.quadtree.label_io import encode_label_png


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _void_to(label, classes: ClassSet, value: int) -> np.ndarray:
    out = label.astype(np.int64)
    if classes.ignore_index is not None:
        out[label == classes.ignore_index] = value
    return out


def cvat(label: np.ndarray, classes: ClassSet, stem: str) -> dict[str, bytes]:
    entries = cvat_labelmap(classes)
    top = max(int(label.max()), classes.num_classes) + 1
    lut = np.zeros((top, 3), np.uint8)
    for _, rgb, value in entries:
        if value is not None and value < top:
            lut[value] = rgb
    present = [c for c in range(classes.num_classes) if (label == c).any()]
    table = np.zeros(top, np.uint8)
    for instance, c in enumerate(present, start=1):
        table[c] = instance
    objects = Image.fromarray(table[label], "P")
    objects.putpalette(voc_colormap().ravel().tolist())
    return {f"SegmentationClass/{stem}.png": _png(Image.fromarray(lut[label], "RGB")),
            f"SegmentationObject/{stem}.png": _png(objects),
            "labelmap.txt": format_labelmap(entries).encode(),
            "ImageSets/Segmentation/default.txt": f"{stem}\n".encode()}


def cityscapes(label: np.ndarray, classes: ClassSet, ids, trains, colours, folder: str, core: str) -> dict[str, bytes]:
    """``ids``/``trains``/``colours`` as ``qgn.formats.cityscapes.CityscapesWriter`` chooses them."""
    k = classes.num_classes
    lut = np.zeros(k + 1, np.int64)
    lut[:k] = ids
    label_ids = lut[_void_to(label, classes, k)]
    files = {f"{folder}/{core}_gtFine_{suffix}.png": encode_label_png(label_ids, indexed=False)
             for suffix in ("labelIds", "instanceIds")}
    files[f"{folder}/{core}_gtFine_color.png"] = _png(Image.fromarray(colours[label_ids], "RGB"))
    if trains is not None:
        table = np.full(k + 1, 255, np.int64)
        table[:k] = trains
        files[f"{folder}/{core}_gtFine_labelTrainIds.png"] = encode_label_png(table[_void_to(label, classes, k)],
                                                                               indexed=False)
    return files


def camvid_mask(label: np.ndarray, classes: ClassSet, colours: np.ndarray) -> bytes:
    """``defaultannot/<stem>.png``; ``colours``: (k + 1, 3), void's black first."""
    return _png(Image.fromarray(colours[_void_to(label, classes, -1) + 1], "RGB"))


def levels(label: np.ndarray, classes: ClassSet, stem: str, levels: int = 6) -> dict[str, bytes]:
    from qgn.formats.levels import HATCH_DARK, HATCH_LIGHT
    from qgn.quadtree import COMPOSITE, build_tpyramid

    tp = build_tpyramid(label, classes.num_classes, classes.ignore_index, levels, "class")
    k = classes.num_classes
    table = np.zeros((k + 2, 3), np.uint8)
    table[1: k + 1] = classes.palette
    table[k + 1] = classes.ignore_color
    files = {}
    for level in range(levels):
        h, w, size = tp.height, tp.width, 1 << level
        full = tp.levels[level][(np.arange(h) >> level)[:, None], (np.arange(w) >> level)[None, :]]
        rgb = table[full]
        composite = full == COMPOSITE
        hatch = np.add.outer(np.arange(h) % 6, np.arange(w) % 6) % 6 < 3
        rgb[composite & hatch] = HATCH_DARK
        rgb[composite & ~hatch] = HATCH_LIGHT
        if size >= 4:
            edge = np.logical_or.outer(np.arange(h) % size == 0, np.arange(w) % size == 0) & ~composite
            rgb[edge] = (rgb[edge].astype(np.uint16) * 55 // 100).astype(np.uint8)
        files[f"{stem}_L{level}.png"] = _png(Image.fromarray(rgb, "RGB"))
    return files


def rle_counts(mask: np.ndarray) -> list[int]:
    flat = np.asarray(mask, bool).ravel(order="F")
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    counts = np.diff(np.concatenate(([0], change, [flat.size]))).tolist()
    if flat.size and flat[0]:
        counts.insert(0, 0)
    return counts


def coco_annotations(label: np.ndarray, classes: ClassSet, image_id: int = 1) -> list[dict]:
    height, width = label.shape
    annotations = []
    for c in range(classes.num_classes):
        mask = label == c
        if not mask.any():
            continue
        ys, xs = np.nonzero(mask)
        annotations.append({
            "id": len(annotations) + 1, "image_id": image_id, "category_id": c + 1,
            "segmentation": {"size": [height, width], "counts": counts_to_string(rle_counts(mask))},
            "area": int(mask.sum()), "iscrowd": 0,
            "bbox": [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)],
        })
    return annotations


# ------------------------------------------------------------------ labelme: every edge in a dictionary
def _boundary_edges(mask):
    padded = np.pad(np.asarray(mask, bool), 1)
    inside = padded[1:-1, 1:-1]
    edges = []
    for (dr, dc), (a, b) in (((-1, 0), ((0, 0), (1, 0))), ((0, 1), ((1, 0), (1, 1))),
                             ((1, 0), ((1, 1), (0, 1))), ((0, -1), ((0, 1), (0, 0)))):
        h, w = inside.shape
        neighbour = padded[1 + dr: 1 + dr + h, 1 + dc: 1 + dc + w]
        rows, cols = np.nonzero(inside & ~neighbour)
        edges += [((c + a[0], r + a[1]), (c + b[0], r + b[1])) for r, c in zip(rows.tolist(), cols.tolist())]
    return edges


def _trace_loops(mask):
    outgoing = {}
    for start, end in _boundary_edges(mask):
        outgoing.setdefault(start, []).append(end)
    loops = []
    while outgoing:
        start = next(iter(outgoing))
        loop = [start]
        prev, here = None, start
        while True:
            ends = outgoing[here]
            if len(ends) == 1 or prev is None:
                end = ends.pop(0) if prev is None else ends.pop()
            else:
                dx0, dy0 = here[0] - prev[0], here[1] - prev[1]
                best = max(range(len(ends)), key=lambda i: dx0 * (ends[i][1] - here[1]) - dy0 * (ends[i][0] - here[0]))
                end = ends.pop(best)
            if not ends:
                del outgoing[here]
            prev, here = here, end
            if here == start:
                break
            loop.append(here)
        n = len(loop)
        loops.append([loop[i] for i in range(n) if (loop[i][0] - loop[i - 1][0]) * (loop[(i + 1) % n][1] - loop[i][1])
                      - (loop[i][1] - loop[i - 1][1]) * (loop[(i + 1) % n][0] - loop[i][0]) != 0])
    return loops


def region_polygons(label, values):
    found = []
    for value in values:
        mask = label == value
        if not mask.any():
            continue
        for loop in _trace_loops(mask):
            area = signed_area(loop)
            if area > 0:
                found.append((int(value), loop, area))
    found.sort(key=lambda t: -t[2])
    return found


def labelme(label: np.ndarray, classes: ClassSet, stem: str, image_path: str | None = None) -> dict[str, bytes]:
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
    doc = {"version": LABELME_VERSION, "flags": {}, "shapes": shapes, "imagePath": image_path or f"{stem}.png",
           "imageData": None, "imageHeight": height, "imageWidth": width}
    # labelme2voc's --labels file: __ignore__ (-1), _background_ (0), then the classes
    labels = "".join(f"{n}\n" for n in ("__ignore__", "_background_", *classes.names))
    return {f"{stem}.json": json.dumps(doc, indent=1).encode("utf-8"), "labels.txt": labels.encode("utf-8")}
