"""``fiftyone``: a FiftyOne *ImageSegmentationDirectory* (``fo.types.ImageSegmentationDirectory``),
the layout FiftyOne reads semantic masks from, with the class names as FiftyOne's mask targets.

Files, in the export folder::

    labels/<name>.png     the mask: class id + 1 per pixel, 0 where nothing is labelled (void) —
                          FiftyOne treats 0 as background; 8-bit, 16-bit past 254 classes
    data/<name><ext>      the image, with ``images="copy"`` or ``"link"``
    data.json             FiftyOne's data manifest of every image: ``{"<name><ext>": path relative
                          to the folder}``, into ``data/`` or to where the image lies; an export
                          into the folder again keeps the entries of masks it left in ``labels/``
    mask_targets.json     ``{"1": "sky", "2": "building", …}``: ``dataset.default_mask_targets``
    color_scheme.json     ``{"default_mask_targets_colors": [{"intTarget": 1, "color": "#808080"}, …]}``:
                          the project's class colours, ``fo.ColorScheme(**…)`` for the App

FiftyOne matches a mask to its image by the name without extension. Its importer looks for
``data/`` unless told ``data_path="data.json"``, which works whether or not the images were
copied. In FiftyOne::

    ds = fo.Dataset.from_dir(dataset_dir="out/fiftyone", dataset_type=fo.types.ImageSegmentationDirectory,
                             data_path="data.json", label_field="ground_truth")
    ds.default_mask_targets = json.load(open("out/fiftyone/mask_targets.json"))
    ds.app_config.color_scheme = fo.ColorScheme(**json.load(open("out/fiftyone/color_scheme.json")))
    ds.save()

Import (``qgn import DIR``) reads the same layout, including one FiftyOne exported
(``ImageSegmentationDirectoryExporter``): the classes come from ``mask_targets.json`` (value →
name; a value it does not name is an error of the masks that hold it; 0 unnamed, or named
``background``, is void, and every value it names otherwise is a class, ``background`` too), or
without it from ``--classes`` in this export's numbering (value = class id + 1). Images are found
in ``data/``, through ``data.json`` (entries inside the dataset folder only, else by name in
``--images``), or in ``--images``.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from ..classes import ClassSet, check_class_name
from ..fileio import atomic_write_bytes
from ..quadtree import NUM_LEVELS
from ..quadtree.label_io import find_classes_file, read_label, write_label_png
from .base import DatasetWriter, ExportItem, Format, as_label, out_file, place_image
from .guards import OutsideDatasetError, contained, load_json
from .source import (
    AmbiguousImageError, DatasetProbe, SourceDataset, SourceItem, broken_item, classes_from_names, find_image,
    index_reader, inside_dataset, is_file, note_void, png_files,
)

LABELS_DIR, DATA_DIR = "labels", "data"
DATA_MANIFEST, MASK_TARGETS, COLOR_SCHEME = "data.json", "mask_targets.json", "color_scheme.json"
MAX_VALUE = 65535  # a 16-bit mask
MAX_CLASS_FILE_BYTES = 4 << 20  # mask targets or colours of every 16-bit value fit in ~2 MB
MAX_MANIFEST_BYTES = 64 << 20  # a data.json of 300,000 images
UNNAMED = "(mask value"  # how a value the mask targets do not name is called: no class matches it
# Mask value 0 when the mask targets do not name it: FiftyOne's background, what this export writes for
# void. It reads as the ignore value whatever the classes are called (a class named "background" is
# another value, 1 and up).
UNLABELLED = f"{UNNAMED} 0: unlabelled)"
_WHOLE = re.compile(r"[0-9]{1,5}")  # a mask value as mask_targets.json writes it (ASCII digits: "²".isdigit())


# ------------------------------------------------------------------------------------------- export
def mask_values(label: np.ndarray, classes: ClassSet) -> np.ndarray:
    """(H, W) uint8 (uint16 past 254 classes) FiftyOne mask of a checked label map: class id + 1,
    0 at the ignore value."""
    dtype = np.uint8 if classes.num_classes < 255 else np.uint16
    mask = label.astype(dtype) + dtype(1)
    if classes.ignore_index is not None:
        mask[label == classes.ignore_index] = 0
    return mask


def mask_targets(classes: ClassSet) -> dict[str, str]:
    """FiftyOne's mask targets of ``classes``: ``{"1": first class name, …}`` (JSON keys are
    strings; FiftyOne takes digit strings as integer targets)."""
    return {str(i + 1): name for i, name in enumerate(classes.names)}


def color_scheme(classes: ClassSet) -> dict:
    """The keyword arguments of ``fo.ColorScheme`` that colour each mask value as its class."""
    return {"default_mask_targets_colors": [{"intTarget": i + 1, "color": "#%02x%02x%02x" % tuple(colour)}
                                            for i, colour in enumerate(classes.palette)]}


def check_fiftyone_classes(classes: ClassSet) -> None:
    """ValueError when ``classes`` are more than a FiftyOne mask's values can number."""
    if classes.num_classes >= MAX_VALUE:
        raise ValueError(f"FiftyOne masks hold values up to {MAX_VALUE}: {classes.num_classes} classes do not fit")


class FiftyOneWriter(DatasetWriter):
    """``labels/<name>.png`` per image and the image in ``data/`` (copy or link); ``finish``
    writes the ``data.json`` manifest (every image: in ``data/`` or where it lies) and the class files."""

    takes_images = True
    uses_images = True

    def __init__(self, classes: ClassSet, out_dir: Path, levels: int = NUM_LEVELS):
        check_fiftyone_classes(classes)
        super().__init__(None, classes, out_dir, levels)
        self.manifest: dict[str, str] = {}

    def add(self, item: ExportItem) -> list[Path]:
        from .labelme import relative_image_path

        mask = out_file(self.out_dir / LABELS_DIR, f"{item.name}.png")
        write_label_png(mask, mask_values(item.label, self.classes), indexed=False)
        written = [mask]
        image = Path(item.image) if item.image is not None else None
        if image is None:  # unknown: named as COCO names it, so the mask still loads
            self.manifest[f"{item.name}.png"] = f"{item.name}.png"
            return written
        file_name = f"{item.name}{image.suffix.lower()}"
        if image.is_file() and self.images in ("copy", "link"):
            written.append(place_image(image, self.out_dir / DATA_DIR, file_name, self.images))
            self.manifest[file_name] = f"{DATA_DIR}/{file_name}"
        else:  # where it is (or was: a moved image is named where the project last saw it)
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self.manifest[file_name] = relative_image_path(image, self.out_dir)
        return written

    def mark(self):
        return len(self.manifest)

    def undo(self, mark, item: ExportItem, paths: list[Path]) -> None:
        super().undo(mark, item, paths)
        for key in list(self.manifest)[mark:]:
            del self.manifest[key]

    def _kept_entries(self) -> dict[str, str]:
        """The entries of an earlier export's ``data.json`` in this folder whose masks are still in
        ``labels/`` and not written now: FiftyOne's importer fails on a mask its manifest lacks."""
        try:
            earlier = load_json(self.out_dir / DATA_MANIFEST, MAX_MANIFEST_BYTES)
        except (OSError, ValueError):
            return {}
        written = {str(Path(key).with_suffix("")) for key in self.manifest}
        return {key: value for key, value in (earlier.items() if isinstance(earlier, dict) else ())
                if isinstance(key, str) and isinstance(value, str) and str(Path(key).with_suffix("")) not in written
                and (self.out_dir / LABELS_DIR / f"{Path(key).with_suffix('')}.png").is_file()}

    def finish(self) -> list[Path]:
        files = {DATA_MANIFEST: self._kept_entries() | self.manifest, MASK_TARGETS: mask_targets(self.classes),
                 COLOR_SCHEME: color_scheme(self.classes)}
        written = []
        for name, doc in files.items():
            path = out_file(self.out_dir, name)
            atomic_write_bytes(path, json.dumps(doc, indent=1, ensure_ascii=False).encode("utf-8"))
            written.append(path)
        return written


# ------------------------------------------------------------------------------------------- import
def read_mask_targets(path: Path) -> list[str]:
    """The names of mask values 0…max of a ``mask_targets.json`` (``{value: name}``), values it
    does not name as a placeholder no class matches, 0 unnamed as ``UNLABELLED`` (void:
    ``unlabelled_positions``); ValueError naming the file and the entry."""
    doc = load_json(path, MAX_CLASS_FILE_BYTES)
    if not isinstance(doc, dict) or not doc:
        raise ValueError(f"{path}: expected FiftyOne mask targets, an object of mask value → class name")
    targets: dict[int, str] = {}
    for key, name in doc.items():
        text = str(key).strip()
        if not _WHOLE.fullmatch(text) or int(text) > MAX_VALUE:
            raise ValueError(f"{path}: mask value {key!r} is not a whole number in 0..{MAX_VALUE} (RGB masks are "
                             "not read: export them as integer masks)")
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"{path}: mask value {key} names {name!r}; expected a class name")
        check_class_name(name, f"{path}: mask value {key}", "the name")
        if int(text) in targets:  # "1" and "01": the last silently won
            raise ValueError(f"{path}: mask value {key!r} is value {int(text)} again (named {targets[int(text)]!r} "
                             "already); name each value once")
        targets[int(text)] = name
    top = max(targets)
    return [targets.get(v, UNLABELLED if v == 0 else f"{UNNAMED} {v}: not in {path.name})") for v in range(top + 1)]


def unlabelled_positions(names: list[str]) -> list[int]:
    """The mask values that are FiftyOne's unannotated area: 0, when the mask targets do not name it
    or name it with a void name (``background``); any value the targets name otherwise is a class."""
    from ..classes import is_void_name

    return [0] if names[0] == UNLABELLED or is_void_name(names[0]) else []


def numbered_reader(mask: Path, root: Path):
    """A reader of a mask without mask targets: value v is class v - 1 of the classes given, 0 void."""

    def read(classes: ClassSet, mapping=None) -> np.ndarray:
        inside_dataset(root, mask)
        raw = read_label(mask).astype(np.int64)
        if raw.max() > classes.num_classes:
            raise ValueError(f"{mask}: value {int(raw.max())} is beyond the {classes.num_classes} classes given "
                             f"(value = class id + 1); give the dataset's {MASK_TARGETS} or the right --classes")
        if classes.ignore_index is None and (raw == 0).any():
            raise ValueError(f"{mask} has unlabelled (0) pixels but the class set has no ignore value")
        label = raw - 1
        unlabelled = raw == 0
        label[unlabelled] = classes.ignore_index if classes.ignore_index is not None else 0
        note_void(UNLABELLED, int(np.count_nonzero(unlabelled)))
        return as_label(label, classes, mask)

    return read


def _manifest_images(root: Path, images: Path | None) -> tuple[dict[str, Path], list[str]]:
    """{name without extension: image} of ``data.json`` (entries inside ``root``; others by file
    name in ``images``), and warnings about the manifest."""
    manifest = root / DATA_MANIFEST
    if not manifest.is_file():
        return {}, []
    try:
        doc = load_json(manifest, MAX_MANIFEST_BYTES)
        if not isinstance(doc, dict):
            raise ValueError(f"{manifest}: expected FiftyOne's data manifest, an object of file name → path")
    except ValueError as exc:
        return {}, [f"{exc}; images are looked for in {DATA_DIR}/ and --images instead"]
    found: dict[str, Path] = {}
    outside = 0
    for key, value in doc.items():
        if not isinstance(value, str):
            continue
        try:
            path = contained(root, value, f"{manifest}: {key!r}", "image")
        except OutsideDatasetError:
            outside += 1  # never followed out of the dataset: looked up by name in --images
            try:
                path = find_image(Path(value).name, images)
            except AmbiguousImageError:
                continue  # its mask's lookup by name reports it
        if path is not None and is_file(path):
            found[str(Path(key).with_suffix(""))] = path
    warnings = [f"{manifest}: {outside} image(s) lie outside the dataset folder and are not read from there "
                "(name their folder with --images)"] if outside and images is None else []
    return found, warnings


def _target_colours(path: Path) -> tuple[dict[int, tuple[int, int, int]], list[str]]:
    """{mask value: (r, g, b)} of a ``color_scheme.json`` (``default_mask_targets_colors``), and a
    warning when it cannot be read (the classes then take the default palette); entries that are
    not {intTarget, "#rrggbb"} are passed over."""
    if not path.is_file():
        return {}, []
    try:
        doc = load_json(path, MAX_CLASS_FILE_BYTES)
    except (OSError, ValueError) as exc:
        return {}, [f"{exc}; the classes take the default colours"]
    colours = {}
    entries = doc.get("default_mask_targets_colors") if isinstance(doc, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        value = entry.get("intTarget") if isinstance(entry, dict) else None
        colour = entry.get("color") if isinstance(entry, dict) else None
        if isinstance(value, int) and isinstance(colour, str) and len(colour) == 7 and colour[0] == "#":
            try:
                colours[value] = tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))
            except ValueError:
                continue
    return colours, []


def scan_fiftyone(src: Path, images: Path | None) -> SourceDataset:
    root = src if src.is_dir() else src.parent
    labels = root / LABELS_DIR
    masks = png_files(labels) if labels.is_dir() else []  # x.PNG too, on every system
    if not masks:
        raise ValueError(f"{src}: no masks in {labels} (a FiftyOne ImageSegmentationDirectory keeps them there)")
    names = read_mask_targets(root / MASK_TARGETS) if (root / MASK_TARGETS).is_file() else None
    manifest, warnings = _manifest_images(root, images)
    items = []
    for mask in masks:
        name = mask.relative_to(labels).with_suffix("").as_posix()
        try:
            image = manifest.get(name) or find_image(name, root / DATA_DIR, images)
        except AmbiguousImageError as exc:
            items.append(broken_item(name, mask, exc))
            continue
        read = index_reader(mask, names, root, void=unlabelled_positions(names)) if names is not None \
            else numbered_reader(mask, root)
        items.append(SourceItem(name, image, read, str(mask)))
    if names is not None:
        colours, colour_warnings = _target_colours(root / COLOR_SCHEME)
        warnings += colour_warnings
        try:
            void = unlabelled_positions(names)
            file_classes = classes_from_names([(n, colours.get(v)) for v, n in enumerate(names)
                                               if not (n.startswith(UNNAMED) and v not in void)], void=void)
        except ValueError as exc:
            raise ValueError(f"{root / MASK_TARGETS}: {exc}") from None
        where = f"classes from {MASK_TARGETS}"
    else:
        file_classes, where = None, f"no {MASK_TARGETS}: values are class id + 1 (of --classes or the project's)"
    description = f"fiftyone: an ImageSegmentationDirectory of {len(masks)} mask{'' if len(masks) == 1 else 's'}, {where}"
    return SourceDataset("fiftyone", root, description, file_classes, items, warnings)


def is_fiftyone_dataset(probe: DatasetProbe) -> bool:
    """``labels/`` with FiftyOne's ``mask_targets.json`` or ``data.json``, or beside ``data/`` when
    no ``classes.txt`` says the masks hold bare class ids (the ``ids`` layout, read unshifted)."""
    if not probe.is_folder_with(LABELS_DIR):
        return False
    src = probe.src
    if (src / MASK_TARGETS).is_file() or (src / DATA_MANIFEST).is_file():
        return True
    return probe.is_folder_with(DATA_DIR) and find_classes_file(src / LABELS_DIR) is None


FORMAT = Format("fiftyone", "FiftyOne ImageSegmentationDirectory (masks + mask targets)", ".png", None, None,
                writer=FiftyOneWriter, image_names=True, scan=scan_fiftyone, is_dataset=is_fiftyone_dataset,
                check_classes=check_fiftyone_classes)
