"""`qgn import SRC --project DIR [--format auto|cvat|voc|cityscapes|camvid|coco|labelme|labelstudio|fiftyone|ids|png]
[--images DIR] [--classes FILE] [--map OLD=NEW ...] [--update]`

A dataset in another tool's layout → a QGN Studio project (created when DIR holds none, else added
to): each mask's image is added and the mask saved as its annotation. ``--format auto`` detects the
layout and says what it found. Labels are matched to the classes by name (usual spellings:
``traffic sign`` = ``trafficsign``); ``--map old=new`` maps a name that matches nothing (``new`` a
class name or ``void``). Items that cannot be imported are reported and skipped, and the rest go on; the exit status is 2 when any
was (with a last line saying how many), and an import of which no item could be imported creates no project.
An import never replaces an annotation, except with ``--update`` (corrections made in another tool on
an export of this project): see ``qgn.project_import``.
"""
from __future__ import annotations

import sys
from pathlib import Path

from qgn.cli.main import CLIError
from qgn.progress import TimeLeft
from qgn.shown import one_line


def add_arguments(p) -> None:
    from qgn.formats import IMPORT_FORMATS

    p.add_argument("src", metavar="SRC", help="the dataset folder (or its JSON file)")
    p.add_argument("--project", metavar="DIR", required=True, help="the project to create or add to")
    p.add_argument("--format", default="auto", choices=("auto", *IMPORT_FORMATS),
                   help="the dataset's layout (default: detect it)")
    p.add_argument("--images", metavar="DIR", help="where the images are, when not where the format keeps them")
    p.add_argument("--classes", metavar="FILE", help="a classes.txt: the classes of a new project (required for "
                                                      "ids/png folders without one beside them)")
    p.add_argument("--map", metavar="OLD=NEW", action="append", default=[],
                   help="map a label name of the files to a class name (or 'void'); repeatable")
    p.add_argument("--update", action="store_true",
                   help="bring corrections back: replace the annotations of images the project has (the same "
                        "file, else the one with the same bytes, else the one of the same name and size); the replaced ones are kept in "
                        "PROJECT/replaced/")


def run(args) -> int:
    from qgn.classes import parse_name_map
    from qgn.formats import scan_dataset
    from qgn.project import ProjectError
    from qgn.project_import import import_into_project
    from qgn.quadtree.label_io import read_classes_file

    try:
        mapping = parse_name_map(args.map)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    classes = None
    if args.classes:
        try:
            classes = read_classes_file(args.classes, named=True)
        except (FileNotFoundError, ValueError) as exc:
            raise CLIError(f"--classes: {exc}") from None
    dataset = scan_dataset(Path(args.src), args.format, args.images)
    print(("found " if args.format == "auto" else "reading ") + dataset.description, flush=True)
    for warning in dataset.warnings if dataset.items else ():  # with nothing to import, the error says them
        print(f"qgn import: warning: {warning}", file=sys.stderr, flush=True)

    time_left = TimeLeft()

    def progress(i: int, n: int, text: str) -> None:
        print(f"[{i}/{n}] {one_line(text)}{time_left.suffix(i, n)}", flush=True)

    try:
        report = import_into_project(args.src, args.project, images=args.images, classes=classes, mapping=mapping,
                                     progress=progress, dataset=dataset, update=args.update)
    except ProjectError as exc:
        raise CLIError(f"--project {args.project}: {exc}") from None
    except OSError as exc:  # of the project's folder (a loop of links, no room to create it): named as the option
        said = project_os_error(exc, args.project)
        if said is None:
            raise
        raise CLIError(said) from None
    total = len(report.imported) + len(report.skipped)
    if report.project is None:
        raise CLIError(f"none of the {total} item(s) of {args.src} could be imported (see above); no project was "
                       f"created in {args.project}")
    verb = "created" if report.created else "added to" if report.imported else "nothing was added to"
    updates = f" ({len(report.replaced)} replaced, {len(report.unchanged)} unchanged)" if args.update else ""
    print(f"imported {len(report.imported)} of {total} item(s){updates}; {verb} the "
          f"project {report.project.root} ({len(report.project.images)} images)")
    for pair in report.unused_maps:  # a typo, or a label of other files: it mapped nothing, silently
        print(f"qgn import: warning: --map {pair}: no item read has the label {pair.partition('=')[0]!r}, so it "
              "mapped nothing; check its spelling against the files' labels", file=sys.stderr)
    if report.voided:
        print(f"qgn import: note: {report.voided_text()}; --map NAME=CLASS keeps such pixels as a class")
    if report.skipped:
        print(f"qgn import: error: {len(report.skipped)} of {total} item(s) skipped: "
              + one_line("; ".join(f"{name}: {why}" for name, why in report.skipped[:3]))
              + (" …" if len(report.skipped) > 3 else ""), file=sys.stderr)
        return 2
    return 0


def project_os_error(exc: OSError, project) -> str | None:
    """"--project DIR: <what is wrong>" for ``exc`` of the folder ``project`` or a file in it (as the other
    options' messages name the option), or None for an error of another file."""
    import os

    from qgn.fileio import os_error_text
    from qgn.shown import path_text

    filename = getattr(exc, "filename", None)
    if filename is None:
        return None
    from qgn.fileio import link_in_the_way

    root, name = os.path.abspath(os.fspath(project)), os.path.abspath(os.fsdecode(filename))
    if name != root and not name.startswith(root.rstrip(os.sep) + os.sep):
        in_the_way = link_in_the_way(root) if root.startswith(name.rstrip(os.sep) + os.sep) else None
        if in_the_way is None:  # an error of another file, not of a folder on the project's path
            return None
        return f"--project {path_text(project)}: {in_the_way}"
    text = os_error_text(exc, "check the folder, the disk and the path")
    for shown in (path_text(filename), os.fsdecode(filename)):  # "DIR: is a loop …" -> "--project DIR: is a loop …"
        if name == root and text.startswith(shown + ": "):
            return f"--project {text}"
    return f"--project {path_text(project)}: {text}"
