"""No test sees the user's own files (issue #24): the autouse isolation in ``conftest.py`` points
HOME, the XDG folders, Qt's standard paths, the app's settings, its scratch/autosave folder and the
CLI's log folder into a temporary folder.

The proof is the hang the issue reproduced: a crashed autosave where the app keeps it for a real
user made a window ask "Restore unsaved annotations?" in a modal dialog that no test answers. Here
a fake home stands for the real one (the suite never writes into the user's home): planted there,
the autosave is offered to a window run as that user (the control), and never reaches a test of a
suite started with that home — neither a window that asks its questions for real nor the issue's
``test_help_and_about_describe_the_app``.
"""
from __future__ import annotations

import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from PySide6 import QtCore, QtWidgets

from qgn.project import Project

REPO = Path(__file__).resolve().parents[1]
WAIT_MS = 30_000
# What a user's shell does not set: the app then derives every location from HOME.
REDIRECTING = ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME",
               "QGN_STUDIO_SETTINGS", "QGN_STUDIO_SCRATCH", "QGN_LOG_DIR")
PROBE = "tests/test_isolation.py::test_a_window_that_asks_for_real_meets_no_question"
ISSUE_TEST = "tests/app/test_app_studio.py::test_help_and_about_describe_the_app"


class ModalWatch:
    """Records the title of every modal dialog and dismisses it (an unanswered one would block)."""

    def __init__(self):
        self.seen: list[str] = []
        self.timer = QtCore.QTimer()
        self.timer.timeout.connect(self._check)
        self.timer.start(20)

    def _check(self) -> None:
        dialog = QtWidgets.QApplication.activeModalWidget()
        if dialog is not None:
            self.seen.append(dialog.windowTitle())
            dialog.reject() if isinstance(dialog, QtWidgets.QDialog) else dialog.close()


@pytest.fixture
def modals():
    from qgn_studio.app import make_application

    make_application()
    watch = ModalWatch()
    yield watch
    watch.timer.stop()


@contextmanager
def as_the_user(monkeypatch, home: Path):
    """This process as a user whose home is ``home``: none of the suite's redirections, Qt's
    standard paths out of test mode."""
    for name in REDIRECTING:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    QtCore.QStandardPaths.setTestModeEnabled(False)
    try:
        yield
    finally:
        QtCore.QStandardPaths.setTestModeEnabled(True)


def users_scratch(monkeypatch, home: Path) -> Path:
    """Where the app keeps autosaves without a project for a user whose home is ``home``."""
    from qgn_studio.app import make_application
    from qgn_studio.project_controller import scratch_root

    make_application()  # the organisation and app names are part of the path
    with monkeypatch.context() as user, as_the_user(user, home):
        return scratch_root(with_settings=True)


def plant_crashed_autosave(scratch: Path, image: Path) -> Path:
    """The scratch project of a session that crashed with unsaved edits of ``image``."""
    from qgn.data.synthetic import SYNTHETIC_CLASSES

    project = Project.create(scratch, [image], SYNTHETIC_CLASSES)
    width, height = Image.open(image).size
    project.autosave(project.images[0], np.ones((height, width), np.uint8))
    assert project.recoverable()
    return scratch


def open_plain_window(qtbot, model_path, paths):
    """A MainWindow with the app's own settings and real questions, started on ``paths``."""
    from qgn_studio.main_window import MainWindow, make_settings

    win = MainWindow(settings=make_settings())
    qtbot.addWidget(win)
    win.show()
    win.start(paths, str(model_path))
    qtbot.waitUntil(lambda: win.model_info is not None, timeout=WAIT_MS)
    return win


def test_every_per_user_location_points_into_the_tests_folder(user_state):
    from qgn.cli.main import log_folder
    from qgn_studio.main_window import make_settings
    from qgn_studio.project_controller import scratch_root

    assert Path.home() == user_state / "home"
    assert scratch_root(with_settings=True) == user_state / "scratch"
    assert Path(make_settings().fileName()) == user_state / "settings.ini"
    assert log_folder() == user_state / "logs"
    assert QtCore.QStandardPaths.isTestModeEnabled()
    data = QtCore.QStandardPaths.writableLocation(QtCore.QStandardPaths.StandardLocation.AppDataLocation)
    assert Path(data).is_relative_to(user_state)


def test_without_isolation_the_planted_autosave_is_offered(qtbot, monkeypatch, tmp_path, modals, model_path,
                                                            samples):
    home = tmp_path / "home"
    scratch = plant_crashed_autosave(users_scratch(monkeypatch, home), samples[0])
    assert scratch.is_relative_to(home)
    with as_the_user(monkeypatch, home):
        win = open_plain_window(qtbot, model_path, [samples[1]])
        win.close()
    assert modals.seen == ["Restore unsaved annotations?"]  # without the watch: a test blocked until killed


def test_a_window_that_asks_for_real_meets_no_question(qtbot, modals, model_path, samples):
    from qgn_studio.dialogs import ShortcutsDialog, about_html

    win = open_plain_window(qtbot, model_path, [samples[0]])
    dialog = ShortcutsDialog(win.shortcut_rows)
    qtbot.addWidget(dialog)
    assert "Space" in " ".join(k for _s, k, _t in dialog.rows)
    assert "sky" in about_html(win.model_info, win.model_info.device)
    win.close()
    assert modals.seen == []


def test_a_crashed_autosave_in_the_real_data_folder_never_reaches_a_test(monkeypatch, tmp_path, real_environ,
                                                                        snapshot, samples):
    home = tmp_path / "home"
    scratch = plant_crashed_autosave(users_scratch(monkeypatch, home), samples[0])
    before = snapshot(home)
    env = {k: v for k, v in real_environ.items() if k not in REDIRECTING}
    env.update(HOME=str(home), QT_QPA_PLATFORM="offscreen", OMP_NUM_THREADS="1")
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", PROBE, ISSUE_TEST],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and "2 passed" in run.stdout, run.stdout[-3000:] + run.stderr[-3000:]
    assert snapshot(home) == before  # the user's autosave is neither restored, discarded nor touched
    assert Project.open(scratch).recoverable()  # and still there to be offered to the user


def test_a_progress_line_left_drawn_by_a_command(capsys):
    """The first half of a pair (the next test): a command's progress line drawn and not ended, as
    ``qgn train`` leaves its line (it ends it with a plain newline)."""
    from qgn.cli.progress_line import ProgressLine

    ProgressLine(20).show("training 1/2")
    assert capsys.readouterr().err.startswith("\r")


def test_a_progress_line_of_an_earlier_test_is_not_blanked_into_the_next(capsys):
    """The next test's command starts on no line of an earlier test: blanking the drawn line (what
    ``qgn eval`` and a failure do first) writes nothing, so its one-line error starts its stderr."""
    from qgn.cli.progress_line import end_drawn_line

    end_drawn_line()
    assert capsys.readouterr().err == ""
