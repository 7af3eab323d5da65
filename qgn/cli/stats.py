"""`qgn stats PATH... [--levels 6] [--ignore V] [--classes K|FILE] [--json]`

Quadtree sparsity of label maps (the paper's Table 5): the per cent of pixels whose leaf is at each
level Q{L-1}..Q0, and leaves per pixel ("ratio"), over all PATHs (label PNGs, or folders searched
recursively in sorted order). Maps are padded to a multiple of the root cell (32 pixels for 6
levels) with the ignore value, and the ignore value merges like a class of its own (lossless).
Percentages are of all padded pixels. The statistics only depend on which pixels share a value,
so without --classes every value simply counts as its own code.

With --json stdout is exactly one JSON object {"Q5": pct, ..., "Q0": pct, "ratio": pct, "images": n};
progress (on a terminal) goes to stderr. A file that cannot be read is reported (one line on stderr
naming it) and left out; the statistics are of the others ("images" counts them), and the exit
status is 2 with a last line saying how many failed.
"""
from __future__ import annotations

import json
from pathlib import Path

from qgn.cli.files import Failures, collect_files
from qgn.cli.main import CLIError
from qgn.cli.progress_line import FileSteps
from qgn.quadtree import NUM_LEVELS, ROOT_LEVEL


def add_arguments(p) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH", help="label PNG files or folders of them (recursive)")
    p.add_argument("--levels", type=int, default=NUM_LEVELS,
                   help=f"quadtree levels L (default {NUM_LEVELS}: cells of 1..{1 << ROOT_LEVEL} px)")
    p.add_argument("--ignore", type=int, metavar="V", help="label value of ignore pixels (default: none)")
    p.add_argument("--classes", metavar="K|FILE",
                   help="number of classes, or a classes.txt; values must then be < K or the ignore value "
                        "(default: any value)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")


def parse_classes_arg(text: str | None):
    """``--classes K|FILE`` → (K or None, ClassSet or None)."""
    if text is None:
        return None, None
    if text.strip().isdigit() and not Path(text).is_file():
        k = int(text)
        if not 1 <= k <= 65534:
            raise CLIError(f"--classes {k}: the number of classes must be 1..65534")
        return k, None
    from qgn.quadtree.label_io import read_classes_file

    try:
        classes = read_classes_file(text, named=True)
    except FileNotFoundError as exc:
        raise CLIError(f"--classes {text}: {exc}; pass a number of classes or a classes.txt") from None
    except (OSError, ValueError) as exc:  # a folder, a device, an unreadable or malformed file
        raise CLIError(f"--classes {text}: {exc}") from None
    return classes.num_classes, classes


def check_ignore_outside(k: int | None, ignore: int | None, classes_text: str | None) -> None:
    """CLIError when ``--ignore`` is one of the ``k`` class ids of ``--classes``: `convert --classes 3
    --ignore 1` wrote a .qgt that no reader opens (its ignore value collides with a class)."""
    if k is not None and ignore is not None and ignore < k:
        raise CLIError(f"--ignore {ignore} is one of the class ids 0..{k - 1} of --classes {classes_text}; "
                       "the ignore value must be none of them (e.g. --ignore 255)")


def check_levels(levels: int) -> None:
    if not 1 <= levels <= 16:
        raise CLIError(f"--levels {levels}: choose 1..16")


MAX_LABEL_VALUE = 65535  # a label PNG holds 8- or 16-bit values


def check_ignore(ignore: int | None) -> None:
    """--ignore is a value a label PNG can hold (0..65535); anything else marks no pixel."""
    if ignore is not None and not 0 <= ignore <= MAX_LABEL_VALUE:
        raise CLIError(f"--ignore {ignore}: a label value is 0..{MAX_LABEL_VALUE} (8- or 16-bit PNG); "
                       "give the value that marks unlabelled pixels, e.g. --ignore 255")


def codes_for_stats(label, k: int | None, ignore: int | None):
    """``(label, num_classes, ignore)`` ready for ``Quadtree.from_label``: ``k`` as given, else a k
    that covers every value. Values too large (or negative) for a code are renumbered, which the
    statistics do not see: they only depend on which pixels hold equal values."""
    import numpy as np

    if k is not None:
        return label, k, ignore
    values = label if ignore is None else label[label != ignore]
    if values.size == 0:
        return label, 1, ignore
    lo, hi = int(values.min()), int(values.max())
    if lo >= 0 and hi < 65533:
        return label, hi + 1, ignore
    uniq, inverse = np.unique(label, return_inverse=True)
    is_ignore = uniq == ignore if ignore is not None else np.zeros(len(uniq), bool)
    n = int((~is_ignore).sum())
    table = np.where(is_ignore, n, np.cumsum(~is_ignore) - 1)
    return table[inverse.reshape(label.shape)], max(n, 1), n


def quadtree_of(path: Path, label, k: int | None, ignore: int | None, levels: int):
    """The quadtree of one label map; a ValueError naming the file for bad values."""
    from qgn.quadtree import Quadtree
    from qgn.quadtree.qgt import check_readable_size

    try:
        check_readable_size(*label.shape, levels)  # as convert: a 64×48 map padded for 16 levels is 2^30 pixels
        label, k, ignore = codes_for_stats(label, k, ignore)
        return Quadtree.from_label(label, k, ignore, levels)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def run(args) -> int:
    from qgn.quadtree import LevelStats
    from qgn.quadtree.label_io import read_label

    check_levels(args.levels)
    check_ignore(args.ignore)
    k, classes = parse_classes_arg(args.classes)
    check_ignore_outside(k, args.ignore, args.classes)
    ignore = args.ignore if args.ignore is not None else (classes.ignore_index if classes else None)
    files = collect_files(args.paths, (".png",), "label PNGs")
    stats = LevelStats(args.levels)
    step = FileSteps("stats", len(files), width=48)
    failures = Failures("stats", len(files))
    for i, path in enumerate(files, start=1):
        try:  # one bad file is reported and left out of the statistics; the rest go on
            stats.add(quadtree_of(path, read_label(path), k, ignore, args.levels))
        except (ValueError, OSError) as exc:
            step.off_the_line()
            failures.report(path, exc)
        step(i)
    if len(failures) < len(files):  # statistics of the files that could be read ("images" says how many)
        print(json.dumps(stats.to_json()) if args.json else stats.format_table())
    return failures.code()
