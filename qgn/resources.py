"""Where the shipped resources live: demo model, sample images, palettes, icons.

``QGN_RESOURCES`` overrides the location; otherwise the ``resources/`` folder at the repository
root (a source checkout or an editable install).
"""
from __future__ import annotations

import os
from pathlib import Path


def resources_dir() -> Path:
    env = os.environ.get("QGN_RESOURCES")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "resources"


def demo_model_path() -> Path:
    """The bundled demo model (safetensors; its config is the .json beside it)."""
    return resources_dir() / "models" / "demo.safetensors"


def samples_dir() -> Path:
    """Generated sample images (``images/``) and their ground truth (``labels/``)."""
    return resources_dir() / "samples"


def default_model(path: str | os.PathLike | None) -> Path:
    """``path`` if given, else the bundled demo model; a clear error when neither exists."""
    chosen = Path(path) if path else demo_model_path()
    if not chosen.is_file():
        hint = "" if path else " (the bundled demo model is missing: train it with `qgn train --preset demo`)"
        raise FileNotFoundError(f"model {chosen} not found{hint}")
    return chosen
