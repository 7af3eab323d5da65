"""Screenshots of the tour steps 4-6: annotation, the image-aware tools, the fine-tune dock, the export dialog.

Run from the repository root: PYTHONPATH=. OMP_NUM_THREADS=2 .venv/bin/python docs/screenshots/make_part2_screenshots.py docs/screenshots
(offscreen unless QT_QPA_PLATFORM says otherwise; it runs headless to its end, under Xvfb too)
"""
import os
import shutil
import sys
import tempfile
from pathlib import Path
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots")
tmp = Path(tempfile.mkdtemp())
os.environ["QGN_STUDIO_SCRATCH"] = str(tmp / "scratch")
os.environ["QGN_STUDIO_SETTINGS"] = str(tmp / "settings.ini")  # not the user's settings
from PySide6 import QtCore
from qgn_studio.app import make_application
app = make_application()
from qgn.resources import samples_dir
from qgn_studio.testing import answering_window

def wait(cond, ms=120_000):
    timer = QtCore.QElapsedTimer(); timer.start()
    while not cond():
        app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)
        if timer.elapsed() > ms:
            raise TimeoutError
    for _ in range(5):
        app.processEvents()

# every question answers itself: closing asked, modal, whether to keep the fine-tuned model (the
# script hung there, after its last screenshot)
win = answering_window()
win.projects.ask_folder = lambda *a: tmp / "project"
win.resize(1600, 1000)
win.show()
images = sorted((samples_dir() / "images").glob("*.png"))
win.start(images[:3], None)
wait(lambda: win.current is not None and win.current.result is not None)
win.annotator.set_mode(True)
wait(lambda: win.current.annotation is not None)
t = win.annotator.tools
# correct a few things: a road strip at level 3, a pole at level 0, erase a patch at level 2
t.set_level(4); t.set_class(3); t.press(20, 20); t.move(100, 20); t.move(100, 50); t.release()
t.set_level(1); t.set_class(5); t.press(300, 100); t.move(304, 200); t.release()
t.set_level(3); t.set_class(4); t.press(40, 200); t.move(120, 230); t.release()
t.set_level(2); t.set_tool("erase"); t.press(330, 30); t.move(370, 60); t.release()
t.set_tool("paint"); t.set_level(3); t.set_class(4)
win.annotator._hover = (150.0, 150.0); win.annotator._refresh_cursor()
timer = QtCore.QElapsedTimer(); timer.start()
wait(lambda: timer.elapsed() > 500)
win.grab().save(str(out / "qgn-studio-annotate.png"))
win.set_layer_visible("changed", True)
win.canvas.zoom(1.6)
timer.restart()
wait(lambda: timer.elapsed() > 300)
win.grab().save(str(out / "qgn-studio-changed.png"))
win.set_layer_visible("changed", False)
win.canvas.fit()
# the image-aware tools (README) on the second sample scene, from an empty map: superpixels (coarse)
# on the sky, the wand (tolerance 48) on the grass, a snap-brush stroke (level 3) on the low building
win.step_image(1)
wait(lambda: win.current.annotation is not None)
win.annotator.start_from("empty")
win.jobs.wait_idle()
image_tools = win.annotator.image_tools
wait(lambda: win.current.path in image_tools.contexts and image_tools.contexts[win.current.path].over is not None)
image_tools.granularity = 0  # coarse
image_tools.tolerance = image_tools.tolerances.index(48)
t.set_tool("superpixel"); t.set_class(0); t.press(100, 40); t.release()
t.set_tool("wand"); t.set_class(1); t.press(100, 200); t.release()
t.set_tool("snap"); t.set_level(3); t.set_class(3)
t.press(134, 116); t.move(174, 116); t.move(174, 126); t.move(134, 126); t.move(134, 134); t.move(174, 134); t.release()
win.jobs.wait_idle()
timer.restart()
wait(lambda: timer.elapsed() > 500)
win.grab().save(str(out / "qgn-studio-image-tools.png"))
win.step_image(-1)  # the fine-tune below starts on the first scene
wait(lambda: win.current.annotation is not None)
t.set_tool("paint")
# fine-tune on two corrected images (started from their ground truth)
import numpy as np
win.annotator.start_from("truth")
wait(lambda: np.array_equal(win.current.annotation.label, win.current.ground_truth))
win.step_image(1)
wait(lambda: win.current.annotation is not None)
win.annotator.start_from("truth")
wait(lambda: np.array_equal(win.current.annotation.label, win.current.ground_truth))
win.annotator.set_mode(False)
win.show_finetune()
panel = win.finetuner.panel
panel.iterations.setValue(int(os.environ.get("SHOT_ITERATIONS", "60")))
done = []
win.finetuner.finished.connect(done.append)
panel.start.click()
wait(lambda: done, 600_000)
panel.plot.redraw()
wait(lambda: True)
win.grab().save(str(out / "qgn-studio-finetune.png"))
print("fine-tune:", done, panel.status.text())
# export dialog after an export
dialog = win.show_export()
dialog.folder.setText(str(tmp / "export"))
dialog.set_formats(["qgt", "png", "ids", "cvat", "cityscapes", "levels", "json"])
exported = []
dialog.exported.connect(exported.append)
dialog.export_button.click()
wait(lambda: exported)
dialog.grab().save(str(out / "qgn-studio-export.png"))
print("exported", len(exported[0]), "files")
dialog.close()
win.close()
shutil.rmtree(tmp, ignore_errors=True)
