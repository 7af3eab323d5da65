"""The Workspace: the app's state without widgets, and the signals the window and panels follow."""

from __future__ import annotations

import subprocess
import sys

import pytest
from PySide6 import QtCore

from qgn_studio.document import ImageDocument
from qgn_studio.workspace import Workspace


@pytest.fixture
def ws(qapp, tmp_path):
    settings = QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.Format.IniFormat)
    return Workspace(settings)


def heard(signal) -> list:
    calls = []
    signal.connect(lambda *args: calls.append(args))
    return calls


def test_documents_and_current_are_announced(ws, tmp_path):
    a, b = ImageDocument(tmp_path / "a.png"), ImageDocument(tmp_path / "b.png")
    lists, currents = heard(ws.documents_changed), heard(ws.current_changed)
    ws.set_documents([a, b])
    ws.set_current(b)
    assert lists == [([a, b],)] and currents == [(b,)]
    assert ws.doc_for(tmp_path / "b.png") is b and ws.doc_for(tmp_path / "c.png") is None
    ws.set_documents([a])  # the current document left the list: nothing is current
    assert ws.current is None and ws.docs == [a]


def test_opening_again_keeps_each_document_and_appending_adds_only_new_ones(ws, tmp_path):
    a, b, c = (tmp_path / n for n in ("a.png", "b.png", "c.png"))
    new, first = ws.open_documents([a, b])
    assert [d.path for d in new] == [a, b] and first == 0
    doc_b = ws.docs[1]
    doc_b.done = True  # what a document carries (annotation, undo log, result) stays with it
    new, first = ws.open_documents([b, c])
    assert ws.docs[0] is doc_b and [d.path for d in ws.docs] == [b, c] and first == 0
    new, first = ws.open_documents([c, a], append=True)
    assert [d.path for d in new] == [a] and first == 2 and [d.path for d in ws.docs] == [b, c, a]
    ws.close_documents([doc_b])
    assert [d.path for d in ws.docs] == [c, a]


def test_requests_become_signals_for_the_window(ws, tmp_path):
    doc = ImageDocument(tmp_path / "a.png")
    selected, status, banner = heard(ws.select_requested), heard(ws.status), heard(ws.message)
    ws.select(doc)
    ws.warn("careful", "project", 7000)
    assert selected == [(doc,)] and ws.current is None  # the list makes it current, not the request
    assert status == [("careful", 7000)] and banner == [("careful", "warning", "project")]


def test_model_classes_and_project_are_announced(ws):
    from qgn.data.synthetic import SYNTHETIC_CLASSES

    models, classes, projects = (heard(ws.model_changed), heard(ws.classes_changed),
                                 heard(ws.project_changed))
    info = object()
    ws.set_model(info)
    ws.set_classes(SYNTHETIC_CLASSES)
    ws.set_project(None)
    assert ws.model_info is info and models == [(info,)]
    assert ws.classes is SYNTHETIC_CLASSES and classes == [(SYNTHETIC_CLASSES,)]
    assert projects == [(None,)]


def test_file_dialogs_start_where_the_user_last_opened_something(ws, tmp_path):
    from qgn.resources import samples_dir

    (tmp_path / "photos").mkdir()
    ws.remember_folder(tmp_path / "photos" / "a.png")
    assert ws.last_folder() == str(tmp_path / "photos")
    ws.remember_folder(samples_dir() / "images" / "x.png")  # the bundled samples are not "where I was"
    assert ws.last_folder() == str(tmp_path / "photos")
    assert Workspace(None).last_folder()  # without settings: the current folder, nothing remembered


# the state layer of qgn_studio/__init__.py, and the controllers that need no panel of their own
WIDGET_FREE = ("workspace", "document", "annotation_doc", "discovery", "engine", "jobs", "recent", "class_keys",
               "image_filter", "shell", "project_controller", "project_autosave", "project_marks",
               "project_class_changes", "project_watch", "head_controller", "uncertainty_order")


@pytest.mark.parametrize("module", WIDGET_FREE)
def test_the_state_layer_imports_no_widgets(module):
    code = (f"import sys, qgn_studio.{module}; "
            "print(sorted(m for m in sys.modules if m.endswith('QtWidgets') or m.split('.')[0] == 'pyqtgraph'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_settings_that_cannot_be_written_are_said_once(qapp, tmp_path, capsys):
    """A settings file that cannot be written (its folder is a file: as a read-only or full disk,
    which root's tests cannot make) is said once - banner, status line and stderr, naming the
    file - when the app writes its settings, not again on each later write."""
    (tmp_path / "not a folder").write_text("a file where the settings folder should be")
    path = tmp_path / "not a folder" / "settings.ini"
    ws = Workspace(QtCore.QSettings(str(path), QtCore.QSettings.Format.IniFormat))
    messages, statuses = heard(ws.message), heard(ws.status)
    (tmp_path / "photos").mkdir()
    ws.remember_folder(tmp_path / "photos" / "a.png")
    ws.remember_recent(tmp_path / "photos")
    assert len(messages) == 1 and len(statuses) == 1
    assert str(path) in statuses[0][0] and "not saved" in statuses[0][0]
    assert capsys.readouterr().err.count(str(path)) == 1
    assert not ws.sync_settings()  # later writes: still failing, nothing said again
    assert len(messages) == 1 and len(statuses) == 1 and not capsys.readouterr().err


def test_settings_that_are_written_say_nothing(ws, tmp_path, capsys):
    messages = heard(ws.message)
    ws.remember_folder(tmp_path / "a.png")
    assert ws.sync_settings() and not messages and not capsys.readouterr().err
    reread = QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.Format.IniFormat)
    assert reread.value("files/last_folder") == str(tmp_path)
