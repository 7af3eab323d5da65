"""``cityscapes``: the Cityscapes tree, as Cityscapes ships it and Datumaro reads and writes it.

Layout (Datumaro datumaro/plugins/data_formats/cityscapes.py ``CityscapesPath``)::

    gtFine/<split>/<city>/<stem>_gtFine_labelIds.png       8-bit label ids
    gtFine/<split>/<city>/<stem>_gtFine_instanceIds.png    the same ids (no instances: each region is
                                                           "stuff", value = label id, as Datumaro writes)
    gtFine/<split>/<city>/<stem>_gtFine_color.png          RGB, the class colours
    gtFine/<split>/<city>/<stem>_gtFine_labelTrainIds.png  train ids 0..18, 255 void (Cityscapes classes only)
    leftImg8bit/<split>/<city>/<stem>_leftImg8bit<ext>     the image, copied byte for byte
    label_colors.txt                                       custom classes only: "r g b name" per label
    classes.json                                           the project's classes (``ClassSet.to_json``:
                                                           names, colours, ignore value)

``<split>`` is ``train`` unless the export names another (``qgn export --split``, the app's export
dialog; ``base.check_split``): torchvision's ``Cityscapes`` and ``qgn.data.cityscapes`` read
``train`` by default, and the cityscapesScripts, mmsegmentation and torchvision know the splits
train, val and test (Datumaro takes any folder as a subset). File names follow cityscapesScripts (helpers/csHelpers.py
``getCsFileInfo``: ``<city>_<sequenceNb>_<frameNb>_<type>[_<type2>].<ext>``, the city also naming
the folder): a Cityscapes stem (``frankfurt_000000_000294``) is kept; any other becomes
``<city>_000000_<frame>``, the city being the image's folder name in lower-case letters and digits
(``qgn`` without one) and the frame counting from 0, and ``image_names.tsv`` lists
``cityscapes_name<TAB>image`` for those (not a .csv, which Datumaro would probe as AVA).
``leftImg8bit`` images are PNG, as the scripts and
``qgn.data.cityscapes`` look for them (a PNG is copied byte for byte, another format re-encoded).

Two cases, so that no reader can take one for the other:

* every class is one of Cityscapes' 19 train classes (``traffic sign`` / ``trafficsign`` …) in its
  official colour: the official label ids (cityscapesScripts labels.py; Datumaro
  ``CITYSCAPES_LABEL_MAP`` lists them in id order), void → 0 "unlabeled", and ``labelTrainIds``
  (void 255). Read as Cityscapes data (``scan_cityscapes`` without ``label_colors.txt``), that is
  exactly the classes and colours written (``official_ids``).
* otherwise — other names, and also Cityscapes names without a train id (``parking``) or in other
  colours, which Cityscapes data would read as void or refuse (the ``_color.png`` proves its ids by
  the official colours): ``label_colors.txt`` with ``0 0 0 background`` first, label ids = class id
  + 1 and void = 0, which is how Datumaro numbers the lines (``qgn.formats.label_colors``); no
  ``labelTrainIds`` (Datumaro would read those through the Cityscapes train table instead).

Neither case says all of a project's classes: Cityscapes ids name the 19 train classes whichever of
them a project has, and a ``label_colors.txt`` name holds no space (Datumaro's ``parse_label_map``
takes the 4th token as the name and the tokens before the last as the colour, so ``traffic light``
is written ``traffic_light``; the exact names go to Datumaro's ``dataset_meta.json``,
``qgn.formats.label_colors``) and no ignore value. So the export also writes ``classes.json``, which
no Cityscapes reader looks at: Datumaro reads ``dataset_meta.json`` or ``label_colors.txt`` at the
root, cityscapesScripts and torchvision only the two trees (and not a ``classes.txt``: Datumaro's
detection takes a root ``*.txt`` of lines ``road 128 64 128`` for an ImageNet-txt annotation file).
An import into a new project takes its classes from it when it agrees with the tree (official case:
Cityscapes train classes in their colours; else the same labels and colours as the label map in its
order), and says so when it does not. Into an existing project nothing changes: masks are read by name.

A class named like void (``unlabeled``, Cityscapes' id 0, or ``background``, ``void`` …) is refused
before anything is written: readers would take its pixels for void. Reading Cityscapes data into
the train classes, each item's import line counts the pixels of labels read as void (``parking`` …).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np

from ..classes import ClassSet, normalize_class_name
from ..fileio import atomic_write_bytes
from ..label_map import table_index
from ..quadtree import NUM_LEVELS
from ..quadtree.label_io import encode_label_png
from .base import (
    DatasetWriter, ExportItem, Format, check_export_file, out_file, png_bytes, same_json,
    read_rgb,
)
from .label_colors import (
    file_name, label_colors_entries, label_files, label_order, read_label_map, void_positions, write_label_files,
)
from .png_bands import encode_png
from .source import (
    SourceDataset, SourceItem, classes_from_names, find_image, index_reader, inside_dataset,
)

# the project's classes (``ClassSet.to_json``) for a new project: JSON, not a classes.txt, whose lines
# ("road 128 64 128") Datumaro's detection takes for an ImageNet-txt annotation file
CLASSES_JSON = "classes.json"
DEFAULT_SPLIT = "train"  # what Cityscapes readers open when told no split (see the module docstring)
# Cityscapes label ids 0..33 (cityscapesScripts labels.py; Datumaro cityscapes.py CITYSCAPES_LABEL_MAP).
LABEL_NAMES = (
    "unlabeled", "ego vehicle", "rectification border", "out of roi", "static", "dynamic", "ground", "road",
    "sidewalk", "parking", "rail track", "building", "wall", "fence", "guard rail", "bridge", "tunnel", "pole",
    "polegroup", "traffic light", "traffic sign", "vegetation", "terrain", "sky", "person", "rider", "car",
    "truck", "bus", "caravan", "trailer", "train", "motorcycle", "bicycle",
)
# Their colours (the same sources), for checking a labelIds mask against its _color.png.
LABEL_COLOURS = (
    (0, 0, 0), (0, 0, 0), (0, 0, 0), (0, 0, 0), (0, 0, 0), (111, 74, 0), (81, 0, 81), (128, 64, 128),
    (244, 35, 232), (250, 170, 160), (230, 150, 140), (70, 70, 70), (102, 102, 156), (190, 153, 153),
    (180, 165, 180), (150, 100, 100), (150, 120, 90), (153, 153, 153), (153, 153, 153), (250, 170, 30),
    (220, 220, 0), (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142),
    (0, 0, 70), (0, 60, 100), (0, 0, 90), (0, 0, 110), (0, 80, 100), (0, 0, 230), (119, 11, 32),
)
_CITY_STEM = re.compile(r"^([a-z]+(?:_[a-z]+)*)_\d{6}_\d{6}$")


def official_ids(classes: ClassSet) -> tuple[list[int], list[int]] | None:
    """(label ids, train ids) of the classes when they are Cityscapes train classes (no two the same) in
    their official colours, else None. Only such classes are written with Cityscapes' own ids and no
    ``label_colors.txt``: a reader of Cityscapes data (``scan_cityscapes`` too) gets back from those
    exactly the classes and colours it wrote, whereas it reads a label without a train id as void and
    takes another colour for ids numbered by another label map."""
    from ..data.cityscapes import CITYSCAPES_TRAIN_CLASSES

    table = {normalize_class_name(name): (label, train, tuple(rgb)) for label, train, name, rgb in
             CITYSCAPES_TRAIN_CLASSES}
    found = [table.get(normalize_class_name(n)) for n in classes.names]
    if None in found or len({f[0] for f in found}) != len(found):
        return None
    if any(tuple(int(c) for c in rgb) != f[2] for rgb, f in zip(classes.palette, found)):
        return None
    return [f[0] for f in found], [f[1] for f in found]


def city_of(stem: str) -> str:
    found = _CITY_STEM.match(stem)
    return found.group(1) if found else "default"


def classes_json_data(classes: ClassSet) -> bytes:
    """The ``classes.json`` of an export of ``classes`` (``ClassSet.to_json``)."""
    return json.dumps(classes.to_json(), ensure_ascii=False, indent=1).encode("utf-8")


class CityscapesWriter(DatasetWriter):
    takes_split = True
    uses_images = True

    def __init__(self, classes: ClassSet, out_dir: Path, levels: int = NUM_LEVELS):
        super().__init__(None, classes, out_dir, levels)
        self.split = DEFAULT_SPLIT
        official = official_ids(classes)
        self.classes_text = classes_json_data(classes)
        # before label_colors.txt is written: a classes.json of another export refused with its tree
        # as it was (a label_colors.txt added to an export of Cityscapes' own ids renumbered its masks)
        self.kept = check_export_file(out_dir / CLASSES_JSON, self.classes_text, same_json)  # there: left as is
        self.label_colors: list[Path] = []
        if official is None:
            self.label_colors += write_label_files(out_dir, classes, "Cityscapes export")[1]
            self.ids, self.trains = list(range(1, classes.num_classes + 1)), None
        else:
            self.ids, self.trains = official
        self.colours = np.zeros((max(self.ids) + 1, 3), np.uint8)
        for i, rgb in zip(self.ids, classes.palette):
            self.colours[i] = rgb
        self.renamed: list[tuple[str, str]] = []  # (cityscapes name, the image's own name)
        self._used: dict[str, None] = {}  # a set in insertion order (``undo`` drops the last ones)
        self._frames: dict[str, int] = {}
        self._earlier: dict[str, str] | None = None  # ``_earlier_rows``
        self._planned: dict[str, tuple[str, str, str | None]] = {}  # ``plan``: item -> (city, core, image name)
        self._order: dict[str, int] = {}  # cityscapes name -> its item's place in the plan (image_names.tsv's order)

    @classmethod
    def folder_files(cls, classes: ClassSet, out_dir: Path):
        files = [(Path(out_dir) / CLASSES_JSON, classes_json_data(classes), same_json)]
        if official_ids(classes) is None:
            files += label_files(out_dir, classes, "Cityscapes export")[1]
        return files

    def add(self, item: ExportItem) -> list[Path]:
        city, core = self._name(item)
        written = self.label_colors + _write_item(item, self.classes, self.out_dir, self.ids, self.trains,
                                                  self.colours, self.split, city, core)
        self.label_colors = []
        return written

    def plan(self, names, images=None) -> None:
        """Every item's name, before any is written, in the order of the export: an image keeps
        the frame the earlier export's ``image_names.tsv`` gave its file (the same city and image
        name; an image named like a frame too, where a row renamed it); else an image named like a
        frame keeps its name unless an earlier row or an item before it holds it; the others take
        the next frame of their city that no earlier row and no item before holds - as a first
        export always named them. So frames never shift: an image that fails or is not written
        this time keeps its frame (and its row, ``keep``), and no other image is written over its
        earlier files."""
        if images is None:  # the cities (the images' folders) unknown: named as they are written
            return
        images = list(images)
        rows = self._earlier_rows()
        taken = set(rows)
        earlier: dict[tuple[str, str], list[str]] = {}  # (city, image name) -> its earlier frames, in order
        for row, shown in rows.items():
            earlier.setdefault((city_of(row), shown), []).append(row)
        frames: dict[str, int] = {}
        for index, (name, image) in enumerate(zip(names, images)):
            if name in self._planned:
                continue  # the same name again: named as it is written (``_name``)
            own = _CITY_STEM.match(name) is not None
            city = self._city(image)  # a renamed image's city: its folder's (``_name``)
            shown = Path(image).name if image is not None else name
            found = earlier.get((city, shown))
            if found:
                core = found.pop(0)
            elif own and name not in taken:
                city, core, shown = city_of(name), name, None
            else:
                frame = frames.get(city, 0)
                while f"{city}_000000_{frame:06d}" in taken:
                    frame += 1
                frames[city] = frame + 1
                core = f"{city}_000000_{frame:06d}"
            taken.add(core)
            self._planned[name] = (city, core, shown)
            self._order.setdefault(core, index)

    @staticmethod
    def _city(image) -> str:
        folder = Path(image).parent.name if image is not None else ""
        return re.sub(r"[^a-z0-9]", "", folder.lower()) or "qgn"

    def keep(self, name: str, image) -> None:
        """As ``DatasetWriter.keep``; a renamed image keeps the row the earlier ``image_names.tsv``
        gave its planned frame, where that frame's files are still there."""
        super().keep(name, image)
        planned = self._planned.get(name)
        if planned is None or planned[2] is None:
            return
        city, core, _ = planned
        earlier = self._earlier_rows().get(core)
        gt = self.out_dir / "gtFine" / self.split / city / f"{core}_gtFine_labelIds.png"
        if earlier is not None and gt.is_file() and all(row != core for row, _ in self.renamed):
            self.renamed.append((core, earlier))

    def _name(self, item: ExportItem) -> tuple[str, str]:
        """(city, ``<city>_<seq>_<frame>``) of ``item`` (see the module docstring; ``plan``)."""
        planned = self._planned.get(item.name)
        if planned is not None and planned[1] not in self._used:  # (a name given twice: the second renamed)
            city, core, shown = planned
            self._used[core] = None
            if shown is not None:
                self.renamed.append((core, Path(item.image).name if item.image is not None else item.name))
            return city, core
        if _CITY_STEM.match(item.name) and item.name not in self._used:
            self._used[item.name] = None
            return city_of(item.name), item.name
        city = self._city(item.image)
        frame = self._frames.get(city, 0)
        planned = {core for _, core, _ in self._planned.values()}
        while f"{city}_000000_{frame:06d}" in self._used or f"{city}_000000_{frame:06d}" in planned:
            frame += 1
        self._frames[city] = frame + 1
        core = f"{city}_000000_{frame:06d}"
        self._used[core] = None
        self.renamed.append((core, Path(item.image).name if item.image is not None else item.name))
        return city, core

    def mark(self):
        return self.label_colors, len(self.renamed), len(self._used), dict(self._frames)

    def undo(self, mark, item: ExportItem, paths: list[Path]) -> None:
        """Take back ``item``; a name (``<city>_<seq>_<frame>``) it took is free again unless the
        earlier export's files under that name were put back (``DatasetWriter.undo``): those stay
        reserved - the next image renamed would be written over them - and keep the row the earlier
        ``image_names.tsv`` gave them."""
        super().undo(mark, item, paths)
        self.label_colors, renamed, used, self._frames = mark[0], mark[1], mark[2], dict(mark[3])
        del self.renamed[renamed:]
        for name in list(self._used)[used:]:
            gt = self.out_dir / "gtFine" / self.split / city_of(name) if _CITY_STEM.match(name) else None
            if gt is not None and (gt / f"{name}_gtFine_labelIds.png").exists():
                earlier = self._earlier_rows().get(name)
                if earlier is not None:
                    self.renamed.append((name, earlier))
                continue  # the earlier export's files of that name, put back: still taken
            del self._used[name]

    def _earlier_rows(self) -> dict[str, str]:
        """cityscapes name -> image of the earlier export's ``image_names.tsv`` (read once; {} when
        there is none or it cannot be read)."""
        if self._earlier is None:
            import csv
            import io

            from ..fileio import read_text_within

            self._earlier = {}
            path = self.out_dir / "image_names.tsv"
            try:
                text = read_text_within(path, "Cityscapes image_names.tsv", 1 << 26) if path.is_file() else ""
                rows = list(csv.reader(io.StringIO(text), delimiter="\t"))
            except (OSError, ValueError, csv.Error):
                rows = []
            for row in rows[1:]:
                if len(row) == 2 and _CITY_STEM.match(row[0]):
                    self._earlier.setdefault(row[0], row[1])
        return self._earlier

    def finish(self) -> list[Path]:
        written = []
        if self._used:  # some item was written
            written.append(out_file(self.out_dir, CLASSES_JSON))
            if not self.kept:
                atomic_write_bytes(written[0], self.classes_text)
        if not self.renamed:
            return written
        import csv
        import io

        text = io.StringIO()
        rows = csv.writer(text, delimiter="\t", lineterminator="\n")
        rows.writerow(["cityscapes_name", "image"])
        last = len(self._order)
        rows.writerows(sorted(self.renamed, key=lambda row: self._order.get(row[0], last)))
        path = out_file(self.out_dir, "image_names.tsv")
        atomic_write_bytes(path, text.getvalue().encode("utf-8"))
        return written + [path]


def listed_classes(root: Path, order) -> tuple[ClassSet | None, list[str]]:
    """(the classes of the tree's ``classes.json`` when it agrees with the tree, else None; warnings).
    ``order``: ``label_order`` of its label map (``read_label_map``), None for Cityscapes' own ids."""
    path = root / CLASSES_JSON
    if not path.is_file():
        return None, []
    try:
        listed = read_classes_json(path)
        agrees = official_ids(listed) is not None if order is None else \
            label_colors_entries(listed, str(path)) == [(file_name(n), tuple(c) if c else c) for n, c in order]
    except (OSError, ValueError) as exc:
        return None, [f"{path} not read ({exc})"]
    if agrees:
        return listed, []
    what = "Cityscapes train classes in their colours" if order is None else "the labels of its label map"
    return None, [f"{path} does not list {what}; the classes are the tree's own"]


def read_classes_json(path: Path) -> ClassSet:
    """The ClassSet of a ``classes.json`` (``ClassSet.to_json``; read by ``classes_from_json``, as
    every class list in JSON) with its colours, which a Cityscapes tree's classes are matched by;
    ValueError naming it when it is not one."""
    from ..classes import classes_from_json
    from .guards import load_json

    doc = load_json(path, 1 << 20)
    if not (isinstance(doc, dict) and isinstance(doc.get("palette"), list)):
        raise ValueError(f"{path}: expected a class set with its colours ({{'names': [...], 'palette': "
                         "[[r, g, b], ...], 'ignore_index': n}}, colours of whole numbers in 0..255)")
    return classes_from_json(doc, str(path))


def _png_image(source: Path) -> bytes:
    """The image file as PNG bytes: a PNG as it is, another format re-encoded (RGB)."""
    from ..imagefile import open_image

    data = Path(source).read_bytes()
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return data
    with open_image(source) as image:
        return png_bytes(image.convert("RGB"))


def _write_item(item: ExportItem, classes: ClassSet, out_dir: Path, ids, trains, colours, split: str, city: str,
                core: str) -> list[Path]:
    """The gtFine files (and the image) of one item. Memory beyond the label map: one map of 8-bit
    (16-bit past 255 classes) ids at a time, bands of the colour picture, and the files."""
    gt = out_dir / "gtFine" / split / city
    k = classes.num_classes
    label, top = table_index(item.label, classes)  # the map itself, unless its ignore value is -1, 2**40 …
    table = np.zeros(top, np.uint8 if max(ids) <= 255 else np.uint16)  # label value → label id; void → 0
    table[:k] = ids
    written = _write_label_ids(table[label], colours, gt, core)
    if trains is not None:
        table = np.full(top, 255, np.uint8)  # label value → train id; void → 255
        table[:k] = trains
        path = out_file(gt, f"{core}_gtFine_labelTrainIds.png")
        atomic_write_bytes(path, encode_label_png(table[label], indexed=False))
        written.append(path)
    if item.image is not None:
        image = out_file(out_dir / "leftImg8bit" / split / city, f"{core}_leftImg8bit.png")
        if not (image.exists() and os.path.samefile(image, item.image)):  # else exported where it lies
            atomic_write_bytes(image, _png_image(Path(item.image)))
        written.append(image)
    return written


def _write_label_ids(label_ids: np.ndarray, colours: np.ndarray, gt: Path, core: str) -> list[Path]:
    """``labelIds``, ``instanceIds`` (no instances: the same ids) and ``color`` of an (H, W) map of ids."""
    written = []
    data = encode_label_png(label_ids, indexed=False)
    for suffix in ("labelIds", "instanceIds"):
        path = out_file(gt, f"{core}_gtFine_{suffix}.png")
        atomic_write_bytes(path, data)
        written.append(path)
    color = out_file(gt, f"{core}_gtFine_color.png")
    height, width = label_ids.shape
    atomic_write_bytes(color, encode_png(height, width, "RGB", lambda y0, y1: colours[label_ids[y0:y1]]))
    return written + [color]


# ---------------------------------------------------------------------------------- dataset import
def scan_cityscapes(root: Path, images: Path | None) -> SourceDataset:
    gt = root / "gtFine"
    if not gt.is_dir():
        raise ValueError(f"{root}: no gtFine/ folder; not a Cityscapes tree")
    label_map = read_label_map(root)  # Datumaro's dataset_meta.json, else label_colors.txt
    masks = sorted(gt.rglob("*_gtFine_labelIds.png"))
    suffix = "_gtFine_labelIds.png"
    if not masks:
        masks, suffix = sorted(gt.rglob("*_gtFine_labelTrainIds.png")), "_gtFine_labelTrainIds.png"
    if not masks:
        raise ValueError(f"{gt}: no *_gtFine_labelIds.png or *_gtFine_labelTrainIds.png masks")
    if label_map is not None:
        order, colours_file = label_order(label_map[0]), label_map[1]
        if suffix != "_gtFine_labelIds.png":
            raise ValueError(f"{root}: {colours_file.name} numbers labelIds masks; labelTrainIds cannot be read with it")
        names = [n for n, _ in order]
        void = void_positions(order)
        file_classes = classes_from_names(order, void=void)
        how = f"ids through {colours_file.name} ({len(order)} labels, '{names[0]}' = 0)"
    else:
        from ..data.cityscapes import CITYSCAPES_CLASSES, CITYSCAPES_TRAIN_CLASSES

        file_classes, void = CITYSCAPES_CLASSES, ()
        if suffix == "_gtFine_labelIds.png":
            names = list(LABEL_NAMES)
            how = "Cityscapes label ids (labels without a train id are void)"
        else:
            names = ["unlabeled"] * 256
            for _, train, name, _ in CITYSCAPES_TRAIN_CLASSES:
                names[train] = name
            how = "Cityscapes train ids (255 void)"
    official = label_map is None
    listed, warnings = listed_classes(root, None if official else order)
    file_classes = listed or file_classes
    own_names = _cityscapes_names(root)  # image_names.tsv of a QGN export: the images' own names
    items = []
    for mask in masks:
        rel = mask.relative_to(gt).as_posix()[: -len(suffix)]
        stem = Path(rel).name
        own = own_names.get(stem)
        image = (own and find_image(Path(own).stem, images)) or find_image(f"{rel}_leftImg8bit", root / "leftImg8bit") \
            or find_image(stem, images) or find_image(f"{stem}_leftImg8bit", images)
        check = check_cityscapes_colours if official else None
        read = index_reader(mask, names, root, void=void, void_unmatched=official, check=check)
        items.append(SourceItem(Path(own).stem if own else stem, image, read, str(mask)))
    description = f"cityscapes: Cityscapes tree, {len(masks)} mask{'' if len(masks) == 1 else 's'} ({suffix[1:]}), {how}" + \
        (f", classes from {CLASSES_JSON}" if listed else "")
    return SourceDataset("cityscapes", root, description, file_classes, items, warnings)


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



def check_cityscapes_colours(mask: Path, raw: np.ndarray) -> None:
    """Cityscapes ids are proven by the ``_color.png`` beside the mask: every pixel must have the
    official colour of its id. ValueError otherwise (the ids were numbered by another label map)."""
    if not mask.name.endswith("_gtFine_labelIds.png"):
        return
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



def read_gtfine_label_ids(path: Path, classes: ClassSet) -> np.ndarray:
    """A Cityscapes-tree ``*_gtFine_labelIds.png``: numbered by the tree's ``label_colors.txt`` when it
    has one (Datumaro's exports: ``background`` = 0), else Cityscapes' label ids (checked against the
    ``_color.png`` beside it; labels without a train id are void unless a class has their name).
    Never read as bare class ids, which would shift every class of a Datumaro export by one."""
    parents = list(path.absolute().parents)
    root = next((p.parent for p in parents if p.name == "gtFine"), path.parent)
    label_map = read_label_map(root)
    if label_map is not None:
        order = label_order(label_map[0])
        return index_reader(path, [n for n, _ in order], void=void_positions(order))(classes)
    return index_reader(path, list(LABEL_NAMES), void=(), void_unmatched=True, check=check_cityscapes_colours)(classes)


def is_cityscapes_dataset(probe) -> bool:
    return probe.is_folder_with("gtFine")


def check_cityscapes_classes(classes: ClassSet) -> None:
    """ValueError naming the class when ``classes``, not Cityscapes' own, cannot be listed in
    label_colors.txt (what the writer would refuse as it opens)."""
    if official_ids(classes) is None:
        label_colors_entries(classes, "Cityscapes export")


FORMAT = Format("cityscapes", "Cityscapes tree (gtFine ids and colours, leftImg8bit; label_colors.txt)", ".png",
                None, None, CityscapesWriter, image_names=True, scan=scan_cityscapes,
                is_dataset=is_cityscapes_dataset, check_classes=check_cityscapes_classes)
