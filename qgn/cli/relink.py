"""`qgn relink PROJECT FOLDER [--dry-run]`

Find a project's missing images in FOLDER (searched recursively) and point project.json at where
they are now (``qgn.project_relink``): a missing image is matched by file name and checked against
the size and SHA-256 the project noted when its annotation was saved, where it did. Annotations
follow their images (they are named after the image's key, never its path). An image with two
candidates that nothing tells apart is listed as ambiguous and left as it is.

Prints one line per image relinked (or, with ``--dry-run``, that would be; nothing is written),
then one per image left missing and why. Exit status 0 when no image is left missing, else 2 with a
last line saying how many. On a terminal, a line on stderr says how far the search is (the files
looked at in FOLDER, then the candidates' bytes checked, with the time left) until it ends.
"""
from __future__ import annotations

import sys
from pathlib import Path

from qgn.cli.main import CLIError
from qgn.cli.progress_line import ProgressLine

SHOWN = 20  # lines of each kind printed before "… and N more"


def add_arguments(p) -> None:
    p.add_argument("project", metavar="PROJECT", help="the project folder (holding project.json)")
    p.add_argument("folder", metavar="FOLDER", help="where the missing images are now (searched recursively)")
    p.add_argument("--dry-run", action="store_true", help="say what would be relinked; write nothing")


def run(args) -> int:
    from qgn.project import Project
    from qgn.project_relink import find_missing, relink

    folder = Path(args.folder).expanduser()
    if not folder.is_dir():
        raise CLIError(f"FOLDER {args.folder}: not a folder; name the folder the images were moved to")
    project = Project.open(Path(args.project).expanduser())
    line = ProgressLine(64, sys.stderr.isatty())

    def searching(i: int, n: int, text: str) -> None:
        if n == 0:  # the walk ("looked at N files (the folder walked)"): how big FOLDER is, nobody knows yet
            line.show(f"qgn relink: {text.split(' (', 1)[0]} in FOLDER")
        elif i < n:
            line.show(f"qgn relink: checking the bytes of {i}/{n} files{line.time_left.suffix(i, n)}")

    try:
        plan = find_missing(project, folder, searching)
    finally:
        line.clear()
    print(plan.summary(), flush=True)
    for problem in plan.unreadable[:SHOWN]:
        print(f"qgn relink: warning: not searched: {problem}", file=sys.stderr)
    if args.dry_run:
        lines = [f"would relink {m.old} -> {m.new} ({m.how})" for m in plan.found]
        skipped = []
    else:
        result = relink(project, plan)
        lines = [f"relinked {m.old} -> {m.new} ({m.how})" for m in result.relinked]
        skipped = [f"{m.old}: not relinked: {why}" for m, why in result.skipped]
    left = skipped + [f"{old}: ambiguous: {len(paths)} candidates ({', '.join(map(str, paths[:3]))}"
                      + (", …" if len(paths) > 3 else "") + "); move the one that is not it elsewhere, or relink "
                      "from a folder holding only the right one" for _key, old, paths in plan.ambiguous]
    left += [f"{old}: {why}" for _key, old, why in plan.rejected]
    left += [f"{old}: not found in {plan.folder}" for _key, old in plan.not_found]
    _print_some(lines, sys.stdout)
    _print_some([f"qgn relink: {line}" for line in left], sys.stderr)
    if left:
        verb = "would stay" if args.dry_run else "are still"
        print(f"qgn relink: error: {len(left)} of {plan.missing} missing image(s) {verb} missing; their "
              f"annotations stay in {project.root}", file=sys.stderr)
        return 2
    return 0


def _print_some(lines: list[str], stream) -> None:
    from qgn.shown import one_line

    for line in lines[:SHOWN]:
        print(one_line(line), file=stream)
    if len(lines) > SHOWN:
        print(f"… and {len(lines) - SHOWN} more", file=stream)
