"""Closing the app is prompt and loses nothing: the threads that write (saves, autosaves) finish
before the window is gone, the ones that only compute are not waited for when the process ends
with the window (``MainWindow.ends_process``, set by ``app.main``), and ``app.end_process`` ends it
without the interpreter's teardown (the app took ~1 s after its window closed, 2-3 s while a 24 MP
photo was being predicted)."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import pytest

from qgn_studio.testing import write_samples

WAIT_MS = 60_000
CHILD_PRELUDE = textwrap.dedent("""
    import sys
    from PySide6 import QtCore, QtWidgets
    from qgn_studio import app as studio

    def asked():
        \"\"\"Print READY once a question (a modal dialog) is open.\"\"\"
        if QtWidgets.QApplication.activeModalWidget() is None:
            QtCore.QTimer.singleShot(50, asked)
            return
        print("READY", flush=True)
""")  # the SIGTERM tests' child scripts start with this (``terminated``)


def test_closing_finishes_the_writers_but_not_a_prediction_when_the_process_ends(qtbot, window, tmp_path,
                                                                                 model_path, monkeypatch):
    """A save queued on the job thread is written before close() returns; a prediction under way
    (held here until released) is told to stop but not waited for."""
    from qgn_studio.engine import Engine

    started, release = threading.Event(), threading.Event()
    predict = Engine.predict

    def held_predict(self, *args, **kwargs):
        started.set()
        release.wait(20)
        return predict(self, *args, **kwargs)

    monkeypatch.setattr(Engine, "predict", held_predict)
    window.start(write_samples(tmp_path / "data", 1, (64, 96)), str(model_path))
    qtbot.waitUntil(started.is_set, timeout=WAIT_MS)
    saved = tmp_path / "saved.txt"

    def save():  # a save that takes a while, queued behind nothing
        time.sleep(0.3)
        saved.write_text("written")

    window.jobs.submit(save, None, None, "Saving")
    window.ends_process = True
    try:
        window.close()
        assert saved.read_text() == "written"  # the writer finished first
        assert window.threads_stopped and not window.jobs.isRunning()
        assert window.worker.isRunning()  # the prediction was not waited for
    finally:
        release.set()
        for thread in (window.worker, window.worker.measurer, window.thumbnails, window.canvas.painter,
                       window.annotator.image_tools.runner, window.carry.runner):
            thread.wait()


def test_a_window_in_a_process_that_goes_on_still_waits_for_every_thread(qtbot, window, tmp_path, model_path):
    """Embedded (tests, another app's window): closing waits for every thread, as before."""
    window.start(write_samples(tmp_path / "data", 1, (64, 96)), str(model_path))
    qtbot.waitUntil(lambda: window.current is not None and window.current.result is not None, timeout=WAIT_MS)
    assert not window.ends_process
    window.close()
    assert window.threads_stopped
    assert not any(t.isRunning() for t in (window.worker, window.worker.measurer, window.thumbnails,
                                           window.canvas.painter, window.jobs))


def test_end_process_runs_the_exit_handlers_and_leaves_a_computing_thread_behind(tmp_path):
    """``end_process(code)``: the exit handlers run (logging's, a temporary folder's clean-up) and
    buffered output is flushed, with a QThread still computing — which, deleted by PySide's own exit
    handler, would abort the process ("QThread: Destroyed while thread is still running")."""
    marker = tmp_path / "handler-ran"
    script = textwrap.dedent(f"""
        import atexit, sys, time
        from PySide6 import QtCore, QtWidgets
        from qgn_studio.app import end_process

        app = QtWidgets.QApplication([])

        class Busy(QtCore.QThread):
            def run(self):
                while True:
                    time.sleep(0.01)

        busy = Busy(app)
        busy.start()
        atexit.register(lambda: open({str(marker)!r}, "w").write("ran"))
        sys.stdout.write("buffered output")
        end_process(3)
        print("not reached")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"})
    assert done.returncode == 3, done.stderr
    assert done.stdout == "buffered output" and "Destroyed while thread" not in done.stderr
    assert marker.read_text() == "ran"


@pytest.mark.parametrize("when", ["stroke", "question"])
def test_sigterm_autosaves_the_edits_and_a_stroke_in_progress_then_closes(tmp_path, when):
    """A logout or ``kill`` (SIGTERM) lost the edits since the last autosave: the app now autosaves
    them — a stroke still under way included — waits for the writer and closes; the next start
    reopens the project and offers the autosave. ``question``: SIGTERM while the close's unsaved
    edits question is open: answered as Esc (Cancel: nothing discarded), then the app closes."""

    from qgn.data.synthetic import SYNTHETIC_CLASSES
    from qgn.project import Project
    from qgn.quadtree.label_io import read_label_file
    from qgn_studio.testing import make_dev_model

    image = write_samples(tmp_path / "data", 1, (64, 96))[0]
    model = make_dev_model(tmp_path / "model.safetensors")
    root = tmp_path / "project"
    Project.create(root, [image], SYNTHETIC_CLASSES, str(model))
    script = textwrap.dedent(f"""
        def window():
            return next((w for w in QtWidgets.QApplication.topLevelWidgets()
                         if type(w).__name__ == "MainWindow"), None)

        def ready(win):
            return win is not None and win.current is not None and win.current.annotation is not None

        def drive():
            win = window()
            if win is not None and win.current is not None and win.current.result is not None:
                win.annotator.set_mode(True)
            if not ready(win):
                QtCore.QTimer.singleShot(50, drive)
                return
            win.projects.timer.setInterval(10 ** 8)  # no timed autosave: only SIGTERM's
            tools = win.annotator.tools
            tools.set_level(0)
            tools.set_class(2)
            tools.press(10, 10)
            tools.move(40, 10)  # the button still down: a stroke in progress
            if {when!r} == "question":
                tools.release()
                QtCore.QTimer.singleShot(0, win.close)  # asks about the unsaved edits
                QtCore.QTimer.singleShot(0, asked)
                return
            print("READY", flush=True)

        QtCore.QTimer.singleShot(0, drive)
        sys.exit(studio.main(["--model", {str(model)!r}, {str(root)!r}]))
    """)
    terminated(script, tmp_path)
    project = Project.open(root)
    own = project.image_for(image)
    autosave = project.autosave_path(own)
    assert autosave.is_file(), "the edits were not autosaved"
    label = read_label_file(autosave, project.classes)
    assert label[10, 10] == 2 and label[10, 40] == 2  # the stroke's start and its end so far
    assert [i.path for i in project.recoverable()] == [own.path]  # offered at the next start


def test_sigterm_while_the_start_asks_about_autosaves_ends_the_app_and_keeps_them(tmp_path):
    """SIGTERM while the recovery question of the start is open (before the app's event loop runs):
    the question is answered as Esc (Later: the autosaves stay) and the app ends — it used to close
    the window and then wait forever in an event loop with no window."""
    import numpy as np

    from qgn.data.synthetic import SYNTHETIC_CLASSES
    from qgn.project import Project
    from qgn_studio.testing import make_dev_model

    image = write_samples(tmp_path / "data", 1, (64, 96))[0]
    model = make_dev_model(tmp_path / "model.safetensors")
    root = tmp_path / "project"
    project = Project.create(root, [image], SYNTHETIC_CLASSES, str(model))
    own = project.image_for(image)
    project.autosave(own, np.full((64, 96), 2, np.uint8))
    before = project.autosave_path(own).read_bytes()
    script = textwrap.dedent(f"""
        QtCore.QTimer.singleShot(0, asked)
        sys.exit(studio.main(["--model", {str(model)!r}, {str(root)!r}]))
    """)
    terminated(script, tmp_path)
    assert project.autosave_path(own).read_bytes() == before  # Later: kept as it was, offered again


def terminated(script: str, tmp_path) -> None:
    """Run the app ``script`` (after ``CHILD_PRELUDE``) in a child process (offscreen, settings and data under ``tmp_path``),
    send it SIGTERM once it prints READY, and check it ended cleanly (it hung once with a question
    open)."""
    import os
    import signal

    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
           "XDG_DATA_HOME": str(tmp_path / "share"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    child = subprocess.Popen([sys.executable, "-c", CHILD_PRELUDE + script], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = child.stdout.readline()
        assert line.strip() == "READY", child.stderr.read() if child.poll() is not None else line
        child.send_signal(signal.SIGTERM)
        child.wait(60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, child.stderr.read()


@pytest.mark.parametrize("when", ["compared", "running"])
def test_sigterm_sets_a_fine_tuned_model_aside_and_the_next_start_keeps_it(qtbot, window, tmp_path, when):
    """A logout or ``kill`` (SIGTERM) dropped a fine-tuned model neither kept nor reverted — and a
    running fine-tune with the steps it had done — unasked: the app now writes it into the scratch
    folder's ``finetuned/`` and the next start asks about it; Keep saves it where the panel's Keep
    would have and predicts with it. ``running``: SIGTERM during the fine-tune, after a step."""
    import hashlib
    import json
    import os

    from qgn.model.checkpoint import load_model
    from qgn_studio import unkept_models
    from qgn_studio.finetuner import default_model_path
    from qgn_studio.testing import make_dev_model

    from sample_files import digest

    images = write_samples(tmp_path / "data", 1, (64, 96))
    model = make_dev_model(tmp_path / "models" / "dev.safetensors", composite_bias=0.6)
    original = digest(model)
    weights = tmp_path / "tuned.txt"
    script = textwrap.dedent(f"""
        import hashlib

        import numpy as np

        def window():
            return next((w for w in QtWidgets.QApplication.topLevelWidgets()
                         if type(w).__name__ == "MainWindow"), None)

        def state_digest(model):
            sha = hashlib.sha256()
            for key, value in sorted(model.state_dict().items()):
                sha.update(key.encode() + value.detach().cpu().numpy().tobytes())
            return sha.hexdigest()

        def compared(state):
            win = window()
            open({str(weights)!r}, "w").write(state_digest(win.finetuner.result.model))
            print("READY", flush=True)

        def stepped():
            if window().finetuner.panel.progress.value() < 1:
                QtCore.QTimer.singleShot(20, stepped)
                return
            print("READY", flush=True)

        def drive():
            win = window()
            if win is None or win.current is None or win.current.result is None:
                QtCore.QTimer.singleShot(50, drive)
                return
            if win.current.annotation is None:
                win.annotator.set_mode(True)
                QtCore.QTimer.singleShot(50, drive)
                return
            if not np.array_equal(win.current.annotation.label, win.current.ground_truth):
                if not win.current.annotation.dirty:
                    win.annotator.start_from("truth")
                QtCore.QTimer.singleShot(50, drive)
                return
            panel = win.finetuner.panel
            if {when!r} == "compared":
                panel.iterations.setValue(2)
                win.finetuner.finished.connect(compared)
            else:
                panel.iterations.setValue(100_000)
                QtCore.QTimer.singleShot(0, stepped)
            win.finetuner.start(panel.iterations.value(), panel.lr.value())

        QtCore.QTimer.singleShot(0, drive)
        sys.exit(studio.main(["--model", {str(model)!r}, {str(images[0])!r}]))
    """)
    terminated(script, tmp_path)
    [unkept] = unkept_models.waiting(os.environ["QGN_STUDIO_SCRATCH"])
    tuned = load_model(unkept.path)
    finetune = json.loads(unkept.path.with_suffix(".json").read_text())["config"]["extra"]["finetune"]
    assert finetune["from"] == str(model) and finetune["iterations_done"] >= 1
    if when == "compared":
        assert "mIoU" in unkept.detail and finetune["iterations_done"] == 2
        sha = hashlib.sha256()
        for key, value in sorted(tuned.state_dict().items()):
            sha.update(key.encode() + value.detach().cpu().numpy().tobytes())
        assert sha.hexdigest() == weights.read_text()  # the very model the session had
    else:
        assert "stopped" in unkept.detail
    assert digest(model) == original

    asked = []
    window.finetuner.ask_set_aside = lambda detail, path: asked.append((detail, path)) or "keep"
    expected = default_model_path(model, model.parent)
    with qtbot.waitSignal(window.finetuner.kept, timeout=WAIT_MS) as kept:
        window.start([], str(model))
    assert asked == [(unkept.detail, expected)] and kept.args == [expected]
    assert digest(expected) == digest(unkept.path.parent / unkept_models.KEPT / unkept.path.name)
    assert unkept_models.waiting(unkept.path.parent.parent) == []  # asked once
    assert window.settings.value("model/path") == str(expected)
