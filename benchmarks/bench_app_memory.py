"""Benchmark: QGN Studio's memory while paging through a large folder of images.

Setup: a temporary folder of N images with ground truth (``images/`` + ``labels/``, 480×360 like a
CamVid frame). Only ``--distinct`` scenes are generated (synthetic, with their label maps); the
other files are hard links to them, so a 5,000-image folder costs the disk of a few dozen, while
the app still sees N separate files, documents and decodes. The main window (offscreen unless a
display is set) with the bundled demo model opens the folder and steps to the next image N-1
times, each time waiting until the image is decoded and shown, and its prediction too unless
``--no-predict`` (then predictions are cancelled by the next step, as when a user pages fast).

Reported: the process's resident set size (RSS, /proc/self/statm) before the first image and
every ``--every`` images, and the growth per image visited over the last half of the run (a
bounded app: ~0 bytes per image). Sizes, counts and the model are printed with the numbers.

    .venv/bin/python benchmarks/bench_app_memory.py [--images 5000] [--every 250] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

if not os.environ.get("DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PIL import Image
from PySide6 import QtCore, QtWidgets

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qgn_studio.app import make_application
from qgn_studio.main_window import MainWindow
from qgn_studio.testing import bundled_or_dev_model


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def wait(condition, timeout_s: float = 120.0) -> None:
    deadline = time.perf_counter() + timeout_s
    while not condition():
        if time.perf_counter() > deadline:
            raise TimeoutError("the app did not answer in time")
        QtWidgets.QApplication.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 5)
        time.sleep(0.001)


def make_folder(root: Path, count: int, distinct: int, size: tuple[int, int]) -> Path:
    from qgn.data.synthetic import make_scene

    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for i in range(count):
        name = f"frame{i:05d}.png"
        if i < distinct:
            image, label = make_scene(i, *size)
            Image.fromarray(image).save(root / "images" / name)
            Image.fromarray(label).save(root / "labels" / name)
        else:
            source = f"frame{i % distinct:05d}.png"
            os.link(root / "images" / source, root / "images" / name)
            os.link(root / "labels" / source, root / "labels" / name)
    return root / "images"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--distinct", type=int, default=50)
    parser.add_argument("--every", type=int, default=250)
    parser.add_argument("--no-predict", action="store_true", help="step without waiting for predictions")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from qgn.bench.provenance import provenance

    record = provenance() if args.json else None  # the commit, torch, threads, machine, command: as the run starts
    size = (360, 480)
    make_application()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folder = make_folder(tmp / "data", args.images, min(args.distinct, args.images), size)
        model, model_kind = bundled_or_dev_model(tmp)
        window = MainWindow(settings=None)
        window.resize(1280, 800)
        window.show()
        window.start([folder], str(model))
        wait(lambda: len(window.docs) == args.images and window.current is not None and window.current.loaded)
        wait(lambda: window.model_info is not None)
        samples = [(1, rss_bytes())]
        started = time.perf_counter()
        for i in range(1, args.images):
            window.step_image(1)
            doc = window.docs[i]
            if args.no_predict:
                wait(lambda doc=doc: doc.loaded)
            else:
                wait(lambda doc=doc: doc.loaded and window.canvas.result is not None
                     and window.canvas.result.path == doc.path)
            if (i + 1) % args.every == 0 or i + 1 == args.images:
                samples.append((i + 1, rss_bytes()))
                if not args.json:
                    print(f"{i + 1:>6} images visited: RSS {samples[-1][1] / 2**20:7.1f} MiB "
                          f"({time.perf_counter() - started:.0f} s)", flush=True)
        window.close()
    half = [s for s in samples if s[0] >= args.images // 2]
    growth = (half[-1][1] - half[0][1]) / max(1, half[-1][0] - half[0][0])
    report = {"images": args.images, "distinct_scenes": min(args.distinct, args.images),
              "size": f"{size[1]}x{size[0]}", "model": f"{model.name} ({model_kind})",
              "predict": not args.no_predict, "platform": QtWidgets.QApplication.platformName(),
              "rss_mib": [[n, round(b / 2**20, 1)] for n, b in samples],
              "growth_bytes_per_image_last_half": round(growth)}
    if args.json:
        report["provenance"] = record
        print(json.dumps(report, indent=1))
    else:
        print(f"{report['images']} images ({report['size']}, {report['distinct_scenes']} distinct scenes, hard links), "
              f"{report['model']}, predictions {'awaited' if report['predict'] else 'not awaited'}; "
              f"RSS growth over the last half: {growth / 1024:.1f} KiB per image")
    return 0


if __name__ == "__main__":
    sys.exit(main())
