"""Benchmark: how long opening a project of many images holds QGN Studio's UI thread.

Setup: the main window (offscreen unless a display is set, no settings) with the bundled demo model
(an untrained tiny model when it is missing) already loaded; two projects over tiny PNG files in one
folder: a small one (--small images, the baseline) and a big one (--images). Neither has autosaves
or saved annotations; all images are on disk (the case of every day: nothing to recover, nothing
missing). The projects are written through ``qgn.project.Project`` (its image list set whole, then
saved), which any version of it does in linear time, so the same script measures an older commit.

One open = ``ProjectController.open_project(folder)`` as File ▸ Open project calls it, then the wait
until it is open: the project is the workspace's, the list holds every image, nothing is being read
and the job thread is idle (thumbnails and the first prediction follow off the UI thread). Per open:
``call`` = how long the call itself blocks the UI thread (perf_counter); ``gap`` = the longest the UI
thread did not turn its event loop from the call until the project is open (a 10-ms timer's worst
gap between ticks: no click, key or repaint is answered within it); ``total`` = the call until open.
The two projects are opened alternately --repeats times; medians are reported (and the worst open's
gap: the first open of each project also records the model in use into it, a write of project.json),
the big project's against the small one's (the same run, the same machine). The budget of an
interaction is 50 ms.

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
from qgn_studio.testing import bundled_or_dev_model

from bench_app_latency import TickGaps, wait, window_with_model  # beside this script: one home for both


def make_project(root: Path, images: Path, count: int, classes) -> Path:
    from qgn.project import Project, ProjectImage

    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), (90, 120, 40)).save(buffer, format="PNG")
    images.mkdir(parents=True)
    project = Project.create(root, [], classes)
    for i in range(count):
        path = images / f"img_{i:05d}.png"
        path.write_bytes(buffer.getvalue())
        project.images.append(ProjectImage(path.resolve(), path.stem))
    project.save()
    return root


def is_open(window, root: Path, count: int) -> bool:
    workspace = window.workspace
    return (workspace.project is not None and workspace.project.root == root.resolve() and len(workspace.docs) == count
            and not getattr(workspace, "opening", False) and not window.jobs.pending())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--small", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from qgn.bench.provenance import provenance

    record = provenance() if args.json else None  # the commit, torch, threads, machine, command: as the run starts

    make_application()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model, model_kind = bundled_or_dev_model(tmp)
        window = window_with_model(model)
        classes = window.workspace.classes or window.model_info.classes
        sizes = {"small": args.small, "big": args.images}
        roots = {name: make_project(tmp / f"{name}_project", tmp / f"{name}_images", n, classes)
                 for name, n in sizes.items()}
        runs: dict[str, dict[str, list[float]]] = {name: {"call": [], "gap": [], "total": []} for name in sizes}
        for _ in range(args.repeats):
            for name, root in roots.items():
                wait(lambda: not window.jobs.pending())
                ticks = TickGaps()
                start = time.perf_counter()
                window.projects.open_project(root)
                runs[name]["call"].append(time.perf_counter() - start)
                wait(lambda n=sizes[name], r=root: is_open(window, r, n))
                runs[name]["total"].append(time.perf_counter() - start)
                runs[name]["gap"].append(max(ticks.stop()["max_ms"], 1000 * runs[name]["call"][-1]) / 1000)
        window.close()
    med = {name: {k: statistics.median(v) for k, v in run.items()} for name, run in runs.items()}
    report = {
        "model": f"{model.name} ({model_kind})",
        "platform": QtWidgets.QApplication.platformName(),
        "cpus": os.cpu_count(),
        "threads": os.environ.get("OMP_NUM_THREADS", "default"),
        "images": sizes,
        "repeats": args.repeats,
        "call_blocks_ui_s": {name: round(m["call"], 3) for name, m in med.items()},
        "max_ui_gap_s": {name: round(m["gap"], 3) for name, m in med.items()},
        "max_ui_gap_worst_open_s": {name: round(max(run["gap"]), 3) for name, run in runs.items()},
        "total_s": {name: round(m["total"], 3) for name, m in med.items()},
        "big_vs_small_gap": round(med["big"]["gap"] / max(med["small"]["gap"], 1e-6), 1),
        "big_vs_small_total": round(med["big"]["total"] / max(med["small"]["total"], 1e-6), 1),
    }
    if args.json:
        report["provenance"] = record
        print(json.dumps(report, indent=1))
    else:
        print(f"model {report['model']}; Qt platform {report['platform']}; {report['cpus']} CPUs; "
              f"OMP threads {report['threads']}; median of {args.repeats} opens")
        for name, n in sizes.items():
            print(f"open a {n}-image project: the call blocks {med[name]['call']:.3f} s, longest UI-thread gap "
                  f"{med[name]['gap']:.3f} s (worst open {max(runs[name]['gap']):.3f} s), open after "
                  f"{med[name]['total']:.3f} s")
        print(f"big / small: gap {report['big_vs_small_gap']}×, total {report['big_vs_small_total']}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
