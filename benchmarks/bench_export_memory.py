"""Peak memory of exporting one big annotation to every format, in bytes per output pixel.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_export_memory.py [--size 8000x8000] [--formats a,b]

Protocol. A synthetic label map of ``--size`` (default 8000×8000 = 64 MP) with ten classes and a
void class (ignore value 255) is made once and saved as ``.npy``: each class has a smooth random
field (bilinear upsampling of 8 × 8-pixel cells of noise on a grid of about 1/64 of the size), the
pixel takes the class of the largest field, so regions are blobby with curved boundaries, about
60 px across — a street scene's region sizes, not a quadtree-aligned toy. Every format then runs in
a fresh interpreter (``--worker``), which loads the map (uint8, 1 byte per pixel) and exports it
through the same call ``qgn export X.qgt --format NAME`` makes (``Format.export_items`` of one
``ExportItem``) into a temporary folder, twice:

* ``traced``: the peak of ``tracemalloc`` over the export (Python and NumPy allocations made
  during it; the label map loaded before is not counted), divided by the pixel count;
* ``rss``: the growth of the process's peak resident memory (``ru_maxrss``) over the export, in a
  run without tracemalloc, divided by the pixel count (includes allocator slack and the C heaps
  of zlib/PIL that tracemalloc does not see; noisier).

Baselines of the same run: the label map itself (1 B/px, which an export may hold once more) and
the ``png`` export (a banded encoder, the bounded reference). The output figures are deterministic
for ``traced``; ``rss`` varies by a few MB between runs.

End to end (``cli``, unless ``--no-cli``): the map is also saved as a ``.qgt`` (with its classes),
and ``qgn export big.qgt --format NAME --out DIR`` runs under ``/usr/bin/time -f %M``: its whole
peak resident memory (interpreter, imports, decoding the quadtree, the export) per pixel, against
``qgn export big.qgt --png OUT.png`` measured the same way (``QGN_MAX_PIXELS`` raised to let the
8192² padded quadtree in).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

ALL_FORMATS = ("png", "ids", "qgt", "levels", "cvat", "cityscapes", "camvid", "coco", "labelme")
NUM_CLASSES = 10
IGNORE = 255


def classes():
    from qgn.classes import ClassSet

    return ClassSet.generic(NUM_CLASSES, IGNORE)


def synthetic_label(height: int, width: int, seed: int = 0) -> np.ndarray:
    """(H, W) uint8: ten classes and void (255) in blobby regions (see the module docstring); made a
    band of rows at a time so that making it needs little beyond the map itself."""
    rng = np.random.default_rng(seed)
    cell = 64
    gh, gw = height // cell + 2, width // cell + 2
    fields = rng.random((NUM_CLASSES + 1, gh, gw)).astype(np.float32)
    gx = np.arange(width, dtype=np.float32) / cell
    x0 = gx.astype(np.int64)
    fx = (gx - x0)[None, None, :]
    label = np.empty((height, width), np.uint8)
    values = np.array(list(range(NUM_CLASSES)) + [IGNORE], np.uint8)
    band = 32
    for y in range(0, height, band):
        gy = np.arange(y, min(y + band, height), dtype=np.float32) / cell
        y0 = gy.astype(np.int64)
        fy = (gy - y0)[None, :, None]
        rows = fields[:, y0] * (1 - fy[..., :1]) + fields[:, y0 + 1] * fy[..., :1]  # (C, band, gw)
        smooth = rows[:, :, x0] * (1 - fx) + rows[:, :, x0 + 1] * fx
        label[y:y + band] = values[np.argmax(smooth, axis=0)]
    return label


def peak_rss() -> int:
    """This process's peak resident bytes: ``VmHWM`` of its own memory map. Not ``ru_maxrss``, which
    a child started by fork + exec inherits from its parent (the main process, which made the map)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux


def export(name: str, label: np.ndarray, out: Path) -> None:
    from qgn.formats import FORMATS, ExportItem

    FORMATS[name].export_items([ExportItem("big", label)], classes(), out)


def worker(name: str, label_path: str, traced: bool) -> None:
    label = np.load(label_path)
    import importlib

    for module in ("qgn.formats", "qgn.formats.coco", "qgn.formats.labelme", "qgn.formats.cityscapes"):
        importlib.import_module(module)  # imported before the measurement, so imports are not counted

    with tempfile.TemporaryDirectory() as tmp:
        before = peak_rss()
        if traced:
            tracemalloc.start()
        start = time.perf_counter()
        export(name, label, Path(tmp) / name)
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1] if traced else None
        if traced:
            tracemalloc.stop()
        written = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file())
    print(json.dumps({"format": name, "traced": peak, "rss": peak_rss() - before, "seconds": seconds,
                      "bytes_written": written}))


def run_worker(name: str, label_path: Path, traced: bool) -> dict:
    cmd = [sys.executable, __file__, "--worker", name, "--label", str(label_path)] + (["--traced"] if traced else [])
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if done.returncode != 0:
        raise RuntimeError(f"{name}: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_cli(name: str, qgt: Path, out: Path) -> tuple[int, float]:
    """(peak RSS bytes, seconds) of ``qgn export`` of ``qgt`` as ``name`` (``png``: ``--png``)."""
    qgn = Path(sys.executable).with_name("qgn")
    target = ["--png", str(out / "big.png")] if name == "png" else ["--format", name, "--out", str(out / name)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "QGN_MAX_PIXELS": "200000000"}
    start = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "%M", str(qgn), "export", str(qgt), *target], capture_output=True,
                          text=True, env=env)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{name}: {done.stderr.strip().splitlines()[-1:]}")
    return int(done.stderr.strip().splitlines()[-1]) * 1024, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="8000x8000", help="WxH of the synthetic map (default 8000x8000)")
    parser.add_argument("--formats", default=",".join(ALL_FORMATS))
    parser.add_argument("--no-cli", action="store_true", help="skip the end-to-end qgn export runs")
    parser.add_argument("--no-api", action="store_true", help="skip the in-process (tracemalloc) runs")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--label", help=argparse.SUPPRESS)
    parser.add_argument("--traced", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.label, args.traced)
        return
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        parser.error(f"--size {args.size!r}: give WIDTHxHEIGHT, e.g. 8000x8000")
    pixels = width * height
    with tempfile.TemporaryDirectory() as tmp:
        label_path = Path(tmp) / "label.npy"
        label = synthetic_label(height, width)
        counts = np.bincount(label.ravel(), minlength=256)
        np.save(label_path, label)
        qgt = Path(tmp) / "big.qgt"
        if not args.no_cli:
            from qgn.quadtree import Quadtree
            from qgn.quadtree.qgt import write_qgt

            write_qgt(qgt, Quadtree.from_label(label, NUM_CLASSES, IGNORE), classes())
        del label
        shares = ", ".join(f"{v}: {c / pixels:.0%}" for v, c in enumerate(counts) if c)
        print(f"synthetic label map {width}×{height} = {pixels / 1e6:.1f} MP, uint8 (1 B/px = {pixels / 1e6:.0f} MB); "
              f"value shares {shares}", flush=True)
        print(f"{'format':<11} {'traced B/px':>11} {'rss B/px':>9} {'traced MB':>10} {'rss MB':>8} {'s':>7} "
              f"{'written MB':>10} {'vs png':>7}")
        png = None  # the png row's traced bytes (png is measured first when listed)
        for name in [] if args.no_api else args.formats.split(","):
            try:
                traced = run_worker(name, label_path, True)["traced"]
                plain = run_worker(name, label_path, False)
            except RuntimeError as exc:
                print(f"{name:<11} failed: {exc}", flush=True)
                continue
            png = traced if name == "png" else png
            ratio = f"{traced / png:.1f}×" if png else "-"
            print(f"{name:<11} {traced / pixels:>11.2f} {plain['rss'] / pixels:>9.2f} {traced / 1e6:>10.0f} "
                  f"{plain['rss'] / 1e6:>8.0f} {plain['seconds']:>7.1f} {plain['bytes_written'] / 1e6:>10.1f} "
                  f"{ratio:>7}", flush=True)
        print("traced: tracemalloc peak during the export; rss: growth of peak RSS during it (separate run); "
              "the label map itself, loaded before, is 1 B/px")
        if args.no_cli:
            return
        print(f"\nend to end: qgn export big.qgt ({qgt.stat().st_size / 1e3:.0f} kB) --format NAME; peak RSS of "
              "the whole command")
        print(f"{'format':<11} {'rss B/px':>9} {'rss MB':>8} {'s':>7} {'vs png':>7}")
        png_rss = None
        for name in args.formats.split(","):
            try:
                rss, seconds = run_cli(name, qgt, Path(tmp) / "cli")
            except RuntimeError as exc:
                print(f"{name:<11} failed: {exc}", flush=True)
                continue
            png_rss = rss if name == "png" else png_rss
            ratio = f"{rss / png_rss:.1f}×" if png_rss else "-"
            print(f"{name:<11} {rss / pixels:>9.2f} {rss / 1e6:>8.0f} {seconds:>7.1f} {ratio:>7}", flush=True)


if __name__ == "__main__":
    main()
