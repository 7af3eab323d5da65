"""Benchmark: how long the fine-tune panel's list of corrections holds QGN Studio's UI thread.

Setup: a project of --images tiny PNG files (``bench_open_project.make_project``), --annotated of
them with a saved annotation; the ``Finetuner`` (the fine-tune dock's controller) over it with a
real ``JobRunner`` and ``ProjectController.saved_annotations`` (no window, no model: only the list
is measured). One refresh = ``Finetuner.refresh()`` as opening the dock calls it, then the wait until
the panel shows the count. ``call`` = how long the call blocks the UI thread (perf_counter); ``gap``
= the longest the UI thread did not turn its event loop from the call until the panel shows it (a
10-ms timer's worst gap: no click, key or repaint is answered within it); ``total`` = the call until
shown. Medians of --repeats. Also ``export_intro``: ``Project.annotated()`` (the export dialog's
intro counts the annotated images with it on the UI thread), timed directly. Budget: 50 ms.

    .venv/bin/python benchmarks/bench_finetune_list.py [--images 20000] [--annotated 200] [--repeats 5]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

if not os.environ.get("DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np

from qgn.classes import ClassSet  # noqa: E402
from qgn_studio.app import make_application  # noqa: E402
from qgn_studio.finetuner import Finetuner  # noqa: E402
from qgn_studio.jobs import JobRunner  # noqa: E402
from qgn_studio.project_controller import ProjectController  # noqa: E402

from bench_app_latency import TickGaps, wait  # beside this script
from bench_open_project import make_project


def finetuner_over(project, jobs) -> Finetuner:
    projects = SimpleNamespace(project=project)
    projects.saved_annotations = lambda: ProjectController.saved_annotations(projects)
    workspace = SimpleNamespace(docs=[], classes=project.classes, settings=None)
    return Finetuner(workspace, None, projects, jobs, SimpleNamespace(model_path=None, unkept_model=None))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--annotated", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from qgn.bench.provenance import provenance

    record = provenance()  # the commit, torch, threads, machine, command: as the run starts
    app = make_application()
    from qgn.project import Project

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        classes = ClassSet.generic(3)
        root = make_project(tmp / "project", tmp / "images", args.images, classes)
        project = Project.open(root)
        for image in project.images[:: max(1, len(project.images) // max(1, args.annotated))][: args.annotated]:
            project.save_annotation(image, np.zeros((6, 8), np.uint8))
        jobs = JobRunner()
        finetuner = finetuner_over(project, jobs)
        expected = f"<b>{args.annotated}</b> corrected image"
        calls, gaps, totals = [], [], []
        for _ in range(args.repeats):
            finetuner.panel.corrections.setText("")
            ticks = TickGaps()
            wait(lambda: len(ticks.gaps) >= 3)  # the timer runs
            start = time.perf_counter()
            finetuner.refresh()
            calls.append(1000 * (time.perf_counter() - start))
            wait(lambda: expected in finetuner.panel.corrections.text(), 60)
            totals.append(1000 * (time.perf_counter() - start))
            ticked = len(ticks.gaps)
            wait(lambda: len(ticks.gaps) > ticked)  # the tick after: a gap spanning the end counts
            gaps.append(ticks.stop()["max_ms"])
        intro = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            assert len(project.annotated()) == args.annotated
            intro.append(1000 * (time.perf_counter() - start))
        jobs.stop()
    result = {"images": args.images, "annotated": args.annotated, "repeats": args.repeats,
              "call_ms": round(statistics.median(calls), 1), "gap_ms": round(statistics.median(gaps), 1),
              "total_ms": round(statistics.median(totals), 1), "export_intro_ms": round(statistics.median(intro), 1)}
    result["provenance"] = record
    print(json.dumps(result))
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())
