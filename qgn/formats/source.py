"""What a dataset import is made of, shared by the format modules that read whole datasets:
``SourceDataset`` (what a source holds) of ``SourceItem``s (one mask each), the helpers that find
images and turn label names into class ids, and ``DatasetProbe`` (what auto-detection looks at).

A format module reads a dataset with its ``scan(src, images) -> SourceDataset`` and recognises one
with ``is_dataset(probe) -> bool`` (both on its ``Format``); ``qgn.formats.scan_dataset`` picks the
format and calls it. ``item.read(classes, mapping)`` gives the item's label map in ``classes`` (ids
0..k-1 and the ignore value); a label the files use that matches no class is an error naming it
(``qgn.classes.match_class_names``; ``mapping`` is ``--map old=new``). Images are found by each
format's own convention, else in ``images`` by name (the stem).

Hostile files (``qgn.formats.guards``): every path a file names and every file found (links too)
must lie inside the dataset folder or ``images``; every size a file claims is checked against the
pixel limit and the image's header before anything is allocated; a malformed field is one line
naming the file and the field. A problem of one item (one image entry, one labelme file, one task)
makes that item fail when read — the import reports it and goes on — not the whole scan.
"""
from __future__ import annotations

import errno
import glob
import os
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from PIL import UnidentifiedImageError

from ..fileio import resolved_or_none
from ..classes import UNMATCHED, VOID, ClassSet, check_class_names, default_palette, match_class_names, unmatched_message
from ..imagefile import ImageTooLargeError, SeveralPicturesError, open_image
from ..quadtree.label_io import find_classes_file, read_classes_file, read_label
from .base import as_label
from .guards import OutsideDatasetError, contained, is_contained, load_json

from ..imagefile import IMAGE_EXTENSIONS  # the one list of the files QGN opens as images


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


def classes_from_names(entries, *, void, ignore_index: int = 255) -> ClassSet:
    """A ClassSet of a file's labels ((name, colour or None) pairs) but the positions ``void``: the
    labels the format itself designates as its unannotated area (``match_class_names``). A label
    with a void-like name elsewhere (a COCO category ``background``, a second ``void`` with its own
    colour) is a class someone annotated pixels with, and stays one."""
    void = set(void)
    kept = [(n, c) for i, (n, c) in enumerate(entries) if i not in void]
    if not kept:
        raise ValueError("the label map names no class other than background/void")
    check_class_names([n for n, _ in kept], "the dataset's labels")  # each format's reader said where first
    fallback = default_palette(len(kept))
    ignore = ignore_index if ignore_index >= len(kept) else 65535
    return ClassSet(tuple(n for n, _ in kept), tuple(c or fallback[i] for i, (_, c) in enumerate(kept)), ignore)


_voided: ContextVar[dict[str, int] | None] = ContextVar("qgn_voided_pixels", default=None)


def note_void(name: str, pixels: int) -> None:
    """Record that ``pixels`` pixels labelled ``name`` were read as void (the ignore value), for the
    import report (``voided_pixels``); nothing outside one."""
    counts = _voided.get()
    if counts is not None and pixels:
        counts[name] = counts.get(name, 0) + int(pixels)


@contextmanager
def voided_pixels():
    """{label name: pixels read as void} of the reads inside the ``with`` (``note_void``)."""
    counts: dict[str, int] = {}
    token = _voided.set(counts)
    try:
        yield counts
    finally:
        _voided.reset(token)


def void_value(name: str, classes: ClassSet, source, pixels: int) -> int:
    """The ignore value that ``pixels`` pixels labelled ``name`` (read as void) take, noted for the
    report; ValueError when there are some and the class set has no ignore value."""
    if pixels and classes.ignore_index is None:
        raise ValueError(f"{source} has {name!r} (void) pixels but the class set has no ignore value")
    note_void(name, pixels)
    return classes.ignore_index if classes.ignore_index is not None else VOID


def label_of_indices(raw: np.ndarray, names, classes: ClassSet, mapping, source, void=(),
                     void_unmatched: bool = False) -> np.ndarray:
    """The label map of ``raw`` (H, W), whose value v means ``names[v]`` (values checked below
    ``len(names)``): each name matched to a class (``match_class_names``, ``void`` its format's
    unannotated positions), void ones noted (``note_void``). ``void_unmatched``: a name that matches
    no class reads as void too. Only the labels the map holds count: a name no pixel uses is no
    error, and one that is names itself."""
    ids = match_class_names(names, classes, mapping, void)
    counts = np.bincount(raw.ravel(), minlength=len(names))
    values = []
    for name, value, pixels in zip(names, ids, counts.tolist()):
        if value == UNMATCHED and void_unmatched:
            value = VOID
        if value == UNMATCHED and pixels:
            raise ValueError(unmatched_message(name, classes, source))
        values.append(void_value(name, classes, source, pixels) if value == VOID else value)
    return as_label(np.asarray(values, np.int64)[raw], classes, source)


def find_image(name: str, *folders: Path | None) -> Path | None:
    """The image called ``name`` (a relative path without extension, or a file name) in ``folders``;
    only files that resolve inside their folder (``guards.contained``: no ``../``, absolute names
    or links pointing away). The first folder holding a match answers; AmbiguousImageError when it
    holds several (``x`` → x.png and x.jpg), so that no label is paired with a guessed image. A name
    whose accents are encoded otherwise on disk (``é`` as one character or as ``e`` + a combining
    accent: macOS writes the latter, most tools the former) is the same name."""
    import unicodedata

    variants = dict.fromkeys([name, unicodedata.normalize("NFC", name), unicodedata.normalize("NFD", name)])
    for folder in folders:
        if folder is None or not Path(folder).is_dir():
            continue
        for variant in variants:
            found = _image_in(Path(folder), variant)
            if found is not None:
                return found
    return None


def _image_in(folder: Path, name: str) -> Path | None:
    """``find_image`` in one folder, for one spelling of the name."""
    try:
        direct = contained(folder, name)
    except OutsideDatasetError:
        return None
    if direct.suffix.lower() in IMAGE_EXTENSIONS and is_file(direct):
        return direct
    found: dict[Path, Path] = {}  # resolved → as found: one file by several names counts once
    for ext in IMAGE_EXTENSIONS:
        for candidate in (folder / f"{name}{ext}", folder / f"{name}{ext.upper()}"):
            if is_file(candidate) and is_contained(folder, candidate):
                found.setdefault(candidate.resolve(), candidate)
    if not found:
        stem = Path(name).stem if Path(name).suffix.lower() in IMAGE_EXTENSIONS else Path(name).name
        for candidate in sorted(folder.glob(f"{glob_escape(stem)}.*")):
            real = resolved_or_none(candidate)  # None: a link loop, no image (as is_file says above)
            if real is not None and candidate.suffix.lower() in IMAGE_EXTENSIONS and is_contained(folder, candidate):
                found.setdefault(real, candidate)
    if len(found) > 1:
        shown = " and ".join(sorted(p.name for p in found.values())[:3])
        raise AmbiguousImageError(f"{shown} in {folder} are all images of {Path(name).name!r}: which one the "
                                  "labels belong to is unknown; give the images distinct names (the part before "
                                  "the extension), or move the others out of the folder")
    return next(iter(found.values()), None)


def is_file(path: Path) -> bool:
    """``path.is_file()``, False too for a name no file can have (longer than the file system allows:
    a dataset's name of 300 characters stopped its whole import with "File name too long")."""
    try:
        return path.is_file()
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            return False
        raise


class AmbiguousImageError(ValueError):
    """Several image files of one folder match a name without extension (x.png and x.jpg): a
    mask named x could be of either, so it is paired with neither (the item is reported)."""


def glob_escape(text: str) -> str:
    """``text`` with glob's special characters taken literally."""
    return glob.escape(text)


def inside_dataset(root: Path, path: Path, source=None):
    """A reader wrapper check: ``path`` (found under ``root``) must resolve inside it."""
    contained(root, path, source or path, "file")
    return path


#: Label PNGs a folder's detection tries for one it can read the mode of (``label_png_mode``).
MODE_TRIES = 64
#: Readable label PNGs whose modes decide how a folder reads (``label_png_mode``): most of them.
MODE_VOTES = 9


def image_mode(path: Path) -> str:
    """The PIL mode of the image ``path``; ValueError when it is no readable image."""
    try:
        with open_image(path) as image:
            return image.mode
    except (ImageTooLargeError, SeveralPicturesError):
        raise
    except (UnidentifiedImageError, OSError, ValueError):
        raise ValueError(f"{path} is not a readable image") from None



def file_classes_of(names: list[str], items: list[SourceItem], void=()) -> ClassSet:
    """The classes the files name but ``void`` (the format's own names of its unannotated area);
    when no file could be read at all, the first file's error (a clearer reason than "no class")."""
    if not names and items and all(item.error is not None for item in items):
        raise items[0].error
    return classes_from_names([(n, None) for n in names], void=[i for i, n in enumerate(names) if n in void])


def index_reader(mask: Path, names: list[str], root: Path | None = None, *, void, void_unmatched: bool = False,
                 check: Callable[[Path, np.ndarray], None] | None = None):
    """A reader of an index mask whose value v means ``names[v]`` (inside ``root``, when given).
    ``void``: the positions the format designates as its unannotated area (``match_class_names``);
    ``void_unmatched``: a name that matches no class reads as the ignore value (Cityscapes labels
    without a train id); ``check(mask, raw values)``: a further proof the values mean ``names``."""

    def read(classes: ClassSet, mapping=None) -> np.ndarray:
        if root is not None:
            inside_dataset(root, mask)
        raw = read_label(mask).astype(np.int64)
        if raw.max() >= len(names):
            raise ValueError(f"{mask}: value {int(raw.max())} is beyond the {len(names)} labels of its label map")
        if check is not None:
            check(mask, raw)
        return label_of_indices(raw, names, classes, mapping, mask, void, void_unmatched)

    return read


def label_folders(src: Path, images: Path | None) -> tuple[Path, list[Path]]:
    """(the folder holding the label PNGs, the folders to find images in) of an ids/png dataset:
    the ``folder`` layout that ``qgn train`` reads (``images/``, ``labels/``, ``classes.txt``)
    has its labels in ``labels/`` and its photos in ``images/``; else the PNGs are the labels and
    the images are in ``--images`` or an ``images/`` folder beside."""
    folder = src if src.is_dir() else src.parent
    if src.is_dir() and (folder / "labels").is_dir():
        return folder / "labels", [d for d in (images, folder / "images") if d is not None]
    return folder, [d for d in (images, folder.parent / "images", folder / "images") if d is not None]


def label_pngs(src: Path, images: Path | None) -> Iterator[Path]:
    """The PNGs the import of the folder ``src`` (with ``--images images``) reads as label maps
    (``scan_label_folder``, ``DatasetProbe.label_png_mode``; a png export's list check,
    ``PngWriter.check_items_folder``): every ``*.png`` in its label folder and beneath
    (``label_folders``: its ``labels/`` where it has one), none that resolves inside one of its
    image folders (``--images``, ``images/`` beside or inside), as ``rglob`` finds them (folder
    links not followed), folders top-down and names sorted. ``.PNG`` (any case) too, on every system,
    as ``qgn convert`` and ``qgn stats`` read it: this function alone decides, for the import and for
    the png export's list check alike (``is_png_name``)."""
    label_dir, image_dirs = label_folders(src, images)
    skip = [folder.resolve() for folder in image_dirs if folder.is_dir()]
    for top, dirs, files in os.walk(label_dir):
        dirs.sort()
        for name in sorted(files):
            if is_png_name(name):
                path = Path(top, name)
                if not skip or not _resolves_inside(path, skip):
                    yield path


def is_png_name(name: str) -> bool:
    """A file name the import reads as a PNG: ``.png`` in any case (``x.PNG`` too), on every system."""
    return name.lower().endswith(".png")


def png_files(folder: Path) -> list[Path]:
    """Every PNG (``is_png_name``: ``.PNG`` too, on every system) in ``folder`` and beneath, sorted,
    folder links not followed (as ``rglob`` walks): the masks of a CVAT / Pascal-VOC export's
    ``SegmentationClass/`` and of a FiftyOne directory's ``labels/``. Refused (ValueError, naming
    both) where ``x.png`` and ``x.PNG`` lie side by side (``check_png_clash``)."""
    found = sorted(Path(top, name) for top, _, files in os.walk(folder) for name in files if is_png_name(name))
    check_png_clash(found, photos_apart=False)
    return found


def check_png_clash(masks: list[Path], photos_apart: bool = True) -> None:
    """Refuse (ValueError, naming both) two label PNGs of one folder whose names differ only in the
    case of ``.png`` (``x.png`` and ``x.PNG``: ``is_png_name`` reads both): both are the label map of
    the image ``x``, and which one the user means is unknown - as ``qgn convert`` refuses them for
    one output file (``qgn.cli.files.check_outputs``). With ``photos_apart``, a photo among them
    (``is_photo_png``: a copy of the image beside its label map) is no clash: never read as a label
    map, the import names it (not so for colour masks, CVAT's, which look like photos)."""
    seen: dict[tuple[Path, str], Path] = {}
    for mask in masks:
        other = seen.setdefault((mask.parent, mask.stem), mask)
        if other is not mask:
            if photos_apart and is_photo_png(mask):
                continue
            if photos_apart and is_photo_png(other):
                seen[mask.parent, mask.stem] = mask
                continue
            first, second = sorted((other, mask))
            raise ValueError(f"{first} and {second} would both be imported as the label map of {mask.stem!r}; "
                             "rename one of them (or move it away)")


def _label_image(mask: Path, label_dir: Path, image_dirs: list[Path]) -> Path | AmbiguousImageError | None:
    """The image of the label map ``mask``: labels/a/x.png is images/a/x.*, else (a flat image folder)
    images/x.*, as CVAT's masks, else the photo beside it of its name (x.jpg by x.png:
    ``_image_beside``); the AmbiguousImageError where several match, None where none does."""
    try:
        return (find_image(_relative_stem(mask, label_dir), *image_dirs) or find_image(mask.stem, *image_dirs)
                or _image_beside(mask))
    except AmbiguousImageError as exc:
        return exc


def _image_beside(mask: Path) -> Path | None:
    """The photo in ``mask``'s own folder with its name, another extension (``x.jpg`` beside the label
    map ``x.png``: a photo and its map in one folder), never a label map (a PNG that is no photo)
    nor a file that resolves outside the folder; AmbiguousImageError where several are (x.jpg, x.tif)."""
    found = [p for p in sorted(mask.parent.glob(f"{glob_escape(mask.stem)}.*")) if p != mask
             and p.suffix.lower() in IMAGE_EXTENSIONS and is_file(p) and is_contained(mask.parent, p)
             and (not is_png_name(p.name) or is_photo_png(p))]
    if len(found) > 1:
        raise AmbiguousImageError(f"{' and '.join(p.name for p in found[:3])} beside {mask.name} are all images of "
                                  f"{mask.stem!r}: which one it labels is unknown; move the others away")
    return found[0] if found else None


def _labelled_twice(images: dict) -> dict[Path, ValueError]:
    """{mask: why} for each label map of ``images`` ({mask: its image, ``_label_image``}) whose image
    another map of the run labels too (labels/a/x.png and labels/b/x.png, one flat images/x.png): which
    one the image takes is unknown - with --update the second replaced the first in one run."""
    by_image: dict[Path, list[Path]] = {}
    for mask, image in images.items():
        if isinstance(image, Path):
            by_image.setdefault(image, []).append(mask)
    return {mask: ValueError(f"{' and '.join(str(m) for m in masks[:3])} are all label maps of {image}: which one "
                             "it takes is unknown; move the others away, or each beside its own image "
                             "(images/a/x.png for labels/a/x.png)")
            for image, masks in by_image.items() if len(masks) > 1 for mask in masks}


def _label_item(mask: Path, image, folder: Path, reader, strays: list[Path], name: str) -> SourceItem:
    """The item ``name`` (``a/x`` for labels/a/x.png) of ``mask`` (``scan_label_folder``): its ``image``
    (``_label_image``; None: not found; a ValueError: why it has none). A photo (``is_photo_png``) is no
    label map, said so; a map without an image in a folder of photos named otherwise (``strays``:
    photo.png and label.png) says that a map takes its image's name."""
    if mask in strays:
        return broken_item(name, mask, ValueError(
            f"{mask} is a colour image, not a label map of class ids (a photo? label maps are grayscale or "
            "palette PNGs, named as their images: x.png for x.jpg, or images/x.png with labels/x.png)"))
    if isinstance(image, ValueError):  # (an AmbiguousImageError, or one image labelled twice)
        return broken_item(name, mask, image)
    others = [p.name for p in strays if p.parent == mask.parent]
    if image is None and others:
        return broken_item(name, mask, FileNotFoundError(
            f"no image found for {mask}: the photo beside it, {others[0]}, has another name; a label map takes its "
            f"image's name (x.png for x.jpg, or images/x.png with labels/x.png) - rename one, or name the image folder "
            "with --images"))

    def read(classes, mapping=None):
        inside_dataset(folder, mask)
        mode = image_mode(mask)
        if mode in PHOTO_MODES:  # a photo (or a colour mask), never a map of ids
            raise ValueError(f"{mask} is an {mode} image, not a label map of class ids (a photo? label maps "
                             "are grayscale or palette PNGs)")
        return reader(mask, classes)

    return SourceItem(name, image, read, str(mask))


def _relative_stem(mask: Path, label_dir: Path) -> str:
    """``mask``'s path under ``label_dir`` without its extension (``a/x`` for labels/a/x.png), or its
    stem where it lies elsewhere (a single file named)."""
    try:
        return mask.relative_to(label_dir).with_suffix("").as_posix()
    except ValueError:
        return mask.stem


def _resolves_inside(path: Path, folders: list[Path]) -> bool:
    """Whether ``path`` resolves inside one of ``folders``; a link that loops resolves nowhere (its
    reader then names it as a file it cannot read, and the batch goes on)."""
    try:
        real = path.resolve()
    except (RuntimeError, OSError):  # a symbolic link loop (RuntimeError up to Python 3.12)
        return False
    return any(real.is_relative_to(folder) for folder in folders)


#: Image modes the import reads as a photo (or a colour mask), never as a map of class ids.
PHOTO_MODES = ("RGB", "RGBA", "LA", "PA")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PHOTO_COLOUR_TYPES = (2, 4, 6)  # a PNG's IHDR colour types Pillow opens as RGB, LA, RGBA (PHOTO_MODES)


def is_photo_png(path: Path) -> bool:
    """``path`` is a PNG whose header says RGB, RGBA or grey with alpha: the import reads it as no
    label map (``PHOTO_MODES``). Its first 26 bytes alone are read (nothing where it is no regular
    file: a pipe would wait); False for anything else, a file that cannot be read too."""
    import stat

    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False
        with open(path, "rb") as file:
            head = file.read(26)
    except OSError:
        return False
    return len(head) == 26 and head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR" and head[25] in PHOTO_COLOUR_TYPES


def scan_label_folder(src: Path, images: Path | None, name: str, reader: Callable[[Path, ClassSet], np.ndarray]
                      ) -> SourceDataset:
    """A folder of label PNGs (``ids`` or ``png``, see ``label_folders``), each read by ``reader(path, classes)``."""

    folder = src if src.is_dir() else src.parent
    label_dir, image_dirs = label_folders(src, images)
    if src.is_file():
        masks = [src]
    else:  # never a photo of the image folders
        masks = sorted(label_pngs(src, images))
    if not masks:
        raise ValueError(f"{src}: no label PNGs" + (f" in {label_dir}" if label_dir != folder else ""))
    check_png_clash(masks)
    classes_file = find_classes_file(folder)
    file_classes = None if classes_file is None else read_classes_file(classes_file)
    photos = {mask for mask in masks if is_photo_png(mask)}  # no label map; perhaps one's image (x.PNG by x.png)
    images = {mask: _label_image(mask, label_dir, image_dirs) for mask in masks if mask not in photos}
    used = {image for image in images.values() if isinstance(image, Path)}
    strays = sorted(photos - used)
    images |= _labelled_twice(images)
    items = [_label_item(mask, images.get(mask), folder, reader, strays, _relative_stem(mask, label_dir))
             for mask in masks if mask not in used]
    where = f", classes from {classes_file}" if classes_file else " (no classes.txt beside them: needs --classes)"
    description = f"{name}: a folder of {len(masks)} label PNGs holding class ids{where}"
    return SourceDataset(name, folder, description, file_classes, items)



JSON_VOTES = 5  # readable JSON files of a folder that auto-detection looks at (DatasetProbe.json_document)


class DatasetProbe:
    """What auto-detection (``qgn.formats.detect_dataset``) looks at in a dataset source ``src`` (a
    folder or one file), each read at most once however many formats ask: a format's ``is_dataset``
    takes it."""

    def __init__(self, src: Path):
        self.src = Path(src)
        self.json_error: str | None = None  # why the folder's first JSON file could not be read, when none could
        self.json_unread: set[str] = set()  # the stems of the folder's JSON files that could not be read

    @cached_property
    def json_document(self):
        """The JSON document of ``src`` (a ``.json`` file), or the one that stands for the folder's
        ``*.json`` files; None when there is none. In a folder, a file that cannot be read is passed
        over (the format's import reports it) and the kind most of the first ``JSON_VOTES`` readable
        files share (a list, or an object) wins, the earliest file on a tie: one truncated or
        stray file among labelme documents never makes the folder look like a Label Studio
        export, nor stops the detection."""
        if self.src.is_file():
            return load_json(self.src, keys_once=False) if self.src.suffix.lower() == ".json" else None
        votes, first = [], {}  # the kind of each file read; the first document of each kind (no more held)
        unread = None
        for path in sorted(self.src.glob("*.json")):
            try:
                doc = load_json(path, keys_once=False)  # its shape; the format's read says what is wrong
            except (OSError, ValueError) as exc:
                unread = unread or str(exc)
                self.json_unread.add(path.stem)
                continue
            votes.append(isinstance(doc, list))
            first.setdefault(votes[-1], doc)
            del doc
            if len(votes) == JSON_VOTES:
                break
        if not votes:
            self.json_error = unread  # said where no format is found (``detect_dataset``)
            return None
        lists = sum(votes)
        if 2 * lists == len(votes):
            return first[votes[0]]
        return first[2 * lists > len(votes)]

    @cached_property
    def _label_png_modes(self) -> list[str]:
        """The image modes of the first ``MODE_VOTES`` label PNGs of the folder (``label_folders``) it
        can read, trying at most ``MODE_TRIES``; the first error raised where it could read none."""
        return [mode for _, mode in self._label_png_stems_and_modes]

    @cached_property
    def _label_png_stems_and_modes(self) -> list[tuple[str, str]]:
        """(file stem, image mode) of ``_label_png_modes``'s files, in the same order."""
        found, first_error = [], None
        for png in sorted(label_pngs(self.src, None))[:MODE_TRIES]:
            try:  # an empty or damaged file is the import's to report, not the folder's end
                found.append((png.stem, image_mode(png)))
            except (ValueError, OSError) as exc:
                first_error = first_error or exc
                continue
            if len(found) == MODE_VOTES:
                break
        if not found and first_error is not None:
            raise first_error
        return found

    @cached_property
    def label_png_mode(self) -> str | None:
        """The image mode of ``src`` (a ``.png`` file), or the one that stands for the folder's label
        PNGs (``label_folders``): of the first ``MODE_VOTES`` it can read (``_label_png_modes``), the
        label maps decide wherever there is one - the first of the kind, palette (P) or other ids (L,
        I;16, 1), most of the maps share, the earliest on a tie - and a photo's (``PHOTO_MODES``) only
        where all are photos. Stray files never decide how the folder reads: previews or
        ``COVER.PNG`` sorting first, however many, a palette PNG among labelIds maps. None when there
        is none."""
        if self.src.is_file():
            return image_mode(self.src) if self.src.suffix.lower() == ".png" else None
        modes = self._label_png_modes
        maps = [mode for mode in modes if mode not in PHOTO_MODES]
        if not maps:
            return modes[0] if modes else None  # photos: read as ids, each one then named as no label map
        palettes = sum(mode == "P" for mode in maps)
        if 2 * palettes == len(maps):
            return maps[0]
        return next(mode for mode in maps if (mode == "P") == (2 * palettes > len(maps)))

    @cached_property
    def label_pngs_mostly_photos(self) -> bool:
        """The folder's first label PNGs (``_label_png_modes``) are those of a labelme or Label Studio
        folder beside its unreadable JSON: more than half of them photos, or half with an unreadable
        JSON file named as one of those photos (``img1.json`` beside ``img1.png``; a grey depth map
        beside each photo is half). ``detect_dataset`` then says why that JSON could not be read rather
        than reading the PNGs as id maps. Half photos beside a JSON no photo is named after (a colour
        preview beside each palette map, a ``metrics.json``) is a label folder, as it always was."""
        if self.src.is_file():
            return self.label_png_mode in PHOTO_MODES
        found = self._label_png_stems_and_modes
        photos = {stem for stem, mode in found if mode in PHOTO_MODES}
        if 2 * len(photos) > len(found):
            return True
        return 2 * len(photos) == len(found) > 0 and bool(photos & self.json_unread)

    def is_folder_with(self, name: str) -> bool:
        """``src`` is a folder holding the sub-folder ``name``."""
        return self.src.is_dir() and (self.src / name).is_dir()
