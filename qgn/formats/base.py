"""What every format module shares: the ``Format`` record, the ``ExportItem`` of a dataset export,
the ``MaskProbe`` that mask-file detection looks at, and the small helpers that turn files into
label maps of a class set.

A format module defines one ``FORMAT = Format(...)``; ``qgn.formats`` collects them in ``FORMATS``.
Whole-dataset import shares ``qgn.formats.source``.
"""
from __future__ import annotations

import io
import os
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..classes import ClassSet
from ..imagefile import ImageTooLargeError, SeveralPicturesError, load_checked, open_image
from ..label_map import check_label, label_dtype
from ..quadtree import NUM_LEVELS



@dataclass(frozen=True)
class ExportItem:
    """One image of a dataset export.

    name:  the file stem the export uses (the image's own stem where the caller could keep it).
    label: (H, W) integer label map of the export's class set (ids 0..k-1 and the ignore value).
    image: the image file, or None (formats that copy or reference images then skip it)."""

    name: str
    label: np.ndarray
    image: Path | None = None


#: Where ``str.splitlines`` (and so a reader of a list of one name a line) splits a line.
LINE_BREAK = re.compile("[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")


def listable_name(name: str) -> str:
    """``name`` as a list of one name a line (CVAT's ``ImageSets/Segmentation/default.txt``,
    CamVid's ``default.txt``) can hold it, and so the name of the item's files too: each line
    break a space. A project's export names such an image after its key (``qgn.project_export.export_names``);
    an export of .qgt files, the writers themselves, use this."""
    return LINE_BREAK.sub(" ", name)


class NameClashError(ValueError):
    """Two items of one export whose own names are one file name on a disk that ignores case and
    how an accent is encoded (``qgn.fileio.one_file_name``: "b" and "B", "café" in NFC and NFD): which
    of them would keep its name would depend on what else is exported, so the export is refused."""

    def __init__(self, first: str, second: str):
        import unicodedata

        from ..shown import echo

        self.first, self.second = first, second
        if unicodedata.normalize("NFC", first) == unicodedata.normalize("NFC", second):
            self.why = ("they differ only in how an accent is encoded, as one character or as a letter and a "
                        "combining accent: one file name on macOS disks")
        else:
            self.why = "they differ only in case: one file name on macOS and Windows disks"
        super().__init__(f"the items {echo(first, quote=True)} and {echo(second, quote=True)} would both be "
                         f"written as one file ({self.why}); rename one of them")


class ListedNames:
    """The item names one export's list holds (CVAT's ``ImageSets/Segmentation/default.txt``,
    CamVid's ``default.txt``, the files named after them), told apart as that list holds them
    (``listable``, default ``listable_name``) and as a disk that ignores case and how an accent is
    encoded does (``qgn.fileio.one_file_name``).

    ``reserve`` (the names of every item of the export, before any is picked) makes the names stable
    whatever else is exported: an item whose own name the list holds as it is keeps it, and a name
    that must change ("two\\nlines", listed as "two lines") never becomes another item's own name.
    ``pick`` gives the name itself where it can, else ``-2``, ``-3`` … after the listed form, never a
    name taken or reserved (without ``reserve``, the first item picked keeps a name, as the items come);
    ``mark`` / ``undo`` take back the names picked since (an item taken back leaves its name free)."""

    def __init__(self, listable: Callable[[str], str] = listable_name):
        self.listable = listable
        self._taken: dict[str, str] = {}  # key of a name picked -> that name, in the order picked
        self._own: dict[str, str] = {}  # key -> the own (listable) name of an item of the export (``reserve``)

    def _key(self, name: str) -> str:
        from ..fileio import one_file_name

        return one_file_name(self.listable(name))

    def reserve(self, names: Sequence[str], refuse: bool = True) -> None:
        """Keep the own names among ``names`` (those the list holds as they are) for their items.
        NameClashError when two of them are one file name but not the same name ("b" and "B"), with
        ``refuse``; otherwise the first keeps the key. The same name twice: the first item keeps it."""
        own: dict[str, str] = {}
        for name in names:
            if self.listable(name) != name:
                continue
            key = self._key(name)
            other = own.setdefault(key, name)
            if other != name and refuse:
                raise NameClashError(other, name)
        for key, name in own.items():
            self._own.setdefault(key, name)

    def pick(self, name: str) -> str:
        wanted = self.listable(name)
        key = self._key(wanted)
        if wanted == name and key not in self._taken and self._own.get(key, name) == name:
            self._taken[key] = name
            return name
        candidate, n = wanted, 1
        while self._key(candidate) in self._taken or self._key(candidate) in self._own:
            n += 1
            candidate = f"{wanted}-{n}"
        self._taken[self._key(candidate)] = candidate
        return candidate

    def __contains__(self, name: str) -> bool:
        """``name`` is taken (as the list holds it, case and accent encoding aside)."""
        return self._key(name) in self._taken

    def mark(self) -> int:
        return len(self._taken)

    def undo(self, mark: int) -> list[str]:
        """Forget the names picked after ``mark``; those names."""
        dropped = list(self._taken.items())[mark:]
        for key, _ in dropped:
            del self._taken[key]
        return [name for _, name in dropped]


IMAGE_MODES = (None, "copy", "link")  # how an export includes the image files (None: it names them)
_SPLIT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def check_split(name: str) -> str:
    """``name`` if it can name a split folder (``gtFine/<split>/``): letters, digits, ``_`` and
    ``-``, as Cityscapes' train, val, test, train_extra; ValueError otherwise (a path separator, a
    ``..``, a space or an empty name would put files elsewhere or break the readers' globs)."""
    if not isinstance(name, str) or not _SPLIT_NAME.fullmatch(name):
        why = ("it holds a path separator" if isinstance(name, str) and ("/" in name or "\\" in name)
               else "it is '..'" if name == ".." else "it is not a plain folder name")
        raise ValueError(f"split {name!r}: {why}; a split is one folder name of letters, digits, _ and - "
                         "(train, val, test)")
    return name


class DatasetWriter:
    """Writes one dataset export, an image at a time: ``add(item)`` → paths written now, then
    ``finish()`` → paths written at the end (e.g. one JSON for all images). This default writes
    each item with a per-image ``write`` function. ``takes_images``: the writer honours ``images``
    ("copy" / "link": the image files go into the export where its readers look for them).
    ``takes_split``: the writer files everything under a split folder (``split``; Cityscapes).
    ``uses_images``: the writer copies, reads or names ``item.image``; ``needs_image()``: it cannot
    write an item whose image file is not there (``check_export_image``), which ``names_image_only``
    writers (COCO, CVAT, labelme) can without ``images``: they name the image (or not at all)."""

    takes_images = False
    uses_images = False
    names_image_only = False
    takes_split = False
    split: str | None = None
    #: how the writer's list of one name a line holds an item's name (``ListedNames``); None: no such list
    listable: Callable[[str], str] | None = None

    def __init__(self, write, classes: ClassSet, out_dir: Path, levels: int = NUM_LEVELS):
        self._write, self.classes, self.out_dir, self.levels = write, classes, Path(out_dir), levels
        self.images: str | None = None
        self.not_written: list[tuple[str, Path | None]] = []  # ``keep``: (name, image) not exported this time
        self.replaced = None  # ``add_to_every_writer``: the earlier files the last ``add`` replaced (``undo``)

    def needs_image(self) -> bool:
        """Whether an item's image file must be there for this writer to write it: a copy or link of
        it (``images``), an index that leads to it (FiftyOne's data.json, Label Studio's tasks,
        CamVid's list, Cityscapes' leftImg8bit). COCO's JSON, CVAT's masks and labelme's JSON
        without ``images`` hold only the image's name, and are written for an image not there."""
        return self.uses_images and not (self.names_image_only and self.images not in ("copy", "link"))

    @classmethod
    def folder_files(cls, classes: ClassSet, out_dir: Path) -> list[tuple[Path, bytes | None, Callable | None]]:
        """The files an export of ``classes`` into ``out_dir`` shares among its items and refuses to
        replace when they hold another export's (``check_export_file``: (path, data, parse) each):
        CVAT's labelmap.txt, CamVid's label_colors.txt … (``Format.check_folder`` checks them for
        every format of an export before any writer writes). Reads and writes nothing."""
        return []

    @classmethod
    def check_items_folder(cls, classes: ClassSet, out_dir: Path, items: Sequence[str], images: Path | None = None,
                           walks: dict | None = None) -> None:
        """FolderRefusedError when ``out_dir`` holds files of another export that this export's shared
        files would name and its items (``items``: every item name the export plans) would not
        replace (``Format.check_folder``; png: PNGs without a classes.txt). ``images``: the export's
        image folder (the import's ``--images``); ``walks``: a dict kept over one run, where a folder
        export asks once per file. Reads, writes nothing."""

    def plan(self, names: Sequence[str], images: Sequence[Path | None] | None = None) -> None:
        """The names of every item of the export (the images not exported this time too, where the
        caller knows them), before the first ``add``, and their image files (``images``, one per
        name, where the caller knows them): a writer that lists its items by name one a line
        (``listable``: CVAT, CamVid) names them as ``ListedNames.reserve`` says, so that an item keeps
        its name whatever else is exported; NameClashError, before anything is written, where two of
        them differ only in case or accent encoding. A writer that names files after the image files
        (COCO) or numbers them (Cityscapes' frames) picks every item's name here, so that no item's
        name depends on which others fail or are written. Other writers ignore it."""

    def add(self, item: ExportItem) -> list[Path]:
        return self._write(item.label, self.classes, self.out_dir, item.name, levels=self.levels)

    def finish(self) -> list[Path]:
        return []

    def keep(self, name: str, image: Path | None) -> None:
        """The image ``name`` (its file ``image``, if known) is in this export but was not written
        this time (it failed, or the export stopped before it): a writer whose ``finish`` writes an
        index of all images (COCO's JSON, Label Studio's tasks, CamVid's list) keeps the entry an
        earlier export into this folder gave it, where that entry's files are still there, instead
        of dropping the image from the index. Per-image files are left as they are anyway."""
        self.not_written.append((name, Path(image) if image is not None else None))

    def kept_names(self) -> set[str]:
        """The names (lower case) an earlier index of a writer that names each image by its export
        name (CamVid's list, Label Studio's tasks) gives the images ``keep`` named: their export
        names only - an entry named as such an image's file is another image's (``q/a.jpg``, exported
        as ``a-2``, is not ``p/a``'s ``a``)."""
        return {name.lower() for name, _ in self.not_written}

    def mark(self):
        """What ``undo`` needs to take back the items added after this call (writers that collect
        entries for ``finish`` say how many they hold)."""
        return None

    def item_folder(self) -> Path:
        """The folder whose lock (``holding``) an item's ``add`` and ``undo`` hold: the output folder."""
        return self.out_dir

    def lock_folders(self) -> list[Path]:
        """The folders whose export lock (``holding_folder``) this writer takes: ``open_writer`` removes
        the lock files a killed export left there (``remove_stale_export_lock``)."""
        return [self.item_folder()]

    @contextmanager
    def holding(self):
        """The writer's ``item_folder`` locked (created) while the block runs (``holding_folder``):
        ``add_to_every_writer`` and ``Format.export_items`` hold it over an item's ``add`` (each file
        set aside and replaced) and ``undo`` (each file judged and taken back), so that no other
        export into the folder comes between - another export's file of the same image, written
        between this export's set-aside and its rename, would be replaced unseen and then removed by
        this export's undo (every format's per-image files: masks, JSON, image copies)."""
        from ..fileio import make_folder

        with holding_folder(make_folder(self.item_folder())):
            yield

    def undo(self, mark, item: ExportItem, paths: list[Path]) -> None:
        """Take back ``item``, added after ``mark``: the files its ``add`` wrote (``paths``, less the
        files the whole export shares, ``SHARED_FILES``) are removed and the entries it made are
        dropped, so that an item that failed in another format of the export is in none. The files
        of an earlier export that ``add`` replaced (``replaced``, kept by ``add_to_every_writer``) are
        put back: a re-export that fails on an image leaves that image's earlier files as they were
        (where hard links can be made: ``ReplacedFiles``); a file another export wrote there since
        is left alone."""
        from ..fileio import is_protected_input

        def left(path: Path) -> bool:  # an image left where it lies (exported into its own folder) is the user's
            return Path(path).name in SHARED_FILES or is_protected_input(path) or _same_file(path, item.image)

        replaced, self.replaced = self.replaced, None
        if replaced is not None:  # a shared file (default.txt) is the writer's own to mend: others write it too
            replaced.take_back(paths, skip=left)
            return
        for path in paths:
            if not left(path):
                Path(path).unlink(missing_ok=True)


class ClassListWriter(DatasetWriter):
    """A writer whose export has one file listing its classes (``folder_files``: its path, data and
    reader; data None: the export goes without one): refused at once when that file holds another
    export's list (``check_export_file``, before any item is written; the reader, so that the same
    list in another layout is no other export's), written by ``finish`` when an item was added (an
    export of nothing writes nothing; the same list already there is left as it is). Subclasses
    write an item in ``write_item`` (default: the per-image ``write`` function)."""

    def __init__(self, write, classes: ClassSet, out_dir: Path, levels: int):
        super().__init__(write, classes, out_dir, levels)
        ((path, self.list_data, parse),) = self.folder_files(classes, self.out_dir)
        self.list_name = path.name
        self.kept = check_export_file(path, self.list_data, parse)  # already there: left as is
        self.added = 0

    def write_item(self, item: ExportItem) -> list[Path]:
        return super().add(item)

    def add(self, item: ExportItem) -> list[Path]:
        written = self.write_item(item)
        self.added += 1
        return written

    def mark(self):
        return self.added

    def undo(self, mark, item: ExportItem, paths: list[Path]) -> None:
        super().undo(mark, item, paths)
        self.added = mark

    def finish(self) -> list[Path]:
        if self.list_data is None or not self.added:
            return []
        from ..fileio import atomic_write_bytes

        path = out_file(self.out_dir, self.list_name)
        if not self.kept:
            atomic_write_bytes(path, self.list_data)
        return [path]


_HELD = threading.local()  # ``holding_folder``: the folders this thread has locked


@contextmanager
def holding_folder(folder: Path):
    """``folder`` (existing) locked while the block runs (``qgn.export_lock.export_lock``: another export into
    it waits, and says so); held again by this thread inside (a writer's ``add`` that locks its list
    too, a nested export), it is not locked twice. The one lock of an export's per-item writes:
    ``DatasetWriter.holding``, CVAT's ``ImageSet.holding``."""
    from ..export_lock import export_lock

    key = str(folder)
    held = _HELD.__dict__.setdefault("folders", set())
    if key in held:
        yield
        return
    with export_lock(folder):
        held.add(key)
        try:
            yield
        finally:
            held.discard(key)


def _same_file(path: Path, other: Path | None) -> bool:
    try:
        return other is not None and os.path.samefile(path, other)
    except OSError:
        return False


class FolderRefusedError(ValueError):
    """An export's output folder refuses the export's classes (``check_export_file``: it holds another
    export's shared file): a batch says it once per folder and refusal, naming the other files
    refused alike in one line (``qgn export``), rather than once per item - yet tries every file,
    since whether a file is refused depends on its own classes; a folder export (one class set)
    stops."""


def check_export_file(path: Path, data: bytes | None, parse: Callable[[str], object] | None = None) -> bool:
    """ValueError when ``path``, a file an export writes with ``data`` at its end, already holds
    something else (another export's): said before any item is written, nothing replaced. True when
    it already holds ``data``'s content - the same bytes, or, with ``parse`` (the file's reader, of
    its text), the same parsed content: a copy edited by hand to CRLF line ends or trailing spaces
    still lists the same classes in the same colours and order. The caller then leaves it as it is."""
    from ..fileio import MAX_LIST_FILE_BYTES, open_regular, path_inside

    if not path.exists() and not path.is_symlink():
        return False
    if data is None:  # this export writes no list: its files would be read under the one there
        from ..shown import path_text

        raise FolderRefusedError(f"{path_text(path)} belongs to another export, whose class names an import would "
                                 f"give this export's files (it goes without a {path.name}: its class names "
                                 "cannot be written in one); export into an empty folder")
    if path.is_symlink():  # a link leading out of its folder: refused (OutsideRootError), never read
        path_inside(path.parent, path.name)
    with open_regular(path) as f:  # a named pipe where the list goes: refused, never waited on
        old = f.read(MAX_LIST_FILE_BYTES + 1)
    if old == data:
        return True
    if parse is not None and len(old) <= MAX_LIST_FILE_BYTES:
        try:
            if parse(old.decode("utf-8")) == parse(data.decode("utf-8")):
                return True
        except (UnicodeDecodeError, ValueError, RecursionError):
            pass  # not the file's format at all: another export's
    from ..shown import path_text

    # escaped: a folder name holding a line break would cut the message there (the app's dialog shows one line)
    raise FolderRefusedError(f"{path_text(path)} belongs to an export with other classes; export into an empty folder")


def same_json(text: str) -> object:
    """The document of a JSON class list (``check_export_file``'s ``parse``): key order and layout aside."""
    import json

    return json.loads(text)


#: Files of a dataset export that belong to all its items (an item's ``add`` may return them too).
SHARED_FILES = frozenset({"labelmap.txt", "default.txt", "label_colors.txt", "dataset_meta.json"})


def check_export_image(item: ExportItem) -> None:
    """ValueError naming the item when its image is there but no file (a named pipe, /dev/zero or
    another device, through a link too): an export that copies it would wait for ever or fill
    memory, and one that skips it as missing would leave it out without a word. An image named but
    not there (a file moved or deleted, a link to nothing or a loop of links) is a ValueError too:
    the writers that use images left it out of the copy without a word, or wrote an index naming a
    file that is not there (or failed with "Symlink loop"). No image at all (``item.image`` None)
    passes: each format says what it does without one."""
    if item.image is None:
        return
    check_image_file(item)
    said = image_not_there(item.image)
    if said is not None:
        raise ValueError(f"{item.name}: its image {said}")


def check_image_file(item: ExportItem) -> None:
    """ValueError naming the item when its image is there but no file (a named pipe, a device):
    checked for every writer that uses images (``uses_images``), which fail the item so, whether
    or not they need the file (``needs_image``); an image not there passes."""
    from ..fileio import check_regular_file

    if item.image is not None:
        try:
            check_regular_file(item.image)
        except ValueError as exc:
            raise ValueError(f"{item.name}: its image {exc}") from None


def image_not_there(path: str | os.PathLike) -> str | None:
    """Why the image file ``path`` cannot be found, with the fix ("/x/b.png is not there (put it back,
    or find it with `qgn relink …`…)", "/x/c.png: is a loop of symbolic links …"); None where it is
    a file (through links)."""
    from ..fileio import dangling_link_text, link_in_the_way
    from ..shown import path_text

    if os.path.isfile(path):
        return None
    said = dangling_link_text(path) if os.path.islink(path) else None  # a link to nothing, or a loop
    in_the_way = None if said else link_in_the_way(path)  # a folder on its path that loops
    return said or (f"{path_text(path)}: {in_the_way}" if in_the_way else
                    f"{path_text(path)} is not there (put it back, or find it with `qgn relink PROJECT FOLDER` "
                    "or the app's File → Find missing images…)")


def add_to_every_writer(pairs) -> list[Path]:
    """``writer.add(item)`` for each (writer, item) of ``pairs`` (one image in each format of an
    export), all or none: when one fails, the writers that took the image take it back
    (``DatasetWriter.undo``; the failing one drops what it collected) and the error goes up. The
    paths written."""
    for writer, item in pairs:  # before any writer takes the image: nothing to take back
        if needs_image(writer):
            check_export_image(item)
        elif getattr(writer, "uses_images", False):  # (it names the image: a pipe or device is refused still)
            check_image_file(item)
    from ..export_lock import unstoppable_waits
    from ..fileio import keeping_replaced

    done = []
    try:
        for writer, item in pairs:
            mark = writer.mark()
            try:
                with _holding(writer):  # (a wait for it stopped: LockWaitStopped, nothing of it written)
                    try:
                        with keeping_replaced() as writer.replaced:  # the earlier export's files, for ``undo``
                            paths = writer.add(item)
                    except BaseException:
                        # the files it wrote before it failed, under the lock still held: those that
                        # replaced an earlier export's go back (``undo``), new ones go
                        with unstoppable_waits():
                            writer.undo(mark, item, writer.replaced.new if writer.replaced is not None else [])
                        raise
            except BaseException:
                with unstoppable_waits():  # a take-back waits for its lock rather than leave half its item
                    for w, m, i, p in reversed(done):
                        with _holding(w):
                            w.undo(m, i, p)
                raise
            done.append((writer, mark, item, paths))
    finally:
        for writer, _ in pairs:  # taken: the earlier files kept for an undo are not needed
            if getattr(writer, "replaced", None) is not None:
                writer.replaced.drop()
                writer.replaced = None
    return [path for *_, paths in done for path in paths]


def needs_image(writer) -> bool:
    """``writer.needs_image()`` (a writer of another kind, a test's, uses no image)."""
    method = getattr(writer, "needs_image", None)
    return bool(method is not None and method())


def _holding(writer):
    """``writer.holding()`` (a writer of another kind, a test's, holds nothing)."""
    holding = getattr(writer, "holding", None)
    if holding is None:
        from contextlib import nullcontext

        return nullcontext()
    return holding()


@dataclass(frozen=True)
class Format:
    """One file format.

    write(label, classes, out_dir, stem, levels=NUM_LEVELS) -> list[Path]: one image's files (None for
        formats that only exist as a whole dataset, e.g. one COCO ``instances.json``).
    read(path, classes) -> (H, W) label: one mask file (None for export-only formats).
    writer(classes, out_dir, levels) -> DatasetWriter: a whole dataset (None: ``write`` per image).
    image_names: a dataset export names its files after the images (other tools match masks to
        images by name), not after the project's keys.
    is_mask(probe: MaskProbe) -> bool: whether a mask file is in this format (auto-detection of
        ``qgn.formats.import_annotation``; None: never detected, only named).
    scan(src, images) -> ``qgn.formats.source.SourceDataset``: a whole dataset in this format
        (``qgn.formats.scan_dataset``; None: not importable as a dataset).
    is_dataset(probe: ``qgn.formats.source.DatasetProbe``) -> bool: whether a dataset is in this
        format (auto-detection of ``qgn.formats.scan_dataset``; None: never detected, only named).
    check_classes(classes): ValueError, naming the class, when the format cannot write ``classes``
        (a name its label list or config cannot hold, two classes of one colour); writes nothing.
        ``qgn.formats.check_export_classes`` asks every format of an export before any writer opens,
        and then its ``check_folder`` (a method: the writer's ``folder_files`` of another export).
    """

    name: str
    description: str
    suffix: str
    write: Callable[..., list[Path]] | None
    read: Callable[[Path, ClassSet], np.ndarray] | None
    writer: Callable[..., DatasetWriter] | None = None
    image_names: bool = False
    is_mask: Callable[["MaskProbe"], bool] | None = None
    scan: Callable[..., object] | None = None
    is_dataset: Callable[..., bool] | None = None
    check_classes: Callable[[ClassSet], object] | None = None

    def check_folder(self, classes: ClassSet, out_dir: Path, items: Sequence[str] | None = None,
                     images: Path | None = None, walks: dict | None = None) -> None:
        """ValueError when ``out_dir`` holds a file of another export that this format's writer
        shares among its items and would refuse (``DatasetWriter.folder_files``, ``check_export_file``)
        - asked of every format of an export before any writer writes (``check_export_classes``),
        so that a refused export leaves the folders as they were - and, with ``items`` (the names of
        every item the export plans), files of another export the writer's shared files would name
        and its items would not replace (``DatasetWriter.check_items_folder``, ``images`` and ``walks``
        passed on). Writes nothing."""
        writer = self.writer or DatasetWriter
        files = getattr(writer, "folder_files", None)
        for path, data, parse in files(classes, Path(out_dir)) if files is not None else []:
            check_export_file(path, data, parse)
        if items is not None and hasattr(writer, "check_items_folder"):
            writer.check_items_folder(classes, Path(out_dir), items, images=images, walks=walks)

    def open_writer(self, classes: ClassSet, out_dir: Path, levels: int = NUM_LEVELS,
                    images: str | None = None, split: str | None = None) -> DatasetWriter:
        """A writer into ``out_dir``; ``images`` ("copy", "link" or None, see ``IMAGE_MODES``)
        for the formats whose writer takes images (labelme, COCO); ``split`` (a folder name,
        ``check_split``; None: the writer's default) for those that file by split (Cityscapes)."""
        if images not in IMAGE_MODES:
            raise ValueError(f"images={images!r}: choose copy, link or none")
        if split is not None:
            check_split(split)
        if self.writer is not None:
            writer = self.writer(classes, Path(out_dir), levels)
        else:
            writer = DatasetWriter(self.write, classes, Path(out_dir), levels)
        from ..export_lock import remove_stale_export_lock

        for folder in writer.lock_folders():  # a killed export's lock file: gone even if nothing is written
            remove_stale_export_lock(folder)
        if writer.takes_images:
            writer.images = images
        if writer.takes_split and split is not None:
            writer.split = split
        return writer

    def export_items(self, items: Sequence[ExportItem], classes: ClassSet, out_dir: Path,
                     levels: int = NUM_LEVELS, images: str | None = None, split: str | None = None) -> list[Path]:
        """Write ``items`` into ``out_dir`` (``open_writer``, ``add`` each, ``finish``)."""
        writer = self.open_writer(classes, out_dir, levels, images, split)
        writer.plan([item.name for item in items], [item.image for item in items])
        paths: list[Path] = []
        for item in items:
            if writer.needs_image():
                check_export_image(item)
            elif writer.uses_images:
                check_image_file(item)
            with writer.holding():
                paths += writer.add(item)
        return paths + writer.finish()


class MaskProbe:
    """What auto-detection of a mask file (``qgn.formats.detect_format``) looks at: its ``suffix``
    (lower case) and, read once when a format asks, its image ``mode``. Reading ``mode`` raises
    FileNotFoundError (no file) or ValueError (not an image); ImageTooLargeError passes through."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.suffix = self.path.suffix.lower()

    @cached_property
    def mode(self) -> str:
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such file")
        try:
            with open_image(self.path) as image:
                return image.mode
        except (ImageTooLargeError, SeveralPicturesError):
            raise
        except (UnidentifiedImageError, OSError, ValueError):
            raise ValueError(f"{self.path}: not a .qgt, .json or image file; cannot tell its format") from None


def check_export_links(root, folders, elsewhere: str = "export elsewhere") -> None:
    """OutsideRootError (a ValueError, one line naming the link and the fix) where a folder an export
    writes into - one of ``folders`` (each ``root`` or under it), a folder between ``root`` and it,
    or any folder beneath it - is a symbolic link to a folder outside ``root``, the folder the user
    named: ``out_file`` judges a name against the folder it is given (``annotations/``,
    ``gtFine/<split>/<city>/``), so a subfolder link leading away would have the export write (and
    read) there. Asked before anything is written (``qgn.formats.check_export_classes``, ``qgn
    export``). ``root`` itself being a link is the user's choice; a link to another place inside
    ``root`` is followed and its folders judged the same. Links to files (an export's links to its
    images) are not folders and pass. Writes nothing. ``elsewhere``: the fix's second half, as the
    caller's user says it (``qgn convert``'s "write elsewhere")."""
    from ..fileio import OutsideRootError, resolved, resolved_or_none
    from ..shown import path_text

    root = Path(root)
    base = resolved(root)

    def judged(path: Path) -> Path | None:  # the folder to look into, None where there is none
        if not path.is_symlink():
            return path if path.is_dir() else None
        target = resolved_or_none(path)
        if target is None or not target.is_dir():
            return None  # a link to a file, or one leading nowhere (a loop too): no folder is written through it
        if target != base and base not in target.parents:
            raise OutsideRootError(f"{path_text(path)} is a link to {path_text(target)}, outside "
                                   f"{path_text(root)}; remove the link or {elsewhere}")
        return target

    stack: list[Path] = []
    for folder in folders:
        path, found = root, root
        for part in Path(folder).relative_to(root).parts:
            path = path / part
            found = judged(path)
            if found is None:
                break
        else:
            stack.append(found)
    seen: set[Path] = set()
    while stack:
        folder = stack.pop()
        key = folder.resolve()
        if key in seen:
            continue
        seen.add(key)
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue  # unreadable: the writer reports what it cannot write
        for entry in entries:
            try:
                if entry.is_symlink() or entry.is_dir(follow_symlinks=False):
                    found = judged(Path(entry.path))
                    if found is not None:
                        stack.append(found)
            except OSError:
                continue


def out_file(folder: Path, name: str, follow: bool = True) -> Path:
    """``folder / name``, creating ``folder`` if needed; a name such as ``../x`` never leads
    outside ``folder`` (``qgn.fileio.path_inside``), nor does a symbolic link standing there: many
    files an export writes are read first (the image list, COCO's and Label Studio's earlier
    entries, the class list compared), and a link to a file elsewhere would be read into the
    export. ``follow=False`` only for a file never read before it is replaced (``place_image``: an
    earlier export's link to its image is judged where it stands, and replaced)."""
    from ..fileio import make_folder, path_inside

    return path_inside(make_folder(folder), name, follow=follow)


def place_image(source: Path, folder: Path, name: str, mode: str) -> Path:
    """Put the image file ``source`` into ``folder`` as ``name``: a copy (atomic) or a symbolic
    link (relative when it can be; a copy where the system refuses links). A link is made under a
    temporary's name in the folder and renamed over the path: a crash leaves the earlier file or
    the new link there, never nothing (a leftover temporary link is removed as stale later)."""
    from ..fileio import atomic_write_bytes, note_written, refuse_input, refuse_special_output, set_aside_replaced

    target = out_file(folder, name, follow=False)  # replaced, never read nor written through
    try:
        if target.exists() and os.path.samefile(target, source) and (mode == "link" or not target.is_symlink()):
            return target  # already there (an export into the folder its images came from)
    except OSError:
        pass
    refuse_input(target)
    refuse_special_output(target)
    if mode == "link":
        try:
            relative = os.path.relpath(Path(source).resolve(), target.parent.resolve())
        except ValueError:  # another drive (Windows)
            relative = str(Path(source).resolve())
        temporary = None
        try:
            temporary = _symlink_beside(relative, target)
            if target.is_symlink() or target.exists():
                set_aside_replaced(target)  # an undone export puts it back
            os.replace(temporary, target)
            temporary = None
            note_written(target)
            return target
        except OSError:
            if temporary is not None:
                Path(temporary).unlink(missing_ok=True)
            # no links here, or a folder in the way: copy instead (which names the folder)
    atomic_write_bytes(target, Path(source).read_bytes())
    return target


def _symlink_beside(link_to: str, target: Path) -> Path:
    """A symbolic link to ``link_to`` under a temporary's name (``.<name>.link.<8 hex>.tmp``:
    ``qgn.fileio.LINK_TEMPORARY``, the only links besides set-asides that ``remove_stale_temporaries``
    removes) in ``target``'s folder; OSError where no link can be made."""
    from ..fileio import LINK_MARK

    for _ in range(3):
        # short: a name has at most 255 bytes
        name = f".{target.name[:60]}{LINK_MARK}{os.urandom(4).hex()}.tmp"
        temporary = target.with_name(name)
        try:
            os.symlink(link_to, temporary)
            return temporary
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {target}")


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def read_rgb(path: Path, what: str = "a colour mask") -> np.ndarray:
    """(H, W, 3) uint8 of a colour (RGB/RGBA/P/PA) image; ValueError for other modes or bad files."""
    try:
        with open_image(path) as image:
            if image.mode not in ("RGB", "RGBA", "P", "PA"):
                raise ValueError(f"{path} is a {image.mode} image; {what} is RGB (or palette)")
            load_checked(image, path)  # rows a short data stream lacks would read as black, silently
            rgb = np.asarray(image.convert("RGB"))
        return rgb
    except (UnidentifiedImageError, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValueError(f"{path} is not a readable image: {exc}") from None


def rgb_keys(rgb: np.ndarray) -> np.ndarray:
    """(H, W) int64 key ``r<<16 | g<<8 | b`` of an (H, W, 3) colour image."""
    return (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]


def colours_to_values(rgb: np.ndarray, colours: Sequence[tuple[int, int, int]], values: Sequence[int],
                      path, table_file) -> np.ndarray:
    """(H, W) int64: each pixel's colour looked up in ``colours`` → ``values``. ValueError naming up
    to five colours that ``table_file`` does not list."""
    keys = np.asarray([(r << 16) | (g << 8) | b for r, g, b in colours], np.int64)
    if len(np.unique(keys)) != len(keys):
        raise ValueError(f"{table_file}: two labels share a colour; the mask cannot be read unambiguously")
    pixel_keys = rgb_keys(rgb)
    order = np.argsort(keys)
    sorted_keys = keys[order]
    pos = np.clip(np.searchsorted(sorted_keys, pixel_keys), 0, len(keys) - 1)
    unknown = sorted_keys[pos] != pixel_keys
    if unknown.any():
        bad = np.unique(pixel_keys[unknown])[:5]
        shown = [((k >> 16) & 255, (k >> 8) & 255, k & 255) for k in bad.tolist()]
        raise ValueError(f"{path}: colours {shown} are not in {table_file}")
    return np.asarray(values, np.int64)[order][pos]


def codes_to_label(codes: np.ndarray, classes: ClassSet, source) -> np.ndarray:
    """Level-0 T-pyramid codes (H, W) (c+1 class c, k+1 void) → label map of ``classes``."""
    k = classes.num_classes
    table = np.arange(-1, k + 1, dtype=np.int64)  # code → value; code 0 (composite) cannot occur
    if classes.ignore_index is not None:
        table[k + 1] = classes.ignore_index
    elif (codes == k + 1).any():
        raise ValueError(f"{source} has ignore pixels but the class set has no ignore value")
    table[0] = 0  # composite never occurs on level 0; the lookup is done in the label's own dtype
    return table.astype(label_dtype(classes))[codes]


def as_label(values: np.ndarray, classes: ClassSet, source) -> np.ndarray:
    return check_label(values, classes, str(source))


def check_same_classes(source, num_classes: int, names, classes: ClassSet) -> None:
    if num_classes != classes.num_classes:
        raise ValueError(f"{source} has {num_classes} classes but the class set has {classes.num_classes}")
    if names is not None and tuple(names) != classes.names:
        diff = next(i for i, (a, b) in enumerate(zip(names, classes.names)) if a != b)
        raise ValueError(
            f"{source} was labelled with other classes: class {diff} is {names[diff]!r} there but "
            f"{classes.names[diff]!r} here"
        )


def void_to(label: np.ndarray, classes: ClassSet, value: int) -> np.ndarray:
    """(H, W) int64 copy of ``label`` with its ignore pixels set to ``value``."""
    out = label.astype(np.int64)
    if classes.ignore_index is not None:
        out[label == classes.ignore_index] = value
    return out
