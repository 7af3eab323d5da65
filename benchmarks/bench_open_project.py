"""Benchmark: how long opening a project of many images holds QGN Studio's UI thread.

Setup: the main window (offscreen unless a display is set, no settings) with the bundled demo model
(an untrained tiny model when it is missing) already loaded; two projects made with
``qgn.project.Project.create`` over tiny PNG files in one folder: a small one (--small images, the
baseline) and a big one (--images). Neither has autosaves or saved annotations; all images are on
disk (the case of every day: nothing to recover, nothing missing).

One open = ``ProjectController.open_project(folder)`` as File ▸ Open project calls it, timed with
perf_counter on the UI thread (the call blocks it: nothing else is drawn or answered meanwhile),
then the wait until the list holds every image and the job thread is idle (not timed: thumbnails
and the first prediction follow off the UI thread). The two projects are opened alternately
--repeats times; the medians are reported, with the big project's against the small one's (the
same run, the same machine) and per image. A 10-ms timer's worst gap over the whole run says the
same from the UI thread's side. The budget of an interaction is 50 ms; opening a project is a
deliberate act, but seconds of a frozen window are what this measures.

    .venv/bin/python benchmarks/bench_open_project.py [--images 5000] [--small 50] [--repeats 3] [--json]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

if not os.environ.get("DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PIL import Image
from PySide6 import QtWidgets

from qgn_studio.app import make_application
from qgn_studio.main_window import MainWindow
from qgn_studio.testing import bundled_or_dev_model

from bench_app_latency import TickGaps, wait  # beside this script: one home for both


def make_project(root: Path, images: Path, count: int, classes) -> Path:
    from qgn.project import Project

    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), (90, 120, 40)).save(buffer, format="PNG")
    images.mkdir(parents=True)
    paths = []
    for i in range(count):
        path = images / f"img_{i:05d}.png"
        path.write_bytes(buffer.getvalue())
        paths.append(path)
    Project.create(root, paths, classes)
    return root


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--small", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    make_application()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model, model_kind = bundled_or_dev_model(tmp)
        window = MainWindow(settings=None)
        window.resize(1280, 800)
        window.show()
        window.start([], str(model))
        wait(lambda: window.model_info is not None)
        classes = window.workspace.classes or window.model_info.classes
        sizes = {"small": args.small, "big": args.images}
        roots = {name: make_project(tmp / f"{name}_project", tmp / f"{name}_images", n, classes)
                 for name, n in sizes.items()}
        blocked: dict[str, list[float]] = {name: [] for name in sizes}
        ticks = TickGaps()
        for _ in range(args.repeats):
            for name, root in roots.items():
                start = time.perf_counter()
                window.projects.open_project(root)
                blocked[name].append(time.perf_counter() - start)
                wait(lambda n=sizes[name]: len(window.workspace.docs) == n and not window.jobs.pending())
        worst_gap_ms = ticks.stop()["max_ms"]
        window.close()
    med = {name: statistics.median(times) for name, times in blocked.items()}
    report = {
        "model": f"{model.name} ({model_kind})",
        "platform": QtWidgets.QApplication.platformName(),
        "cpus": os.cpu_count(),
        "threads": os.environ.get("OMP_NUM_THREADS", "default"),
        "images": sizes,
        "repeats": args.repeats,
        "open_blocks_ui_s": {name: round(m, 3) for name, m in med.items()},
        "big_vs_small": round(med["big"] / max(med["small"], 1e-6), 1),
        "ms_per_image_big": round(1000 * med["big"] / sizes["big"], 3),
        "worst_10ms_timer_gap_ms": worst_gap_ms,
    }
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(f"model {report['model']}; Qt platform {report['platform']}; {report['cpus']} CPUs; "
              f"OMP threads {report['threads']}; median of {args.repeats} opens")
        for name, n in sizes.items():
            print(f"open a {n}-image project: UI thread blocked {med[name]:.3f} s")
        print(f"big / small: {report['big_vs_small']}× ({report['ms_per_image_big']} ms per image); "
              f"worst 10-ms timer gap {worst_gap_ms} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
