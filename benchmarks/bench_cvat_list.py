"""Bytes written and time of a CVAT export of many small images: ``ImageSets/Segmentation/default.txt``.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_cvat_list.py [--images 5000]

Protocol. ``--images`` 8×8 label maps (two classes) named ``frame_000000`` … are exported into a
fresh CVAT folder through ``add_to_every_writer`` (as ``qgn export --project`` and a folder export
of .qgt files add each image), then ``finish``. Measured over the export: the bytes the process
handed to ``write`` (``/proc/self/io`` ``wchar``: every file, masks included), the bytes of the
files the export left (masks and list: what any writer must write once), the difference (what was
written more than once: the list rewritten per image, before), and the wall time. Linux only
(``/proc/self/io``). The masks are tiny so that the list's share shows; their own bytes are the
same before and after.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def wchar() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise RuntimeError("no wchar in /proc/self/io")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    args = parser.parse_args()
    from qgn.classes import ClassSet
    from qgn.formats import FORMATS, ExportItem
    from qgn.formats.base import add_to_every_writer

    classes = ClassSet.generic(3, 255)
    label = np.zeros((8, 8), np.uint8)
    label[:, 4:] = 2
    names = [f"frame_{i:06d}" for i in range(args.images)]
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        writer = FORMATS["cvat"].open_writer(classes, out, 4)
        writer.plan(names, [None] * len(names))
        before, start = wchar(), time.perf_counter()
        for name in names:
            add_to_every_writer([(writer, ExportItem(name, label, None))])
        writer.finish()
        seconds, written = time.perf_counter() - start, wchar() - before
        left = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
        listed = (out / "ImageSets" / "Segmentation" / "default.txt").read_text().split()
        assert listed == names, "the list does not name every image in order"
    print(f"{args.images} images: {written / 1e6:.2f} MB written, {left / 1e6:.2f} MB left in the folder "
          f"(default.txt {len(listed)} lines), {(written - left) / 1e6:.2f} MB written more than once; "
          f"{seconds:.2f} s ({seconds / args.images * 1e3:.2f} ms an image)")


if __name__ == "__main__":
    main()
