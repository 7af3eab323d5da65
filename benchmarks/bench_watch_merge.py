"""Benchmark: how long the project watch's look at another writer's change holds QGN Studio's UI thread.

Setup: the main window (offscreen unless a display is set) with the bundled demo model (an untrained
tiny one when missing) and a project of --images tiny PNG files open (``bench_open_project.make_project``);
its watch timer stopped, so that each look is the one timed here. Per repeat: another process
(``python -c``) marks one image done in project.json (a write of another writer), then one watch tick
(``ProjectController.check_project_on_disk``) is called as the timer calls it, and the app is run until
the job thread is idle and the change is shown; then one look-up by path on the UI thread
(``Project.image_for``, as a prediction's arrival, ``carry_controller``, makes). Reported, medians:
``call`` = how long the tick's call blocks the UI thread; ``gap`` = the longest a 10-ms timer on the UI
thread waited from the call until the change is shown (the call included); ``lookup`` = the look-up after.

    .venv/bin/python benchmarks/bench_watch_merge.py [--images 100000] [--repeats 3]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if not os.environ.get("DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6 import QtWidgets

from qgn_studio.app import make_application
from qgn_studio.testing import bundled_or_dev_model

from bench_app_latency import TickGaps, wait, window_with_model  # beside this script
from bench_open_project import is_open, make_project

MARK = ("import sys; from qgn.project import Project; p = Project.open(sys.argv[1]); "
        "p.set_done(p.images[int(sys.argv[2])], True)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    make_application()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model, _ = bundled_or_dev_model(tmp)
        window = window_with_model(model)
        classes = window.workspace.classes or window.model_info.classes
        root = make_project(tmp / "project", tmp / "images", args.images, classes)
        window.projects.open_project(root)
        wait(lambda: is_open(window, root, args.images))
        window.projects.watch.stop()
        calls, gaps, lookups = [], [], []
        for i in range(args.repeats):
            wait(lambda: not window.jobs.pending())
            # the callbacks of the jobs done delivered (posted before a job counts as done): a look of the
            # watch in flight when it was stopped must come back first, or this tick is skipped (it waits
            # for the look to come back: the next tick looks), and with the watch stopped none would come
            QtWidgets.QApplication.processEvents()
            subprocess.run([sys.executable, "-c", MARK, str(root), str(10 + i)], check=True)
            doc = window.docs[10 + i]
            ticks = TickGaps()
            start = time.perf_counter()
            window.projects.check_project_on_disk()
            calls.append(time.perf_counter() - start)
            wait(lambda d=doc: d.done and not window.jobs.pending())
            gaps.append(max(ticks.stop()["max_ms"] / 1000, calls[-1]))
            start = time.perf_counter()
            window.projects.project.image_for(window.docs[-1].path)
            lookups.append(time.perf_counter() - start)
        window.close()
    print(f"{args.images} images, median of {args.repeats}: the watch tick's call blocks "
          f"{statistics.median(calls):.3f} s, longest UI-thread gap {statistics.median(gaps):.3f} s, "
          f"a look-up by path after it {statistics.median(lookups):.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
