"""`qgn samples OUT [--count 6] [--size 384x256] [--seed 2000000]`: write synthetic sample scenes.

OUT/images/NAME.png (RGB), OUT/labels/NAME.png (indexed palette) and OUT/classes.txt — the layout
of a folder dataset, which the app, `qgn eval` and `qgn predict --labels` read. Seeds start in
the synthetic test range, so samples are never training scenes.
"""
from __future__ import annotations

from pathlib import Path


def add_arguments(p) -> None:
    p.add_argument("out", help="output folder")
    p.add_argument("--count", type=int, default=6)
    p.add_argument("--size", default="384x256", help="WIDTHxHEIGHT")
    p.add_argument("--seed", type=int, default=2_000_000, help="first scene seed")


def write_samples(out: Path, count: int, width: int, height: int, seed: int) -> list[Path]:
    from PIL import Image

    from qgn.data.synthetic import SYNTHETIC_CLASSES, make_scene
    from qgn.quadtree.label_io import write_classes_file, write_label_png

    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    write_classes_file(out / "classes.txt", SYNTHETIC_CLASSES)
    written = []
    digits = max(2, len(str(count)))  # scene_001 … scene_300: file order is scene order
    for i in range(count):
        image, label = make_scene(seed + i, height, width)
        name = f"scene_{i + 1:0{digits}d}"
        Image.fromarray(image).save(out / "images" / f"{name}.png")
        write_label_png(out / "labels" / f"{name}.png", label, SYNTHETIC_CLASSES)
        written.append(out / "images" / f"{name}.png")
    return written


def run(args) -> int:
    width, _, height = args.size.partition("x")
    if not (width.isdigit() and height.isdigit()):
        raise ValueError(f"--size takes WIDTHxHEIGHT, e.g. 384x256; got {args.size!r}")
    for path in write_samples(Path(args.out), args.count, int(width), int(height), args.seed):
        print(path)
    return 0
