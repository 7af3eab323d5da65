"""Turning the paths a user typed into the files a subcommand works on."""
from __future__ import annotations

from pathlib import Path

from qgn.cli.main import CLIError
from qgn.fileio import no_input_error


def collect_files(paths: list[str], suffixes: tuple[str, ...], what: str) -> list[Path]:
    """Files named directly, plus files with ``suffixes`` under folders (recursive, sorted). A named
    pipe or device among them (by name or under a folder) is kept, for its reader to refuse and the
    batch to report (``qgn.fileio.open_regular``), never left out without a word; so is a link to
    nothing or a loop of links (an image moved away: it was left out, and the batch said nothing)."""
    found: list[Path] = []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            inside = sorted(p for p in path.rglob("*") if p.suffix.lower() in suffixes and (p.exists() or p.is_symlink())
                            and not p.is_dir())
            if not inside:
                raise CLIError(f"no {what} found under {path}")
            found.extend(inside)
        elif path.exists():
            found.append(path)
        else:
            raise no_input_error(path)
    return found


def _same_file_key(path: Path) -> str:
    """One spelling per file: resolved through links, case folded and in one Unicode normal form (two
    names that differ only in case are one file on macOS and Windows disks, and two that differ only
    in how an accent is encoded - "é" as one character or as "e" and a combining accent - are one
    file on macOS disks, so they count as a clash everywhere)."""
    import os

    from qgn.fileio import one_file_name

    return one_file_name(os.path.normcase(os.path.realpath(path)))


def check_outputs(inputs: list[Path], outputs: list[tuple[Path, Path]]) -> None:
    """Refuse (CLIError) a run, before it writes anything, when an output would replace one of
    ``inputs``, would be one of a QGN project's own files (``qgn.project.first_project_file``), or
    two outputs of the run would be one file. ``outputs``: (output path, the input
    it is made from)."""
    from qgn.project import first_project_file

    owned = first_project_file(out for out, _ in outputs)
    if owned is not None:
        out, root, what = owned
        raise CLIError(f"{out} is {what} of the QGN project {root}: only the project writes its own files (keeping "
                       f"what a save replaces); write into another folder, or bring masks into the project with "
                       f"qgn import SRC --project {root}")
    taken_by_input = {_same_file_key(p): p for p in inputs}
    written: dict[str, Path] = {}
    for out, source in outputs:
        key = _same_file_key(out)
        if key in taken_by_input:
            raise CLIError(f"{out} would overwrite the input {taken_by_input[key]}; write into another folder "
                           "or file name (inputs are never replaced)")
        if key in written and written[key] != source:
            raise CLIError(f"{written[key]} and {source} would both be written to {out}; rename one of them "
                           "or give them separate output folders")
        written[key] = source


def check_writable_folder(out: Path, option: str = "--out", special: bool = True) -> None:
    """CLIError before any work when ``out`` (given as ``option``, "" for a positional argument)
    cannot be written: its nearest existing folder is a file or not writable, saying why
    (``qgn.fileio.write_problem``, else no file could be created there; found out after a long run
    otherwise), or (``special``) ``out`` is a pipe, a device or a socket
    (``qgn.fileio.refuse_special_output``). A batch passes ``special=False`` for its folders: one
    item's output is that item's failure (reported at its write), never the whole batch's."""
    from qgn.fileio import NotAFileError, refuse_special_output, write_problem

    try:
        if special:
            refuse_special_output(out)
    except NotAFileError as exc:
        raise CLIError(f"{option} {exc}" if option else str(exc)) from None
    folder = out.absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    named, other = (f"{option} {out}", option) if option else (str(out), "output path")
    if not folder.is_dir():
        raise CLIError(f"{named}: {folder} is a file, not a folder; choose another {other}")
    why = write_problem(folder) or (None if can_create_in(folder) else "no file can be created in it")
    if why:
        raise CLIError(f"{named}: the folder {folder} is not writable ({why}); choose another {other}")


def check_output_folder(out: Path, option: str = "--out") -> None:
    """CLIError before any work when the folder ``out`` (given as ``option``, "" for a positional
    argument) cannot hold the outputs: a file or a link to nothing stands there (or where a folder
    above it should be), or the folder, or its nearest existing folder, is not writable - found out
    after a long run otherwise (``qgn bench``'s anytime curve, a folder export's one JSON)."""
    from qgn.fileio import dangling_link_text, write_problem

    named, other = (f"{option} {out}", option) if option else (str(out), "output folder")
    folder = out.absolute()
    while True:
        if folder.is_symlink() and not folder.exists():  # "OUT: is a link to T, which does not exist (…)"
            said = dangling_link_text(out if folder == out.absolute() else folder, "folder")
            raise CLIError(f"{option} {said}" if option else said)
        if folder.exists() or folder == folder.parent:
            break
        folder = folder.parent
    if not folder.is_dir():
        raise CLIError(f"{named}: {folder} is a file, not a folder; choose another {other}")
    why = write_problem(folder) or (None if can_create_in(folder) else "no file can be created in it")
    if why:
        raise CLIError(f"{named}: the folder {folder} is not writable ({why}); choose another {other}")


def check_output_links(out: Path, folders=None, option: str = "--out") -> None:
    """CLIError (one line naming the link and the fix) before anything is written, where a folder the
    command writes into under the folder ``out`` the user named (``folders``, each ``out`` or under
    it; default ``out`` itself), one between, or one beneath, is a symbolic link to a folder
    outside ``out``: its files would land there (``qgn.formats.check_export_links``, as for the
    formats of ``qgn export``)."""
    from qgn.fileio import OutsideRootError
    from qgn.formats.base import check_export_links

    try:
        check_export_links(out, [Path(f) for f in folders] if folders else [out],
                           elsewhere=f"choose another {option}" if option else "write elsewhere")
    except OutsideRootError as exc:
        raise CLIError(f"{option} {out}: {exc}" if option else str(exc)) from None


def can_create_in(folder: Path) -> bool:
    """Whether a file can be created in the existing ``folder`` (tried: permission bits do not tell
    for root, a read-only mount or /proc)."""
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


MODEL_HELP = ("a bundled model's name (demo, camvid: `qgn models`), a .safetensors file, or a training "
              "run's folder (default: demo)")


def failure_text(item, exc: BaseException) -> str:
    """One line for a bad item of a batch, naming ``item`` (a file name a temporary file of the
    writer never stands in for: ``qgn.fileio.atomic_write_bytes`` names the real file)."""
    from qgn.cli.main import expected_failure_message

    from qgn.shown import path_text

    text = (expected_failure_message(exc) if isinstance(exc, OSError) else None) or str(exc) or type(exc).__name__
    # a message may name the file escaped (``path_text``: a line break in it as \\n)
    return text if str(item) in text or path_text(str(item)) in text else f"{item}: {text}"


class Failures:
    """The bad items of a batch command (``qgn convert DIR``, ``qgn export DIR``, ``qgn stats`` …):
    ``report`` says each at once in one line naming it and the batch goes on with the rest;
    ``code()`` at the end is the exit status, with a last line saying how many failed (the style of
    ``qgn predict``). ``noun``: what the items are ("file(s)", "image(s)"); ``outcome``: what
    happened to them, as the last line says it ("failed"; ``qgn predict`` also counts images
    "predicted without accuracy")."""

    def __init__(self, command: str, total: int, noun: str = "file(s)", outcome: str = "failed"):
        self.command, self.total, self.noun, self.outcome = command, total, noun, outcome
        self.items: list[str] = []

    def report(self, item, exc: BaseException | str, quiet: bool = False) -> None:
        """``quiet``: counted and named in the last line, not said now (the caller says it once for
        several items that failed alike)."""
        import sys

        from qgn.shown import one_line

        self.items.append(one_line(item))
        if quiet:
            return
        text = exc if isinstance(exc, str) else failure_text(item, exc)
        print(f"qgn {self.command}: error: {one_line(text)}", file=sys.stderr, flush=True)

    def __bool__(self) -> bool:
        return bool(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def code(self) -> int:
        """2 when any item failed (a batch of several then says how many, and which), else 0."""
        import sys

        if not self.items:
            return 0
        if self.total > 1:
            print(f"qgn {self.command}: {len(self.items)} of {self.total} {self.noun} {self.outcome} (see above): "
                  + ", ".join(self.items[:5]) + (" …" if len(self.items) > 5 else ""), file=sys.stderr)
        return 2
