"""Import a dataset in another tool's layout into a QGN Studio project (``qgn import``, the app's
File → Import dataset…).

``import_into_project(src, project_dir, ...)`` scans ``src`` (``qgn.formats.dataset.scan_dataset``),
creates the project when ``project_dir`` holds none (its classes: ``classes``, else the classes the
files name) or opens it, then adds each item's image and saves its label map as the image's
annotation. A bad item (no image found, a label that matches no class, a size mismatch, an image
that already has an annotation — never overwritten) is reported and skipped; the rest go on.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from PIL import Image

from .classes import UNMATCHED, ClassSet, match_class_names, unmatched_message
from .formats.dataset import SourceDataset, scan_dataset
from .project import PROJECT_FILE, Project


@dataclass
class ImportReport:
    """What an import did: the dataset's description, the project, the images imported and the
    (name, reason) of each item skipped."""

    description: str
    project: Project
    created: bool
    imported: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def open_or_create(project_dir: Path, dataset: SourceDataset, classes: ClassSet | None,
                   mapping: dict[str, str] | None = None) -> tuple[Project, bool]:
    """The project in ``project_dir`` (``classes`` must then be None or equal its classes), or a new
    one with ``classes`` or the dataset's own classes."""
    if (project_dir / PROJECT_FILE).is_file():
        project = Project.open(project_dir)
        if classes is not None and classes.names != project.classes.names:
            shown = ", ".join(project.classes.names[:6])
            raise ValueError(f"{project_dir} is a project with other classes ({shown}…); "
                             "omit --classes to import into its classes")
        check_mapping(mapping, project.classes)
        return project, False
    classes = classes or dataset.file_classes
    if classes is None:
        raise ValueError(f"{dataset.root}: the {dataset.format} files hold bare class ids; name the classes with "
                         "--classes FILE (a classes.txt)")
    check_mapping(mapping, classes)
    return Project.create(project_dir, [], classes), True


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
    project: Project | None = None,
) -> ImportReport:
    """See the module docstring. ``progress(i, n, text)`` after each item. ``project``: the open
    Project of ``project_dir`` (the app's), used instead of a second copy that would go stale."""
    dataset = dataset or scan_dataset(src, format, images)
    if not dataset.items:
        raise ValueError(f"{src}: {dataset.description}; nothing to import"
                         + "".join(f"; {w}" for w in dataset.warnings))
    if project is not None:
        check_mapping(mapping, project.classes)
        created = False
    else:
        project, created = open_or_create(Path(project_dir), dataset, classes, mapping)
    report = ImportReport(dataset.description, project, created)
    n = len(dataset.items)
    for i, item in enumerate(dataset.items, start=1):
        try:
            text = f"{item.name}: {_import_item(project, item, mapping)}"
            report.imported.append(item.name)
        except (ValueError, OSError) as exc:
            report.skipped.append((item.name, str(exc)))
            text = f"{item.name}: skipped ({exc})"
        if progress is not None:
            progress(i, n, text)
    return report


def _import_item(project: Project, item, mapping) -> str:
    if item.image is None:
        raise FileNotFoundError(f"no image found for {item.source or item.name}; name the image folder with --images")
    label = item.read(project.classes, mapping)
    with Image.open(item.image) as image:
        width, height = image.size
    if label.shape != (height, width):
        raise ValueError(f"the mask is {label.shape[1]}×{label.shape[0]} but the image {item.image} is "
                         f"{width}×{height}")
    existing = {im.key for im in project.images}
    (image,) = project.add_images([item.image])
    if image.key in existing and project.annotation_path(image).is_file():
        raise ValueError(f"{item.image} already has an annotation in the project; not overwritten")
    project.save_annotation(image, label)
    return f"{width}×{height}, {len(set(label.ravel().tolist()))} values"
