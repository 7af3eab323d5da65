"""What a user does in QGN Studio, as steps the app's tests share: open images and wait for the
prediction, switch annotation mode on, paint with the tools, drag the mouse over the canvas.

The windows themselves come from the ``window`` / ``windows`` fixtures in ``tests/conftest.py``.
"""
from __future__ import annotations

import threading

from PySide6 import QtCore, QtGui, QtWidgets

WAIT_MS = 30_000  # a generous bound for a prediction on a loaded machine; a passing test never waits it out


def hold(monkeypatch, module, name: str) -> tuple[threading.Event, threading.Event]:
    """Replace ``module.name`` by a version that, once called, waits until ``release`` is set (at
    most ``WAIT_MS``) before doing its work: a long job caught under way. Returns (started, release)."""
    started, release = threading.Event(), threading.Event()
    real = getattr(module, name)

    def held(*args, **kwargs):
        started.set()
        release.wait(WAIT_MS / 1000)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, held)
    return started, release


def start_annotating(qtbot, win, paths, model_path):
    """Open ``paths`` with ``model_path``, wait for the prediction, switch annotation mode on; the
    current image's annotation session."""
    win.start(paths, str(model_path))
    qtbot.waitUntil(lambda: win.current is not None and win.current.result is not None, timeout=WAIT_MS)
    win.annotator.set_mode(True)
    qtbot.waitUntil(lambda: win.current.annotation is not None, timeout=WAIT_MS)
    return win.current.annotation


def painted_and_saved(qtbot, windows, paths, model_path, folder, class_id: int):
    """A window (``windows`` fixture) annotating ``paths`` into a new project at ``folder``, one stroke
    of ``class_id`` at level 2 painted on the first image and saved: (the window, that annotation)."""
    win = windows(folder=folder)
    session = start_annotating(qtbot, win, paths, model_path)
    paint(win, 2, class_id, [(10, 10), (50, 30)])
    with qtbot.waitSignal(win.projects.saved, timeout=WAIT_MS):
        assert win.projects.save()
    return win, session


def corrected_to_truth(qtbot, win):
    """The current image's annotation started over from its ground truth (one undoable edit, made on
    the job thread), waited for: an image "corrected" by its annotator."""
    session = win.current.annotation
    win.annotator.start_from("truth")
    win.jobs.wait_idle()
    qtbot.waitUntil(lambda: session.dirty, timeout=WAIT_MS)


def annotating(qtbot, win, model_path, paths):
    """``start_annotating`` under PC from the root (depth 0), with the whole image in view."""
    from qgn_studio.document import SchemeChoice

    win.explore.set_setting(SchemeChoice("pc", depth=0))
    session = start_annotating(qtbot, win, paths, model_path)
    win.canvas.fit()
    QtWidgets.QApplication.processEvents()
    return session


def paint(win, level, class_id, points):
    """One stroke of the paint tool at cell ``level`` with ``class_id`` through image ``points``."""
    tools = win.annotator.tools
    tools.set_level(level)
    tools.set_class(class_id)
    tools.press(*points[0])
    for p in points[1:]:
        tools.move(*p)
    tools.release()


def widget_point(win, x: float, y: float) -> QtCore.QPoint:
    """The viewport pixel showing image point (x, y)."""
    scene = win.canvas.view.mapViewToScene(QtCore.QPointF(x, y))
    return win.canvas.graphics.mapFromScene(scene)


def send_mouse(win, kind, x, y, buttons=QtCore.Qt.MouseButton.LeftButton,
               modifiers=QtCore.Qt.KeyboardModifier.NoModifier):
    """One mouse event of ``kind`` at image point (x, y), sent to the canvas's viewport."""
    viewport = win.canvas.graphics.viewport()
    pos = QtCore.QPointF(widget_point(win, x, y))
    button = QtCore.Qt.MouseButton.NoButton if kind == QtCore.QEvent.Type.MouseMove else QtCore.Qt.MouseButton.LeftButton
    held = QtCore.Qt.MouseButton.NoButton if kind == QtCore.QEvent.Type.MouseButtonRelease else buttons
    event = QtGui.QMouseEvent(kind, pos, viewport.mapToGlobal(pos), button, held, modifiers)
    QtWidgets.QApplication.sendEvent(viewport, event)


def drag(win, points, modifiers=QtCore.Qt.KeyboardModifier.NoModifier):
    """A left-button gesture through image points (press at the first, release at the last)."""
    send_mouse(win, QtCore.QEvent.Type.MouseButtonPress, *points[0], modifiers=modifiers)
    for x, y in points[1:]:
        send_mouse(win, QtCore.QEvent.Type.MouseMove, x, y, modifiers=modifiers)
    send_mouse(win, QtCore.QEvent.Type.MouseButtonRelease, *points[-1], modifiers=modifiers)


def wait_for_image(qtbot, win, path):
    """Wait until ``path`` is the current image and its prediction is on the canvas."""
    qtbot.waitUntil(lambda: win.current is not None and win.current.path == path.resolve()
                    and win.current.result is not None and win.canvas.result is win.current.result, timeout=WAIT_MS)


def crashed_with_autosave_cut_short(qtbot, windows, samples, model_path, folder) -> bytes:
    """A window annotates ``samples[0]`` in a new project at ``folder``, autosaves a stroke and
    crashes; its autosave is then cut short by 9 bytes (a full disk, a bad copy). The cut bytes."""
    from qgn.project import Project

    first = windows(folder=folder)
    start_annotating(qtbot, first, [samples[0]], model_path)
    assert first.projects.new_project()
    paint(first, 5, 4, [(40, 40)])
    with qtbot.waitSignal(first.projects.autosaved, timeout=WAIT_MS):
        pass
    first.jobs.wait_idle()
    windows.crash(first)
    project = Project.open(folder)
    path = project.autosave_path(project.images[0])
    broken = path.read_bytes()[:-9]
    path.write_bytes(broken)
    return broken


def status_on_annotating_the_unreadable(qtbot, win, paths, model_path) -> str:
    """Start ``win`` on ``paths`` (its first image's map cannot be used), switch annotation mode on,
    and give the last status-bar text that names that image."""
    statuses = []
    win.workspace.status.connect(lambda text, timeout: statuses.append(text))
    win.start(paths, str(model_path))
    qtbot.waitUntil(lambda: win.docs and win.docs[0].path in win.annotator.unreadable, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: win.current is not None and win.current.result is not None, timeout=WAIT_MS)
    win.jobs.wait_idle()
    statuses.clear()
    win.annotator.set_mode(True)
    said = [text for text in statuses if win.docs[0].name in text]
    assert said, statuses
    return said[-1]


def two_strokes_autosaved_in_the_stand_in(qtbot, windows, paths, model_path, folder):
    """A saved project whose project.json is then cut short, two strokes painted and autosaved into its
    stand-in (where a refused project's autosaves go): (window, session, the map of both strokes, the
    stand-in's folder, project.json's good bytes - write them back to fix the project)."""
    from qgn.project import Project
    from qgn_studio.scratch import stand_in_folder

    win, session = painted_and_saved(qtbot, windows, paths, model_path, folder, 5)
    good = (folder / "project.json").read_bytes()
    (folder / "project.json").write_bytes(good[: len(good) // 2])  # cut short: autosaves go to the stand-in
    paint(win, 2, 1, [(1, 1), (30, 1)])
    paint(win, 2, 2, [(1, 9), (30, 9)])
    both = session.label.copy()
    spare = stand_in_folder(win.projects.scratch_path, folder)
    win.projects.autosave_now()
    win.jobs.wait_idle()
    qtbot.waitUntil(lambda: (spare / "project.json").is_file() and bool(Project.open(spare).recoverable()),
                    timeout=WAIT_MS)
    return win, session, both, spare, good
