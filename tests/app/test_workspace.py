"""The Workspace: the app's state without widgets, and the signals the window and panels follow."""

from __future__ import annotations

import subprocess
import sys

import pytest
from PySide6 import QtCore

from qgn_studio.document import ImageDocument
from qgn_studio.workspace import Workspace


@pytest.fixture
def workspace(qapp, tmp_path):
    settings = QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.Format.IniFormat)
    return Workspace(settings)


def heard(signal) -> list:
    calls = []
    signal.connect(lambda *args: calls.append(args))
    return calls


def test_documents_and_current_are_announced(workspace, tmp_path):
    a, b = ImageDocument(tmp_path / "a.png"), ImageDocument(tmp_path / "b.png")
    lists, currents = heard(workspace.documents_changed), heard(workspace.current_changed)
    workspace.set_documents([a, b])
    workspace.set_current(b)
    assert lists == [([a, b],)] and currents == [(b,)]
    assert workspace.doc_for(tmp_path / "b.png") is b and workspace.doc_for(tmp_path / "c.png") is None
    workspace.set_documents([a])  # the current document left the list: nothing is current
    assert workspace.current is None and workspace.docs == [a]


def test_opening_again_keeps_each_document_and_appending_adds_only_new_ones(workspace, tmp_path):
    a, b, c = (tmp_path / n for n in ("a.png", "b.png", "c.png"))
    new, first = workspace.open_documents([a, b])
    assert [d.path for d in new] == [a, b] and first == 0
    doc_b = workspace.docs[1]
    doc_b.done = True  # what a document carries (annotation, undo log, result) stays with it
    new, first = workspace.open_documents([b, c])
    assert workspace.docs[0] is doc_b and [d.path for d in workspace.docs] == [b, c] and first == 0
    new, first = workspace.open_documents([c, a], append=True)
    assert [d.path for d in new] == [a] and first == 2 and [d.path for d in workspace.docs] == [b, c, a]
    workspace.close_documents([doc_b])
    assert [d.path for d in workspace.docs] == [c, a]


def test_requests_become_signals_for_the_window(workspace, tmp_path):
    doc = ImageDocument(tmp_path / "a.png")
    selected, status, banner = heard(workspace.select_requested), heard(workspace.status), heard(workspace.message)
    workspace.select(doc)
    workspace.warn("careful", "project", 7000)
    assert selected == [(doc,)] and workspace.current is None  # the list makes it current, not the request
    assert status == [("careful", 7000)] and banner == [("careful", "warning", "project")]


def test_model_classes_and_project_are_announced(workspace):
    from qgn.data.synthetic import SYNTHETIC_CLASSES

    models, classes, projects = (heard(workspace.model_changed), heard(workspace.classes_changed),
                                 heard(workspace.project_changed))
    info = object()
    workspace.set_model(info)
    workspace.set_classes(SYNTHETIC_CLASSES)
    workspace.set_project(None)
    assert workspace.model_info is info and models == [(info,)]
    assert workspace.classes is SYNTHETIC_CLASSES and classes == [(SYNTHETIC_CLASSES,)]
    assert projects == [(None,)]


def test_file_dialogs_start_where_the_user_last_opened_something(workspace, tmp_path):
    from qgn.resources import samples_dir

    (tmp_path / "photos").mkdir()
    workspace.remember_folder(tmp_path / "photos" / "a.png")
    assert workspace.last_folder() == str(tmp_path / "photos")
    workspace.remember_folder(samples_dir() / "images" / "x.png")  # the bundled samples are not "where I was"
    assert workspace.last_folder() == str(tmp_path / "photos")
    assert Workspace(None).last_folder()  # without settings: the current folder, nothing remembered


# the state layer of qgn_studio/__init__.py, and the controllers that need no panel of their own
WIDGET_FREE = ("workspace", "document", "annotation_doc", "discovery", "engine", "jobs", "recent", "class_keys",
               "image_filter", "shell", "project_controller", "head_controller", "uncertainty_order")


@pytest.mark.parametrize("module", WIDGET_FREE)
def test_the_state_layer_imports_no_widgets(module):
    code = (f"import sys, qgn_studio.{module}; "
            "print(sorted(m for m in sys.modules if m.endswith('QtWidgets') or m.split('.')[0] == 'pyqtgraph'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
