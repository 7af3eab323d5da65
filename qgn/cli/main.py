"""`qgn` command line: one small module per subcommand, imported only when that subcommand runs.

Each subcommand module defines ``add_arguments(parser)`` and ``run(args) -> int``.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help). Modules are imported lazily so `qgn --help` stays fast.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "stats": ("qgn.cli.stats", "quadtree sparsity of label maps (paper Table 5)"),
    "convert": ("qgn.cli.convert", "label PNG(s) -> .qgt quadtree file(s)"),
    "export": ("qgn.cli.export", ".qgt file(s) -> label PNG / other formats"),
    "predict": ("qgn.cli.predict", "run a model on images: dense PNG + .qgt + cost"),
    "train": ("qgn.cli.train", "train a QGN (presets, TOML config, resume)"),
    "samples": ("qgn.cli.samples", "write synthetic sample scenes (images, labels, classes.txt)"),
    "eval": ("qgn.cli.eval", "accuracy and cost of a model per propagation scheme (Table 1)"),
    "finetune": ("qgn.cli.finetune", "fine-tune a model on corrected labels; saves under a new name"),
    "bench": ("qgn.cli.bench", "memory, compute and speed against the dilated baseline; anytime curve"),
    "import": ("qgn.cli.importer", "a dataset (CVAT/VOC, Cityscapes, COCO, labelme, Label Studio, ...) -> a project"),
}


class CLIError(Exception):
    """A user-facing error: printed as 'qgn <cmd>: message' with exit status 2."""


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qgn", description="Quadtree Generating Networks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (module, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:  # only the chosen subcommand's module (and its imports) is loaded
            importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    module = importlib.import_module(SUBCOMMANDS[args.command][0])
    try:
        return int(module.run(args) or 0)
    except (CLIError, FileNotFoundError, ValueError) as exc:
        print(f"qgn {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"qgn {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
