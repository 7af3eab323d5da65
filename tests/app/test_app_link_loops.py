"""A symbolic link loop is a bad path like any other (the command line, a drop, File → Open, a model
file): said in the banner, never an exception that abandons what else was opened."""
from __future__ import annotations

import os

import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from sample_files import write_photo
from studio_steps import WAIT_MS

SAMPLE_COUNT = 1


def link_loop(folder, name):
    """``folder/name`` → ``folder/loop-NAME`` → ``folder/name``."""
    a, b = folder / name, folder / f"loop-{name}"
    os.symlink(b, a)
    os.symlink(a, b)
    return a


def drop(win, paths) -> None:
    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(str(p)) for p in paths])
    event = QtGui.QDropEvent(QtCore.QPointF(100, 100), QtCore.Qt.DropAction.CopyAction, mime,
                             QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier)
    win.dropEvent(event)  # the window's handler (sendEvent needs a real drag in progress)


def test_a_loop_is_a_problem_not_an_error(tmp_path):
    from qgn_studio.discovery import expand_paths, resolved
    from qgn_studio.recent import is_inside

    photo = write_photo(tmp_path / "photo.png")
    loop, model = link_loop(tmp_path, "a.png"), link_loop(tmp_path, "m.safetensors")
    images, models, problems = expand_paths([loop, photo, model])
    assert images == [photo.resolve()] and models == []
    assert problems == [f"{loop} is a symbolic link loop", f"{model} is a symbolic link loop"]
    assert resolved(loop) == loop and resolved(tmp_path / "photo.png") == photo.resolve()
    assert is_inside(loop, tmp_path) and not is_inside(loop, tmp_path / "elsewhere")


def test_starting_on_a_loop_opens_the_rest(qtbot, window, model_path, samples, tmp_path):
    loop = link_loop(tmp_path, "a.png")
    window.start([str(loop), str(samples[0])], str(model_path))  # qgn-studio a.png scene.png
    qtbot.waitUntil(lambda: window.current is not None and window.current.result is not None, timeout=WAIT_MS)
    assert [d.path for d in window.docs] == [samples[0].resolve()]
    assert f"{loop} is a symbolic link loop" in window.canvas.banner.messages["open"][0]


@pytest.mark.parametrize("how", ["drop", "open dialog"])
def test_a_loop_among_opened_files_leaves_the_good_ones_opening(qtbot, window, model_path, samples, tmp_path,
                                                                 monkeypatch, how):
    other = write_photo(tmp_path / "other.png")
    loop = link_loop(tmp_path, "a.png")
    window.start([str(samples[0])], str(model_path))
    qtbot.waitUntil(lambda: window.current is not None, timeout=WAIT_MS)
    if how == "drop":
        drop(window, [loop, other])
    else:
        monkeypatch.setattr(QtWidgets.QFileDialog, "getOpenFileNames",
                            staticmethod(lambda *a, **k: ([str(loop), str(other)], "")))
        window.open_images_dialog()
    assert "other.png" in [d.name for d in window.docs]
    assert "is a symbolic link loop" in window.canvas.banner.messages["open"][0]


def test_a_loop_named_as_a_model_with_a_project_open(qtbot, windows, model_path, samples, tmp_path):
    from qgn.data.synthetic import SYNTHETIC_CLASSES
    from qgn.project import Project

    root = tmp_path / "project"
    Project.create(root, samples, SYNTHETIC_CLASSES, str(model_path))
    loop = link_loop(tmp_path, "m.safetensors")
    win = windows(folder=root)
    win.start([str(root)], str(model_path))
    qtbot.waitUntil(lambda: win.projects.project is not None and win.model_info is not None, timeout=WAIT_MS)
    with qtbot.waitSignal(win.worker.model_failed, timeout=WAIT_MS):
        win.load_model(loop)  # File → Open model…
    assert win.model_info.path == model_path.resolve()  # the model in use stays
    drop(win, [loop])  # a drop reports it before any loading
    assert f"{loop} is a symbolic link loop" in win.canvas.banner.messages["open"][0]

