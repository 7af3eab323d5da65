"""`qgn train [--preset NAME] [--config FILE.toml] [--set KEY=VALUE ...] [--resume] [--out DIR]`"""
from __future__ import annotations

import sys

from qgn.cli.progress_line import ProgressLine, room
from qgn.cli.threads import add_threads_argument, apply_threads


def add_arguments(p) -> None:
    from qgn.train.presets import PRESETS

    add_threads_argument(p)
    p.add_argument("--preset", metavar="NAME", help=f"named recipe: {', '.join(PRESETS)}")
    p.add_argument("--config", help="TOML file with the settings (top level or a [train] table)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one setting")
    p.add_argument("--out", help="output folder (log.csv, checkpoints, final model)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.* after an interruption")
    p.add_argument("--force", action="store_true",
                   help="start over in an OUT that holds a previous run, replacing its checkpoint, log and model")
    p.add_argument("--device", help="cpu, cuda, … (default: cuda when available)")


def parse_value(text: str):
    import tomllib

    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def read_config(path: str, read_text_within, tomllib) -> dict:
    """The settings of the --config file ``path`` (its [train] table, else its top level); a
    ValueError naming the option and the file when it is missing, a folder or not TOML."""
    from pathlib import Path

    if Path(path).is_dir():
        raise ValueError(f"--config {path} is a folder; name a TOML file (see `qgn train --help`)")
    if not Path(path).exists():
        raise ValueError(f"--config {path}: no such file; name an existing TOML file")
    try:
        doc = tomllib.loads(read_text_within(path, "training config (TOML)", named=True))  # <(…) too
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"--config {path} is not valid TOML: {exc}") from None
    train = doc.get("train", doc)
    if not isinstance(train, dict):
        raise ValueError(f"--config {path}: 'train' must be a table ([train]), not {type(train).__name__}")
    return train


def resolve_config(args):
    import tomllib

    from qgn.fileio import read_text_within
    from qgn.train.loop import TrainConfig
    from qgn.train.presets import PRESETS

    values: dict = {}
    if args.preset:
        if args.preset not in PRESETS:
            raise ValueError(f"unknown preset {args.preset!r}; choose one of {', '.join(PRESETS)}")
        values.update(PRESETS[args.preset])
    if args.config:
        values.update(read_config(args.config, read_text_within, tomllib))
    for item in args.set:
        key, sep, text = item.partition("=")
        if not sep:
            raise ValueError(f"--set takes KEY=VALUE; got {item!r}")
        values[key.strip()] = parse_value(text.strip())
    if args.out:
        values["out"] = args.out
    return TrainConfig.from_dict(values)


def check_resume(resume: bool, force: bool, out) -> None:
    """ValueError for --resume with --force (the run went on, --force or not); a note on stderr
    when --resume finds no run file at all in ``out`` (a new run starts: a restartable job passes
    --resume every time); a run that cannot be resumed (a checkpoint without its state) is refused
    by ``check_out_folder``, with no note that would promise a new run first."""
    from pathlib import Path

    from qgn.train.loop import RUN_FILES

    if resume and force:
        raise ValueError("--resume continues the run in --out and --force starts it over; pass one of them")
    if resume and not any((Path(out) / name).exists() or (Path(out) / name).is_symlink() for name in RUN_FILES):
        print(f"qgn train: --resume: {out} holds no run to continue (none of a run's files); starting a new run",
              file=sys.stderr)


def run(args) -> int:
    apply_threads(args)
    from qgn.train.loop import train

    config = resolve_config(args)
    from pathlib import Path

    from qgn.cli.files import check_output_folder

    check_resume(args.resume, args.force, config.out)
    check_output_folder(Path(config.out), "--out")  # a file, a link to nothing, read-only: before the data loads
    progress = TrainProgress(config.iterations)
    try:
        from qgn.cli.device import resolve_device

        final = train(config, resume=args.resume, progress=progress,
                      device=None if args.device is None else resolve_device(args.device), replace=args.force)
    except KeyboardInterrupt:
        progress.off_the_line()
        print(f"qgn train: interrupted; checkpoint saved in {config.out} (continue with --resume)", file=sys.stderr)
        return 130
    progress.off_the_line()  # ends the line as its own (a plain newline left it the one a next failure blanks)
    print(f"qgn train: done: {final}", file=sys.stderr)
    from qgn.domain import reference_for, reference_path

    if reference_for(final) is not None:  # made for this very file (an older one beside it is not read)
        print(f"qgn train: domain reference: {reference_path(final)} (the app warns on images unlike the "
              "training images and starts them from an empty map)", file=sys.stderr)
    print(final)
    return 0


class TrainProgress(ProgressLine):
    """``progress(iteration, row)`` for ``train``: a bar, the loss, and the time left from this
    run's own iterations — a resumed run starts counting where it resumed, so the iterations of
    the interrupted run do not make the estimate short.

    Off a terminal (a log, a pipe) the line is the whole one, as scripts read it. On a terminal
    narrower than that line (the whole one is ~100 columns) it is made to fit with the time left
    kept: a shorter bar, then the least useful field dropped first - the learning rate, the
    seconds per iteration, the bar, the loss (``fit_train_line``)."""

    def __init__(self, iterations: int):
        super().__init__(88)
        self.iterations = iterations
        self.first: int | None = None  # the iteration this run started after

    def __call__(self, iteration: int, row: dict) -> None:
        if self.first is None:
            self.first = iteration - 1
        done, total = iteration - self.first, self.iterations - self.first
        left = self.time_left.suffix(done, total)
        if self.time_left.estimating(done, total):
            left = " · estimating the time left…"  # the first report's iterations hold the start-up
        limit = room() if sys.stderr.isatty() else None
        self.show(fit_train_line(iteration, self.iterations, row, left, limit))


def fit_train_line(iteration: int, iterations: int, row: dict, left: str, limit: int | None) -> str:
    """``qgn train``'s progress line: the whole one when ``limit`` is None or it fits, else the
    first of ever shorter forms that fits ``limit`` columns, all of them ending with ``left``."""
    def bar(width: int) -> str:
        return f"[{'#' * int(width * iteration / iterations):<{width}}] "

    count = f"{iteration}/{iterations}"
    loss, lr, speed = f" loss {row['loss']:.4f}", f" lr {row['lr']:.4f}", f" {row['sec_per_iter']:.2f} s/it"
    whole = f"{bar(30)}{count}{loss}{lr}{speed}{left}"
    if limit is None or len(whole) <= limit:
        return whole
    for text in (f"{bar(20)}{count}{loss}{lr}{speed}{left}", f"{bar(20)}{count}{loss}{speed}{left}",
                 f"{bar(20)}{count}{loss}{left}", f"{bar(10)}{count}{loss}{left}", f"{count}{loss}{left}"):
        if len(text) <= limit:
            return text
    return f"{count}{left}"  # (cut by show where even this is too long)
