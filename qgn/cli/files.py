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


MODEL_HELP = ("a bundled model's name (demo, camvid: `qgn models`), a .safetensors file, or a training "
              "run's folder (default: demo)")
