"""Screenshots of issue #22 (bundled synthetic samples and demo model only): the window on a
1280×720 laptop screen while annotating, and the project statistics after a filter.

Run from the repository root:
QT_QPA_PLATFORM=offscreen .venv/bin/python docs/screenshots/make_workday_screenshots.py docs/screenshots
"""
import json
import os
import sys
import tempfile
import time
from pathlib import Path

tmp = Path(tempfile.mkdtemp())
screen = tmp / "screen.json"
screen.write_text(json.dumps({"screens": [{"name": "laptop", "x": 0, "y": 0, "width": 1280, "height": 720,
                                           "logicalDpi": 96, "logicalBaseDpi": 96}]}))
os.environ["QT_QPA_PLATFORM"] = f"offscreen:configfile={screen}"
os.environ["QGN_STUDIO_SCRATCH"] = str(tmp / "scratch")
os.environ["QGN_STUDIO_SETTINGS"] = str(tmp / "settings.ini")
from qgn_studio.app import make_application

app = make_application()
from qgn.resources import demo_model_path, samples_dir
from qgn_studio.main_window import MainWindow, make_settings

out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots")


def wait(cond, seconds=120):
    end = time.time() + seconds
    while not cond() and time.time() < end:
        app.processEvents()
        time.sleep(0.02)
    for _ in range(5):
        app.processEvents()
    return cond()


win = MainWindow(settings=make_settings())
win.projects.ask_recover = lambda names: "later"
win.projects.ask_unsaved = lambda count, what: "discard"
win.projects.ask_classes = lambda current: current
win.show()
paths = sorted((samples_dir() / "images").glob("*.png"))
win.start(paths, str(demo_model_path()))
assert wait(lambda: win.current is not None and win.current.result is not None)
win.annotator.set_mode(True)
assert wait(lambda: win.current.annotation is not None)
tools = win.annotator.tools
tools.set_level(3)
tools.set_class(3)
tools.press(40, 200)
tools.move(160, 230)
tools.release()
tools.set_radius(1)
assert win.projects.new_project(tmp / "project")
win.projects.save()
win.jobs.wait_idle()
win.annotator.set_done(True)
win.step_image(1)
assert wait(lambda: win.current.annotation is not None)
tools.set_class(4)
tools.press(30, 40)
tools.move(120, 60)
tools.release()
win.annotator._hover = (150.0, 150.0)
win.annotator._refresh_cursor()
wait(lambda: False, 0.5)
win.statusBar().clearMessage()  # (it names the temporary project folder)
win.grab().save(str(out / "qgn-studio-laptop.png"))
win.projects.save()
win.jobs.wait_idle()
win.images.set_filter("not_done")
dialog = win.show_statistics()
assert wait(lambda: dialog.stats is not None)
dialog.resize(460, 380)
wait(lambda: False, 0.3)
dialog.grab().save(str(out / "project-statistics.png"))
dialog.close()
win.close()
print("wrote", out / "qgn-studio-laptop.png", out / "project-statistics.png")
