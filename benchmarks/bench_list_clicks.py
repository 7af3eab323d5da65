"""Benchmark: how long list and dialog clicks hold QGN Studio's UI thread on a project of many images.

Setup: the main window (1280x800
offscreen unless $DISPLAY is set: Xvfb + openbox for the real
paint) with the bundled demo model (an untrained tiny one when missing) and a project of N tiny
48x32 PNGs, every third marked done, opened and settled. Each interaction is done REPS times:
clicking a row of the Images list, PageDown / PageUp, Ctrl+D (Mark done), the list's filter box
between All / Done / Not done / With unsaved edits / Annotated (and back), typing in the Name
filter, File > Project statistics, Export, Import, Find missing images and the class dialog.
Per interaction: ``call`` = how long the call blocks the UI thread, ``max-gap`` = the longest gap
of a 10-ms UI-thread timer from the call until 400 ms after it (what follows on the event loop:
a write's result delivered, a relayout)
medians, and each run's gap. The budget is 50 ms.
Environment: N (5000), REPS (5), ONLY (comma-separated names), PROFILE (a name: cProfile it).

    PYTHONPATH=. OMP_NUM_THREADS=1 DISPLAY=:86 .venv/bin/python benchmarks/bench_list_clicks.py
"""
import cProfile
import io
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
if not os.environ.get("DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from PIL import Image
from PySide6 import QtCore, QtWidgets, QtTest
from qgn_studio.app import make_application
from qgn_studio.testing import bundled_or_dev_model
from bench_app_latency import TickGaps, wait, window_with_model
from bench_open_project import is_open

N = int(os.environ.get("N", "5000"))
REPS = int(os.environ.get("REPS", "5"))
ONLY = os.environ.get("ONLY", "")
PROFILE = os.environ.get("PROFILE", "")

def make_project(root, images, count, classes):
    from qgn.project import Project, ProjectImage
    buf = io.BytesIO()
    Image.new("RGB", (48, 32), (90, 120, 40)).save(buf, format="PNG")
    images.mkdir(parents=True)
    project = Project.create(root, [], classes)
    for i in range(count):
        p = images / f"img_{i:05d}.png"
        p.write_bytes(buf.getvalue())
        project.images.append(ProjectImage(p.resolve(), p.stem, done=(i % 3 == 0)))
    project.save()
    return root

def settle(window, ms=400):
    end = time.perf_counter() + ms / 1000
    while time.perf_counter() < end or window.jobs.pending():
        QtWidgets.QApplication.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 5)
        time.sleep(0.001)

def measure(window, name, act, undo=None, after=400, before=None):
    if ONLY and name not in ONLY.split(","):
        return
    calls, gaps = [], []
    prof = cProfile.Profile() if PROFILE == name else None
    for _ in range(REPS):
        if before:
            before()
        settle(window, 200)
        ticks = TickGaps()
        t = time.perf_counter()
        if prof:
            prof.enable()
        r = act()
        calls.append(1000 * (time.perf_counter() - t))
        settle(window, after)
        if prof:
            prof.disable()
        gaps.append(max(ticks.stop()["max_ms"], calls[-1]))
        if undo:
            undo(r)
    print(f"{name:28s} call median {statistics.median(calls):7.1f} ms  max-gap median {statistics.median(gaps):7.1f} ms  "
          f"(gaps {', '.join(f'{g:.0f}' for g in gaps)})", flush=True)
    if prof:
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("cumulative").print_stats(40)
        print(s.getvalue())

def close_dialog(d):
    if d is not None:
        d.close()

app = make_application()
with tempfile.TemporaryDirectory() as tmp:
    tmp = Path(tmp)
    model, kind = bundled_or_dev_model(tmp)
    window = window_with_model(model)
    classes = window.workspace.classes or window.model_info.classes
    root = make_project(tmp / "proj", tmp / "imgs", N, classes)
    window.projects.open_project(root)
    wait(lambda: is_open(window, root, N))
    settle(window, 1500)
    print(f"open, {N} images; platform {QtWidgets.QApplication.platformName()}; reps {REPS}", flush=True)
    lst = window.images.list
    rows = window.images.rows
    k = [10]
    def click_row():
        k[0] += 7
        rect = lst.visualRect(rows.index(k[0] % 12))
        QtTest.QTest.mouseClick(lst.viewport(), QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier, rect.center())
    measure(window, "click image in list", click_row)
    def key(seq):
        return lambda: QtTest.QTest.keyClick(window, *seq)
    measure(window, "PageDown (next image)", key((QtCore.Qt.Key.Key_PageDown,)))
    measure(window, "PageUp (previous image)", key((QtCore.Qt.Key.Key_PageUp,)))
    measure(window, "Ctrl+D (mark done)", lambda: window.annotator.done_action.trigger())
    combo = window.images.filter
    for a, b in (("all", "done"), ("done", "not_done"), ("not_done", "all"), ("all", "unsaved"), ("unsaved", "all"),
                 ("all", "annotated"), ("annotated", "all")):
        measure(window, f"filter {a}->{b}", lambda b=b: combo.setCurrentIndex(combo.findData(b)),
                undo=lambda _r, a=a: (combo.setCurrentIndex(combo.findData(a)), settle(window, 300)),
                before=lambda a=a: (combo.setCurrentIndex(combo.findData(a)), settle(window, 300)))
    nf = window.images.name_filter
    def type_name():
        nf.setFocus()
        QtTest.QTest.keyClick(nf, QtCore.Qt.Key.Key_1)
    measure(window, "type in name filter", type_name, undo=lambda _r: (nf.clear(), settle(window, 300)))
    measure(window, "Statistics dialog", window.show_statistics, undo=close_dialog, after=1500)
    measure(window, "Export dialog", window.show_export, undo=close_dialog, after=1000)
    measure(window, "Import dialog", window.show_import, undo=close_dialog, after=1000)
    measure(window, "Find missing images", window.show_relink, undo=close_dialog, after=1500)
    from qgn_studio.class_dialog import ClassSetDialog
    def class_dialog():
        d = ClassSetDialog(window.workspace.classes, window)
        d.show()
        return d
    measure(window, "class dialog", class_dialog, undo=close_dialog)
    window.close()
