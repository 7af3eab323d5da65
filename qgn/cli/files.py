"""Turning the paths a user typed into the files a subcommand works on."""
from __future__ import annotations

from pathlib import Path

from qgn.cli.main import CLIError


def collect_files(paths: list[str], suffixes: tuple[str, ...], what: str) -> list[Path]:
    """Files named directly, plus files with ``suffixes`` under folders (recursive, sorted)."""
    found: list[Path] = []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            inside = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
            if not inside:
                raise CLIError(f"no {what} found under {path}")
            found.extend(inside)
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
    return found


def _same_file_key(path: Path) -> str:
    """One spelling per file: resolved through links, case folded (two names that differ only in
    case are one file on macOS and Windows disks, so they count as a clash everywhere)."""
    import os

    return os.path.normcase(os.path.realpath(path)).casefold()


def check_outputs(inputs: list[Path], outputs: list[tuple[Path, Path]]) -> None:
    """Refuse (CLIError) a run, before it writes anything, when an output would replace one of
    ``inputs`` or two outputs of the run would be one file. ``outputs``: (output path, the input
    it is made from)."""
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


MODEL_HELP = ("a bundled model's name (demo, camvid: `qgn models`), a .safetensors file, or a training "
              "run's folder (default: demo)")
