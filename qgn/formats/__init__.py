"""Annotation file formats: export label maps to the formats other tools read, and import them back.

One module per format, each defining ``FORMAT`` (a ``qgn.formats.base.Format``); ``FORMATS`` maps
the names to them, in the order menus list them. A new format is one module plus one line in
``_MODULES``. Per-image formats round-trip exactly: ``read(write(label)) == label`` (values; the
dtype is ``label_dtype(classes)``). ``write(label, classes, out_dir, stem, levels=NUM_LEVELS)`` writes into
``out_dir`` (created if needed) atomically and returns the paths it wrote; dataset formats (one
COCO ``instances.json`` for all images) ``export(items, classes, out_dir)`` instead.

=========== ===========================================================================
name        module and files
=========== ===========================================================================
qgt         ``qgt``: ``<stem>.qgt``, the quadtree with the class names and colours
png         ``png``: indexed-palette PNG, palette index = class id, ignore value kept
ids         ``ids``: grayscale id PNG (Cityscapes ``labelIds`` for the Cityscapes classes)
cvat, voc   ``cvat``: CVAT "Segmentation mask 1.1" / Pascal-VOC folder
cityscapes  ``cityscapes``: the ``gtFine``/``leftImg8bit`` tree (+ ``label_colors.txt``)
camvid      ``camvid``: the CamVid layout of Datumaro (``label_colors.txt``, colour masks)
coco        ``coco``: one ``instances.json``, an RLE mask per class region per image
labelme     ``labelme``: one labelme JSON per image, exact rectilinear polygons
labelstudio ``labelstudio``: Label Studio tasks JSON (``brushlabels`` RLE), labelling config, images
fiftyone    ``fiftyone``: FiftyOne ImageSegmentationDirectory (``labels/``, ``data.json``, mask targets)
levels      ``levels``: one picture per quadtree level (export only)
json        ``leaves_json``: the quadtree leaf list
=========== ===========================================================================

A format module offers what it can do through its ``Format``: ``write``/``writer`` (export),
``read`` (one mask file), ``scan`` (a whole dataset, ``qgn.formats.source``) and the detectors
``is_mask`` / ``is_dataset`` that auto-detection asks in the order of ``MASK_DETECTION`` /
``DATASET_DETECTION`` (most specific first; the first that accepts is the format).

Import of a single mask file (``import_annotation(path, classes, format="auto")``) auto-detects:
``.qgt`` → qgt, ``.json`` → labelme when it holds ``shapes``, else json; a PNG by its mode: P → png
(palette indices are the ids), L → ids (Cityscapes ``labelIds`` for the Cityscapes class set unless
the name ends in ``labelTrainIds.png``; a ``*_gtFine_labelIds.png`` through its tree's
``label_colors.txt`` or Cityscapes' ids, never as bare ids), I;16/I → png, RGB/RGBA → cvat (needs the
export's ``labelmap.txt`` in a folder above the mask).

Import of a whole dataset (``scan_dataset(src, format="auto", images=None)`` → ``SourceDataset``;
``IMPORT_FORMATS``) finds each format by:

=========== ===================================================================================
cvat, voc   ``labelmap.txt`` and ``SegmentationClass/`` (masks in sub-folders too); images in
            ``JPEGImages/`` or ``--images``
cityscapes  ``gtFine/``: ``*_gtFine_labelIds.png`` (else ``_labelTrainIds``), through the
            ``label_colors.txt`` when there is one (Datumaro's numbering), else Cityscapes' ids;
            images ``leftImg8bit/<same path>_leftImg8bit.*``
camvid      a ``<subset>.txt`` list of ``image mask`` lines beside ``label_colors.txt`` (Datumaro)
coco        ``annotations/instances_*.json`` or a COCO JSON file; RLE or polygon segmentations
labelme     a folder of labelme JSON files (``shapes``); images by ``imagePath``; an unreadable JSON file
            is a failed item, another JSON file is passed over with a warning
labelstudio Label Studio's JSON or JSON-MIN export (a JSON list); brush, polygon, rectangle labels
fiftyone    ``labels/`` with ``mask_targets.json`` or ``data.json``, or beside ``data/`` without a
            ``classes.txt`` (FiftyOne's ImageSegmentationDirectory); classes from
            ``mask_targets.json``, else ``--classes`` or the project's (value = class id + 1)
png, ids    a folder of label PNGs (palette / grayscale ids); classes from ``--classes`` or a
            ``classes.txt`` beside them; images in ``--images`` or a sibling ``images/`` folder.
            The ``folder`` dataset ``qgn train`` reads (``images/``, ``labels/``, ``classes.txt``)
            imports as it is: labels from ``labels/``; a photo is never read as a label map
=========== ===================================================================================
"""
from __future__ import annotations

import importlib
import os
from pathlib import Path

import numpy as np

from ..classes import ClassSet
from ..label_map import check_label
from ..quadtree import NUM_LEVELS
from .base import ExportItem, Format, MaskProbe, check_export_links, check_split
from .source import DatasetProbe, SourceDataset, SourceItem
from ..fileio import no_folder_error, no_input_error

# module name -> the attributes holding its Format(s), in menu order
_MODULES = (
    ("qgt", ("FORMAT",)), ("png", ("FORMAT",)), ("ids", ("FORMAT",)), ("cvat", ("FORMAT", "VOC_FORMAT")),
    ("cityscapes", ("FORMAT",)), ("camvid", ("FORMAT",)), ("coco", ("FORMAT",)), ("labelme", ("FORMAT",)),
    ("labelstudio", ("FORMAT",)), ("fiftyone", ("FORMAT",)),
    ("levels", ("FORMAT",)), ("leaves_json", ("FORMAT",)),
)


def _collect() -> dict[str, Format]:
    found: dict[str, Format] = {}
    for module, attributes in _MODULES:
        mod = importlib.import_module(f"{__name__}.{module}")
        for attribute in attributes:
            fmt = getattr(mod, attribute)
            found[fmt.name] = fmt
    return found


FORMATS: dict[str, Format] = _collect()
#: The formats a whole dataset can be imported from (``scan_dataset``), in the order ``qgn import`` lists them.
IMPORT_FORMATS = ("cvat", "voc", "cityscapes", "camvid", "coco", "labelme", "labelstudio", "fiftyone", "ids", "png")
#: Auto-detection tries these formats' ``is_mask`` (a mask file) and ``is_dataset`` (a dataset) in
#: this order, the most specific first: the first that accepts the file or folder is its format.
MASK_DETECTION = ("qgt", "labelme", "json", "png", "ids", "cvat")
DATASET_DETECTION = ("cvat", "cityscapes", "camvid", "fiftyone", "coco", "labelstudio", "labelme", "png", "ids")


def check_format_names(names) -> list[str]:
    """``names`` as a list, ValueError naming the known formats if one is unknown."""
    names = [names] if isinstance(names, str) else list(names)
    unknown = [n for n in names if n not in FORMATS]
    if unknown or not names:
        raise ValueError(f"unknown export format(s) {unknown or names}; choose from {', '.join(FORMATS)}")
    return names


#: QGN's own files (.qgt, the leaves JSON, the level pictures): read back under the rule of saved
#: data (``name_key``), so they carry the names a project holds, whatever they are.
OWN_FORMATS = ("qgt", "json", "levels")
#: Formats whose export writes no class name another importer reads: QGN's own, the id PNGs (ids
#: only), and the palette PNGs, which go without ``classes.txt`` when a name is one no importer reads
#: back (``qgn.formats.png.classes_file_text``). ``check_exportable_names`` is not asked for them.
NAMELESS_FORMATS = (*OWN_FORMATS, "ids", "png")
#: What an export refused for a class name no importer reads back says to do (of a project's classes).
RENAME_FIRST = ("rename it in the project first (in QGN Studio: double-click the class in the Annotate panel's "
                "class list), then export")


class UnexportableNameError(ValueError):
    """``check_exportable_names``' refusal: the class set's own, the same for every file that holds it
    (a batch says it once, not once a file)."""


def check_exportable_names(classes: ClassSet, fix: str = RENAME_FIRST) -> None:
    """UnexportableNameError naming the class when a class name of ``classes`` is one no importer reads back
    (every format's but ``NAMELESS_FORMATS``): one the door refuses (``class_name_problem``: a tab, a line break, spaces
    around it …) or one that is another's name to the door (``door_name_key``: 'café' in NFC and in
    NFD). Projects saved before the door may hold such names and still open; an export of them
    would write files that QGN's own import, and other tools, refuse or read as one class. ``fix``:
    what to do, ending the message (``RENAME_FIRST``, of a project; the CLI's of loose .qgt files)."""
    from ..classes import class_name_problem, door_name_key

    seen: dict[str, str] = {}
    for name in classes.names:
        problem = class_name_problem(name)
        if problem is not None:
            raise UnexportableNameError(f"the class {problem}, and no importer reads such a name back; {fix}")
        key = door_name_key(name)
        if key in seen:
            raise UnexportableNameError(
                f"the classes {seen[key]!r} and {name!r} are one name to every importer (spelt "
                f"{ascii(seen[key])} and {ascii(name)}); {fix.replace('rename it', 'rename one', 1)}")
        seen[key] = name


def check_export_classes(names, classes: ClassSet, folders=None, root=None, fix: str = RENAME_FIRST,
                         items=None, images=None, walks: dict | None = None) -> None:
    """ValueError (the format's own, naming the class) when a format of ``names`` cannot write
    ``classes`` (``Format.check_classes``), or, with ``folders`` (each format's output folder, in the
    order of ``names``), when a folder holds a file of another export its writer would refuse
    (``Format.check_folder``: CVAT's labelmap.txt, CamVid's and Cityscapes' label_colors.txt,
    Cityscapes' classes.json …). Every format of an export is asked before any writer opens: an
    export of several formats is refused before anything is written (CamVid's and Cityscapes'
    writers write label_colors.txt as they open, and an export writes one format after another).
    With ``root`` (the folder the user named), first a folder link under it leading outside it
    (``check_export_links``): before any file is read or written there. ``items``: the names of
    every item the export plans (a list, or a mapping of format name to its list where formats
    name items differently), for the files of another export its shared files would name and its
    items would not replace (``DatasetWriter.check_items_folder``: png's list-less PNGs); None: not asked.
    ``images``: the export's image folder (an import's ``--images``, whose PNGs it never reads as
    labels); ``walks``: a dict kept over one run that asks once per file (a folder's export)."""
    names = check_format_names(names)
    if any(name not in NAMELESS_FORMATS for name in names):
        check_exportable_names(classes, fix)
    if root is not None and folders:
        check_export_links(root, [Path(folder) for folder in folders])
    for name in names:
        if FORMATS[name].check_classes is not None:
            FORMATS[name].check_classes(classes)
    for name, folder in zip(names, folders or ()):
        planned = items.get(name) if isinstance(items, dict) else items
        FORMATS[name].check_folder(classes, Path(folder), planned, images=Path(images) if images else None,
                                   walks=walks)


NAMES_IN_TEXT = ("labelme",)  # per-image formats that write file names into JSON or text


def check_text_names(names: list[str], paths) -> None:
    """ValueError when a format of ``names`` writes file names into JSON or text (a whole dataset,
    labelme) and one of ``paths`` (a .qgt, an image) has a name that is not valid UTF-8 (bytes a
    Linux file name may hold): no JSON or text file can carry it, and another tool would not find
    the file."""
    if not any(FORMATS[n].write is None or n in NAMES_IN_TEXT for n in names):
        return
    for path in paths:
        if path is None:
            continue
        try:
            str(path).encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"the file name {os.fsencode(Path(path).name)!r} is not valid UTF-8, and the "
                             f"{', '.join(names)} export stores file names as UTF-8 text; rename the file (e.g. "
                             "convmv -f latin1 -t utf8)") from None


def export_annotation(
    label: np.ndarray, classes: ClassSet, out_dir: str | os.PathLike, stem: str, formats, levels: int = NUM_LEVELS,
    image: str | os.PathLike | None = None,
) -> list[Path]:
    """Write ``label`` (H, W) in each of ``formats`` into ``out_dir/<format name>/``; the paths written."""
    names = check_format_names(formats)
    check_export_classes(names, classes, [Path(out_dir) / name for name in names], root=out_dir, items=[stem])
    label = check_label(label, classes)
    item = ExportItem(stem, label, Path(image) if image else None)
    paths: list[Path] = []
    for name in names:
        paths += FORMATS[name].export_items([item], classes, Path(out_dir) / name, levels=levels)
    return paths


def check_listed_names(formats: list[str], names: list[str]) -> None:
    """NameClashError (a ValueError), writing nothing, where two of an export's item ``names`` would be
    one name in the list of one name a line of one of ``formats`` (CVAT's, CamVid's:
    ``DatasetWriter.plan``): names that differ only in case or accent encoding."""
    from .base import ListedNames

    for name in formats:
        listable = getattr(FORMATS[name].writer, "listable", None)
        if listable is not None:
            ListedNames(listable).reserve(names)


def export_dataset(items, classes: ClassSet, out_dir: str | os.PathLike, formats,
                   levels: int = NUM_LEVELS, images: str | None = None, split: str | None = None) -> list[Path]:
    """Write every ``ExportItem`` in each of ``formats`` into ``out_dir/<format name>/``;
    ``images`` ("copy", "link" or None) and ``split`` as in ``qgn.project_export.export_project``."""
    names = check_format_names(formats)
    items = list(items)
    check_export_classes(names, classes, [Path(out_dir) / name for name in names], root=out_dir,
                         items=[item.name for item in items])  # before any writes
    items = [ExportItem(i.name, check_label(i.label, classes, i.name), i.image) for i in items]
    check_listed_names(names, [item.name for item in items])  # before any writer opens (and writes)
    paths: list[Path] = []
    for name in names:
        paths += FORMATS[name].export_items(items, classes, Path(out_dir) / name, levels=levels, images=images,
                                            split=split)
    return paths


def detect_format(path: str | os.PathLike) -> str:
    """The format name of a mask file: the first of ``MASK_DETECTION`` whose ``is_mask`` accepts it
    (see the module docstring). ValueError when none does; FileNotFoundError."""
    probe = MaskProbe(Path(path))
    for name in MASK_DETECTION:
        if FORMATS[name].is_mask(probe):
            return name
    raise ValueError(f"{path} is a {probe.mode} image; a mask must be indexed (P), grayscale (L, I;16) or an RGB "
                     "CVAT mask")


def import_annotation(path: str | os.PathLike, classes: ClassSet, format: str = "auto") -> np.ndarray:
    """Read a mask file as a label map (H, W) of ``label_dtype(classes)``.

    ``format``: "auto" (``detect_format``) or a name in ``FORMATS`` with a reader. ValueError when the
    file does not hold ids of ``classes`` (naming the values) or is malformed; FileNotFoundError."""
    path = Path(path)
    if not path.exists():
        from ..fileio import missing_file_error

        raise missing_file_error(path)
    name = detect_format(path) if format == "auto" else format
    if name not in FORMATS or FORMATS[name].read is None:
        readable = [n for n, f in FORMATS.items() if f.read is not None]
        raise ValueError(f"cannot import format {name!r} from one file; importable: auto, {', '.join(readable)} "
                         "(whole datasets: qgn import)")
    return FORMATS[name].read(path, classes)


def detect_dataset(src: str | os.PathLike) -> str:
    """The import format of ``src``: the first of ``DATASET_DETECTION`` whose ``is_dataset`` accepts it
    (see the module docstring); ValueError saying what was looked for; FileNotFoundError."""
    src = Path(src)
    if not (src.is_dir() or src.is_file()):  # nothing there, a loop of links, a pipe, /dev/zero: said as what it is
        raise no_input_error(src)
    probe = DatasetProbe(src)
    for name in DATASET_DETECTION:
        if FORMATS[name].is_dataset(probe):
            if not (name in ("png", "ids") and probe.json_error and probe.label_pngs_mostly_photos):
                return name
            break  # a labelme or Label Studio folder whose JSON cannot be read, beside its photos: no id maps
    if src.is_file():
        raise ValueError(f"{src}: cannot tell the format of this file; name it with --format")
    unread = f"; its JSON could not be read: {probe.json_error}" if probe.json_error else ""
    raise ValueError(f"{src}: found no dataset (looked for SegmentationClass/, gtFine/, label_colors.txt with a list, "
                     "annotations/instances_*.json, labelme or Label Studio JSON, labels/ with data/ or data.json, "
                     f"label PNGs){unread}")


def scan_dataset(src: str | os.PathLike, format: str = "auto", images: str | os.PathLike | None = None
                 ) -> SourceDataset:
    """What the dataset ``src`` (a folder or a file) holds, read by the ``scan`` of its format
    (``format``: a name in ``IMPORT_FORMATS``, or "auto": ``detect_dataset``); ``images``: a folder
    to find images in by name. See ``qgn.formats.source`` for what comes back. Both are made
    absolute first: the files a scan finds are then absolute too, and compare with the dataset's
    folder as they are (``guards.contained``), ``..`` in the path given or not (taken as the system
    takes them: ``fileio.straight_path``)."""
    from ..fileio import straight_path

    src = straight_path(src)  # link/../x: where the system finds it, not ./x
    images = straight_path(images) if images else None
    if images is not None and not images.is_dir():
        raise no_folder_error(images, "--images")
    name = detect_dataset(src) if format == "auto" else format
    if name not in IMPORT_FORMATS:
        raise ValueError(f"unknown import format {name!r}; choose from auto, {', '.join(IMPORT_FORMATS)}")
    if not (src.is_dir() or src.is_file()):
        raise no_input_error(src)
    return FORMATS[name].scan(src, images)


__all__ = ["DATASET_DETECTION", "ExportItem", "FORMATS", "Format", "IMPORT_FORMATS", "MASK_DETECTION",
           "SourceDataset", "SourceItem", "check_export_classes", "check_format_names", "check_listed_names",
           "check_split", "check_text_names", "detect_dataset",
           "detect_format", "export_annotation",
           "export_dataset", "import_annotation", "scan_dataset"]
