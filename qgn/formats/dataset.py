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
labelstudio a Label Studio tasks JSON (a list of tasks with brushlabels)
png, ids    a folder of label PNGs (palette / grayscale ids); classes from ``--classes`` or a
            ``classes.txt`` beside them; images in ``--images`` or a sibling ``images/`` folder.
            The ``folder`` dataset ``qgn train`` reads (``images/``, ``labels/``, ``classes.txt``)
            imports as it is: labels from ``labels/``; a photo is never read as a label map
=========== ===================================================================================

Images are found by each format's own convention, else in ``images`` by name (the stem).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw, UnidentifiedImageError

from ..classes import UNMATCHED, VOID, VOID_NAMES, ClassSet, match_class_names, normalize_class_name, unmatched_message
from .base import as_label, colours_to_values, read_rgb

IMPORT_FORMATS = ("cvat", "voc", "cityscapes", "camvid", "coco", "labelme", "labelstudio", "ids", "png")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm")


@dataclass
class SourceItem:
    """One mask of a dataset. ``read(classes, mapping=None)`` → (H, W) label of ``classes``."""

    name: str
    image: Path | None
    read: Callable[..., np.ndarray]
    source: str = ""


@dataclass
class SourceDataset:
    format: str
    root: Path
    description: str
    file_classes: ClassSet | None
    items: list[SourceItem] = field(default_factory=list)


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
    """The image called ``name`` (a relative path without extension, or a file name) in ``folders``."""
    for folder in folders:
        if folder is None or not Path(folder).is_dir():
            continue
        direct = Path(folder) / name
        if direct.suffix.lower() in IMAGE_EXTENSIONS and direct.is_file():
            return direct
        for ext in IMAGE_EXTENSIONS:
            for candidate in (Path(folder) / f"{name}{ext}", Path(folder) / f"{name}{ext.upper()}"):
                if candidate.is_file():
                    return candidate
        stem = Path(name).stem if Path(name).suffix.lower() in IMAGE_EXTENSIONS else Path(name).name
        for candidate in sorted(Path(folder).glob(f"{stem}.*")):
            if candidate.suffix.lower() in IMAGE_EXTENSIONS:
                return candidate
    return None


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
        items.append(SourceItem(Path(rel).name, image, _cvat_reader(mask, labelmap), str(mask)))
    nested = " (in sub-folders)" if any("/" in m.relative_to(masks_dir).as_posix() for m in masks) else ""
    description = (f"{name}: CVAT/Pascal-VOC segmentation export, {len(masks)} masks{nested}, "
                   f"{len(entries)} labels in labelmap.txt")
    return SourceDataset(name, root, description, classes_from_names(entries), items)


def _cvat_reader(mask: Path, labelmap: Path):
    def read(classes: ClassSet, mapping=None) -> np.ndarray:
        from .cvat import decode_with_labelmap

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
        items.append(SourceItem(Path(own).stem if own else stem, image, _index_reader(mask, names, official), str(mask)))
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


def _index_reader(mask: Path, names: list[str], cityscapes_void: bool = False):
    """A reader of an index mask whose value v means ``names[v]``."""

    def read(classes: ClassSet, mapping=None) -> np.ndarray:
        from ..quadtree.label_io import read_label

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
            image = image if image.is_file() else find_image(Path(image_rel).stem, images)
            items.append(SourceItem(Path(mask_rel).stem, image, _camvid_reader(mask, order, colours_file), str(mask)))
    description = (f"camvid: CamVid (Datumaro) dataset, {len(items)} masks in {', '.join(p.name for p in lists)}, "
                   f"{len(order)} labels in label_colors.txt")
    return SourceDataset("camvid", root, description, classes_from_names(order), items)


def _camvid_reader(mask: Path, order, colours_file: Path):
    def read(classes: ClassSet, mapping=None) -> np.ndarray:
        names = [n for n, _ in order]
        if not mask.is_file():
            raise FileNotFoundError(f"{mask}: no such mask (listed in the CamVid list file)")
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
    doc = _load_json(path)
    if not isinstance(doc, dict) or not {"images", "annotations", "categories"} <= set(doc):
        raise ValueError(f"{path} is not a COCO instances file (needs images, annotations and categories)")
    categories = {int(c["id"]): str(c["name"]) for c in doc["categories"]}
    by_image: dict[int, list[dict]] = {}
    for ann in doc["annotations"]:
        by_image.setdefault(int(ann["image_id"]), []).append(ann)
    root = path.parent.parent if path.parent.name == "annotations" else path.parent
    items = []
    for image in doc["images"]:
        file_name = str(image["file_name"])
        found = find_image(file_name, images, root / "images", root) or find_image(Path(file_name).name, images)
        items.append(SourceItem(Path(file_name).stem, found,
                                _coco_reader(image, by_image.get(int(image["id"]), []), categories, path), str(path)))
    entries = [(name, None) for _, name in sorted(categories.items())]
    description = (f"coco: COCO instances file {path.name}, {len(doc['images'])} images, "
                   f"{len(doc['annotations'])} annotations, {len(categories)} categories")
    return SourceDataset("coco", root, description, classes_from_names(entries), items)


def _coco_reader(image: dict, annotations: list[dict], categories: dict[int, str], path: Path):
    def read(classes: ClassSet, mapping=None) -> np.ndarray:
        from .coco import decode_rle

        height, width = int(image["height"]), int(image["width"])
        names = [categories.get(int(a["category_id"]), str(a["category_id"])) for a in annotations]
        values = values_for(names, classes, mapping, path)
        label = np.full((height, width), VOID, np.int64)
        for ann, name, value in zip(annotations, names, values):
            seg = ann.get("segmentation")
            if isinstance(seg, dict):
                mask = decode_rle(seg, path)
            elif isinstance(seg, list):
                canvas = Image.new("L", (width, height), 0)
                for polygon in seg:
                    ImageDraw.Draw(canvas).polygon([float(v) for v in polygon], outline=1, fill=1)
                mask = np.asarray(canvas, bool)
            else:
                raise ValueError(f"{path}: annotation {ann.get('id')} has no segmentation")
            if mask.shape != (height, width):
                raise ValueError(f"{path}: annotation {ann.get('id')} is {mask.shape[1]}×{mask.shape[0]}, "
                                 f"its image {width}×{height}")
            if value == UNMATCHED:
                raise ValueError(unmatched_message(name, classes, path))
            label[mask] = value
        return _void_rest(label, classes, f"{path} image {image.get('file_name')}")

    return read


def _void_rest(label: np.ndarray, classes: ClassSet, source) -> np.ndarray:
    if (label == VOID).any():
        if classes.ignore_index is None:
            raise ValueError(f"{source}: some pixels are in no annotation (void), but the class set has no "
                             "ignore value")
        label[label == VOID] = classes.ignore_index
    return as_label(label, classes, source)


def _load_json(path: Path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not a JSON file: {exc}") from None


# ------------------------------------------------------------------------------------------ labelme
def scan_labelme(src: Path, images: Path | None) -> SourceDataset:
    from .labelme import is_labelme_file, read_labelme_file

    files = [src] if src.is_file() else [p for p in sorted(src.rglob("*.json")) if is_labelme_file(p)]
    if not files:
        raise ValueError(f"{src}: no labelme JSON files (with 'shapes')")
    names: list[str] = []
    items = []
    for path in files:
        doc = _load_json(path)
        for shape in doc.get("shapes", []):
            if shape.get("label") not in names:
                names.append(shape.get("label"))
        image_path = doc.get("imagePath")
        image = None
        if image_path:
            candidate = (path.parent / image_path)
            image = candidate if candidate.is_file() else find_image(Path(image_path).name, images)
        image = image or find_image(path.stem, images, path.parent)

        def read(classes, mapping=None, _path=path):
            return read_labelme_file(_path, classes, mapping)

        items.append(SourceItem(path.stem, image, read, str(path)))
    description = f"labelme: {len(files)} labelme JSON files, labels {', '.join(repr(n) for n in names[:12])}"
    return SourceDataset("labelme", src if src.is_dir() else src.parent, description,
                         classes_from_names([(n, None) for n in names]), items)


# ------------------------------------------------------------------------------------------ labelstudio
def scan_labelstudio(src: Path, images: Path | None) -> SourceDataset:
    from .labelstudio import task_label

    path = src if src.is_file() else next(iter(sorted(src.glob("*.json"))), None)
    if path is None:
        raise ValueError(f"{src}: no Label Studio tasks JSON")
    tasks = _load_json(path)
    if not isinstance(tasks, list):
        raise ValueError(f"{path} is not a Label Studio tasks export (a JSON list of tasks)")
    names: list[str] = []
    items = []
    for index, task in enumerate(tasks):
        for ann in (task.get("annotations") or [])[:1]:
            for r in ann.get("result", []):
                for n in r.get("value", r).get("brushlabels") or []:
                    if n not in names:
                        names.append(n)
        ref = str((task.get("data") or {}).get("image", ""))
        file_name = ref.split("?d=")[-1].split("/")[-1] or f"task-{task.get('id', index)}"
        image = find_image(file_name, images, path.parent)
        uploaded = re.match(r"^[0-9a-f]{8}-(.+)$", file_name)  # Label Studio prefixes uploads with 8 hex digits
        if image is None and uploaded:
            image = find_image(uploaded.group(1), images, path.parent)

        def read(classes, mapping=None, _task=task, _name=file_name):
            label = task_label(_task, classes, f"{path} task {_task.get('id')}", mapping)
            if label is None:
                raise ValueError(f"{path} task {_task.get('id')} ({_name}) has no brushlabels result")
            return as_label(label, classes, path)

        items.append(SourceItem(Path(file_name).stem, image, read, f"{path} task {task.get('id', index)}"))
    description = f"labelstudio: Label Studio tasks {path.name}, {len(tasks)} tasks, brush labels {names[:12]}"
    return SourceDataset("labelstudio", path.parent, description, classes_from_names([(n, None) for n in names]),
                         items)


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
