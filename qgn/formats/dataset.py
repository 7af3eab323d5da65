"""Whole datasets in other tools' layouts, read as (image, label map) items of a class set.

``scan_dataset(src, format="auto", images=None)`` finds what ``src`` holds and returns a
``SourceDataset``: the format, a one-line ``description`` of what was found, the class set the
files name (``file_classes``, None where the files carry no names: ``ids`` and ``png``), and one
``SourceItem`` per mask. ``item.read(classes, mapping)`` gives the item's label map in ``classes``
(ids 0..k-1 and the ignore value); a label the files use that matches no class is an error naming
it (``qgn.classes.match_class_names``; ``mapping`` is ``--map old=new``).

Formats (``IMPORT_FORMATS``) and how each is found by ``auto``:

=========== ===================================================================================
cvat, voc   ``labelmap.txt`` and ``SegmentationClass/`` (masks in sub-folders too); images in
            ``JPEGImages/`` or ``--images``
cityscapes  ``gtFine/``: ``*_gtFine_labelIds.png`` (else ``_labelTrainIds``), through the
            ``label_colors.txt`` when there is one (Datumaro's numbering), else Cityscapes' ids;
            images ``leftImg8bit/<same path>_leftImg8bit.*``
camvid      a ``<subset>.txt`` list of ``image mask`` lines beside ``label_colors.txt`` (Datumaro)
coco        ``annotations/instances_*.json`` or a COCO JSON file; RLE or polygon segmentations
labelme     a folder of labelme JSON files (``shapes``); images by ``imagePath``
labelstudio Label Studio's JSON or JSON-MIN export (a JSON list); brush, polygon, rectangle labels
png, ids    a folder of label PNGs (palette / grayscale ids); classes from ``--classes`` or a
            ``classes.txt`` beside them; images in ``--images`` or a sibling ``images/`` folder.
            The ``folder`` dataset ``qgn train`` reads (``images/``, ``labels/``, ``classes.txt``)
            imports as it is: labels from ``labels/``; a photo is never read as a label map
=========== ===================================================================================

Images are found by each format's own convention, else in ``images`` by name (the stem).

Hostile files (``qgn.formats.guards``): every path a file names and every file found (links too)
must lie inside the dataset folder or ``images``; every size a file claims is checked against the
pixel limit and the image's header before anything is allocated; a malformed field is one line
naming the file and the field. A problem of one item (one image entry, one labelme file, one task)
makes that item fail when read — the import reports it and goes on — not the whole scan.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw, UnidentifiedImageError

from ..classes import (
    UNMATCHED, VOID, VOID_NAMES, ClassSet, check_unique_names, match_class_names, normalize_class_name,
    unmatched_message,
)
from .base import as_label, colours_to_values, read_rgb
from .guards import (
    OutsideDatasetError, check_polygon_work, claimed_size, contained, finite, is_contained, load_json, need,
    polygon_work, whole,
)

IMPORT_FORMATS = ("cvat", "voc", "cityscapes", "camvid", "coco", "labelme", "labelstudio", "ids", "png")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm")


@dataclass
class SourceItem:
    """One mask of a dataset. ``read(classes, mapping=None)`` → (H, W) label of ``classes``.
    ``claimed``: the (width, height) the file claims for it, when it claims one (checked against
    the image's header before ``read`` allocates anything)."""

    name: str
    image: Path | None
    read: Callable[..., np.ndarray]
    source: str = ""
    claimed: tuple[int, int] | None = None
    error: Exception | None = None  # why the item cannot be read at all (reported before anything else)


def broken_item(name: str, source, error: Exception, image: Path | None = None) -> SourceItem:
    """An item whose file could not be understood: reading it raises ``error`` (the import
    reports it and goes on with the others)."""

    def read(classes, mapping=None):
        raise error

    return SourceItem(name, image, read, str(source), error=error)


@dataclass
class SourceDataset:
    format: str
    root: Path
    description: str
    file_classes: ClassSet | None
    items: list[SourceItem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # what was found and left out, one line each


def _void_set(names: list[str]) -> set[str]:
    keys = {normalize_class_name(v) for v in VOID_NAMES}
    return {n for n in names if normalize_class_name(n) in keys}


def classes_from_names(entries, ignore_index: int = 255) -> ClassSet:
    """A ClassSet of the non-void labels of a file's label map ((name, colour or None) pairs)."""
    void = _void_set([n for n, _ in entries])
    kept = [(n, c) for n, c in entries if n not in void]
    if not kept:
        raise ValueError("the label map names no class other than background/void")
    from ..classes import default_palette

    fallback = default_palette(len(kept))
    ignore = ignore_index if ignore_index >= len(kept) else 65535
    return ClassSet(tuple(n for n, _ in kept), tuple(c or fallback[i] for i, (_, c) in enumerate(kept)), ignore)


def values_for(names, classes: ClassSet, mapping, source) -> list[int]:
    """Class ids of ``names`` with void → the ignore value; UNMATCHED where nothing matches."""
    values = []
    for value in match_class_names(names, classes, mapping):
        if value == VOID and classes.ignore_index is not None:
            value = classes.ignore_index
        values.append(value)
    return values


def finish_label(label: np.ndarray, names, values, classes: ClassSet, source) -> np.ndarray:
    """Refuse pixels of unmatched (or void without an ignore value) labels; the checked label."""
    for name, value in zip(names, values):
        if value in (UNMATCHED, VOID) and (label == value).any():
            if value == VOID:
                raise ValueError(f"{source} has {name!r} (void) pixels but the class set has no ignore value")
            raise ValueError(unmatched_message(name, classes, source))
    return as_label(label, classes, source)


def find_image(name: str, *folders: Path | None) -> Path | None:
    """The image called ``name`` (a relative path without extension, or a file name) in ``folders``;
    only files that resolve inside their folder (``guards.contained``: no ``../``, absolute names
    or links pointing away)."""
    for folder in folders:
        if folder is None or not Path(folder).is_dir():
            continue
        folder = Path(folder)
        try:
            direct = contained(folder, name)
        except OutsideDatasetError:
            continue
        if direct.suffix.lower() in IMAGE_EXTENSIONS and direct.is_file():
            return direct
        for ext in IMAGE_EXTENSIONS:
            for candidate in (folder / f"{name}{ext}", folder / f"{name}{ext.upper()}"):
                if candidate.is_file() and is_contained(folder, candidate):
                    return candidate
        stem = Path(name).stem if Path(name).suffix.lower() in IMAGE_EXTENSIONS else Path(name).name
        for candidate in sorted(folder.glob(f"{glob_escape(stem)}.*")):
            if candidate.suffix.lower() in IMAGE_EXTENSIONS and is_contained(folder, candidate):
                return candidate
    return None


def glob_escape(text: str) -> str:
    """``text`` with glob's special characters taken literally."""
    import glob

    return glob.escape(text)


def inside_dataset(root: Path, path: Path, source=None):
    """A reader wrapper check: ``path`` (found under ``root``) must resolve inside it."""
    contained(root, path, source or path, "file")
    return path


def _mode(path: Path) -> str:
    from ..imagefile import ImageTooLargeError, open_image

    try:
        with open_image(path) as image:
            return image.mode
    except ImageTooLargeError:
        raise
    except (UnidentifiedImageError, OSError, ValueError):
        raise ValueError(f"{path} is not a readable image") from None


# ------------------------------------------------------------------------------------------ cvat / voc
def scan_cvat(root: Path, images: Path | None, name: str = "cvat") -> SourceDataset:
    from .cvat import read_labelmap

    labelmap = root / "labelmap.txt"
    masks_dir = root / "SegmentationClass"
    if not masks_dir.is_dir():
        raise ValueError(f"{root}: no SegmentationClass/ folder; not a CVAT/Pascal-VOC segmentation export")
    if not labelmap.is_file():
        raise ValueError(f"{root}: no labelmap.txt, so the mask colours cannot be proven to mean any class; "
                         "export it with CVAT's 'Segmentation mask 1.1' (it writes labelmap.txt) or add one")
    entries = read_labelmap(labelmap)
    masks = sorted(masks_dir.rglob("*.png"))
    items = []
    for mask in masks:
        rel = mask.relative_to(masks_dir).with_suffix("").as_posix()
        image = find_image(rel, images, root / "JPEGImages") or find_image(Path(rel).name, images)
        items.append(SourceItem(Path(rel).name, image, _cvat_reader(mask, labelmap, root), str(mask)))
    nested = " (in sub-folders)" if any("/" in m.relative_to(masks_dir).as_posix() for m in masks) else ""
    description = (f"{name}: CVAT/Pascal-VOC segmentation export, {len(masks)} masks{nested}, "
                   f"{len(entries)} labels in labelmap.txt")
    return SourceDataset(name, root, description, classes_from_names(entries), items)


def _cvat_reader(mask: Path, labelmap: Path, root: Path):
    def read(classes: ClassSet, mapping=None) -> np.ndarray:
        from .cvat import decode_with_labelmap

        inside_dataset(root, mask)
        return decode_with_labelmap(mask, labelmap, classes, mapping)

    return read


# ------------------------------------------------------------------------------------------ cityscapes
def scan_cityscapes(root: Path, images: Path | None) -> SourceDataset:
    from .label_colors import label_order, read_label_colors

    gt = root / "gtFine"
    if not gt.is_dir():
        raise ValueError(f"{root}: no gtFine/ folder; not a Cityscapes tree")
    colours_file = root / "label_colors.txt"
    masks = sorted(gt.rglob("*_gtFine_labelIds.png"))
    suffix = "_gtFine_labelIds.png"
    if not masks:
        masks, suffix = sorted(gt.rglob("*_gtFine_labelTrainIds.png")), "_gtFine_labelTrainIds.png"
    if not masks:
        raise ValueError(f"{gt}: no *_gtFine_labelIds.png or *_gtFine_labelTrainIds.png masks")
    if colours_file.is_file():
        order = label_order(read_label_colors(colours_file))
        if suffix != "_gtFine_labelIds.png":
            raise ValueError(f"{root}: label_colors.txt numbers labelIds masks; labelTrainIds cannot be read with it")
        names = [n for n, _ in order]
        file_classes = classes_from_names(order)
        how = f"ids through {colours_file.name} ({len(order)} labels, '{names[0]}' = 0)"
    else:
        from ..data.cityscapes import CITYSCAPES_CLASSES, CITYSCAPES_TRAIN_CLASSES
        from .cityscapes import LABEL_NAMES

        file_classes = CITYSCAPES_CLASSES
        if suffix == "_gtFine_labelIds.png":
            names = list(LABEL_NAMES)
            how = "Cityscapes label ids (labels without a train id are void)"
        else:
            names = ["unlabeled"] * 256
            for _, train, name, _ in CITYSCAPES_TRAIN_CLASSES:
                names[train] = name
            how = "Cityscapes train ids (255 void)"
    official = not colours_file.is_file()
    own_names = _cityscapes_names(root)  # image_names.tsv of a QGN export: the images' own names
    items = []
    for mask in masks:
        rel = mask.relative_to(gt).as_posix()[: -len(suffix)]
        stem = Path(rel).name
        own = own_names.get(stem)
        image = (own and find_image(Path(own).stem, images)) or find_image(f"{rel}_leftImg8bit", root / "leftImg8bit") \
            or find_image(stem, images) or find_image(f"{stem}_leftImg8bit", images)
        items.append(SourceItem(Path(own).stem if own else stem, image, _index_reader(mask, names, official, root), str(mask)))
    description = f"cityscapes: Cityscapes tree, {len(masks)} masks ({suffix[1:]}), {how}"
    return SourceDataset("cityscapes", root, description, file_classes, items)


def _cityscapes_names(root: Path) -> dict[str, str]:
    """``image_names.tsv`` of a QGN Cityscapes export: Cityscapes name → the image's own file name."""
    import csv

    path = root / "image_names.tsv"
    if not path.is_file():
        return {}
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle, delimiter="\t"))
    except (OSError, UnicodeDecodeError, csv.Error):
        return {}
    return {row[0]: row[1] for row in rows[1:] if len(row) >= 2 and row[0] and row[1]}


def _index_reader(mask: Path, names: list[str], cityscapes_void: bool = False, root: Path | None = None):
    """A reader of an index mask whose value v means ``names[v]`` (inside ``root``, when given)."""

    def read(classes: ClassSet, mapping=None) -> np.ndarray:
        from ..quadtree.label_io import read_label

        if root is not None:
            inside_dataset(root, mask)
        values = values_for(names, classes, mapping, mask)
        if cityscapes_void:  # Cityscapes labels that are no class here are void (labels without a train id)
            values = [classes.ignore_index if v == UNMATCHED and classes.ignore_index is not None else v
                      for v in values]
        raw = read_label(mask).astype(np.int64)
        if raw.max() >= len(names):
            raise ValueError(f"{mask}: value {int(raw.max())} is beyond the {len(names)} labels of its label map")
        if cityscapes_void and mask.name.endswith("_gtFine_labelIds.png"):
            check_cityscapes_colours(mask, raw)
        label = np.asarray(values, np.int64)[raw]
        return finish_label(label, names, values, classes, mask)

    return read


def check_cityscapes_colours(mask: Path, raw: np.ndarray) -> None:
    """Cityscapes ids are proven by the ``_color.png`` beside the mask: every pixel must have the
    official colour of its id. ValueError otherwise (the ids were numbered by another label map)."""
    from .cityscapes import LABEL_COLOURS

    color = mask.with_name(mask.name.replace("_gtFine_labelIds.png", "_gtFine_color.png"))
    if not color.is_file():
        return
    inside_dataset(mask.parent, color)
    rgb = read_rgb(color)
    table = np.zeros((256, 3), np.uint8)
    table[: len(LABEL_COLOURS)] = LABEL_COLOURS
    if rgb.shape[:2] != raw.shape or (rgb != table[np.clip(raw, 0, 255)]).any():
        raise ValueError(f"{mask}: its ids do not have Cityscapes' colours in {color.name}, so they were numbered "
                         "by another label map (Datumaro writes label_colors.txt for that); put that "
                         "label_colors.txt in the dataset folder")


# ------------------------------------------------------------------------------------------ camvid
def _camvid_lines(path: Path) -> list[tuple[str, str | None]]:
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        parts = line.split('"')
        if len(parts) == 5:
            pairs.append((parts[1], parts[3]))
            continue
        tokens = line.split()
        pairs.append((tokens[0], tokens[1] if len(tokens) > 1 else None))
    return pairs


def scan_camvid(root: Path, images: Path | None) -> SourceDataset:
    from .label_colors import label_order, read_label_colors

    lists = [p for p in sorted(root.glob("*.txt")) if p.name != "label_colors.txt"]
    colours_file = root / "label_colors.txt"
    if not lists:
        raise ValueError(f"{root}: no <subset>.txt list of 'image mask' lines; not a CamVid (Datumaro) dataset")
    if not colours_file.is_file():
        raise ValueError(f"{root}: no label_colors.txt, so the mask colours cannot be proven to mean any class; "
                         "add the label_colors.txt the dataset was exported with")
    order = label_order(read_label_colors(colours_file))
    items = []
    for listing in lists:
        for image_rel, mask_rel in _camvid_lines(listing):
            if mask_rel is None:
                continue
            mask, image = root / mask_rel.lstrip("/"), root / image_rel.lstrip("/")
            inside = root.resolve()
            if not (mask.resolve().is_relative_to(inside) and image.resolve().is_relative_to(inside)):
                raise ValueError(f"{listing}: {image_rel} {mask_rel} lies outside {root} (as Datumaro, "
                                 "a CamVid list may only name files inside its folder)")
            image = image if image.is_file() and is_contained(root, image) else find_image(Path(image_rel).stem, images)
            items.append(SourceItem(Path(mask_rel).stem, image, _camvid_reader(mask, order, colours_file, root),
                                    str(mask)))
    description = (f"camvid: CamVid (Datumaro) dataset, {len(items)} masks in {', '.join(p.name for p in lists)}, "
                   f"{len(order)} labels in label_colors.txt")
    return SourceDataset("camvid", root, description, classes_from_names(order), items)


def _camvid_reader(mask: Path, order, colours_file: Path, root: Path):
    def read(classes: ClassSet, mapping=None) -> np.ndarray:
        names = [n for n, _ in order]
        if not mask.is_file():
            raise FileNotFoundError(f"{mask}: no such mask (listed in the CamVid list file)")
        inside_dataset(root, mask)
        if _mode(mask) in ("L", "P", "I", "I;16"):
            return _index_reader(mask, names)(classes, mapping)
        values = values_for(names, classes, mapping, mask)
        known = [(rgb, v) for (_, rgb), v in zip(order, values) if rgb is not None]
        label = colours_to_values(read_rgb(mask), [c for c, _ in known], [v for _, v in known], mask, colours_file)
        return finish_label(label, names, values, classes, mask)

    return read


# ------------------------------------------------------------------------------------------ coco
def _coco_file(src: Path) -> Path:
    if src.is_file():
        return src
    found = sorted((src / "annotations").glob("instances_*.json")) if (src / "annotations").is_dir() else []
    found = found or sorted(src.glob("*.json"))
    if len(found) != 1:
        raise ValueError(f"{src}: expected one COCO instances JSON (annotations/instances_*.json); found {len(found)}")
    return found[0]


def scan_coco(src: Path, images: Path | None) -> SourceDataset:
    path = _coco_file(src)
    doc = load_json(path)
    if not isinstance(doc, dict) or not {"images", "annotations", "categories"} <= set(doc):
        raise ValueError(f"{path} is not a COCO instances file (needs images, annotations and categories)")
    for key in ("images", "annotations", "categories"):
        need(doc, key, list, str(path))
    categories = coco_categories(doc["categories"], path)
    root = path.parent.parent if path.parent.name == "annotations" else path.parent
    by_image: dict[int, list[dict]] = {}
    for n, ann in enumerate(doc["annotations"]):
        where = f"{path}: annotations[{n}]"
        try:
            image_id = whole(need(ann, "image_id", (int, float), where), f"{where} image_id")
        except ValueError as exc:
            raise ValueError(f"{exc}; the file is malformed") from None
        by_image.setdefault(image_id, []).append(ann)
    items = []
    seen_ids: dict[int, int] = {}
    for n, image in enumerate(doc["images"]):
        where = f"{path}: images[{n}]"
        try:
            image_id = whole(need(image, "id", (int, float), where), f"{where} id")
            if image_id in seen_ids:
                raise ValueError(f"{where} has the id {image_id} of images[{seen_ids[image_id]}]: two images "
                                 "sharing an id would share their annotations; give each image its own id")
            seen_ids[image_id] = n
            file_name = need(image, "file_name", str, where)
            if not file_name.strip():
                raise ValueError(f"{where}: 'file_name' is empty")
            width, height = claimed_size(need(image, "width", (int, float), where),
                                         need(image, "height", (int, float), where), where, "image")
            for folder in (images, root / "images", root):
                if folder is not None and folder.is_dir():
                    contained(folder, file_name, where, "file_name")  # refused when it leads outside
            found = find_image(file_name, images, root / "images", root) or find_image(Path(file_name).name, images)
            items.append(SourceItem(Path(file_name).stem, found,
                                    _coco_reader(image_id, file_name, width, height, by_image.get(image_id, []),
                                                 categories, path),
                                    f"{path} image {file_name}", (width, height)))
        except ValueError as exc:
            name = Path(str(image.get("file_name", f"image-{n}"))).stem if isinstance(image, dict) else f"image-{n}"
            items.append(broken_item(name or f"image-{n}", where, exc))
    unknown = sorted(set(by_image) - set(seen_ids))
    if unknown:
        raise ValueError(f"{path}: annotations name image ids {unknown[:5]} that no entry of 'images' has")
    entries = [(name, None) for _, name in sorted(categories.items())]
    description = (f"coco: COCO instances file {path.name}, {len(doc['images'])} images, "
                   f"{len(doc['annotations'])} annotations, {len(categories)} categories")
    return SourceDataset("coco", root, description, classes_from_names(entries), items)


def coco_categories(entries: list, path: Path) -> dict[int, str]:
    """{id: name} of a COCO file's categories; ValueError naming the entries when two share an
    id or a name (one would silently read as the other)."""
    categories: dict[int, str] = {}
    index: dict[int, int] = {}
    names: list[str] = []
    for n, category in enumerate(entries):
        where = f"{path}: categories[{n}]"
        category_id = whole(need(category, "id", (int, float), where), f"{where} id")
        name = need(category, "name", str, where)
        if not name.strip():
            raise ValueError(f"{where}: 'name' is empty")
        if category_id in categories:
            raise ValueError(f"{where} has the id {category_id} of categories[{index[category_id]}] "
                             f"({categories[category_id]!r}); every category needs its own id")
        categories[category_id], index[category_id] = name, n
        names.append(name)
    try:
        check_unique_names(names, f"{path} categories")
    except ValueError as exc:
        raise ValueError(str(exc).replace("classes ", "categories ")) from None
    return categories


def _coco_reader(image_id: int, file_name: str, width: int, height: int, annotations: list[dict],
                 categories: dict[int, str], path: Path):
    def read(classes: ClassSet, mapping=None) -> np.ndarray:
        from ..label_map import label_dtype
        from .coco import decode_rle

        source = f"{path} image {file_name}"
        names, values = [], []
        for n, ann in enumerate(annotations):
            where = f"{source} annotation {ann.get('id', n) if isinstance(ann, dict) else n}"
            category = whole(need(ann, "category_id", (int, float), where), f"{where} category_id")
            if category not in categories:
                raise ValueError(f"{where}: category_id {category} is none of the file's categories")
            names.append(categories[category])
        values = values_for(names, classes, mapping, path)
        label = np.zeros((height, width), label_dtype(classes))
        covered = np.zeros((height, width), bool)
        work = 0
        for ann, name, value in zip(annotations, names, values):
            where = f"{source} annotation {ann.get('id')}"
            seg = ann.get("segmentation")
            if isinstance(seg, dict):
                mask = decode_rle(seg, where, expected=(height, width))
            elif isinstance(seg, list):
                canvas = Image.new("L", (width, height), 0)
                for k, polygon in enumerate(seg):
                    if not isinstance(polygon, list) or len(polygon) < 6 or len(polygon) % 2:
                        raise ValueError(f"{where}: segmentation[{k}] is not a list of x, y pairs (at least 3)")
                    xy = [finite(v, f"{where} segmentation[{k}]") for v in polygon]
                    work += polygon_work(xy[1::2], height)
                    check_polygon_work(work, width, height, source)
                    ImageDraw.Draw(canvas).polygon(xy, outline=1, fill=1)
                mask = np.asarray(canvas, bool)
            else:
                raise ValueError(f"{where} has no segmentation (an RLE object or a list of polygons)")
            if value == UNMATCHED:
                raise ValueError(unmatched_message(name, classes, path))
            if value == VOID:
                if classes.ignore_index is None:
                    raise ValueError(f"{source} has {name!r} (void) pixels but the class set has no ignore value")
                covered[mask] = False
                continue
            label[mask] = value
            covered |= mask
        return _void_rest(label, covered, classes, source)

    return read


def _void_rest(label: np.ndarray, covered: np.ndarray, classes: ClassSet, source) -> np.ndarray:
    """``label`` (of ``label_dtype(classes)``) with the pixels no annotation covers set to ignore."""
    if not covered.all():
        if classes.ignore_index is None:
            raise ValueError(f"{source}: some pixels are in no annotation (void), but the class set has no "
                             "ignore value")
        label[~covered] = classes.ignore_index
    return as_label(label, classes, source)


def _load_json(path: Path):
    return load_json(path)


# ------------------------------------------------------------------------------------------ labelme
def scan_labelme(src: Path, images: Path | None) -> SourceDataset:
    from .labelme import is_labelme_file, read_labelme_document

    root = src if src.is_dir() else src.parent
    files = [src] if src.is_file() else [p for p in sorted(src.rglob("*.json")) if is_labelme_file(p)]
    if not files:
        raise ValueError(f"{src}: no labelme JSON files (with 'shapes')")
    names: list[str] = []
    items = []
    for path in files:
        try:
            contained(root, path, path, "labelme file")
            doc = load_json(path)
            shapes = need(doc, "shapes", list, str(path))
            width, height = claimed_size(need(doc, "imageWidth", (int, float), str(path)),
                                         need(doc, "imageHeight", (int, float), str(path)), path, "image")
            for n, shape in enumerate(shapes):
                label = need(shape, "label", str, f"{path}: shapes[{n}]")
                if not label.strip():
                    raise ValueError(f"{path}: shapes[{n}] has an empty label")
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
                    image = candidate if candidate is not None and candidate.is_file() else \
                        find_image(Path(image_path).name, images)
            image = image or find_image(path.stem, images, path.parent)
        except ValueError as exc:
            items.append(broken_item(path.stem, path, exc))
            continue

        def read(classes, mapping=None, _path=path, _doc=doc):
            return read_labelme_document(_doc, classes, _path, mapping)

        items.append(SourceItem(path.stem, image, read, str(path), (width, height)))
    description = f"labelme: {len(files)} labelme JSON files, labels {', '.join(repr(n) for n in names[:12])}"
    return SourceDataset("labelme", root, description, file_classes_of(names, items), items)


def file_classes_of(names: list[str], items: list[SourceItem]) -> ClassSet:
    """The classes the files name; when no file could be read at all, the first file's error
    (a clearer reason than "no class")."""
    if not names and items and all(item.error is not None for item in items):
        raise items[0].error
    return classes_from_names([(n, None) for n in names])


# ------------------------------------------------------------------------------------------ labelstudio
def scan_labelstudio(src: Path, images: Path | None) -> SourceDataset:
    """Label Studio's JSON or JSON-MIN export (``qgn.formats.labelstudio``): one item per task with
    an annotation to import; tasks without one, and tasks where annotations were set aside, are
    named in ``warnings``."""
    from .labelstudio import (
        check_task, choose_annotation, read_tasks_file, region_results, task_label_names, task_status,
    )

    path = src if src.is_file() else next(iter(sorted(src.glob("*.json"))), None)
    if path is None:
        raise ValueError(f"{src}: no Label Studio tasks JSON")
    export = read_tasks_file(path)
    names: list[str] = []
    items = []
    by_status: dict[str, list[str]] = {}
    set_aside, without_regions, other_results = [], [], 0
    for index, task in enumerate(export.tasks):
        try:
            check_task(task, f"{path}: task {index}")
        except ValueError as exc:  # reported with the import's other bad items; the rest go on
            items.append(broken_item(f"task-{index}", f"{path} task {index}", exc))
            continue
        task_id = task.get("id", index)
        status = task_status(task)
        if status != "annotated":
            by_status.setdefault(status, []).append(str(task_id))
            continue
        annotation, others = choose_annotation(task)
        regions, other = region_results(annotation)
        other_results += other
        if others:
            set_aside.append(f"{task_id} (took annotation {annotation.get('id')}, set aside {others})")
        if not regions:
            without_regions.append(str(task_id))
            continue
        names += [n for n in task_label_names(task) if n not in names]
        file_name, image = labelstudio_image(task, path, images)
        items.append(SourceItem(Path(file_name).stem, image, _labelstudio_reader(task, path, file_name),
                                f"{path} task {task_id}"))
    warnings = labelstudio_warnings(by_status, set_aside, without_regions, other_results)
    description = (f"labelstudio: Label Studio {export.kind.upper()} export {path.name}, {len(export.tasks)} tasks, "
                   f"{len(items)} with an annotation to import, labels {names[:12]}")
    broken = bool(items) and all(item.error is not None for item in items)
    file_classes = file_classes_of(names, items) if names or broken else None
    return SourceDataset("labelstudio", path.parent, description, file_classes, items, warnings)


def labelstudio_image(task: dict, path: Path, images: Path | None) -> tuple[str, Path | None]:
    """(file name, image file or None) of a task: its Local Files path under the export's folder,
    else by name in ``images`` or beside the export (uploads lose their '<8 hex>-' prefix)."""
    from urllib.parse import unquote

    from .labelstudio import LOCAL_FILES_PREFIX, image_reference

    ref = image_reference(task)
    index = task.get("id", "?")
    relative = unquote(ref.split("?d=", 1)[1]) if ref.startswith(LOCAL_FILES_PREFIX) else None
    file_name = unquote(ref.split("?")[0].rstrip("/").split("/")[-1]) if relative is None else Path(relative).name
    file_name = file_name or f"task-{index}"
    if relative:
        candidate = path.parent / relative
        if candidate.is_file() and is_contained(path.parent, candidate):
            return file_name, candidate
    image = find_image(file_name, images, path.parent, path.parent / "images")
    uploaded = re.match(r"^[0-9a-f]{8}-(.+)$", file_name)  # Label Studio prefixes uploads with 8 hex digits
    if image is None and uploaded:
        image = find_image(uploaded.group(1), images, path.parent, path.parent / "images")
    return file_name, image


def _labelstudio_reader(task: dict, path: Path, file_name: str):
    def read(classes, mapping=None):
        from .labelstudio import task_label

        label = task_label(task, classes, f"{path} task {task.get('id')} ({file_name})", mapping)
        return as_label(label, classes, path)

    return read


def labelstudio_warnings(by_status: dict, set_aside: list, without_regions: list, other_results: int) -> list[str]:
    """One line per kind of task or result an import of a Label Studio export leaves out."""
    said = {"unannotated": "have no annotation", "predictions only": "have predictions but no annotation",
            "skipped": "have only skipped (cancelled) annotations"}
    warnings = [f"{len(ids)} task(s) {said[status]}, not imported: {_ids(ids)}" for status, ids in by_status.items()]
    if set_aside:
        warnings.append(f"{len(set_aside)} task(s) have several annotations; the latest was imported: "
                        + "; ".join(set_aside))
    if without_regions:
        warnings.append(f"{len(without_regions)} task(s) have an annotation without brush, polygon or rectangle "
                        f"results, not imported: {_ids(without_regions)}")
    if other_results:
        warnings.append(f"{other_results} result(s) of other kinds (choices, keypoints, text …) carry no pixels "
                        "and were left out")
    return warnings


def _ids(ids: list[str], shown: int = 20) -> str:
    return "tasks " + ", ".join(ids[:shown]) + (f" … ({len(ids) - shown} more)" if len(ids) > shown else "")


# ------------------------------------------------------------------------------------------ ids / png
def label_folders(src: Path, images: Path | None) -> tuple[Path, list[Path]]:
    """(the folder holding the label PNGs, the folders to find images in) of an ids/png dataset:
    the ``folder`` layout that ``qgn train`` reads (``images/``, ``labels/``, ``classes.txt``)
    has its labels in ``labels/`` and its photos in ``images/``; else the PNGs are the labels and
    the images are in ``--images`` or an ``images/`` folder beside."""
    folder = src if src.is_dir() else src.parent
    if src.is_dir() and (folder / "labels").is_dir():
        return folder / "labels", [d for d in (images, folder / "images") if d is not None]
    return folder, [d for d in (images, folder.parent / "images", folder / "images") if d is not None]


def _inside(path: Path, folders: list[Path]) -> bool:
    resolved = path.resolve()
    return any(folder.is_dir() and resolved.is_relative_to(folder.resolve()) for folder in folders)


def scan_label_folder(src: Path, images: Path | None, name: str) -> SourceDataset:
    from ..classes import parse_classes_txt
    from .ids import read_ids_file
    from .png import read_png_file

    folder = src if src.is_dir() else src.parent
    label_dir, image_dirs = label_folders(src, images)
    if src.is_file():
        masks = [src]
    else:  # never a photo of the image folders
        masks = sorted(p for p in label_dir.rglob("*.png") if not _inside(p, image_dirs))
    if not masks:
        raise ValueError(f"{src}: no label PNGs" + (f" in {label_dir}" if label_dir != folder else ""))
    classes_file = next((p for p in (folder / "classes.txt", folder.parent / "classes.txt") if p.is_file()), None)
    file_classes = None
    if classes_file is not None:
        file_classes = parse_classes_txt(classes_file.read_text(encoding="utf-8"), str(classes_file))
    reader = read_ids_file if name == "ids" else read_png_file
    items = []
    for mask in masks:
        image = find_image(mask.stem, *image_dirs)

        def read(classes, mapping=None, _mask=mask):
            inside_dataset(folder, _mask)
            mode = _mode(_mask)
            if mode in ("RGB", "RGBA", "LA", "PA"):  # a photo (or a colour mask), never a map of ids
                raise ValueError(f"{_mask} is an {mode} image, not a label map of class ids (a photo? label maps "
                                 "are grayscale or palette PNGs)")
            return reader(_mask, classes)

        items.append(SourceItem(mask.stem, image, read, str(mask)))
    where = f", classes from {classes_file}" if classes_file else " (no classes.txt beside them: needs --classes)"
    description = f"{name}: a folder of {len(masks)} label PNGs holding class ids{where}"
    return SourceDataset(name, folder, description, file_classes, items)


# ------------------------------------------------------------------------------------------ detection
def detect_dataset(src: Path) -> str:
    """The import format of ``src`` (see the module docstring); ValueError saying what was looked for."""
    src = Path(src)
    if not src.exists():
        raise FileNotFoundError(f"{src}: no such file or folder")
    if src.is_file():
        if src.suffix.lower() == ".json":
            doc = _load_json(src)
            if isinstance(doc, list):
                return "labelstudio"
            if isinstance(doc, dict) and "annotations" in doc and "images" in doc:
                return "coco"
            if isinstance(doc, dict) and "shapes" in doc:
                return "labelme"
        if src.suffix.lower() == ".png":
            return "png" if _mode(src) == "P" else "ids"
        raise ValueError(f"{src}: cannot tell the format of this file; name it with --format")
    if (src / "SegmentationClass").is_dir():
        return "cvat"
    if (src / "gtFine").is_dir():
        return "cityscapes"
    if (src / "label_colors.txt").is_file() and [p for p in src.glob("*.txt") if p.name != "label_colors.txt"]:
        return "camvid"
    if (src / "annotations").is_dir() and list((src / "annotations").glob("instances_*.json")):
        return "coco"
    jsons = sorted(src.glob("*.json"))
    if jsons:
        doc = _load_json(jsons[0])
        if isinstance(doc, list):
            return "labelstudio"
        if isinstance(doc, dict) and "images" in doc and "annotations" in doc:
            return "coco"
        if isinstance(doc, dict) and "shapes" in doc:
            return "labelme"
    label_dir, image_dirs = label_folders(src, None)
    pngs = sorted(p for p in label_dir.rglob("*.png") if not _inside(p, image_dirs))
    if pngs:
        return "png" if _mode(pngs[0]) == "P" else "ids"
    raise ValueError(f"{src}: found no dataset (looked for SegmentationClass/, gtFine/, label_colors.txt with a list, "
                     "annotations/instances_*.json, labelme or Label Studio JSON, label PNGs)")


def scan_dataset(src, format: str = "auto", images=None) -> SourceDataset:
    """What ``src`` holds, in ``format`` (``auto``: ``detect_dataset``); see the module docstring."""
    src = Path(src)
    images = Path(images) if images else None
    if images is not None and not images.is_dir():
        raise FileNotFoundError(f"--images {images}: no such folder")
    name = detect_dataset(src) if format == "auto" else format
    if name not in IMPORT_FORMATS:
        raise ValueError(f"unknown import format {name!r}; choose from auto, {', '.join(IMPORT_FORMATS)}")
    if not src.exists():
        raise FileNotFoundError(f"{src}: no such file or folder")
    if name in ("cvat", "voc"):
        return scan_cvat(src, images, name)
    if name == "cityscapes":
        return scan_cityscapes(src, images)
    if name == "camvid":
        return scan_camvid(src, images)
    if name == "coco":
        return scan_coco(src, images)
    if name == "labelme":
        return scan_labelme(src, images)
    if name == "labelstudio":
        return scan_labelstudio(src, images)
    return scan_label_folder(src, images, name)
