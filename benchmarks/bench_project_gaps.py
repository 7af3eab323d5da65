"""Benchmark: the UI thread's longest gaps while QGN Studio opens a project of real-sized images and
counts its statistics.

Setup: the main window (offscreen unless a display is set, no settings, 1280×800) with the bundled
demo model (an untrained tiny model when it is missing) already loaded; a project of --images
synthetic scenes of --size, each with a saved annotation (``qgn samples`` then ``qgn import``: the
labels become the annotations), made once in a temporary folder (or ``--project DIR``, made there
when missing, reused when present).

Measured with the 10-ms timer of ``bench_app_latency.TickGaps`` (a stall of the UI thread shows as a
long gap between its ticks; the idle window's gaps for a second are the baseline of the same run):

- ``open``: ``ProjectController.open_project`` as File ▸ Open project calls it, until the project is
  open, its first image is shown with its prediction, and the job threads are idle; then 0.5 s more
  (the previews of the rows shown, the layers).
- ``statistics``: ``MainWindow.show_statistics`` (Project ▸ Statistics) until the dialog shows the
  counts, then 0.2 s more; the dialog is closed.

Each is repeated --repeats times (the project is opened anew each time: another small project is
opened between, so every open reads it again); the median, 99th percentile and worst gap per run,
and their medians over the runs, are reported. ``--stalls`` also prints, for every gap over
``--stall-ms``, the UI thread's and the other threads' Python stacks sampled during it (a watchdog
thread), to find the causes.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_project_gaps.py [--images 300] [--size 640x480]
        [--repeats 3] [--project DIR] [--stalls] [--json]
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

if not os.environ.get("DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6 import QtWidgets

from qgn_studio.app import make_application
from qgn_studio.testing import bundled_or_dev_model

from bench_app_latency import TickGaps, wait, window_with_model  # beside this script: one home for both


def make_project(folder: Path, count: int, size: str) -> Path:
    """``qgn samples`` + ``qgn import`` into ``folder/project`` (kept when it is there already)."""
    project = folder / "project"
    if (project / "project.json").is_file():
        return project
    folder.mkdir(parents=True, exist_ok=True)
    qgn = [sys.executable, "-m", "qgn"]
    subprocess.run([*qgn, "samples", str(folder / "samples"), "--count", str(count), "--size", size, "--force"],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run([*qgn, "import", str(folder / "samples"), "--project", str(project)],
                   check=True, stdout=subprocess.DEVNULL)
    return project


class CpuTicks(TickGaps):
    """``TickGaps`` that also notes the UI thread's own CPU time over each long gap (over 50 ms):
    near the gap, the UI thread was working; near zero, it waited (the interpreter lock, or a CPU
    taken by other threads and processes)."""

    def __init__(self):
        self.cpu_start = self.cpu_last = time.thread_time()
        self.long: list[tuple[float, float]] = []  # (gap, the UI thread's CPU time in it), ms
        super().__init__()

    def _tick(self) -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        if self.last is not None and now - self.last > 0.05:
            self.long.append((round(1000 * (now - self.last), 1), round(1000 * (cpu - self.cpu_last), 1)))
        self.cpu_last = cpu
        super()._tick()

    def stop(self) -> dict:
        return {**super().stop(), "over_50ms": sum(g > 50 for g in self.gaps),
                "ui_cpu_ms": round(1000 * (time.thread_time() - self.cpu_start), 1),
                "long_gaps_ms_and_ui_cpu_ms": self.long}


class StallSampler:
    """A watchdog thread: while the UI thread's last tick is older than ``threshold_ms``, samples
    every thread's Python stack each 5 ms; ``report()`` counts the UI thread's innermost frames and
    the other threads' (who held the interpreter lock meanwhile)."""

    def __init__(self, ticks: TickGaps, threshold_ms: float):
        self.ticks, self.threshold = ticks, threshold_ms / 1000
        self.main = threading.main_thread().ident
        self.ui: collections.Counter = collections.Counter()
        self.others: collections.Counter = collections.Counter()
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while self.running:
            time.sleep(0.005)
            last = self.ticks.last
            if last is None or time.perf_counter() - last < self.threshold:
                continue
            for ident, frame in sys._current_frames().items():
                if ident == threading.get_ident():
                    continue
                stack = traceback.extract_stack(frame)[-6:]
                text = " < ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(stack))
                (self.ui if ident == self.main else self.others)[text] += 1

    def stop(self) -> None:
        self.running = False
        self.thread.join()

    def report(self, title: str) -> None:
        print(f"--- stalls over {1000 * self.threshold:.0f} ms during {title} (5-ms samples)")
        for name, counter in (("UI thread", self.ui), ("other threads", self.others)):
            print(f"  {name}:")
            for text, n in counter.most_common(8):
                print(f"    {n:4d}  {text}")


class Slots:
    """``--slots``: every Python function Qt calls on the UI thread (a slot, an event handler, a
    paint) with its wall time, for the ones over ``ms``: what ran in a long gap (sys.setprofile on
    the UI thread; it slows Python a little)."""

    def __init__(self, ms: float):
        self.ms, self.entered, self.slow = ms / 1000, {}, []
        self.outer = sys._getframe(1)  # gaps(): Qt's calls come from wait() below it
        sys.setprofile(self._event)

    def _event(self, frame, event, _arg) -> None:
        if event not in ("call", "return") or frame.f_back is None or frame.f_back.f_code.co_name != "wait":
            return
        if event == "call":
            self.entered[frame] = time.perf_counter()
        elif frame in self.entered:
            took = time.perf_counter() - self.entered.pop(frame)
            if took > self.ms:
                code = frame.f_code
                self.slow.append(f"{1000 * took:6.1f} ms  {Path(code.co_filename).name}:{code.co_firstlineno} "
                                 f"{code.co_qualname}")

    def stop(self, title: str) -> None:
        sys.setprofile(None)
        print(f"--- UI-thread calls from Qt over {1000 * self.ms:.0f} ms during {title}, in order")
        for line in self.slow:
            print("  " + line)


SLOTS = None
PROFILE = None  # "--profile": a cProfile of the UI thread over each measure, printed by cumulative time


def gaps(window, action, done, settle_s: float, stalls: float | None, title: str) -> dict:
    ticks = CpuTicks()
    sampler = StallSampler(ticks, stalls) if stalls else None
    slots = Slots(SLOTS) if SLOTS else None
    profile = None
    if PROFILE:
        import cProfile

        profile = cProfile.Profile()
        profile.enable()
    action()
    wait(done)
    end = time.perf_counter() + settle_s
    wait(lambda: time.perf_counter() > end)
    result = ticks.stop()
    if slots:
        slots.stop(title)
    if profile:
        import pstats

        profile.disable()
        print(f"--- UI thread's profile during {title}")
        pstats.Stats(profile).sort_stats(PROFILE).print_stats(40)
    if sampler:
        sampler.stop()
        sampler.report(title)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--project", type=Path)
    parser.add_argument("--stalls", action="store_true")
    parser.add_argument("--stall-ms", type=float, default=40.0)
    parser.add_argument("--slots", type=float, metavar="MS")
    parser.add_argument("--profile", choices=("cumulative", "tottime"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from qgn.bench.provenance import provenance

    record = provenance() if args.json else None  # the commit, torch, threads, machine, command: as the run starts
    global PROFILE, SLOTS
    PROFILE, SLOTS = args.profile, args.slots

    make_application()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        project = make_project(args.project or tmp / "data", args.images, args.size)
        other = make_project(tmp / "other", 2, "64x48")
        model, model_kind = bundled_or_dev_model(tmp)
        window = window_with_model(model)
        idle = gaps(window, lambda: None, lambda: True, 1.0, None, "idle")
        stalls = args.stall_ms if args.stalls else None
        runs: dict[str, list[dict]] = {"open": [], "statistics": []}

        def is_open(root: Path) -> bool:
            ws = window.workspace
            return (ws.project is not None and ws.project.root == root.resolve() and not ws.opening
                    and window.canvas.result is not None and not window.jobs.pending()
                    and not window.batch_jobs.pending())

        for _ in range(args.repeats):
            window.projects.open_project(other)
            wait(lambda: is_open(other))
            runs["open"].append(gaps(window, lambda: window.projects.open_project(project),
                                     lambda: is_open(project), 0.5, stalls, "open"))
            dialogs = []
            runs["statistics"].append(gaps(window, lambda: dialogs.append(window.show_statistics()),
                                           lambda: dialogs[0].stats is not None, 0.2, stalls, "statistics"))
            dialogs[0].close()
        window.close()
    report = {
        "model": f"{model.name} ({model_kind})", "platform": QtWidgets.QApplication.platformName(),
        "cpus": os.cpu_count(), "threads": os.environ.get("OMP_NUM_THREADS", "default"),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "images": args.images, "size": args.size, "repeats": args.repeats, "idle": idle,
        **{name: {"runs": run, "median_of_max_ms": statistics.median(r["max_ms"] for r in run),
                  "median_over_50ms": statistics.median(r["over_50ms"] for r in run),
                  "median_ui_cpu_ms": statistics.median(r["ui_cpu_ms"] for r in run),
                  "median_of_p99_ms": statistics.median(r["p99_ms"] for r in run),
                  "worst_ms": max(r["max_ms"] for r in run)} for name, run in runs.items()},
    }
    if args.json:
        report["provenance"] = record
        print(json.dumps(report, indent=1))
    else:
        print(f"model {report['model']}; Qt {report['platform']}; {report['cpus']} CPUs; OMP threads "
              f"{report['threads']}; load {report['load_average']}; {args.images} images of {args.size}")
        print(f"idle window: median gap {idle['median_ms']} ms, max {idle['max_ms']} ms")
        for name in runs:
            r = report[name]
            print(f"{name}: max gap {r['median_of_max_ms']} ms (median of {args.repeats}; worst "
                  f"{r['worst_ms']} ms), p99 {r['median_of_p99_ms']} ms, gaps over 50 ms "
                  f"{r['median_over_50ms']}, UI-thread CPU {r['median_ui_cpu_ms']} ms; per run max "
                  f"{[x['max_ms'] for x in runs[name]]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
