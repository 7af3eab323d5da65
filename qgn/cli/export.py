"""`qgn export IN.qgt --png OUT.png` or `qgn export DIR --png OUTDIR`

.qgt quadtree file(s) → other formats. ``--png`` writes the label map with the exact original values
and size (indexed-palette PNG, colours from the file's classes; 16-bit grayscale for values > 255).
In the folder form every .qgt under DIR (recursive) becomes OUTDIR/<same relative path>.<ext>.

Each format is one function ``export_<name>(qt, classes, out_path)`` registered in ``EXPORTERS``;
adding a format adds a ``--<name> OUT`` option.
"""
from __future__ import annotations

from pathlib import Path

from qgn.cli.main import CLIError
from qgn.cli.files import collect_files


def export_png(qt, classes, out: Path) -> None:
    """The label map as PNG: exact values (ignore pixels keep the ignore value) and size."""
    from qgn.quadtree.label_io import write_label_png

    write_label_png(out, qt.to_label(), classes)


# name -> (file suffix, function, help)
EXPORTERS = {
    "png": (".png", export_png, "label map PNG (exact original values and size)"),
}


def add_arguments(p) -> None:
    p.add_argument("src", metavar="IN|DIR", help="a .qgt file, or a folder of them (recursive)")
    for name, (suffix, _, help_text) in EXPORTERS.items():
        p.add_argument(f"--{name}", metavar="OUT", help=f"{help_text}: a file, or a folder for the folder form")


def run(args) -> int:
    from qgn.quadtree.qgt import read_qgt

    wanted = [(name, Path(getattr(args, name))) for name in EXPORTERS if getattr(args, name)]
    if not wanted:
        raise CLIError("choose an output: " + ", ".join(f"--{name} OUT" for name in EXPORTERS))
    src = Path(args.src)
    if src.is_dir():
        files = collect_files([str(src)], (".qgt",), ".qgt files")
        for _, out in wanted:
            if out.exists() and not out.is_dir():
                raise CLIError(f"{out} exists and is not a folder (exporting a folder needs an output folder)")
        jobs = [(f, [(n, out / f.relative_to(src).with_suffix(EXPORTERS[n][0])) for n, out in wanted]) for f in files]
    elif src.is_file():
        jobs = [(src, [(n, out / f"{src.stem}{EXPORTERS[n][0]}" if out.is_dir() else out) for n, out in wanted])]
    else:
        raise FileNotFoundError(f"{src}: no such file or folder")
    for path, targets in jobs:
        qt, classes = read_qgt(path)
        for name, out in targets:
            out.parent.mkdir(parents=True, exist_ok=True)
            EXPORTERS[name][1](qt, classes, out)
    print(f"exported {len(jobs)} file(s) to " + ", ".join(f"{n} ({out})" for n, out in wanted))
    return 0
