"""`qgn convert MASK.png OUT.qgt` or `qgn convert DIR OUTDIR`  [--ignore V] [--classes K|FILE] [--levels 6]

Label PNG(s) → .qgt quadtree file(s) (lossless; ``qgn export`` gives the PNG back). In the folder
form every PNG under DIR (recursive) becomes OUTDIR/<same relative path>.qgt. A classes file's
names and colours are stored in each .qgt. Without --classes the number of classes is the largest
label value (other than the ignore value) + 1, taken over all the files converted. On a terminal, a
folder of more than 20 masks shows its progress and time left on stderr (`qgn stats` does the same).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from qgn.cli.files import Failures, check_output_links, check_outputs, check_writable_folder, collect_files
from qgn.cli.main import CLIError
from qgn.cli.progress_line import FileSteps, ItemParts
from qgn.cli.stats import check_ignore, check_ignore_outside, check_levels, parse_classes_arg
from qgn.fileio import remove_stale_temporaries
from qgn.shown import one_line
from qgn.quadtree import NUM_LEVELS
from qgn.fileio import no_input_error


def add_arguments(p) -> None:
    p.add_argument("src", metavar="MASK|DIR", help="a label PNG, or a folder of them (recursive)")
    p.add_argument("dst", metavar="OUT|OUTDIR", help="the .qgt file (or a folder for it), or the output folder")
    p.add_argument("--ignore", type=int, metavar="V",
                   help="label value of ignore pixels (default: the classes file's, else none)")
    p.add_argument("--classes", metavar="K|FILE",
                   help="number of classes, or a classes.txt (names and colours are stored in the .qgt)")
    p.add_argument("--levels", type=int, default=NUM_LEVELS, help=f"quadtree levels L (default {NUM_LEVELS})")


def max_class_value(label, ignore: int | None) -> int:
    """Largest value of ``label`` other than ``ignore`` (-1 if there is none)."""
    values = label if ignore is None else label[label != ignore]
    return int(values.max()) if values.size else -1


def read_mask(path: Path, classes):
    """The label map of ``path``: its stored values, except for a Cityscapes-tree
    ``*_gtFine_labelIds.png``, whose values are Cityscapes label ids or indices into the tree's
    ``label_colors.txt`` (Datumaro's exports) — never class ids. Those are read through their own
    label map into ``classes`` (``--classes``), and refused without it, so no class is shifted."""
    from qgn.quadtree.label_io import read_label

    if not path.name.endswith("_gtFine_labelIds.png"):
        return read_label(path)
    if classes is None:
        raise CLIError(f"{path} is a Cityscapes-tree labelIds mask: its values are Cityscapes label ids or the "
                       "indices of its label_colors.txt, not class ids; pass --classes FILE (e.g. "
                       "resources/palettes/cityscapes.txt) or use `qgn import` for the whole tree")
    from qgn.formats.cityscapes import read_gtfine_label_ids

    return read_gtfine_label_ids(path, classes)


def run(args) -> int:
    k, classes, ignore = _classes_and_ignore(args)
    src, dst = Path(args.src), Path(args.dst)
    files, outputs = _convert_jobs(src, dst)
    failures = Failures("convert", len(files))
    if k is None:  # one number of classes for the whole set, covering every value
        k = _class_count(files, classes, ignore)
    step = FileSteps("convert", len(files), "converted")
    total_in, total_out = _convert_each(files, outputs, classes, k, ignore, args.levels, step, failures)
    step(len(files))
    pct = 100.0 * total_out / max(total_in, 1)
    done = len(files) - len(failures)
    if done or len(files) > 1:  # a single file that failed has said so in its one line
        of = f" of {len(files)}" if failures else ""
        print(f"converted {done}{of} file(s): {total_out} bytes of .qgt from {total_in} bytes of label images "
              f"({pct:.1f} %)")
    return failures.code()


def _classes_and_ignore(args) -> tuple:
    """(the number of classes or None, the ClassSet of --classes or None, the ignore value or None):
    --levels, --ignore and --classes checked; an explicit --ignore wins over the file's."""
    check_levels(args.levels)
    check_ignore(args.ignore)
    k, classes = parse_classes_arg(args.classes)
    check_ignore_outside(k, args.ignore, args.classes)
    ignore = args.ignore
    if classes is not None:
        if ignore is None:
            ignore = classes.ignore_index
        elif ignore != classes.ignore_index:  # the explicit flag wins over the file
            classes = dataclasses.replace(classes, ignore_index=ignore)
    return k, classes, ignore


def _convert_jobs(src: Path, dst: Path) -> tuple[list[Path], list[Path]]:
    """(the label PNGs of ``src``, a file or a folder of them; the .qgt each becomes under ``dst``),
    every output checked before anything is written."""
    if src.is_dir():
        files = collect_files([str(src)], (".png",), "label PNGs")
        if dst.exists() and not dst.is_dir():
            raise CLIError(f"{dst} exists and is not a folder (converting a folder needs an output folder)")
        outputs = [dst / f.relative_to(src).with_suffix(".qgt") for f in files]
    elif src.is_file():
        files = [src]
        outputs = [dst / f"{src.stem}.qgt" if dst.is_dir() else dst]
    else:
        raise no_input_error(src)
    check_outputs(files, list(zip(outputs, files)))  # never replace a mask, never two masks into one file
    for out in {out.parent: out for out in outputs}.values():  # a file where a folder must be, a read-only folder
        # (a pipe among a folder's outputs is that item's failure, reported at its write: the rest go on)
        check_writable_folder(out, "", special=not src.is_dir())
    if src.is_dir():  # DST mirrors SRC's subfolders: one of them a link leading out of DST would receive files
        check_output_links(dst, sorted({out.parent for out in outputs}), "")
    return files, outputs


def _class_count(files: list[Path], classes, ignore) -> int:
    """The number of classes covering every value of the readable ``files``; CLIError past a .qgt's most."""
    from qgn.quadtree.qgt import MAX_CLASSES

    scan = FileSteps("convert", len(files), "reading the class values of")
    top, where = max(((max_class_value(label, ignore), path) for path, label in readable_masks(files, classes, scan)),
                     default=(0, None))
    k = max(1 + top, 1)
    if k > MAX_CLASSES:
        hint = (f"; if {top} marks unlabelled pixels, pass --ignore {top}" if ignore is None
                else "")
        raise CLIError(f"{where}: label values reach {top}; a .qgt holds at most {MAX_CLASSES} classes "
                       f"(values 0..{MAX_CLASSES - 1}){hint}")
    return k


def _convert_each(files: list[Path], outputs: list[Path], classes, k: int, ignore, levels, step: FileSteps,
                  failures: Failures) -> tuple[int, int]:
    """Convert each of ``files`` into its output (one bad mask is reported into ``failures`` and the
    rest go on); (the bytes read, the bytes written) of those converted."""
    total_in = total_out = 0
    cleaned: set[Path] = set()
    parts = ItemParts("convert", len(files), writes=3,  # a 24 MP mask: ~0.1 s to read and build, ~0.8 s to encode
                      time_left=step.time_left)  # (its line replaces the count's: it says the batch's time left)
    for i, (path, out) in enumerate(zip(files, outputs)):
        step(i)
        parts.begin(i, path)
        try:  # one bad mask is reported and the rest go on
            _convert_one(path, out, classes, k, ignore, levels, parts, cleaned)
        except (ValueError, OSError) as exc:
            parts.clear()
            step.off_the_line()
            failures.report(path, exc)
            continue
        if parts.on_line and step.shown and i + 1 < len(files):
            step.draw(i + 1)  # the batch's count back on the row (it replaces the parts line), not a blank row
        parts.clear()
        total_in += path.stat().st_size
        total_out += out.stat().st_size
    return total_in, total_out


def _convert_one(path: Path, out: Path, classes, k: int, ignore, levels, parts: ItemParts, cleaned: set) -> None:
    """Read the mask ``path``, build its quadtree and write it to ``out``; ``cleaned``: the folders
    whose stale temporaries were removed this run."""
    from qgn.quadtree import Quadtree
    from qgn.quadtree.qgt import check_readable_size, write_qgt

    parts.writing(1, "reading")
    label = read_mask(path, classes)
    try:
        check_readable_size(*label.shape, levels)  # before building a pyramid that big
        parts.writing(2, "building the quadtree")
        qt = Quadtree.from_label(label, k, ignore, levels)
    except ValueError as exc:
        hint = "; if a value marks unlabelled pixels, pass --ignore VALUE" if "no ignore value set" in str(exc) else ""
        raise ValueError(f"{path}: {exc}{hint}") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.parent not in cleaned:
        cleaned.add(out.parent)
        remove_stale_temporaries(out.parent)  # left by a killed earlier run
    parts.writing(3, f"writing {one_line(out.name)}")
    write_qgt(out, qt, classes)


def readable_masks(files: list[Path], classes, step=None):
    """The label maps of ``files`` that can be read; the others are reported when converted.
    ``step(i)``: called before the i-th file is read, and with ``len(files)`` at the end."""
    for i, path in enumerate(files):
        if step is not None:
            step(i)
        try:
            yield path, read_mask(path, classes)
        except (ValueError, OSError):
            continue
    if step is not None:
        step(len(files))
