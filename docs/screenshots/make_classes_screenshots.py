"""Screenshots of issue #14 (bundled synthetic samples and demo model only): the image list ordered by
uncertainty, the class editor after a rename and an added class, and the new-project class dialog.
Run from the repository root: PYTHONPATH=. .venv/bin/python docs/screenshots/make_classes_screenshots.py
(offscreen unless QT_QPA_PLATFORM says otherwise; it runs headless to its end, under Xvfb too)"""
import os
import tempfile
import time
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
tmp = tempfile.mkdtemp()
os.environ["QGN_STUDIO_SCRATCH"] = os.path.join(tmp, "scratch")
os.environ["QGN_STUDIO_SETTINGS"] = os.path.join(tmp, "s.ini")
from pathlib import Path
from PySide6 import QtCore
from qgn_studio.app import make_application
app = make_application()  # the app's own style and palette (a bare QApplication drew the light Qt style)
from qgn.resources import demo_model_path, samples_dir
from qgn_studio.class_dialog import ClassSetDialog
from qgn_studio.testing import answering_window
win = answering_window()  # its questions (recover, unsaved edits at close) answer themselves: never modal
win.resize(1600, 1000)
win.show()
def wait(cond, t=120):
    end = time.time() + t
    while not cond() and time.time() < end:
        app.processEvents(); time.sleep(0.02)
    return cond()
paths = sorted((samples_dir() / "images").glob("*.png"))
win.start(paths, str(demo_model_path()))
assert wait(lambda: win.current is not None and win.current.result is not None)
out = Path("docs/screenshots")
win.uncertainty_order.order()
assert wait(lambda: bool(win.uncertainty_order.scores))
wait(lambda: win.current.result is not None)
for _ in range(30): app.processEvents(); app.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete); time.sleep(0.05)
win.grab().save(str(out / "images-by-uncertainty.png"))
win.annotator.set_mode(True)
assert wait(lambda: win.current.annotation is not None)
win.annotator.rename_class(7, "barrier")
win.annotator.add_class("water")
win.annotator.panel.classes.selectRow(7)
for _ in range(30): app.processEvents(); app.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete); time.sleep(0.05)
win.grab().save(str(out / "class-editor.png"))
d = ClassSetDialog(win.annotator.classes, win)
d.source.setCurrentIndex([t for t, _ in d.sources].index("Palette: camvid"))
d.show()
for _ in range(10): app.processEvents(); time.sleep(0.05)
d.grab().save(str(out / "class-set-dialog.png"))
print("ok", [ (p.name, s) for p, s in win.uncertainty_order.scores.items()])
d.close()
win.close()
