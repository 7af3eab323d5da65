"""``png``: ``<stem>.png``, an indexed-palette PNG whose palette index is the class id, the ignore
value kept (coloured with the ignore colour); 16-bit grayscale when a value exceeds 255.

A dataset export (a project's, or a folder of ``.qgt``) also writes ``classes.txt`` beside the PNGs
(``qgn.data.folder``'s class list: names, colours, the ignore value), which the import of the folder
reads (``scan_label_folder``): the PNGs' ids alone name no class, and a new project would otherwise
need ``--classes``."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..classes import ClassSet
from ..quadtree import NUM_LEVELS
from ..quadtree.label_io import read_label, write_label_png
from .base import ClassListWriter, Format, MaskProbe, as_label, out_file
from .source import DatasetProbe, SourceDataset, scan_label_folder


def write_png_file(label, classes: ClassSet, out_dir: Path, stem: str, levels: int = NUM_LEVELS) -> list[Path]:
    path = out_file(out_dir, f"{stem}.png")
    write_label_png(path, label, classes)
    return [path]


CLASSES_TXT = "classes.txt"  # beside the PNGs: where ``scan_label_folder`` (``find_classes_file``) looks


def classes_file_text(classes: ClassSet) -> bytes | None:
    """``classes.txt`` of ``classes``; None when a name cannot be a line of it, or is one no importer
    reads back (``check_exportable_names``: 'café' in NFC and in NFD, a name saved before the
    class-name door): the export then goes without one, the PNGs' ids need no name."""
    from ..quadtree.label_io import format_classes_file

    if without_classes_file(classes) is not None:
        return None
    return format_classes_file(classes).encode("utf-8")


def without_classes_file(classes: ClassSet) -> str | None:
    """Why a png export of ``classes`` goes without ``classes.txt`` (a name no importer reads back,
    ``check_exportable_names``); None when it has one."""
    from ..quadtree.label_io import format_classes_file
    from . import check_exportable_names

    try:
        check_exportable_names(classes)
        format_classes_file(classes)
    except ValueError as exc:
        return str(exc).split(";")[0]
    return None


class PngWriter(ClassListWriter):
    """The PNGs, then ``classes.txt`` when there are some (none when a class name cannot be a line of it,
    ``classes_file_text``)."""

    def __init__(self, classes: ClassSet, out_dir: Path, levels: int = NUM_LEVELS):
        super().__init__(write_png_file, classes, out_dir, levels)
        if self.list_data is None:  # said once per export: an import of these PNGs needs --classes
            from ..export_lock import say_export_note
            from ..shown import path_text

            say_export_note(f"{path_text(self.out_dir)}: the PNGs go without {CLASSES_TXT} "
                            f"({without_classes_file(classes)}): import them with --classes FILE",
                            ("no-classes-txt", str(Path(self.out_dir).resolve())))

    @classmethod
    def folder_files(cls, classes: ClassSet, out_dir: Path):
        from ..classes import parse_classes_txt

        path, data = Path(out_dir) / CLASSES_TXT, classes_file_text(classes)
        # an export without a list is refused beside another's (check_export_file); PNGs there without
        # a list are judged by the items this export plans (check_items_folder)
        return [(path, data, parse_classes_txt)]

    @classmethod
    def check_items_folder(cls, classes: ClassSet, out_dir: Path, items, images: Path | None = None,
                           walks: dict | None = None) -> None:
        """FolderRefusedError where this export writes a ``classes.txt`` into a folder without one that
        holds a PNG it will not replace (``items``: the name of every item it plans, a sub-path
        ``sub/name`` for one it writes into a subfolder) and no list of the same classes names: another
        export's, one that went without a list (names no list can hold) or, in a subfolder, one with a
        list of other classes, which an import would read under this export's names. The PNGs looked
        at are those the import of the folder reads (``label_pngs``: beneath it too, not its image
        folders - ``images`` the export's ``--images``, ``images/`` beside or inside - only its
        ``labels/`` where it has one), .PNG too (the import reads it, on every system); a photo (an RGB or
        RGBA PNG, its header read: ``is_photo_png``) is never read as labels. PNGs of this export's
        own names only - a 0.2.0 export (which wrote no list), one killed before its finish, a folder
        tree's export - are replaced: exporting there again goes on. ``walks``: a dict one run keeps
        (a folder export asks once per .qgt file): the folder is walked once per list, and the walk
        stops at the first such PNG (folders top-down, names sorted), the one said."""
        out_dir = Path(out_dir)
        path, data = out_dir / CLASSES_TXT, classes_file_text(classes)
        if data is None or path.exists() or path.is_symlink() or not out_dir.is_dir():
            return  # no list written, or the one there is judged (check_export_file)
        key = (str(out_dir), None if images is None else str(images), data, tuple(items))
        if walks is not None and key in walks:
            stray = walks[key]
        else:
            stray = _first_stray(out_dir, data, items, images)
            if walks is not None:
                walks[key] = stray
        if stray is not None:
            from ..shown import path_text
            from .base import FolderRefusedError

            rel, listed = stray
            whose = (f"belongs to an export without a {CLASSES_TXT}" if listed is None
                     else f"is listed by {path_text(Path(listed))} with other classes")
            raise FolderRefusedError(f"{path_text(out_dir / rel)} {whose}, and this export's {CLASSES_TXT} would "
                                     "name its classes (an import reads every PNG there and beneath under it); "
                                     "export into an empty folder")


def _first_stray(out_dir: Path, data: bytes, items, images: Path | None) -> tuple[str, str | None] | None:
    """(its path under ``out_dir``, the nearest list above it below ``out_dir`` or None) of the first
    PNG the import of ``out_dir`` reads that ``items`` do not name, no list of ``data``'s classes
    lists and no photo is (``PngWriter.check_items_folder``); None when there is none."""
    import os

    from ..classes import parse_classes_txt
    from .base import check_export_file
    from .source import is_photo_png, label_pngs

    planned = {os.path.normcase(os.path.join(*f"{name}.png".split("/"))) for name in items}
    top = str(out_dir)
    # each folder's nearest list below out_dir: True (this export's classes), its path (another's), None
    lists: dict[str, bool | str | None] = {top: None}

    def nearest_list(folder: str) -> bool | str | None:
        chain = []
        while folder not in lists:
            chain.append(folder)
            folder = os.path.dirname(folder)
        listed = lists[folder]
        for folder in reversed(chain):  # from the top down: a folder's own list, else its parent's
            own = os.path.join(folder, CLASSES_TXT)
            if os.path.isfile(own) or os.path.islink(own):
                try:
                    listed = True if check_export_file(Path(own), data, parse_classes_txt) else own
                except (ValueError, OSError):  # other classes, or no list to read: not this export's
                    listed = own
            lists[folder] = listed
        return listed

    for png in label_pngs(out_dir, Path(images) if images is not None else None):
        rel = os.path.relpath(png, top)
        if os.path.normcase(rel) in planned:
            continue
        listed = nearest_list(os.path.dirname(str(png)))
        if listed is not True and not is_photo_png(png):
            return rel, listed
    return None


def read_png_file(path: Path, classes: ClassSet) -> np.ndarray:
    return as_label(read_label(path), classes, path)


def scan_png_folder(src: Path, images: Path | None) -> SourceDataset:
    return scan_label_folder(src, images, "png", read_png_file)


def is_png_mask(probe: MaskProbe) -> bool:
    """Palette (P), bilevel (1) and 16/32-bit (I;16, I) images hold the ids themselves."""
    return probe.mode in ("P", "1") or probe.mode.startswith("I")


def is_png_dataset(probe: DatasetProbe) -> bool:
    return probe.label_png_mode == "P"


FORMAT = Format("png", "indexed-palette PNG of class ids, ignore value kept", ".png", write_png_file, read_png_file,
                PngWriter, is_mask=is_png_mask, scan=scan_png_folder, is_dataset=is_png_dataset)
