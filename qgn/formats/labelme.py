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
pixels in no shape are void too. ``__ignore__`` and ``_background_`` shapes read as void; any other
label is a class (``background`` too), and a class named like labelme's two is refused on export. Reading uses the same rasteriser (polygon and rectangle shapes;
``circle`` shapes — the centre and a point on the rim — as ``draw.ellipse`` of that radius; ``mask``
shapes — a base64 PNG of the shape's bounding box, placed at its first point as labelme's
``shapes_to_label`` does; lines and points, which have no area, are refused).

A dataset export also writes ``labels.txt``: the labels file of labelme's conversion tools
(labelme2voc / labelme2coco ``--labels``: one name a line, ``__ignore__`` then ``_background_``
first, then the classes), so that the classes no shape uses, and the classes' order, are in the
export. Read back beside the JSON files, it names a new project's classes in its order; labels the
shapes use that it lacks come after them. labelme has no colours: a new project's are the default
palette's.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..classes import UNMATCHED, VOID, ClassSet, check_class_name, match_class_names, unmatched_message
from ..fileio import atomic_write_bytes
from ..label_map import check_label, label_dtype
from ..quadtree import NUM_LEVELS
from .base import ClassListWriter, ExportItem, Format, as_label, out_file, place_image
from .guards import (
    OutsideDatasetError, check_mask_area, check_polygon_work, check_vertices, claimed_size, contained, finite,
    load_json, need, polygon_work,
)
from .polygons import pil_ellipse_mask, pil_polygon_mask, pixel_centre_polygon, region_outlines
from .source import SourceDataset, SourceItem, broken_item, file_classes_of, find_image, is_file, void_value

IGNORE_LABEL = "__ignore__"
LABELS_FILE = "labels.txt"  # labelme2voc's --labels: __ignore__, _background_, then the classes
# labelme's own names of the unannotated area (labelme2voc's labels.txt: ``__ignore__`` is -1,
# ``_background_`` the unlabelled 0): void when read. Every other shape label is a class.
VOID_LABELS = (IGNORE_LABEL, "_background_")


def check_labelme_names(classes: ClassSet) -> None:
    """ValueError when a class has one of labelme's names of the unannotated area (its shapes would
    read back as void)."""
    for name in classes.names:
        if name in VOID_LABELS:
            raise ValueError(f"labelme export: class {name!r} is labelme's name of the unannotated area (its shapes "
                             "would read back as void); rename the class (e.g. to 'backdrop') and export again")
LABELME_VERSION = "5.5.0"


def labelme_shapes(label: np.ndarray, classes: ClassSet):
    """The document's shapes, one at a time: a polygon per region (``region_outlines``), largest first."""
    values = list(range(classes.num_classes))
    if classes.ignore_index is not None:
        values.append(classes.ignore_index)
    for value, loop, _ in region_outlines(label, values):
        name = classes.names[value] if value < classes.num_classes else IGNORE_LABEL
        points = [[float(x), float(y)] for x, y in pixel_centre_polygon(loop.tolist())]
        yield {"label": name, "points": points, "group_id": None,
               "description": "", "shape_type": "polygon", "flags": {}, "mask": None}


def labelme_document(label: np.ndarray, classes: ClassSet, image_path: str, image_data: str | None = None) -> dict:
    return _document(list(labelme_shapes(label, classes)), label.shape, image_path, image_data)


def _document(shapes: list, shape: tuple[int, int], image_path: str, image_data: str | None) -> dict:
    return {"version": LABELME_VERSION, "flags": {}, "shapes": shapes, "imagePath": image_path,
            "imageData": image_data, "imageHeight": shape[0], "imageWidth": shape[1]}


def labelme_json(label: np.ndarray, classes: ClassSet, image_path: str, image_data: str | None = None):
    """``json.dumps(labelme_document(...), indent=1)`` as UTF-8, in parts (an iterator of bytes), a
    shape at a time, so that only one shape's points are Python objects and text at once (a big
    map has millions of corners)."""
    text = json.dumps(_document([], label.shape, image_path, image_data), indent=1)
    marker = '"shapes": []'  # the first one is the key: inside a string a quote is escaped
    cut = text.index(marker) + len(marker) - 1
    yield text[:cut - 1].encode("utf-8")
    empty = True
    for shape in labelme_shapes(label, classes):
        # the shape at indent level 2 (document → "shapes" → shape), as json.dumps nests it
        yield ("[\n  " if empty else ",\n  ").encode() + json.dumps(shape, indent=1).replace("\n", "\n  ").encode()
        empty = False
    yield b"[]" if empty else b"\n ]"
    yield text[cut + 1:].encode("utf-8")


def write_labelme_file(label, classes: ClassSet, out_dir: Path, stem: str, levels: int = NUM_LEVELS,
                       image_name: str | None = None, image_data: str | None = None) -> list[Path]:
    """``<stem>.json``; ``image_name``: its ``imagePath`` (relative to the JSON's folder, as labelme
    resolves it); ``image_data``: base64 of the image file, or None."""
    label = check_label(label, classes, copy=False)
    check_labelme_names(classes)
    path = out_file(out_dir, f"{stem}.json")
    atomic_write_bytes(path, labelme_json(label, classes, image_name or f"{stem}.png", image_data))
    return [path]


def relative_image_path(image: Path, folder: Path) -> str:
    """``image`` as labelme resolves ``imagePath``: relative to the JSON's ``folder`` (POSIX
    separators), or absolute where no relative path exists (another drive)."""
    import os

    try:
        return Path(os.path.relpath(Path(image).resolve(), Path(folder).resolve())).as_posix()
    except ValueError:
        return Path(image).resolve().as_posix()


class LabelmeWriter(ClassListWriter):
    """One JSON per image whose ``imagePath`` resolves from the JSON's folder (labelme opens
    ``dirname(json) / imagePath`` when ``imageData`` is null). ``images="copy"``: the image file
    is copied beside the JSON and embedded as ``imageData`` (base64 of the file, as labelme saves
    it), so each JSON opens on its own; ``"link"``: a symbolic link beside the JSON."""

    takes_images = True
    uses_images = True
    names_image_only = True  # without ``images``, an image not there is named as it was (``needs_image``)

    def __init__(self, classes: ClassSet, out_dir: Path, levels: int = NUM_LEVELS):
        check_labelme_names(classes)
        super().__init__(None, classes, out_dir, levels)

    @classmethod
    def folder_files(cls, classes: ClassSet, out_dir: Path):
        return [(Path(out_dir) / LABELS_FILE, labels_txt(classes), parse_labels_txt)]

    def write_item(self, item: ExportItem) -> list[Path]:
        import base64

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


def labels_txt(classes: ClassSet) -> bytes | None:
    """labelme2voc's labels file of ``classes``: ``__ignore__``, ``_background_``, the names; None
    when a name cannot be one line as labelme's tools read it (``line.strip()``: a line break, or
    spaces at its ends), and the export goes without one."""
    if any(name != name.strip() or len(name.splitlines()) != 1 for name in classes.names):
        return None
    return "".join(f"{name}\n" for name in (*VOID_LABELS, *classes.names)).encode("utf-8")


def read_labels_txt(path: Path) -> list[str]:
    """The class names of a labelme ``labels.txt`` in its order (``__ignore__`` and ``_background_``
    left out, as labelme2voc reads them: ``line.strip()``; blank lines passed over)."""
    from ..fileio import read_text_within

    return parse_labels_txt(read_text_within(path, "labelme labels file"), path)


def parse_labels_txt(text: str, path: Path | str = LABELS_FILE) -> list[str]:
    """``read_labels_txt`` of the file's ``text``."""
    from ..classes import check_class_names

    names, lines = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        name = line.strip()
        if name and name not in VOID_LABELS:
            names.append(name)
            lines.append(number)
    check_class_names(names, str(path), lines)
    return names


def is_labelme_file(path: Path) -> bool:
    """Whether ``path`` is a labelme document (read within ``guards.max_json_bytes()``)."""
    try:
        return _is_labelme_document(load_json(path, keys_once=False))  # the read says what is wrong
    except (OSError, ValueError):
        return False


def _is_labelme_document(doc) -> bool:
    return isinstance(doc, dict) and "shapes" in doc and "imageHeight" in doc


def labelme_documents(src: Path, passed_over: list[str]):
    """(path, document) of each labelme file of ``src``, one at a time: the file itself, or each
    ``*.json`` under the folder that is a labelme document - each read within
    ``guards.max_json_bytes()``, and none held after the next is read (a folder of labelme files
    with their images embedded, labelme's default, held them all: 100 files of 4 MB peaked at
    434 MB). A JSON file that cannot be read (truncated, too big, not UTF-8) comes with its
    ValueError as the document, so the import reports it as a failed item and goes on; a readable
    JSON file that is no labelme document (a list, another tool's file) is passed over, named in
    ``passed_over``."""
    if src.is_file():
        yield src, _read_or_error(src)
        return
    for path in sorted(src.rglob("*.json")):
        doc = _read_or_error(path)
        if isinstance(doc, ValueError) or _is_labelme_document(doc):
            yield path, doc
        else:
            passed_over.append(f"{path} ({'a JSON list' if isinstance(doc, list) else 'no shapes/imageHeight'})")


def passed_over_warnings(passed_over: list[str]) -> list[str]:
    return [f"passed over {len(passed_over)} JSON file(s) that are no labelme document: "
            + ", ".join(passed_over[:5]) + (" …" if len(passed_over) > 5 else "")] if passed_over else []


def _read_or_error(path: Path):
    try:
        return load_json(path)
    except (OSError, ValueError) as exc:
        return exc if isinstance(exc, ValueError) else ValueError(f"{path}: {exc}")


def shape_points(shape: dict, source) -> list[tuple[float, float]]:
    """The polygon of one labelme shape (rectangles as their 4 corners), checked: finite
    coordinates, an area (at least 3 points)."""
    kind, xy = _shape_kind_points(shape, source)
    if kind != "polygon":
        raise ValueError(f"{source}: shape type {kind!r} with {len(xy)} points is not a polygon or rectangle")
    return xy


def _shape_kind_points(shape: dict, source) -> tuple[str, list[tuple[float, float]]]:
    """("polygon", its corners) — rectangles as their 4 — or ("circle" | "mask", its 2 points),
    checked: finite coordinates, the number of points the type needs, an area."""
    label = shape.get("label") if isinstance(shape, dict) else None
    points = shape.get("points") if isinstance(shape, dict) else None
    kind = (shape.get("shape_type") or "polygon") if isinstance(shape, dict) else None
    if not isinstance(points, list) or not all(isinstance(p, list) and len(p) == 2 for p in points):
        raise ValueError(f"{source}: shape {label!r} has malformed points (expected [[x, y], ...])")
    xy = [(finite(x, f"{source}: shape {label!r} x"), finite(y, f"{source}: shape {label!r} y")) for x, y in points]
    if kind == "rectangle" and len(xy) == 2:
        (x0, y0), (x1, y1) = xy
        return "polygon", [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    if kind in ("circle", "mask") and len(xy) == 2:
        return kind, xy
    if kind != "polygon" or len(xy) < 3:
        raise ValueError(f"{source}: shape type {kind!r} with {len(xy)} points is not an area (a polygon, rectangle, "
                         "circle or mask)")
    return kind, xy


def shape_mask(shape: dict, height: int, width: int, source) -> np.ndarray:
    """bool (H, W) of one labelme shape."""
    return pil_polygon_mask(shape_points(shape, source), height, width)


def _circle(xy, width: int, height: int, where: str) -> tuple[float, float, float]:
    """(cx, cy, radius) of a labelme circle (its centre, then a point on its rim: shape_to_mask's
    ``d``). A radius past the image's width + height (no circle drawn in labelme on the image has
    one) is refused: PIL draws a circle in time proportional to it, 16 s at 10^6 on any image."""
    import math

    (cx, cy), (px, py) = xy
    radius = math.sqrt((cx - px) ** 2 + (cy - py) ** 2)
    if radius > width + height:
        raise ValueError(f"{where}: a circle of radius {radius:g}, more than the {width}×{height} image's width and "
                         "height together; refusing a file built to take hours to draw")
    return cx, cy, radius


def _mask_patch(shape: dict, xy, width: int, height: int, where: str) -> tuple[int, int, np.ndarray]:
    """(x, y, bool patch) of a labelme mask shape: the pixels labelme's ``shapes_to_label`` paints
    (labelme/_utils/shape.py @414ad2ad, v7.1.0), clipped to the image, and where their top-left pixel
    goes. The mask goes at its first point, rounded (half to even); whole-number points crop it to
    the span they give, (x2 - x1 + 1) × (y2 - y1 + 1), fractional points keep the whole mask; so
    labelme's canvas's masks (box ``max + 1``, mask cropped at the image's edge) read as the object.
    A mask smaller than its span on the image is painted as numpy's assignment there does: one row
    or one column is stretched across the span (broadcast), any other is refused (labelme's
    assignment fails too); an empty patch where the span misses the image. The PNG's size is checked
    from its header (at most the image's) before it is decoded."""
    import base64
    import binascii
    import io

    from PIL import Image, UnidentifiedImageError

    data = shape.get("mask")
    if not isinstance(data, str):
        raise ValueError(f"{where}: a mask shape's 'mask' is {type(data).__name__}; expected a base64 PNG")
    try:
        with Image.open(io.BytesIO(base64.b64decode(data))) as image:
            if image.width > width or image.height > height:
                raise ValueError(f"{where}: its mask is {image.width}×{image.height} pixels, larger than its "
                                 f"{width}×{height} image")
            patch = np.asarray(image)
    except (binascii.Error, UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"{where}: its 'mask' is not a base64 PNG ({exc})") from None
    if patch.ndim != 2:
        raise ValueError(f"{where}: its mask is a {patch.shape[-1]}-channel image; labelme's is one channel (a "
                         "grey or 1-bit PNG)")
    points = np.asarray(xy, np.float64)
    (x1, y1), (x2, y2) = points.round().astype(np.int64).tolist()
    if np.array_equal(points, np.trunc(points)):
        span_h, span_w = y2 - y1 + 1, x2 - x1 + 1
    else:
        span_h, span_w = patch.shape
    y_start, y_stop = max(y1, 0), min(y1 + span_h, height)
    x_start, x_stop = max(x1, 0), min(x1 + span_w, width)
    if y_start >= y_stop or x_start >= x_stop:  # off the image: labelme paints nothing
        return 0, 0, np.zeros((0, 0), bool)
    # labelme's numpy assignment: the mask's part under the span, broadcast over it where that part
    # is one row or one column (a 1-pixel-high mask paints every row of its span), refused otherwise
    part = patch[y_start - y1:y_stop - y1, x_start - x1:x_stop - x1].astype(bool)
    size = (y_stop - y_start, x_stop - x_start)
    if any(got not in (want, 1) for got, want in zip(part.shape, size)):
        raise ValueError(f"{where}: its points span {span_w}×{span_h} pixels on the image but its mask is "
                         f"{patch.shape[1]}×{patch.shape[0]}; labelme cannot paint it either (fix the points or "
                         "the mask in labelme)")
    return x_start, y_start, np.broadcast_to(part, size)


def read_labelme_document(doc: dict, classes: ClassSet, source, mapping=None) -> np.ndarray:
    """The label map of a labelme document: shapes painted in file order (later over earlier),
    pixels in no shape void. Sizes and coordinates are checked (``qgn.formats.guards``) before
    anything of the claimed size is allocated; each shape is drawn within its bounding box."""
    if not isinstance(doc, dict) or "shapes" not in doc:
        raise ValueError(f"{source} is not a labelme JSON file (no 'shapes')")
    shapes = need(doc, "shapes", list, str(source))
    if "imageHeight" not in doc or "imageWidth" not in doc:
        raise ValueError(f"{source}: labelme file without imageHeight/imageWidth")
    width, height = claimed_size(doc["imageWidth"], doc["imageHeight"], source, "image")
    names = []
    for n, shape in enumerate(shapes):
        name = need(shape, "label", str, f"{source}: shapes[{n}]")
        names.append(name)
    check_vertices(sum(len(s["points"]) for s in shapes if isinstance(s, dict) and isinstance(s.get("points"), list)),
                   width, height, source)
    drawings = [_shape_kind_points(shape, source) for shape in shapes]
    work = sum(polygon_work([y for _, y in xy], height) for kind, xy in drawings if kind == "polygon")
    check_polygon_work(work, width, height, source)
    area = 0  # the pixels circles' boxes and masks cost: bounded per image as COCO's masks are
    for n, (shape, (kind, xy)) in enumerate(zip(shapes, drawings)):
        where = f"{source}: shapes[{n}] ({names[n]!r})"
        if kind == "circle":
            cx, cy, r = _circle(xy, width, height, where)
            box = polygon_box([(cx - r, cy - r), (cx + r, cy + r)], height, width)
            drawings[n] = (kind, (cx, cy, r))
            area += 0 if box is None else (box[2] - box[0]) * (box[3] - box[1])
        elif kind == "mask":
            drawings[n] = (kind, _mask_patch(shape, xy, width, height, where))
            area += drawings[n][1][2].size
        check_mask_area(area, width, height, source)
    ids = match_class_names(names, classes, mapping, [i for i, n in enumerate(names) if n in VOID_LABELS])
    label = np.zeros((height, width), label_dtype(classes))
    covered = np.zeros((height, width), bool)
    for name, (kind, xy), value in zip(names, drawings, ids):
        if value == UNMATCHED:
            raise ValueError(unmatched_message(name, classes, source))
        if value == VOID and classes.ignore_index is None:
            raise ValueError(f"{source} has {name!r} (void) pixels but the class set has no ignore value")
        drawn = _drawn(kind, xy, height, width)
        if drawn is None:
            continue
        (x0, y0, x1, y1), mask = drawn
        if value == VOID:
            void_value(name, classes, source, int(np.count_nonzero(mask)))
            covered[y0:y1, x0:x1][mask] = False
        else:
            label[y0:y1, x0:x1][mask] = value
            covered[y0:y1, x0:x1] |= mask
    if not covered.all():
        if classes.ignore_index is None:
            raise ValueError(f"{source}: some pixels are in no shape (void), but the class set has no ignore value")
        label[~covered] = classes.ignore_index
    return as_label(label, classes, source)


def _drawn(kind: str, shape, height: int, width: int):
    """((x0, y0, x1, y1), bool mask of that box) of one shape as labelme draws it (``_shape_kind_points``,
    a circle as (cx, cy, radius), a mask as ``_mask_patch``), clipped to the image; None when it misses it."""
    if kind == "mask":  # already clipped to the image (``_mask_patch``)
        x, y, patch = shape
        if patch.size == 0:
            return None
        return (x, y, x + patch.shape[1], y + patch.shape[0]), patch
    if kind == "circle":
        cx, cy, r = shape
        box = polygon_box([(cx - r, cy - r), (cx + r, cy + r)], height, width)
        if box is None:
            return None
        x0, y0, x1, y1 = box
        return box, pil_ellipse_mask((cx - r - x0, cy - r - y0, cx + r - x0, cy + r - y0), y1 - y0, x1 - x0)
    box = polygon_box(shape, height, width)
    if box is None:
        return None
    x0, y0, x1, y1 = box
    return box, pil_polygon_mask([(x - x0, y - y0) for x, y in shape], y1 - y0, x1 - x0)


def polygon_box(xy, height: int, width: int) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1): integer pixel bounds of a polygon's drawing, clipped to the image (with
    a pixel of margin for the outline); None when it misses the image."""
    import math

    xs = [x for x, _ in xy]
    ys = [y for _, y in xy]
    x0, y0 = max(math.floor(min(xs)) - 1, 0), max(math.floor(min(ys)) - 1, 0)
    x1, y1 = min(math.ceil(max(xs)) + 2, width), min(math.ceil(max(ys)) + 2, height)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def read_labelme_file(path: Path, classes: ClassSet, mapping=None) -> np.ndarray:
    return read_labelme_document(load_json(path), classes, path, mapping)


# ---------------------------------------------------------------------------------- dataset import
def scan_labelme(src: Path, images: Path | None) -> SourceDataset:
    root = src if src.is_dir() else src.parent
    names: list[str] = []
    warnings, passed_over = [], []
    listed = root / LABELS_FILE
    if listed.is_file():
        try:
            names = read_labels_txt(listed)
        except (OSError, ValueError) as exc:
            warnings.append(f"{listed} not read ({exc}); the classes are the labels the shapes use")
    items = []
    for path, doc in labelme_documents(src, passed_over):
        try:
            contained(root, path, path, "labelme file")
            if isinstance(doc, ValueError):
                raise doc
            shapes = need(doc, "shapes", list, str(path))
            width, height = claimed_size(need(doc, "imageWidth", (int, float), str(path)),
                                         need(doc, "imageHeight", (int, float), str(path)), path, "image")
            for n, shape in enumerate(shapes):
                label = need(shape, "label", str, f"{path}: shapes[{n}]")
                if not label.strip():
                    raise ValueError(f"{path}: shapes[{n}] has an empty label")
                check_class_name(label, f"{path}: shapes[{n}]", "the label")
                if label not in names:
                    names.append(label)
            image_path = doc.get("imagePath")
            image = None
            if image_path is not None:
                if not isinstance(image_path, str):
                    raise ValueError(f"{path}: 'imagePath' is {image_path!r}; expected a file name")
                if image_path:
                    try:
                        candidate = contained(root, path.parent / image_path, f"{path}: imagePath", "image")
                    except OutsideDatasetError:
                        if images is None:
                            raise
                        candidate = None  # not followed out of the dataset: looked up by name in --images
                    image = candidate if candidate is not None and is_file(candidate) else \
                        find_image(Path(image_path).name, images)
            image = image or find_image(path.stem, images, path.parent)
        except ValueError as exc:
            items.append(broken_item(path.stem, path, exc))
            continue

        def read(classes, mapping=None, _path=path):  # read again: no document is held between the items
            return read_labelme_file(_path, classes, mapping)

        items.append(SourceItem(path.stem, image, read, str(path), (width, height)))
    if not items:
        raise ValueError(f"{src}: no labelme JSON files (with 'shapes')")
    warnings = passed_over_warnings(passed_over) + warnings
    description = f"labelme: {len(items)} labelme JSON files, labels {', '.join(repr(n) for n in names[:12])}"
    return SourceDataset("labelme", root, description, file_classes_of(names, items, VOID_LABELS), items, warnings)




def is_labelme_dataset(probe) -> bool:
    doc = probe.json_document
    return isinstance(doc, dict) and "shapes" in doc


def is_labelme_mask(probe) -> bool:
    return probe.suffix == ".json" and probe.path.is_file() and is_labelme_file(probe.path)


FORMAT = Format("labelme", "labelme JSON per image, exact polygons per class region", ".json",
                write_labelme_file, read_labelme_file, LabelmeWriter, image_names=True, is_mask=is_labelme_mask,
                scan=scan_labelme, is_dataset=is_labelme_dataset, check_classes=check_labelme_names)
