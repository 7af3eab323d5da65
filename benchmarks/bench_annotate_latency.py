"""Latency of annotation interactions on a 2048x1024 image (offscreen, UI thread), in ms.

Run from the repository root: OMP_NUM_THREADS=1 QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_annotate_latency.py
"""
import os
import statistics
import tempfile
import time

import numpy as np

from qgn.annotation import Annotation
from qgn.data.synthetic import SYNTHETIC_CLASSES, make_scene
from qgn_studio.annotation_doc import LivePyramid
from qgn_studio.app import make_application
from qgn_studio.document import ImageDocument
from qgn_studio.main_window import MainWindow
from qgn_studio.tools.commands import undo_bytes

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["QGN_STUDIO_SCRATCH"] = tempfile.mkdtemp()  # keep autosaves out of the user's scratch project
app = make_application()

H, W = 1024, 2048
image, label = make_scene(7, H, W)
win = MainWindow(settings=None)
win.projects.ask_unsaved = lambda *a: "discard"
win.resize(1600, 1000)
win.show()
doc = ImageDocument("/tmp/big.png")
doc.image = image
win.docs = [doc]
win.current = doc
win.annotator.set_classes(SYNTHETIC_CLASSES)
win.canvas.set_classes(SYNTHETIC_CLASSES)
win.canvas.show_document(doc)
win.annotator.show_document(doc)
win.annotator.set_mode(True)
job, ui = [], []
for _ in range(5):
    win.annotator.forget([doc])
    app.processEvents()
    t0 = time.perf_counter()
    annotation = Annotation.from_prediction(label, SYNTHETIC_CLASSES)
    pyramid = LivePyramid(annotation.label, 8, 255)
    t1 = time.perf_counter()
    session = win.annotator._install(doc, annotation, pyramid, source="prediction")
    session.set_reference(label)
    win.canvas.refresh_layers(force=("changed",))
    app.processEvents()
    job.append(1000 * (t1 - t0))
    ui.append(1000 * (time.perf_counter() - t1))
print(f"start a session, 5 runs: job thread (map check + quadtree) min {min(job):.1f} ms; UI thread (install + "
      f"full render of the layers + repaint) min {min(ui):.1f}, median {statistics.median(ui):.1f} ms")
win.set_layer_visible("changed", True)
app.processEvents()
tools = win.annotator.tools
rng = np.random.default_rng(0)

def timed(fn):
    t = time.perf_counter()
    fn()
    app.processEvents()
    return 1000 * (time.perf_counter() - t)

for level in (0, 2, 3, 5):
    tools.set_level(level)
    tools.set_class(int(rng.integers(8)))
    x, y = 100.0, 100.0
    steps = []
    steps.append(timed(lambda: tools.press(x, y)))
    for i in range(60):
        nx, ny = x + rng.uniform(-40, 40), y + rng.uniform(-40, 40)
        nx, ny = min(max(nx, 0), W - 1), min(max(ny, 0), H - 1)
        steps.append(timed(lambda nx=nx, ny=ny: tools.move(nx, ny)))
        x, y = nx, ny
    rel = timed(tools.release)
    print(f"paint level {level}: move step median {statistics.median(steps):.2f} ms, max {max(steps):.2f} ms; "
          f"release (one undo step) {rel:.2f} ms")
tools.set_tool("fill")
tools.set_class(2)
print(f"fill (region of {int((session.label == session.label[10, 10]).sum()):,} px): "
      f"{timed(lambda: tools.press(10, 10)):.1f} ms")
print(f"undo fill: {timed(session.undo.undo):.1f} ms; redo: {timed(session.undo.redo):.1f} ms")
over_job, over_ui, back = [], [], []
for _ in range(5):
    t = time.perf_counter()
    win.annotator.start_from('empty')
    win.jobs.wait_idle()
    over_job.append(1000 * (time.perf_counter() - t))
    over_ui.append(timed(lambda: None))  # the job's callback: push the edit, render
    back.append(timed(session.undo.undo))
print(f"start over from empty (one undoable edit of 2.1 M px), 5 runs: job thread min {min(over_job):.1f} ms; "
      f"UI thread min {min(over_ui):.1f}, median {statistics.median(over_ui):.1f} ms; "
      f"its undo: min {min(back):.1f}, median {statistics.median(back):.1f} ms")
print(f"changed summary: {timed(win.annotator._update_summary):.1f} ms")
print(f"autosave copy on the UI thread: {timed(lambda: session.label.copy()):.2f} ms")
print(f"undo log: {session.undo.count()} steps, {undo_bytes(session.undo)/1e6:.2f} MB (map {session.label.nbytes/1e6:.2f} MB)")
win.canvas.fit()
app.processEvents()
print(f"full repaint of the window at fit zoom: {timed(lambda: win.grab()):.1f} ms")
win.canvas.zoom(8)
app.processEvents()
print(f"full repaint zoomed in 8x: {timed(lambda: win.grab()):.1f} ms")
win.close()
