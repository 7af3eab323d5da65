"""``cvat`` (alias ``voc``): the Pascal-VOC segmentation folder of CVAT's "Segmentation mask 1.1".

Written as CVAT writes it (cvat/apps/dataset_manager/formats/mask.py ``_export``: Datumaro's
``voc_segmentation`` export with ``label_map=make_colormap(...)``)::

    labelmap.txt                       "# label:color_rgb:parts:actions", then "name:r,g,b::" per label;
                                       "background:0,0,0::" first (formats/utils.py ``make_colormap``
                                       inserts it at index 0 with colour #000000), then the classes
                                       in id order
    SegmentationClass/<stem>.png       RGB, each pixel its class colour; void (the ignore value) stays
                                       unannotated: the background colour
    SegmentationObject/<stem>.png      palette PNG, one instance per class region: index 0 where the class
                                       mask is background, 1.. in class-id order; the VOC colormap
    ImageSets/Segmentation/default.txt one stem per line ("list of image names without extension")
    JPEGImages/<stem><ext>             with ``images`` "copy" or "link" (``--include-images``): the image,
                                       where CVAT's export with images puts it and Datumaro's VOC reader
                                       looks (voc/base.py ``VocPath.IMAGES_DIR``, matched by stem)

``<stem>`` is the image's own stem (CVAT matches masks to frames by name). Reading
(``read_cvat_file``) looks for ``labelmap.txt`` in every folder above the mask (a CVAT export may
nest masks in sub-folders, ``SegmentationClass/frames/a.png``), maps each label to a class by name
(``qgn.classes.match_class_names``), and refuses a pixel whose colour is not in the label map or
whose label is no class. Labels no pixel uses are fine. The unannotated area is the label with a
void name (``background``, ``void``, …) that comes first or is black (``labelmap_void``); any other
label is a class, whatever its name, so a project's class ``void`` or ``ignore`` survives the round
trip. A class named ``background`` cannot be written (it would be CVAT's unannotated area): the
export refuses it and says to rename it.
"""
from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np

from ..classes import ClassSet, check_class_names, is_void_name, name_key
from ..fileio import atomic_write_bytes, read_text_within
from ..label_map import check_label, present_values
from ..quadtree import NUM_LEVELS
from .base import (
    DatasetWriter, ExportItem, Format, ListedNames, check_export_file, colours_to_values, holding_folder,
    listable_name, out_file, place_image, read_rgb,
)
from .png_bands import encode_png
from .source import (
    AmbiguousImageError, SourceDataset, SourceItem, broken_item, classes_from_names, find_image, inside_dataset,
    label_of_indices, png_files,
)

BACKGROUND = "background"
IMAGES_DIR = "JPEGImages"  # Datumaro voc/format.py VocPath.IMAGES_DIR
BACKGROUND_COLOR = (0, 0, 0)
LABELMAP_HEADER = "# label:color_rgb:parts:actions\n"  # Datumaro voc/format.py write_label_map


def voc_colormap(n: int = 256) -> np.ndarray:
    """(n, 3) uint8: the Pascal VOC colormap (bit-interleaved index → colour), as CVAT's
    formats/utils.py ``get_color_from_index`` and Datumaro's ``generate_colormap`` compute it."""
    index = np.arange(n)
    cmap = np.zeros((n, 3), np.int64)
    for shift in range(7, -1, -1):
        for channel in range(3):
            cmap[:, channel] |= ((index >> channel) & 1) << shift
        index = index >> 3
    return cmap.astype(np.uint8)


def cvat_labelmap(classes: ClassSet) -> list[tuple[str, tuple[int, int, int], int | None]]:
    """(name, colour, label value) of every labelmap.txt line: ``background`` (the ignore value,
    black) first, then the classes in id order. ValueError when a class is named ``background``
    (CVAT's name of the unannotated area: its pixels would read back as void), a name cannot be
    written or two lines share a colour."""
    for name in classes.names:
        if name_key(name) == BACKGROUND:
            raise ValueError(f"CVAT export: class {name!r} would be labelmap.txt's 'background', CVAT's unannotated "
                             "area (its pixels would read back as void); rename the class (e.g. to 'backdrop') and "
                             "export again")
    entries = [(BACKGROUND, BACKGROUND_COLOR, classes.ignore_index)]
    entries += [(name, tuple(rgb), i) for i, (name, rgb) in enumerate(zip(classes.names, classes.palette))]
    for name, _, _ in entries:
        if not name or any(c in name for c in ":\n\r") or name.startswith("#") or name != name.strip():
            raise ValueError(f"CVAT export: class name {name!r} cannot be written to labelmap.txt (no ':', "
                             "line breaks, leading '#' or surrounding spaces)")
    seen: dict[tuple[int, int, int], str] = {}
    for name, rgb, _ in entries:
        if rgb in seen:
            raise ValueError(
                f"CVAT masks tell classes apart by colour, but {seen[rgb]!r} and {name!r} share the colour {rgb}; "
                "give every class a distinct colour other than black (black is CVAT's background)"
            )
        seen[rgb] = name
    return entries


def format_labelmap(entries) -> str:
    return LABELMAP_HEADER + "".join(f"{name}:{r},{g},{b}::\n" for name, (r, g, b), _ in entries)


def write_cvat_files(label, classes: ClassSet, out_dir: Path, stem: str, levels: int = NUM_LEVELS,
                     image_set: ImageSet | None = None) -> list[Path]:
    """The class mask, object mask and the shared lists of one image, named ``stem`` as the image
    list holds it (``listable_name``: it lists one stem a line, so a line break becomes a space).
    Memory beyond ``label``: its present values, bands of rows of the two masks
    (``qgn.formats.png_bands``) and the files. ``image_set``: the export's ``ImageSet`` of
    ``out_dir`` (a writer's, kept from image to image), else one read here."""
    stem = listable_name(stem)
    label = check_label(label, classes, copy=False)
    entries = cvat_labelmap(classes)
    ((labelmap, data, parse),) = CvatWriter.folder_files(classes, out_dir)
    check_export_file(labelmap, data, parse)
    labelmap = out_file(out_dir, labelmap.name)
    present = present_values(label)
    top = max(int(present[-1]), classes.num_classes) + 1
    lut = np.zeros((top, 3), np.uint8)
    for _, rgb, value in entries:
        if value is not None and value < top:
            lut[value] = rgb
    height, width = label.shape
    mask = out_file(out_dir / "SegmentationClass", f"{stem}.png")
    atomic_write_bytes(mask, encode_png(height, width, "RGB", lambda y0, y1: lut[label[y0:y1]]))
    objects = out_file(out_dir / "SegmentationObject", f"{stem}.png")
    table = instance_table(present, classes)
    atomic_write_bytes(objects, encode_png(height, width, "P", lambda y0, y1: table[label[y0:y1]],
                                           voc_colormap().tobytes()))
    listed = image_set if image_set is not None else ImageSet(out_dir)
    path = listed.add(stem)
    if not labelmap.exists():
        atomic_write_bytes(labelmap, data)
    return [mask, objects, labelmap, path]


class ImageSet:
    """An export's shared ``ImageSets/Segmentation/default.txt`` under ``out_dir``, its stems as this
    writer last read or wrote them. An item's line is appended to the file in place (``append_line``,
    under the folder's lock, synced): bytes written are linear in the items - rewriting the whole
    list per image wrote ~160 MB for 5,000 images. A crash at any point leaves every line written
    before (appends never touch them) and the new line whole or absent, after its masks (a line
    never names a mask not on disk). An undo takes its item's line off: where it is the last line and
    the file is as this writer's append left it, by cutting the file back in place (``cut_line``:
    bytes proportional to the line, not the list - a rewrite per image taken back was quadratic when
    a later format failed on every image); else by rewriting it (atomically, a new file).

    The list is parsed again only where another export changed it: the writer keeps the file it
    last read or wrote open, so that its inode number cannot be reused, and where the file at the
    path is still that one (every writer appends in place; a rewrite is a new file; a cut makes it
    shorter), no shorter, and
    still holds the last bytes it knew where it knew them, only the lines appended since are read
    and parsed (a folder export reads the list once, not once per image: 5,000 images read 12.5
    million lines). Otherwise it is read whole. Timestamps are never trusted (coarse on FAT and ext4
    before Linux 6.13, and stamped by a file server's clock)."""

    _TAIL = 4096  # the last bytes known, compared before lines appended since are trusted

    def __init__(self, out_dir: Path):
        self.path = Path(out_dir) / "ImageSets" / "Segmentation" / "default.txt"
        self._file = None  # the file ``_stems`` was read from or written to, held open (not on Windows)
        self._known: os.stat_result | None = None  # that file's ``stat`` when read (None: there was none)
        self._size = 0  # its bytes known
        self._tail = b""  # its last bytes known (up to ``_TAIL``)
        self._stems: list[str] = []
        self._set: set[str] = set()
        self.listed_before: tuple[str, bool] | None = None  # the last ``add``: (stem, listed when it came)
        # the last line ``_append`` added, while it is the file's last: (stem, size and tail before, its bytes)
        self._appended: tuple[str, int, bytes, bytes] | None = None

    def _forget(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file, self._known, self._size, self._tail, self._stems, self._set = None, None, 0, b"", [], set()
        self._appended = None

    def _read(self, path: Path) -> None:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            self._forget()
            return
        if self._file is not None and self._tail.endswith(b"\n") and st.st_size >= self._size:
            known = os.fstat(self._file.fileno())
            if (known.st_dev, known.st_ino) == (st.st_dev, st.st_ino):
                start = self._size - len(self._tail)
                self._file.seek(start)  # (os.pread: not on Windows)
                data = self._file.read(st.st_size - start)
                if data[: len(self._tail)] == self._tail:
                    added = data[len(self._tail):]
                    if added:  # another export's lines: ours (``_appended``) is no longer the last
                        self._appended = None
                        stems = parse_image_set(added)
                        self._stems += stems
                        self._set.update(stems)
                        self._size += len(added)
                        self._tail = (self._tail + added)[-self._TAIL:]
                    return
        self._forget()
        try:
            f = open_list(path)
        except FileNotFoundError:
            return
        try:
            data = f.read()
            self._stems = parse_image_set(data)
        except BaseException:
            f.close()
            raise
        self._file, self._known = f, os.fstat(f.fileno())
        self._size, self._tail, self._set = len(data), data[-self._TAIL:], set(self._stems)
        if os.name == "nt":  # an open file there cannot be renamed over (another export's undo): read whole each time
            self._file = None
            f.close()

    def _write(self, path: Path, stems: list[str]) -> None:
        """``stems`` written to the file, replacing it (atomically: an undo's rewrite); the memory
        changed only once they are there (a failed write, ENOSPC or EIO, left the file as it was - or,
        where only its folder's fsync failed, replaced: the memory is dropped, the next use reads
        the file again)."""
        data = "".join(s + "\n" for s in stems).encode("utf-8")
        self._forget()  # (closed first: Windows renames over no open file)
        atomic_write_bytes(path, data)
        self._read(path)

    def _append(self, path: Path, stem: str) -> None:
        """``stem``'s line appended to the file as ``_read`` left it (created where there is none);
        the memory changed only once it is there."""
        line = (stem + "\n").encode("utf-8")
        if self._known is None:
            self._forget()
            atomic_write_bytes(path, line)  # a new list: whole or absent
            self._read(path)
            return
        if self._tail and not self._tail.endswith(b"\n"):  # a list edited by hand, its last line unended
            line = b"\n" + line
        try:
            append_line(path, line, self._size, self._known)
        except BaseException:
            self._forget()
            raise
        self._appended = (stem, self._size, self._tail, line)
        self._stems.append(stem)  # as ``_read`` would parse it, without reading it back
        self._set.add(stem)
        self._size += len(line)
        self._tail = (self._tail + line)[-self._TAIL:]

    def stems(self) -> list[str]:
        """The stems the file lists now ([] where there is none)."""
        if not self.path.is_file():
            return []
        self._read(self.path)
        return list(self._stems)

    def lists(self, stem: str) -> bool:
        """Whether the file lists ``stem`` now."""
        if not self.path.is_file():
            return False
        self._read(self.path)
        return stem in self._set

    def holding(self):
        """The list's folder locked (created, ``out_file``) while the block runs (``holding_folder``): a
        writer holds it over an item's whole ``add`` (its masks written and listed) and ``undo`` (its
        files taken back and its line taken off), so that no other export into the folder comes
        between - its masks written but not yet listed, or its undo half done."""
        return holding_folder(out_file(self.path.parent, self.path.name).parent)

    def add(self, stem: str) -> Path:
        """``stem`` listed (the file created, ``out_file``); the file's path."""
        path = out_file(self.path.parent, self.path.name)
        with self.holding():  # two exports into one folder keep both lists
            self._read(path)
            self.listed_before = (stem, stem in self._set)  # under the lock: no other export between
            if stem not in self._set:
                self._append(path, stem)
        return path

    def remove(self, stems, keep=None) -> list[str]:
        """``stems`` taken off the file, where it lists any, less those ``keep(stem)`` says stay -
        asked under the folder's lock, so that no other export writes the list between; the stems kept."""
        if not self.path.is_file():
            return []
        with self.holding():
            kept = [stem for stem in stems if keep is not None and keep(stem)]
            self._read(self.path)
            dropped = set(stems) - set(kept)
            if dropped & self._set and not self._cut_last(dropped):
                self._write(self.path, [s for s in self._stems if s not in dropped])
        return kept

    def _cut_last(self, dropped: set[str]) -> bool:
        """Where the one stem of ``dropped`` the file lists is the line this writer appended last and
        the file is still as that append left it, the line cut off in place (``cut_line``) and the
        memory as before the append: True. False (nothing done) where not: the caller rewrites."""
        appended = self._appended
        if appended is None or self._known is None:
            return False
        stem, size, tail, line = appended
        if dropped & self._set != {stem} or self._stems[-1:] != [stem] or self._size != size + len(line):
            return False
        try:
            if not cut_line(self.path, size, line, self._known):
                return False
        except BaseException:
            self._forget()  # (a failed truncate or sync: read again next time)
            raise
        self._stems.pop()
        self._set.discard(stem)  # (listed once: ``_append`` adds only a stem not listed)
        self._size, self._tail, self._appended = size, tail, None
        return True


class CvatWriter(DatasetWriter):
    """``write_cvat_files`` per image, and with ``images`` the image in ``JPEGImages/``. An item is
    named as the image list holds it, ``-2`` … where that is another item's (``ListedNames``, ``plan``:
    "two\\nlines" and "two lines" are both listed as "two lines", and the second's masks replaced the
    first's; "two lines" keeps its name, whatever else is exported); ``undo`` frees the name and
    takes it off the shared ``ImageSets/Segmentation/default.txt``, unless the class mask there is
    not this export's (the base undo's identity check, ``ReplacedFiles``; asked under the list's
    lock): another export's, written since (it listed it, or will), or the earlier file put back
    where the list held it when this export's line was added (a failed re-export keeps it listed).
    A name kept listed stays taken: no later item of this export is written over its files."""

    takes_images = True
    uses_images = True
    names_image_only = True  # without ``images``, an image not there is named as it was (``needs_image``)
    listable = staticmethod(listable_name)

    def __init__(self, classes: ClassSet, out_dir: Path, levels: int = NUM_LEVELS):
        cvat_labelmap(classes)  # a class it cannot write: refused as it opens, not at each image
        super().__init__(write_cvat_files, classes, out_dir, levels)
        self.names = ListedNames(listable_name)
        self._added: tuple[str, Path, tuple[int, int] | None, tuple[int, int] | None] | None = None
        # the last ``add``: (stem, class mask, the mask's identity (st_dev, st_ino) before, after it)
        self.image_set = ImageSet(out_dir)  # default.txt, read once and again only where another export changed it

    @classmethod
    def folder_files(cls, classes: ClassSet, out_dir: Path):
        data = format_labelmap(cvat_labelmap(classes)).encode("utf-8")
        return [(Path(out_dir) / "labelmap.txt", data, parse_labelmap)]

    def plan(self, names, images=None) -> None:
        self.names.reserve(names)

    def holding(self):
        """The list folder's lock (``ImageSet.holding``): it guards the masks and image copies too."""
        return self.image_set.holding()

    def lock_folders(self) -> list[Path]:
        return [self.image_set.path.parent]  # (``ImageSet.holding``'s, made only as an item is written)

    def add(self, item: ExportItem) -> list[Path]:
        with self.image_set.holding():  # masks written and listed with no other export between
            return self._add(item)

    def _add(self, item: ExportItem) -> list[Path]:
        stem = self.names.pick(item.name)
        mask = out_file(self.out_dir / "SegmentationClass", f"{stem}.png")  # as ``write_cvat_files`` names it
        self._added = (stem, mask, _identity(mask), None)
        self.image_set.listed_before = None
        written = write_cvat_files(item.label, self.classes, self.out_dir, stem, levels=self.levels,
                                   image_set=self.image_set)
        self._added = (stem, mask, self._added[2], _identity(mask))
        if self.images in ("copy", "link") and item.image is not None and Path(item.image).is_file():
            name = f"{stem}{Path(item.image).suffix.lower()}"  # the masks' stem
            written.append(place_image(Path(item.image), self.out_dir / IMAGES_DIR, name, self.images))
        return written

    def mark(self):
        return self.names.mark()

    def undo(self, mark, item: ExportItem, paths: list[Path]) -> None:
        with self.image_set.holding():  # files taken back and the line judged with no other export between
            self._undo(mark, item, paths)

    def _undo(self, mark, item: ExportItem, paths: list[Path]) -> None:
        # the line first, then the files: a kill between leaves masks no line names (passed over by a
        # reader), never a listed name without its masks. So the line is judged by the mask the files'
        # take-back will leave (``_left_by_take_back``), before it runs
        replaced = self.replaced  # ``super().undo`` lets it go
        dropped = self.names.undo(mark)
        added, self._added = self._added, None
        listed, self.image_set.listed_before = self.image_set.listed_before, None
        if added is None:
            ours = before = None
        else:
            written = replaced.written if replaced is not None else {}
            ours, before = written.get(added[1], added[3]), added[2]

        def keep(stem: str) -> bool:  # under the list's lock
            if added is None or stem != added[0]:
                return False
            on_disk = _left_by_take_back(added[1], replaced, ours)
            if on_disk is None or on_disk == ours:
                return False  # no mask (or this export's own, left): nothing to list
            if on_disk == before:  # the earlier file, put back: listed as it was when this export came
                return listed is None or listed != (stem, False)
            return True  # another export's, written since: it listed it, or will

        try:
            for stem in self.image_set.remove(dropped, keep) if dropped else []:
                self.names.pick(stem)  # listed: no later item of this export is written over its files
        except Exception:  # the line still listed (a failed write of the list): its masks stay with it
            self.replaced = None
            if replaced is not None:
                replaced.drop()
            raise
        super().undo(mark, item, paths)


def _left_by_take_back(mask: Path, replaced, ours) -> tuple[int, int] | None:
    """The identity of the file at ``mask`` once ``DatasetWriter.undo`` has taken this export's item back
    (read before it runs, under the list's lock): another writer's file there is left as it is; this
    export's own (``ours``) is replaced by the earlier file it replaced, kept under a second name (a hard
    link: the same identity), where one was kept, else removed - as is every file of the item without
    ``replaced``."""
    on_disk = _identity(mask)
    if replaced is None:
        return None
    if on_disk is None or on_disk != ours:
        return on_disk
    second = replaced.kept.get(Path(mask))
    return _identity(Path(second)) if second else None


def _identity(path: Path) -> tuple[int, int] | None:
    """(st_dev, st_ino) of the file at ``path`` (not followed), None where there is none."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def open_list(path: Path):
    """An export's ``ImageSets/Segmentation/default.txt`` opened to read (``open_regular``: a named
    pipe there is one item's failure, never waited on)."""
    from ..fileio import open_regular

    return open_regular(path)


def append_line(path: Path, line: bytes, size: int, known: os.stat_result) -> None:
    """``line`` appended to the list at ``path`` - the file ``known`` (its ``stat``), ``size`` bytes
    long (the caller holds the folder's lock: no other writer between) - and synced. Where the
    write fails part way (ENOSPC), the file is cut back to ``size`` and the error goes up. OSError
    where the file at ``path`` is no longer ``known`` (nothing written)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0))
    try:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != (known.st_dev, known.st_ino) or st.st_size != size:
            raise OSError(errno.ESTALE, "changed while locked", str(path))
        try:
            done = 0
            while done < len(line):
                done += os.write(fd, line[done:])
            os.fsync(fd)
        except BaseException:
            try:
                os.ftruncate(fd, size)
            except OSError:
                pass
            raise
    finally:
        os.close(fd)


def cut_line(path: Path, size: int, line: bytes, known: os.stat_result) -> bool:
    """The list at ``path`` cut back to ``size`` bytes, taking off ``line``, its last (in place, synced;
    the caller holds the folder's lock): a kill leaves the line whole or gone - a truncate is one
    step. False (nothing done) where the file at ``path`` is no longer ``known``, ``size`` + the
    line long, or ending in the line."""
    fd = os.open(path, os.O_RDWR | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0))
    try:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != (known.st_dev, known.st_ino) or st.st_size != size + len(line):
            return False
        os.lseek(fd, size, os.SEEK_SET)
        if os.read(fd, len(line) + 1) != line:
            return False
        os.ftruncate(fd, size)
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


def image_set_bytes(path: Path) -> bytes:
    """An export's ``ImageSets/Segmentation/default.txt`` as it is (``open_regular``: a named pipe
    there is one item's failure, never waited on)."""
    from ..fileio import open_regular

    with open_regular(path) as f:
        return f.read()


def parse_image_set(data: bytes) -> list[str]:
    """The stems ``default.txt``'s bytes list, one a line."""
    return data.decode("utf-8").splitlines()


def instance_table(present: np.ndarray, classes: ClassSet) -> np.ndarray:
    """label value → SegmentationObject index (uint8) of a label map whose values are ``present``
    (ascending): 0 on void (background), 1.. one instance per class present, in class-id order."""
    classes_present = [int(c) for c in present if c < classes.num_classes]
    if len(classes_present) > 254:
        raise ValueError("CVAT export: more than 254 classes in one image do not fit a VOC instance mask")
    table = np.zeros(max(int(present[-1]), classes.num_classes) + 1, np.uint8)
    for instance, c in enumerate(classes_present, start=1):
        table[c] = instance
    return table


def read_labelmap(path: Path) -> list[tuple[str, tuple[int, int, int] | None]]:
    """(name, colour) of each line of a CVAT/VOC ``labelmap.txt`` (Datumaro voc/format.py
    ``parse_label_map``: ``name:r,g,b:parts:actions``, '#' comments). A label may have no colour
    (``name:::``, as Datumaro writes a dataset without mask colours); when none has one, the masks
    are in the Pascal VOC colormap by label index (``make_voc_categories``: ``generate_colormap``),
    else a label without one is in no mask (None)."""
    return parse_labelmap(read_text_within(path, "CVAT/VOC label map"), path)


def parse_labelmap(text: str, path: Path | str = "labelmap.txt") -> list[tuple[str, tuple[int, int, int] | None]]:
    """``read_labelmap`` of the file's ``text``."""
    entries: list[tuple[str, tuple[int, int, int] | None]] = []
    lines: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split(":")
        try:
            rgb = tuple(int(c) for c in parts[1].split(",")) if parts[1].strip() else None
            if rgb is not None and (len(rgb) != 3 or not all(0 <= c <= 255 for c in rgb)):
                raise ValueError
        except (IndexError, ValueError):
            raise ValueError(f"{path} line {number}: expected 'name:r,g,b::' or 'name:::', got {line!r}") from None
        entries.append((parts[0].strip(), rgb))
        lines.append(number)
    if not entries:
        raise ValueError(f"{path}: no labels")
    check_class_names([n for n, _ in entries], str(path), lines)
    if all(rgb is None for _, rgb in entries):
        entries = [(name, tuple(int(c) for c in rgb)) for (name, _), rgb in zip(entries, voc_colormap(len(entries)))]
    return entries


def find_labelmap(mask: Path) -> Path:
    """The labelmap.txt of a CVAT mask: beside the mask or one folder up, or, for a mask under a
    ``SegmentationClass`` folder (sub-folders allowed), in any folder up to that folder's parent."""
    parents = list(Path(mask).absolute().parents)
    candidates = parents[:2]
    root = next((i for i, p in enumerate(parents) if p.name in ("SegmentationClass", "SegmentationObject")), None)
    if root is not None:
        candidates = parents[: root + 2]
    for folder in candidates:
        if (folder / "labelmap.txt").is_file():
            return folder / "labelmap.txt"
    raise ValueError(
        f"{mask} is a colour mask; reading it needs the labelmap.txt of its CVAT/Pascal-VOC export "
        f"(looked in {', '.join(str(c) for c in candidates)}): copy it beside SegmentationClass/"
    )


def labelmap_void(entries) -> list[int]:
    """The positions of the labels that are a CVAT/VOC label map's unannotated area: a void name
    (``background``, ``void``, …) first or in black, as CVAT's ``make_colormap`` and VOC put
    ``background:0,0,0``. A void-like name in another place and colour is a class."""
    return [i for i, (name, rgb) in enumerate(entries) if is_void_name(name) and (i == 0 or rgb == BACKGROUND_COLOR)]


def decode_with_labelmap(path: Path, labelmap: Path, classes: ClassSet, mapping=None) -> np.ndarray:
    """(H, W) label of a colour mask read through ``labelmap``; ValueError for colours it lacks or
    for pixels whose label is no class."""
    entries = read_labelmap(labelmap)
    coloured = [i for i, (_, rgb) in enumerate(entries) if rgb is not None]
    raw = colours_to_values(read_rgb(path, "a CVAT mask"), [entries[i][1] for i in coloured], coloured, path,
                            labelmap)
    return label_of_indices(raw, [n for n, _ in entries], classes, mapping, path, labelmap_void(entries))


def read_cvat_file(path: Path, classes: ClassSet) -> np.ndarray:
    return decode_with_labelmap(path, find_labelmap(path), classes)


# ---------------------------------------------------------------------------------- dataset import
def scan_cvat(root: Path, images: Path | None, name: str = "cvat") -> SourceDataset:
    labelmap = root / "labelmap.txt"
    masks_dir = root / "SegmentationClass"
    if not masks_dir.is_dir():
        raise ValueError(f"{root}: no SegmentationClass/ folder; not a CVAT/Pascal-VOC segmentation export")
    if not labelmap.is_file():
        raise ValueError(f"{root}: no labelmap.txt, so the mask colours cannot be proven to mean any class; "
                         "export it with CVAT's 'Segmentation mask 1.1' (it writes labelmap.txt) or add one")
    entries = read_labelmap(labelmap)
    masks = png_files(masks_dir)  # x.PNG too, on every system
    items = []
    for mask in masks:
        rel = mask.relative_to(masks_dir).with_suffix("").as_posix()
        try:
            image = find_image(rel, images, root / IMAGES_DIR) or find_image(Path(rel).name, images)
        except AmbiguousImageError as exc:
            items.append(broken_item(Path(rel).name, mask, exc))
            continue
        items.append(SourceItem(Path(rel).name, image, _cvat_reader(mask, labelmap, root), str(mask)))
    nested = " (in sub-folders)" if any("/" in m.relative_to(masks_dir).as_posix() for m in masks) else ""
    description = (f"{name}: CVAT/Pascal-VOC segmentation export, {len(masks)} mask{'' if len(masks) == 1 else 's'}{nested}, "
                   f"{len(entries)} labels in labelmap.txt")
    return SourceDataset(name, root, description, classes_from_names(entries, void=labelmap_void(entries)), items)


def _cvat_reader(mask: Path, labelmap: Path, root: Path):
    def read(classes: ClassSet, mapping=None) -> np.ndarray:
        inside_dataset(root, mask)
        return decode_with_labelmap(mask, labelmap, classes, mapping)

    return read



def scan_voc(root: Path, images: Path | None) -> SourceDataset:
    return scan_cvat(root, images, "voc")


def is_cvat_dataset(probe) -> bool:
    return probe.is_folder_with("SegmentationClass")


def is_cvat_mask(probe) -> bool:
    return probe.mode in ("RGB", "RGBA", "PA")


FORMAT = Format("cvat", "CVAT Segmentation mask 1.1 (labelmap.txt, class + object masks)", ".png",
                write_cvat_files, read_cvat_file, CvatWriter, image_names=True, is_mask=is_cvat_mask, scan=scan_cvat,
                is_dataset=is_cvat_dataset, check_classes=cvat_labelmap)
VOC_FORMAT = Format("voc", "Pascal-VOC segmentation: the same folder as cvat",
                    ".png", write_cvat_files, read_cvat_file, CvatWriter, image_names=True, scan=scan_voc,
                    check_classes=cvat_labelmap)
