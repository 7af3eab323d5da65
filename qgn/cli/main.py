"""`qgn` command line: one small module per subcommand, imported only when that subcommand runs.

Each subcommand module defines ``add_arguments(parser)`` and ``run(args) -> int``.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from qgn.shown import one_line

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
    "models": ("qgn.cli.models", "the bundled models: name, classes, size, training data, measured mIoU"),
    "bench": ("qgn.cli.bench", "memory, compute and speed against the dilated baseline; anytime curve"),
    "serve": ("qgn.cli.serve", "QGN as a Label Studio ML backend: pre-annotations, uncertainty scores, fine-tuning"),
    "import": ("qgn.cli.importer", "a dataset (CVAT/VOC, Cityscapes, COCO, labelme, Label Studio, ...) -> a project"),
    "relink": ("qgn.cli.relink", "find a project's missing (moved) images in a folder and point the project at them"),
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
    from qgn.allocator import tune_allocator

    tune_allocator()  # freed tensor buffers are reused, not page-faulted in again (qgn/allocator.py)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    args.argv = list(argv)  # the command as given, for a record of it (qgn bench --json's provenance)
    if args.command is None:
        parser.print_help()
        return 2
    module = importlib.import_module(SUBCOMMANDS[args.command][0])
    try:
        return int(module.run(args) or 0)
    except (CLIError, FileNotFoundError, ValueError) as exc:
        failed(f"qgn {args.command}: error: {one_line(exc)}")
        return 2
    except Exception as exc:  # every failure is one line; a surprise also leaves a log
        message = expected_failure_message(exc)
        if message is None:
            message = unexpected_failure_message(exc, args.command, argv)
        failed(f"qgn {args.command}: error: {one_line(message)}")
        return 2
    except KeyboardInterrupt:
        failed(f"qgn {args.command}: interrupted")
        return 130


def failed(line: str) -> None:
    """``line`` on stderr, on a line of its own: a progress line the command left drawn (a pass
    it was in when the failure or Ctrl-C came) is blanked first."""
    from qgn.cli.progress_line import end_drawn_line

    end_drawn_line()
    print(line, file=sys.stderr)


LOG_DIR_ENV = "QGN_LOG_DIR"


def log_folder():
    """Where tracebacks of unexpected failures go: ``$QGN_LOG_DIR``, else ``$XDG_CACHE_HOME/qgn/logs``
    (``~/.cache/qgn/logs``)."""
    import os
    from pathlib import Path

    if os.environ.get(LOG_DIR_ENV):
        return Path(os.environ[LOG_DIR_ENV])
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "qgn" / "logs"


def failure_summary(kind: type, exc: BaseException) -> str:
    """``Type: the message's first line`` (at most 300 characters), or the type alone."""
    first = (str(exc).splitlines() or [""])[0][:300]
    return f"{kind.__name__}: {first}" if first else kind.__name__


def write_traceback(name: str, header: str, kind: type, exc: BaseException, tb):
    """``header`` and the traceback of ``exc`` written to ``log_folder() / name``; the path
    (OSError when no log can be written there). The one home of the crash logs of ``qgn`` and of
    the app (``qgn_studio.uncaught``)."""
    import traceback

    folder = log_folder()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(header + "".join(traceback.format_exception(kind, exc, tb)), encoding="utf-8")
    return path


def unexpected_failure_message(exc: BaseException, command: str, argv: list[str]) -> str:
    """One line for a failure nobody anticipated (a bug, or an input no check foresaw); its
    traceback goes to a log file that the line names."""
    import datetime
    import os

    now = datetime.datetime.now()
    try:
        path = write_traceback(f"qgn-{command}-{now.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log",
                               f"qgn {' '.join(argv)}\n{now.isoformat()}\n\n", type(exc), exc, exc.__traceback__)
        where = f"the traceback is in {path}"
    except OSError as log_error:
        where = f"no log could be written ({log_error.strerror}); run with {LOG_DIR_ENV}=<folder> to keep one"
    return f"unexpected {failure_summary(type(exc), exc)}; {where} (please report it with the input that caused it)"


def expected_failure_message(exc: BaseException) -> str | None:
    """One line for a failure a user can cause and fix (a file system fault, an unreadable image,
    memory), or None for a programming error, which keeps its traceback."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(exc, PermissionError):
        return f"{exc.filename or exc}: permission denied; choose a file or folder you may read/write"
    if isinstance(exc, (IsADirectoryError, NotADirectoryError)):
        import os

        if exc.errno is not None and exc.strerror != os.strerror(exc.errno):  # ours already says what to do
            return f"{exc.filename or exc}: {exc.strerror}"
        return f"{exc.filename or exc}: {exc.strerror} (a file where a folder should be, or the reverse); fix the path"
    if isinstance(exc, UnidentifiedImageError):
        return f"{exc}; is it an image file (PNG, JPEG, …)?"
    if isinstance(exc, Image.DecompressionBombError):
        return f"{exc}; set QGN_MAX_PIXELS to a larger pixel count if the image is genuine"
    if isinstance(exc, OverflowError):
        return (f"an input holds a value too large or too deeply nested to read ({type(exc).__name__}: "
                f"{(str(exc).splitlines() or [''])[0][:200]})")
    if isinstance(exc, OSError):
        from qgn.fileio import os_error_text

        return os_error_text(exc, "check the file, the disk and the path")
    if isinstance(exc, MemoryError):
        return "out of memory; try a smaller image or set QGN_MAX_PIXELS lower to refuse huge ones"
    if isinstance(exc, RecursionError):
        return "an input file is nested too deeply to read (a corrupt or hostile JSON file?)"
    return None


if __name__ == "__main__":
    # run as ``python -m qgn.cli.main``: this file is ``__main__``, and the subcommands import
    # ``qgn.cli.main`` anew - a second module, whose CLIError this one's main would not catch (a
    # refusal came out as "unexpected CLIError"). Run the imported module's main, as ``qgn`` does.
    from qgn.cli.main import main as _imported_main

    sys.exit(_imported_main())
