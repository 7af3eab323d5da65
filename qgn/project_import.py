"""Import a dataset in another tool's layout into a QGN Studio project (``qgn import``, the app's
File → Import dataset…).

``import_into_project(src, project_dir, ...)`` scans ``src`` (``qgn.formats.scan_dataset``),
creates the project when ``project_dir`` holds none (its classes: ``classes``, else the classes the
files name) or opens it, then adds each item's image and saves its label map as the image's
annotation. A bad item (no image found, a label that matches no class, a size mismatch, an image
that already has an annotation — never overwritten) is reported and skipped; the rest go on. Labels
read as void (the ignore value) are said per item and in ``ImportReport.voided``: the format's own
unannotated area, ``--map NAME=void``, or a usual void name that is no class of an existing project.
Into a new project every label a format does not designate as its unannotated area is a class,
``background`` too (``qgn.formats.source.classes_from_names``).

``update=True`` brings corrections back from another tool (a dataset exported from this project,
edited there): an item whose image is a project image — the same file, else the one project image
with the same bytes (tools copy the images they export, and may rename them), else the one of the
same file name and size — replaces that image's
annotation, and the annotation it replaces is kept in ``replaced/<key>.<time>.qgt``. An unchanged
map writes nothing; an image with unsaved edits (an autosave) is skipped; other items are added.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .classes import UNMATCHED, ClassSet, match_class_names, names_met, unmatched_message, unused_maps
from .formats import SourceDataset, scan_dataset
from .formats.source import voided_pixels
from .fileio import OutsideRootError, file_sha256, os_error_text
from .project import Project, ProjectBusyError, ProjectChangedError, ProjectError, ProjectImage
from .project_file import PROJECT_FILE


@dataclass
class ImportReport:
    """What an import did: the dataset's description, the project, the images imported and the
    (name, reason) of each item skipped."""

    description: str
    project: Project | None
    created: bool
    imported: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)  # ``update``: imported over an annotation (kept aside)
    unchanged: list[str] = field(default_factory=list)  # ``update``: the same as the saved annotation
    # {label name: (pixels, items)} of the labels of the files read as void (the ignore value) in the
    # items imported: the format's unannotated area, a ``--map NAME=void``, or a usual void name
    # (``background``, …) that is no class of an existing project
    voided: dict[str, tuple[int, int]] = field(default_factory=dict)
    not_reached: int = 0  # items left when the import was stopped (``should_stop``)
    read: int = 0  # items whose labels were read (the others failed before: no image, an unreadable one, …)
    unused_maps: list[str] = field(default_factory=list)  # each ``OLD=NEW`` whose label no item read had

    def voided_text(self) -> str:
        """One line naming the labels read as void and their pixels ('' when none was)."""
        if not self.voided:
            return ""
        shown = ", ".join(f"{name!r} {pixels} px in {items} item(s)" for name, (pixels, items) in self.voided.items())
        return f"read as void (no class): {shown}"


def open_or_create(project_dir: Path, dataset: SourceDataset, classes: ClassSet | None,
                   mapping: dict[str, str] | None = None) -> tuple[Project | None, bool, ClassSet]:
    """(the project in ``project_dir`` or None when there is none yet, whether it is to be
    created, its classes): an existing project's (``classes`` must then be None or equal them), or
    ``classes`` or the dataset's own classes for a new one — created only when an item imports."""
    if os.path.lexists(project_dir / PROJECT_FILE):  # a broken one (a folder, a link to nothing) is opened, to say why
        project = Project.open(project_dir)
        if classes is not None and classes.names != project.classes.names:
            shown = ", ".join(project.classes.names[:6])
            raise ValueError(f"{project_dir} is a project with other classes ({shown}…); "
                             "omit --classes to import into its classes")
        check_mapping(mapping, project.classes)
        return project, False, project.classes
    if project_dir.exists() and not project_dir.is_dir():  # "not an empty folder" named no file
        from .fileio import special_kind

        what = special_kind(project_dir) or "a file"  # /dev/zero is no file
        raise ProjectError(f"{project_dir} is {what}, not a folder; choose an empty or new folder for the project")
    if project_dir.exists() and any(project_dir.iterdir()):
        raise ProjectError(f"{project_dir} is not an empty folder and holds no project; choose an empty or new "
                           "folder for the project")
    classes = classes or dataset.file_classes
    if classes is None:
        raise ValueError(f"{dataset.root}: the {dataset.format} files hold bare class ids; name the classes with "
                         "--classes FILE (a classes.txt)")
    check_mapping(mapping, classes)
    return None, True, classes


def check_mapping(mapping: dict[str, str] | None, classes: ClassSet) -> None:
    """ValueError for a ``--map old=new`` whose ``new`` is neither a class nor void."""
    for old, new in (mapping or {}).items():
        if match_class_names([new], classes)[0] == UNMATCHED:
            raise ValueError(unmatched_message(new, classes, f"--map {old}={new}").replace(
                f"; map it with --map '{new}=<class name>' (or '{new}=void')", ""))


def import_into_project(
    src: str | os.PathLike, project_dir: str | os.PathLike, format: str = "auto", images=None,
    classes: ClassSet | None = None, mapping: dict[str, str] | None = None,
    progress: Callable[[int, int, str], None] | None = None, dataset: SourceDataset | None = None,
    project: Project | None = None, update: bool = False, should_stop: Callable[[], bool] | None = None,
) -> ImportReport:
    """See the module docstring. ``progress(i, n, text)`` after each item. ``project``: the open
    Project of ``project_dir`` (the app's), used instead of a second copy that would go stale.
    ``should_stop()`` true before an item (the user cancelled): the import ends there, the items
    imported so far stay, and ``not_reached`` counts the others.

    A new project is created when the first item imports (an import of which every item fails
    leaves no project behind). Any failure of one item — whatever its exception — is reported and
    the rest go on; only these stop the import, raised as they are: a change of the project by
    another writer (``ProjectChangedError``), a busy project (``ProjectBusyError``), a name leading
    outside a folder (``OutsideRootError``), and the new project's folder that cannot be made
    (its ``OSError``: a symbolic link to nothing, a file in the way, a full disk, no permission -
    no item could go in). Before any item: a project of other classes, a folder that is neither
    empty nor a project, bare class ids without ``classes``, a bad ``mapping`` (ValueError or
    ``ProjectError``, ``open_or_create``) and a source that cannot be scanned or holds no item."""
    dataset = dataset or scan_dataset(src, format, images)
    if not dataset.items:
        raise ValueError(f"{src}: {dataset.description}; nothing to import"
                         + "".join(f"; {w}" for w in dataset.warnings))
    if project is not None:
        check_mapping(mapping, project.classes)
        created, target_classes = False, project.classes
    else:
        project, created, target_classes = open_or_create(Path(project_dir), dataset, classes, mapping)
    report = ImportReport(dataset.description, project, created)
    with names_met() as met:
        _import_items(dataset, project_dir, target_classes, mapping, progress, update, should_stop, report)
    # every item was reached and some were read: a map whose label none of those had mapped nothing (an
    # import that read none - every image missing or unreadable - knows nothing of the files' labels)
    if not report.not_reached and report.read:
        report.unused_maps = unused_maps(mapping, met)
    return report


def _import_items(dataset, project_dir, target_classes, mapping, progress, update, should_stop, report) -> None:
    """``import_into_project``'s loop over the items, into ``report``."""
    n = len(dataset.items)
    same_bytes = None
    for i, item in enumerate(dataset.items, start=1):
        if should_stop is not None and should_stop():
            report.not_reached = n - i + 1
            break
        try:
            with voided_pixels() as voided:
                label, width, height = _read_item(item, target_classes, mapping)
            report.read += 1
            if report.project is None:
                try:
                    report.project = Project.create(Path(project_dir), [], target_classes)
                except OSError as exc:  # the project's folder, not this item: no other item can go in either
                    raise _NoProject() from exc
            if update:
                if same_bytes is None or same_bytes.project is not report.project:
                    same_bytes = SameBytes(report.project)
                kind, what = _update_item(report.project, item, label, width, height, same_bytes)
                {"replaced": report.replaced, "unchanged": report.unchanged}.get(kind, []).append(item.name)
            else:
                what = _add_item(report.project, item, label, width, height)
            text = f"{item.name}: {what}" + "".join(f"; {pixels} px of {name!r} read as void"
                                                     for name, pixels in voided.items())
            report.imported.append(item.name)
            for name, pixels in voided.items():
                total, items = report.voided.get(name, (0, 0))
                report.voided[name] = (total + pixels, items + 1)
        except (ProjectChangedError, ProjectBusyError, OutsideRootError):
            raise
        except _NoProject as exc:
            raise exc.__cause__ from None
        except Exception as exc:  # one bad item, whatever went wrong, never stops the batch
            reason = describe_failure(exc)
            report.skipped.append((item.name, reason))
            text = f"{item.name}: skipped ({reason})"
        if progress is not None:
            progress(i, n, text)


class _NoProject(Exception):
    """The new project's folder could not be made (OSError as its cause): the import stops with it."""


def describe_failure(exc: BaseException) -> str:
    """One line for a failed item: the message of the errors we raise, else the exception's
    type and text (an unexpected one is still one item's failure)."""
    if isinstance(exc, MemoryError):
        return "out of memory reading it (a file claiming a huge size?)"
    from .shown import one_line

    if isinstance(exc, (ValueError, OSError)) and str(exc):
        return one_line(exc)  # a file name's line break stays in the line, escaped
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _read_item(item, classes: ClassSet, mapping) -> tuple:
    from .formats.guards import check_against_image
    from .imagefile import upright_size

    if item.error is not None:
        raise item.error
    if item.image is None:
        raise FileNotFoundError(f"no image found for {item.source or item.name}; name the image folder with --images")
    # the header only, under the pixel limit; as the project shows it: turned upright by its EXIF
    # orientation (a 12×8 mask of a photo stored 12×8 but shown 8×12 was taken, and never lined up)
    width, height = upright_size(item.image)
    try:
        check_against_image(item.claimed, (width, height), item.source or item.name, item.image)  # before allocating
    except ValueError as exc:
        raise ValueError(f"{exc}{_turned(item.image, item.claimed)}") from None
    label = item.read(classes, mapping)
    if label.shape != (height, width):
        raise ValueError(f"the mask is {label.shape[1]}×{label.shape[0]} but the image {item.image} is "
                         f"{width}×{height}{_turned(item.image, label.shape[::-1])}")
    return label, width, height


def _turned(image, size) -> str:
    """", as stored: …" when ``size`` (width, height) is ``image``'s stored size while its EXIF
    orientation shows it turned by 90° (another tool that ignores the tag made the mask), else ""."""
    from .imagefile import open_image, upright_size

    with open_image(image) as picture:
        stored = picture.size
    if size is None or tuple(size) != stored or upright_size(image) == stored:
        return ""
    return (" (the size the image is stored at, but its EXIF orientation turns it by 90°, as QGN, labelme, browsers "
            "and cameras show it: annotate it upright, or remove the tag)")


def _update_item(project: Project, item, label, width: int, height: int,
                 same_bytes: SameBytes | None = None) -> tuple[str, str]:
    """``update``: replace the annotation of the project image ``item`` is of (module docstring):
    ("added" | "replaced" | "unchanged", what happened)."""
    image = _project_image_of(project, item, width, height, same_bytes)
    if image is None:
        return "added", _add_item(project, item, label, width, height)
    _refuse_unsaved_edits(project, image, image.path)
    before = project.load_annotation(image)
    if before is not None and np.array_equal(before, label):
        return "unchanged", f"unchanged ({image.path.name})"
    kept = project.replace_annotation(image, label)
    note = _note_image_file(project, image)
    if kept is None:
        return "added", f"{width}×{height}, {len(np.unique(label))} values, into {image.path.name}{note}"
    changed = int(np.count_nonzero(before != label)) if before.shape == label.shape else label.size
    return "replaced", (f"replaced the annotation of {image.path.name} ({changed} pixels changed; the old one is "
                        f"kept as {kept}){note}")


def _note_image_file(project: Project, image: ProjectImage) -> str:
    """``Project.note_image_file`` after the annotation was written: only a note (the app's rule too),
    so a failure to write it (a full disk) is said after the item's line - the item was imported, and
    reporting it skipped would say its annotation was not written. Empty when noted."""
    try:
        project.note_image_file(image)
    except (OSError, ProjectError) as exc:
        shown = os_error_text(exc) if isinstance(exc, OSError) else str(exc)
        return f"; its file's note was not written ({shown}): a later swap of the image file goes unsaid"
    return ""


def _refuse_unsaved_edits(project: Project, image: ProjectImage, shown) -> None:
    """ValueError naming ``shown`` when ``image`` has an autosave: unsaved edits an import never
    replaces."""
    if project.autosave_path(image).is_file():
        raise ValueError(f"{shown} has unsaved edits in the app (an autosave); save or discard them there, then "
                         "import again; not imported")


class SameBytes:
    """The project images an exported copy is byte for byte, under whatever name the tool gave it
    (``same-2.png``, Label Studio's ``1a2b3c4d-frame.png``): the images are grouped by file size
    once, on first use, and only those of the copy's size are read — each at most once per import
    (their digests are kept), so a folder of same-size images (BMP, PPM) costs one read each."""

    def __init__(self, project: Project):
        self.project = project
        self._by_size: dict[int, list[ProjectImage]] | None = None
        self._digests: dict[str, str | None] = {}

    def __call__(self, path: Path) -> list[ProjectImage]:
        if self._by_size is None:
            self._by_size = {}
            for image in self.project.images:
                try:
                    self._by_size.setdefault(image.path.stat().st_size, []).append(image)
                except OSError:
                    continue  # a moved image is matched by name, if at all
        try:
            candidates = self._by_size.get(Path(path).stat().st_size, [])
        except OSError:
            return []
        if not candidates:
            return []
        digest = file_sha256(Path(path))
        return [im for im in candidates if digest is not None and self._digest_of(im) == digest]

    def _digest_of(self, image: ProjectImage) -> str | None:
        key = str(image.path)
        if key not in self._digests:
            self._digests[key] = file_sha256(image.path)
        return self._digests[key]


def _project_image_of(project: Project, item, width: int, height: int,
                      same_bytes: SameBytes | None = None) -> ProjectImage | None:
    """The project image ``item``'s image is: the same file, else the one image with the same
    bytes (a copy the tool exported, renamed or not), else the one image of its file name and size;
    None when none is (ValueError when several are, or one of that name has another size)."""
    from .imagefile import open_image

    try:
        return project.image_for(item.image)
    except KeyError:
        pass
    copies = (same_bytes or SameBytes(project))(item.image)
    if len(copies) == 1:
        return copies[0]
    named = [im for im in (copies or project.images) if im.path.name == Path(item.image).name]
    if not named:
        return None
    if len(named) > 1:
        shown = ", ".join(str(im.path) for im in named[:3])
        raise ValueError(f"its image {Path(item.image).name} is named like {len(named)} project images ({shown}); "
                         "not imported: give --images the folder of the project's own images")
    (image,) = named
    try:
        with open_image(image.path) as opened:
            size = opened.size
    except (OSError, ValueError) as exc:
        raise ValueError(f"the project image {image.path} of the same name cannot be read: {exc}") from None
    if size != (width, height):
        raise ValueError(f"the project image {image.path} of the same name is {size[0]}×{size[1]}, this one "
                         f"{width}×{height}; not imported")
    return image


def _add_item(project: Project, item, label, width: int, height: int) -> str:
    existing, found = {im.key for im in project.images}, []
    (image,) = project.add_images([item.image], removed=found)
    for back in (f for f in found if f.brought_back):  # the user's own labels, back from removed/: kept
        raise ValueError(f"{item.image} was removed from the project before: its annotation (removed on "
                         f"{back.removed_on}) was brought back from removed/ and is not overwritten; import again "
                         "with --update to replace it (the brought-back one is then kept in replaced/)")
    if image.key in existing and project.annotation_path(image).is_file():
        raise ValueError(f"{item.image} already has an annotation in the project; not overwritten")
    if image.key in existing:
        _refuse_unsaved_edits(project, image, item.image)
    # an autosave is the user's unsaved work; another writer may have saved since ``existing``
    project.save_annotation(image, label, keep_autosave=True, only_new=True)
    note = _note_image_file(project, image)  # the file this annotation is of (a later swap is then said)
    return f"{width}×{height}, {len(np.unique(label))} values{note}"
