"""Where the shipped resources live: demo model, sample images, palettes, icons.

The folder ``resources/`` sits at the repository root and is shipped inside the wheel as the
data-only package ``qgn_resources`` (``setup.py`` maps it). ``resources_dir()`` looks, in order:

1. ``QGN_RESOURCES`` (an explicit override; used as given, even if it does not exist);
2. the installed package ``qgn_resources`` (a wheel; an editable install maps it to the checkout);
3. ``resources/`` next to the ``qgn`` package: a plain source checkout, or a PyInstaller bundle
   (whose spec puts the folder there).
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

RESOURCES_PACKAGE = "qgn_resources"


def resources_dir() -> Path:
    """The resources folder (see the module docstring for where it is looked for)."""
    env = os.environ.get("QGN_RESOURCES")
    if env:
        return Path(env)
    installed = installed_resources_dir()
    if installed is not None:
        return installed
    return Path(__file__).resolve().parents[1] / "resources"


def installed_resources_dir() -> Path | None:
    """The folder of the installed ``qgn_resources`` package, or None when it is not installed."""
    try:
        spec = importlib.util.find_spec(RESOURCES_PACKAGE)
    except (ImportError, ValueError):
        return None
    locations = list(spec.submodule_search_locations or ()) if spec is not None else []
    for location in locations:
        if Path(location).is_dir():
            return Path(location)
    return None


def demo_model_path() -> Path:
    """The bundled demo model (safetensors; its config is the .json beside it)."""
    return resources_dir() / "models" / "demo.safetensors"


def samples_dir() -> Path:
    """Generated sample images (``images/``) and their ground truth (``labels/``)."""
    return resources_dir() / "samples"


def icons_dir() -> Path:
    """The app icon: ``qgn-studio.svg`` and ``qgn-studio-<N>.png`` for N in ``ICON_SIZES``."""
    return resources_dir() / "icons"


ICON_SIZES: tuple[int, ...] = (16, 32, 48, 64, 128, 256, 512)


def app_icon_paths() -> list[Path]:
    """The app icon's PNG files that exist, smallest first (empty when the icons are missing)."""
    return [p for p in (icons_dir() / f"qgn-studio-{n}.png" for n in ICON_SIZES) if p.is_file()]


def palettes_dir() -> Path:
    """Class sets of the known datasets as ``classes.txt`` files (``qgn convert --classes FILE``)."""
    return resources_dir() / "palettes"


def default_model(path: str | os.PathLike | None) -> Path:
    """``path`` if given, else the bundled demo model; a clear error when neither exists."""
    chosen = Path(path) if path else demo_model_path()
    if not chosen.is_file():
        hint = "" if path else " (the bundled demo model is missing: train it with `qgn train --preset demo`)"
        raise FileNotFoundError(f"model {chosen} not found{hint}")
    return chosen
