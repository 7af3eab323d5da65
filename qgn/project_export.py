"""Exporting a project: every saved annotation (of done images only, if asked) written in the
chosen formats into ``<out>/<format>/``, files named after the image keys - or, for the formats that
name files after the images (``FORMATS[name].image_names``), after the images' own stems
(``export_names``).

``export_project`` is what ``qgn export --project`` and the app's export job run; it reads the
project (``qgn.project.Project``) and writes only under the output folder: never one of the
project's images or files (``qgn.fileio.protected_inputs``), each format's folder under its export
lock (``qgn.export_lock``). ``written_summary`` counts what an export wrote, for the line that says so.
"""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Callable

import numpy as np

from .export_lock import LockWaitStopped, noting_unlocked, saying_waits
from .fileio import InputOverwriteError, OutsideRootError, one_file_name, protected_inputs, remove_stale_temporaries
from .formats import FORMATS, ExportItem, check_export_classes, check_format_names, check_split, check_text_names
from .formats.base import add_to_every_writer, check_export_image, check_image_file, image_not_there, needs_image
from .project import Project, ProjectImage


class ExportedFiles(list):
    """The paths an export wrote, each once (a list), with ``images``: how many images it was to
    export, and ``not_reached``: how many of them it never reached (``should_stop`` ended it)."""

    images: int = 0
    not_reached: int = 0
    #: one line per image that failed ("b: failed: its image … is not there (…)"), as ``errors`` gets them
    failed: tuple[str, ...] = ()
    #: one line per image written in some formats only, its file not there ("b: failed as fiftyone: its image …")
    partly: tuple[str, ...] = ()
    #: lines to keep in sight after the export (a folder exported into without its export lock,
    #: ``qgn.export_lock.noting_unlocked``): said on a progress line, which the next one replaces
    notes: tuple[str, ...] = ()


def export_project(
    project: Project, out_dir: str | os.PathLike, formats, progress: Callable[[int, int, str], None] | None = None,
    only_done: bool = False, errors: list[str] | None = None, images: str | None = None,
    split: str | None = None, should_stop: Callable[[], bool] | None = None,
) -> ExportedFiles:
    """Export every saved annotation (of done images only, with ``only_done``) in ``formats`` into
    ``out_dir/<format>/``, files named after the image keys. ``progress(i, n, text)`` after each
    image (i = 1 … n). Returns the paths written, each once. ``images``: "copy" or "link" puts
    the image files into the exports that reference them (labelme, COCO, CVAT; Cityscapes always has
    its leftImg8bit), None leaves them where they are (labelme's ``imagePath`` then leads there).
    ``split``: the split folder of the formats that file by split (Cityscapes ``gtFine/<split>/``;
    None: ``train``); a name that is not one plain folder name is a ValueError before anything is written.

    A file that several entries of project.json name (``Project.twins``) is exported once, as the
    entry the project uses; the others are skipped and say so. An image whose annotation cannot be
    read or written is reported (its progress text starts with
    "failed") and the export goes on; with ``errors``, one line per failure is appended to it,
    without, the first failure is raised after the others were exported. An annotation whose size
    differs from its image is exported with a warning in its progress text. A name that would lead
    outside ``out_dir`` (OutsideRootError), or a file that is one of the project's images or files
    (InputOverwriteError: an export into the folder the images lie in), stops the export at once;
    an image file an export would copy or link onto itself is left as it is.

    ``should_stop()`` true before an image (the user cancelled): the export ends there, its files
    are finished as for the images exported so far (an index such as COCO's lists those), and the
    result's ``not_reached`` counts the others.

    An image that failed or was not reached keeps the entry an earlier export into the same folder
    gave it in each index (COCO's JSON, CVAT's default.txt, Label Studio's tasks, CamVid's list),
    where its files are still there (``DatasetWriter.keep``): a failed re-export never drops the
    images it did not write from the dataset a user hands to another tool."""

    names = check_format_names(formats)
    if split is not None:
        check_split(split)
    with protected_inputs(_export_inputs(project, Path(out_dir), names), "the project's images and files"):
        with noting_unlocked() as notes:  # said once per export (a second export says it again), and kept
            exported = _export_project(project, Path(out_dir), names, progress, only_done, errors, images, split,
                                       should_stop)
        exported.notes = tuple(notes)
        return exported


def _export_inputs(project: Project, out_dir: Path, names: list[str]) -> list[Path]:
    """What an export of ``project`` into ``out_dir/<name>/`` must never replace: its images, and
    every file of the project's folder outside those (an export may live inside the project)."""
    inputs = [im.path for im in project.images]
    from .fileio import resolved_or_none

    exports = {resolved_or_none(out_dir / name) for name in names} - {None}  # a link loop is no folder
    for folder, dirs, files in os.walk(project.root):
        dirs[:] = [d for d in dirs if resolved_or_none(Path(folder, d)) not in exports]
        inputs += [Path(folder, name) for name in files]
    return inputs


def _export_project(project: Project, out_dir: Path, names: list[str], progress, only_done: bool,
                    errors: list[str] | None, images: str | None, split: str | None,
                    should_stop: Callable[[], bool] | None) -> ExportedFiles:
    image_mode = images
    images = [im for im in project.images if im.done or not only_done]
    used = {im.key: group[0] for group in project.twins() for im in group[1:]}  # one file, one export
    image_names = export_names(project.images)
    check_export_names(image_names)  # two items to one file: refuse, never replace
    writers = _open_writers(project, out_dir, names, image_names, image_mode, split)
    paths: list[Path] = []
    failures: list[Exception] = []
    failed: list[str] = []
    partly: list[str] = []
    not_reached = 0

    def keep(image: ProjectImage) -> None:  # not written this time: the indexes keep its earlier entry
        for name, writer in zip(names, writers):
            writer.keep(_item_name(name, image, image_names), image.path)

    for i, image in enumerate(images, start=1):
        if should_stop is not None and should_stop():
            not_reached = len(images) - i + 1
            for left in images[i - 1:]:
                keep(left)
            break
        try:
            text, not_as, why = _export_image(
                project, image, names, writers, image_names, used.get(image.key), paths,
                lambda text, i=i: progress is not None and progress(i - 1, len(images), text), should_stop)
            if not_as:  # written in the formats that need no image file, failed in the others
                failures.append(why)
                partly.append(f"{image.key}: failed as {not_as}: "
                              f"{_unnamed(_one_line(why), image.key, image_names[image.key])}")
                if errors is not None:
                    errors.append(partly[-1])
        except (OutsideRootError, InputOverwriteError):
            raise
        except LockWaitStopped:  # stopped while waiting for another export: as a stop before this image
            not_reached = len(images) - i + 1
            for left in images[i - 1:]:
                keep(left)
            break
        except Exception as exc:  # one bad annotation, whatever went wrong, never stops the rest
            failures.append(exc)
            keep(image)
            text = f"{image.key}: failed: {_unnamed(_one_line(exc), image.key, image_names[image.key])}"
            failed.append(text)
            if errors is not None:
                errors.append(text)
        if progress is not None:
            progress(i, len(images), text)
    for writer in writers:
        paths += writer.finish()
    if failures and errors is None:
        raise failures[0]
    exported = ExportedFiles(dict.fromkeys(paths))  # files shared by all images (CVAT's labelmap.txt) once
    exported.images, exported.not_reached, exported.failed = len(images), not_reached, tuple(failed)
    exported.partly = tuple(partly)
    return exported


def _item_name(name: str, image: ProjectImage, image_names: dict) -> str:
    """``image``'s item name in format ``name``: its export name where the format names by image, else its key."""
    return image_names[image.key] if FORMATS[name].image_names else image.key


def _open_writers(project: Project, out_dir: Path, names: list[str], image_names: dict, image_mode: str | None,
                  split: str | None) -> list:
    """One writer per format of ``names`` into ``out_dir/<format>``, each told every image's name (exported
    now or not: one name whatever is exported); every format's classes and folder are checked before any
    writer opens (and writes), and temporaries a killed earlier export left are removed."""
    planned = {name: [_item_name(name, im, image_names) for im in project.images] for name in names}
    check_export_classes(names, project.classes, [Path(out_dir) / name for name in names], root=out_dir,
                         items=planned)
    for name in names:  # (Cityscapes writes 3 folders deep)
        remove_stale_temporaries(Path(out_dir) / name, depth=4)
    writers = [FORMATS[n].open_writer(project.classes, Path(out_dir) / n, project.levels, image_mode, split)
               for n in names]
    for name, writer in zip(names, writers):
        writer.plan(planned[name], [im.path for im in project.images])
    return writers


def _export_image(project: Project, image: ProjectImage, names: list[str], writers: list, image_names: dict,
                  twin: ProjectImage | None, paths: list[Path], say_wait, should_stop) -> tuple[str, str, Exception | None]:
    """Write ``image``'s saved annotation with every writer (``_add_image``: all formats or none, but
    where its image file is not there the formats that need none still take it), the files written
    added to ``paths``; skipped when it has none, or when it is a ``twin``'s file exported under the
    twin's name. Another export holding a folder is said (``say_wait(text)``), and ``should_stop``
    stops the wait. Returns (the image's progress line, the formats that did not take it ("" when all
    did), why)."""
    label = None if twin is not None else project.load_annotation(image)
    if twin is not None:
        return (f"{image.key}: skipped (project.json names its file {image.path.name} again as "
                f"{twin.key}, which is exported; its annotation stays in the project)"), "", None
    if label is None:
        return f"{image.key}: skipped (no saved annotation)", "", None
    check_text_names(names, [image.path])
    with saying_waits(say_wait, should_stop):
        written, not_as, why = _add_image(
            [(name, writer, ExportItem(_item_name(name, image, image_names), label, image.path))
             for name, writer in zip(names, writers)])
    paths += written
    text = f"{image.key}: {len(written)} file(s)" + _size_warning(image, label)
    if not_as:
        text += f"; not written as {not_as} (they need the image file)"
    return text, not_as, why


def _add_image(triples) -> tuple[list[Path], str, ValueError | None]:
    """``add_to_every_writer`` for one image, ``triples`` (format name, writer, item) each: in every
    format or none - but where its image file is not there (``check_export_image``), the formats that
    need no image file (``needs_image``: qgt, png, COCO/CVAT/labelme without ``images``) still take
    it and the others keep their earlier entry (``keep``). (paths written, the formats that did not
    take it ("fiftyone, camvid"; "" when all did), why)."""
    needing = [(name, writer, item) for name, writer, item in triples if needs_image(writer)]
    why = None
    if any(getattr(writer, "uses_images", False) for _, writer, _ in triples):
        check_image_file(triples[0][2])  # a pipe or a device: failed in every format (nothing reads it)
    if needing:
        try:
            check_export_image(needing[0][2])
        except ValueError as exc:
            why = exc
    if why is None or len(needing) == len(triples):  # one outcome for all: written, or failed (raised)
        return add_to_every_writer([(writer, item) for _, writer, item in triples]), "", None
    written = add_to_every_writer([(writer, item) for _, writer, item in triples if not needs_image(writer)])
    for _, writer, item in needing:
        writer.keep(item.name, item.image)
    return written, ", ".join(name for name, _, _ in needing), why


def _one_line(exc: BaseException) -> str:
    """One line for a failed item: a line break a file name holds is shown escaped, not cut there."""
    from .shown import one_line

    if isinstance(exc, MemoryError):
        return "out of memory"
    text = one_line(exc)
    return text if isinstance(exc, (ValueError, OSError)) and text else f"{type(exc).__name__}: {text}"


def _unnamed(message: str, *names: str) -> str:
    """``message`` without the item's name it starts with ("b: its image …" said of the item ``b``)."""
    for name in names:
        if message.startswith(f"{name}: "):
            return message[len(name) + 2:]
    return message


def _size_warning(image: ProjectImage, label: np.ndarray) -> str:
    """" (warning: …)" when the image file's size differs from its annotation's, or when the image
    file is not there (an export in formats that never name the image, qgt and png, still holds
    its annotation: said, not failed; the formats that use images fail it, ``check_export_image``), else ""."""
    from .imagefile import ORIENTATION_TAG, open_image

    missing = image_not_there(image.path)  # moved, deleted, a link to nothing or a loop of links
    if missing is not None:
        return f" (warning: exported, but its image {missing})"
    try:
        with open_image(image.path) as picture:  # the header only
            w, h = picture.size
            if picture.getexif().get(ORIENTATION_TAG, 1) in (5, 6, 7, 8):  # shown turned by 90°
                w, h = h, w
    except (ValueError, OSError):
        return ""  # the image moved or is unreadable: the annotation is still what was saved
    if (h, w) != label.shape:
        return (f" (warning: the annotation is {label.shape[1]}×{label.shape[0]} but {image.path.name} is {w}×{h}; "
                "it will not line up)")
    return ""


def written_summary(paths: list[Path], out_dir: str | os.PathLike) -> tuple[int, int]:
    """(files, folders) an export wrote under ``out_dir``: distinct files, and every folder that
    holds them below ``out_dir`` (ImageSets/ too, though it holds only a folder)."""
    out = Path(out_dir)
    files = {Path(p) for p in paths}
    folders = {parent for p in files for parent in p.parents if out in parent.parents}
    return len(files), len(folders)


def export_names(images: list[ProjectImage]) -> dict[str, str]:
    """{key: file stem} for exports that name files after the images (CVAT matches masks to frames
    by the image's name): the image's own stem where no other image shares it - ignoring case and
    how an accent is encoded, as macOS and Windows disks do - else its key, with "-2", "-3" … where
    even that is taken (a key can equal another image's stem). The stems are distinct so. A stem
    holding a line break takes its key too: the formats' lists (CVAT's ImageSets, CamVid's
    default.txt) hold one name a line."""
    stems = [im.path.stem for im in images]
    counts = Counter(one_file_name(s) for s in stems)
    own = [counts[one_file_name(stem)] == 1 and stem.strip() == stem and "/" not in stem
           and stem.splitlines() == [stem] for stem in stems]
    taken = {one_file_name(stem) for stem, keep in zip(stems, own) if keep}
    chosen = {}
    for im, stem, keep in zip(images, stems, own):
        name, n = (stem, 1) if keep else (im.key, 1)
        while not keep and one_file_name(name) in taken:
            n += 1
            name = f"{im.key}-{n}"
        taken.add(one_file_name(name))
        chosen[im.key] = name
    return chosen


def check_export_names(names: dict[str, str]) -> None:
    """ValueError, before anything is written, where two images would export to one file name."""
    seen: dict[str, str] = {}
    for key, name in names.items():
        other = seen.setdefault(one_file_name(name), key)
        if other != key:
            raise ValueError(f"images {other!r} and {key!r} would both export as {name!r}; "
                             "rename one of the image files")
