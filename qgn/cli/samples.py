"""`qgn samples OUT [--count 6] [--size 384x256] [--seed 2000000] [--force]`: write synthetic sample scenes.

OUT/images/NAME.png (RGB), OUT/labels/NAME.png (indexed palette) and OUT/classes.txt — the layout
of a folder dataset, which the app, `qgn eval` and `qgn predict --labels` read. Seeds start in
the synthetic test range, so samples are never training scenes. A file of these names already in
OUT is refused before anything is written (other files there stay as they are); ``--force``
replaces them (a link among them is replaced, not written through).

Prints each scene's image path as it is written; on a terminal, more than 20 scenes show their
progress and time left on a line of stderr under the paths (a 960x720 scene takes ~0.3 s).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from qgn.cli.main import CLIError
from qgn.cli.progress_line import SHOWN_ABOVE_FILES, ProgressLine

MAX_COUNT = 100_000  # scenes one call writes (its file names are listed before anything is written)


def add_arguments(p) -> None:
    p.add_argument("out", help="output folder")
    p.add_argument("--count", type=int, default=6)
    p.add_argument("--size", default="384x256", help="WIDTHxHEIGHT")
    p.add_argument("--seed", type=int, default=2_000_000, help="first scene seed")
    p.add_argument("--force", action="store_true",
                   help="overwrite sample files already in OUT (scene images, labels, classes.txt)")


def scene_names(count: int) -> list[str]:
    digits = max(2, len(str(count)))  # scene_001 … scene_300: file order is scene order
    return [f"scene_{i + 1:0{digits}d}" for i in range(count)]


def sample_files(out: Path, count: int) -> list[Path]:
    """Every file ``write_samples(out, count, …)`` writes, scene by scene, classes.txt last."""
    return [out / sub / f"{name}.png" for name in scene_names(count) for sub in ("images", "labels")] + \
        [out / "classes.txt"]


def write_samples(out: Path, count: int, width: int, height: int, seed: int, wrote=None) -> list[Path]:
    """The scenes' image paths; ``wrote(path, done)`` after each scene, when given."""
    import io

    from PIL import Image

    from qgn.data.synthetic import SYNTHETIC_CLASSES, make_scene
    from qgn.quadtree.label_io import write_classes_file, write_label_png

    from qgn.fileio import atomic_write_bytes, make_folder

    make_folder(out / "images")  # a link to nothing or a file in the way: named as what it is
    make_folder(out / "labels")
    write_classes_file(out / "classes.txt", SYNTHETIC_CLASSES)
    written = []
    for i, name in enumerate(scene_names(count)):
        image, label = make_scene(seed + i, height, width)
        png = io.BytesIO()  # written as every output is (a new file renamed over the name), never through it
        Image.fromarray(image).save(png, format="PNG")
        atomic_write_bytes(out / "images" / f"{name}.png", png.getbuffer())
        write_label_png(out / "labels" / f"{name}.png", label, SYNTHETIC_CLASSES)
        written.append(out / "images" / f"{name}.png")
        if wrote is not None:
            wrote(written[-1], i + 1)
    return written


def check_new(out: Path, count: int, force: bool) -> None:
    """CLIError, before anything is written, when a file the samples would write is in ``out``
    already (no input is overwritten) unless ``force``; with ``force`` a link among them is removed,
    so that its target (outside ``out``, maybe) is not written through. A pipe, a device or a socket
    among them is refused, --force or not (``refuse_special_output``): before anything is written."""
    from qgn.fileio import NotAFileError, refuse_special_output

    taken = [path for path in sample_files(out, count) if os.path.lexists(path)]
    for path in taken:
        try:
            refuse_special_output(path)
        except NotAFileError as exc:
            raise CLIError(str(exc)) from None
    if taken and not force:
        more = f" (and {len(taken) - 1} more file{'s' if len(taken) > 2 else ''} the samples would replace)" \
            if len(taken) > 1 else ""
        raise CLIError(f"{taken[0]} exists{more}; choose an empty or new folder, or pass --force to overwrite "
                       "the sample files there")
    for path in taken:
        if path.is_symlink():
            path.unlink()


def check_options(args) -> tuple[int, int]:
    """(width, height) of ``--size``; CLIError naming the option for a size without pixels or over
    the pixel limit (``QGN_MAX_PIXELS``), a ``--count`` outside 1..``MAX_COUNT`` or a negative ``--seed``
    — before anything is written or allocated."""
    from qgn.imagefile import MAX_PIXELS_ENV, max_pixels

    width, _, height = args.size.partition("x")
    if not (width.isascii() and width.isdigit() and height.isascii() and height.isdigit()) or \
            not int(width) or not int(height):
        raise CLIError(f"--size takes WIDTHxHEIGHT of at least 1x1, e.g. 384x256; got {args.size!r}")
    pixels, limit = int(width) * int(height), max_pixels()
    if pixels > limit:  # a file's check would call this a corrupt header
        raise CLIError(f"--size {args.size} is {pixels / 1e6:.1f} megapixels, more than the limit of {limit / 1e6:.1f} "
                       f"({MAX_PIXELS_ENV}); choose a smaller size")
    if not 1 <= args.count <= MAX_COUNT:
        raise CLIError(f"--count is {args.count}; qgn samples writes 1 to {MAX_COUNT} scenes")
    if args.seed < 0:
        raise CLIError(f"--seed is {args.seed}; a scene seed is 0 or more")
    return int(width), int(height)


def run(args) -> int:
    width, height = check_options(args)
    out = Path(args.out)
    check_new(out, args.count, args.force)
    from qgn.cli.files import check_output_links

    check_output_links(out, [out / "images", out / "labels"], "")  # a link there leading away would receive them
    line = ProgressLine(64, args.count > SHOWN_ABOVE_FILES and sys.stderr.isatty())

    def wrote(path: Path, done: int) -> None:
        line.clear()  # the path takes its place; the line is drawn again under it
        print(path, flush=True)
        if done < args.count:
            line.show(f"qgn samples: {done}/{args.count} scenes{line.time_left.suffix(done, args.count)}")

    write_samples(out, args.count, width, height, args.seed, wrote)
    return 0
