"""``open_dataset``: one entry point for every dataset, by name or by path.

    open_dataset("camvid", "val", root="../shared/data/camvid")
    open_dataset("../shared/data/camvid", "val")          # layout detected from the folder
    open_dataset("cityscapes:/data/cityscapes", "train")  # name:path
    open_dataset("synthetic", "train", n=1000, size=256)

A name without a root is looked up as ``<dir>/<folder>`` for each ``<dir>`` in the environment
variable ``QGN_DATA`` (``os.pathsep``-separated), then in ``../shared/data`` next to the repository
(the project's shared-data convention); ``<folder>`` is cityscapes, ADEChallengeData2016 or
ade20k, sunrgbd, camvid.

Names: cityscapes, ade20k, sunrgbd13, sunrgbd37, camvid, folder, synthetic. A path is recognised
by its contents: ``leftImg8bit/`` → cityscapes, ``images/training|validation`` (or
``ADEChallengeData2016/``) → ade20k, ``image/`` + ``label13/`` or ``label37/`` → sunrgbd13/37,
``classes.txt`` → folder, ``{split}/images`` + ``{split}/labels`` → camvid.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from qgn.data.ade20k import ADE20kDataset
from qgn.data.base import DatasetLayoutError, SegmentationDataset
from qgn.data.camvid import CamVidDataset
from qgn.data.cityscapes import CityscapesDataset
from qgn.data.folder import FolderDataset
from qgn.data.sunrgbd import SUNRGBDDataset
from qgn.data.synthetic import SyntheticDataset

SYNTHETIC_SPLIT_SEEDS = {"train": 0, "val": 1_000_000, "test": 2_000_000}
SYNTHETIC_SPLIT_SIZES = {"train": 1000, "val": 100, "test": 100}


def open_synthetic(split: str, n: int | None = None, size: int | tuple[int, int] = 256) -> SyntheticDataset:
    """Synthetic scenes; splits use disjoint seed ranges (train 1000, val / test 100 scenes by default)."""
    if split not in SYNTHETIC_SPLIT_SEEDS:
        expected = sorted(SYNTHETIC_SPLIT_SEEDS)
        raise ValueError(f"synthetic split {split!r} unknown; expected one of {expected}")
    count = SYNTHETIC_SPLIT_SIZES[split] if n is None else n
    return SyntheticDataset(count, SYNTHETIC_SPLIT_SEEDS[split], size)


OPENERS: dict[str, Callable[..., SegmentationDataset]] = {
    "cityscapes": lambda root, split, **kw: CityscapesDataset(root, split, **kw),
    "ade20k": lambda root, split, **kw: ADE20kDataset(root, split, **kw),
    "sunrgbd13": lambda root, split, **kw: SUNRGBDDataset(root, split, num_classes=13, **kw),
    "sunrgbd37": lambda root, split, **kw: SUNRGBDDataset(root, split, num_classes=37, **kw),
    "camvid": lambda root, split, **kw: CamVidDataset(root, split, **kw),
    "folder": lambda root, split, **kw: FolderDataset(root, split, **kw),
}
DATASET_NAMES: tuple[str, ...] = (*OPENERS, "synthetic")
DEFAULT_FOLDERS: dict[str, tuple[str, ...]] = {
    "cityscapes": ("cityscapes",),
    "ade20k": ("ADEChallengeData2016", "ade20k"),
    "sunrgbd13": ("sunrgbd",),
    "sunrgbd37": ("sunrgbd",),
    "camvid": ("camvid",),
}
SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def default_root(name: str) -> Path:
    """The first existing ``<dir>/<folder>`` for dataset ``name`` (see the module docstring)."""
    search = [Path(d) for d in os.environ.get("QGN_DATA", "").split(os.pathsep) if d] + [SHARED_DATA]
    candidates = [directory / folder for directory in search for folder in DEFAULT_FOLDERS.get(name, ())]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    tried = ", ".join(str(c) for c in candidates) or "nothing (no default location for this dataset)"
    raise DatasetLayoutError(
        f"dataset {name!r} needs a root folder: pass root=..., '{name}:/path', or set QGN_DATA; tried {tried}"
    )


def detect_layout(root: Path, split: str) -> str:
    """The dataset name whose layout ``root`` has (see the module docstring)."""
    if (root / "leftImg8bit").is_dir():
        return "cityscapes"
    if (root / "ADEChallengeData2016").is_dir() or (root / "images" / "training").is_dir() \
            or (root / "images" / "validation").is_dir():
        return "ade20k"
    if (root / "image").is_dir():
        variants = [k for k in (13, 37) if (root / f"label{k}").is_dir()]
        if len(variants) == 1:
            return f"sunrgbd{variants[0]}"
        if variants:
            raise DatasetLayoutError(
                f"{root} has both label13/ and label37/; open it as 'sunrgbd13' or 'sunrgbd37'"
            )
    if (root / "classes.txt").is_file() or (root / split / "classes.txt").is_file():
        return "folder"
    if (root / split / "images").is_dir() and (root / split / "labels").is_dir():
        return "camvid"
    raise DatasetLayoutError(
        f"cannot tell the dataset layout of {root}: expected leftImg8bit/ (cityscapes), "
        f"images/training/ (ade20k), image/ + label13/ or label37/ (sunrgbd), classes.txt (folder) "
        f"or {split}/images/ + {split}/labels/ (camvid)"
    )


def open_dataset(
    name_or_path: str | Path, split: str = "train", root: str | Path | None = None, **options: object
) -> SegmentationDataset:
    """Open split ``split`` of a dataset given by name (with ``root``), ``name:path``, or a path.

    ``options`` go to the dataset's constructor (for synthetic: ``n``, ``size``).
    """
    text = str(name_or_path)
    prefix, colon, inline_root = text.partition(":")
    name = prefix if colon and prefix in DATASET_NAMES else text
    if name == prefix and inline_root:
        root = inline_root
    if name == "synthetic":
        return open_synthetic(split, **options)
    if name in OPENERS:
        return OPENERS[name](Path(root) if root is not None else default_root(name), split, **options)
    path = Path(text)
    if not path.is_dir():
        names = ", ".join(DATASET_NAMES)
        raise DatasetLayoutError(f"{text!r} is neither a dataset name ({names}) nor a folder")
    return OPENERS[detect_layout(path, split)](path, split, **options)
