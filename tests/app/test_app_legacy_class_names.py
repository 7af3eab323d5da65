"""A project saved with 'café' in NFC and 'café' in NFD (two classes before the importers' door
took them for one name) opens in the app, and one of the pair can be renamed there: the door's
rules are for the names that enter, not for a project's own (``qgn.classes.door_name_key``)."""
from __future__ import annotations

import numpy as np
from PIL import Image

from qgn.project import Project

from studio_steps import start_annotating
from test_app_class_concurrency import settle

NFC, NFD = "caf\u00e9", "cafe\u0301"


def test_a_project_with_an_nfc_and_an_nfd_name_opens_and_one_is_renamed(qtbot, window, samples, model_path, tmp_path,
                                                                          monkeypatch):
    import qgn.classes
    from dataclasses import replace

    start_annotating(qtbot, window, samples, model_path)
    names = (NFC, NFD) + window.annotator.classes.names[2:]
    with monkeypatch.context() as before:  # as the code before the door saved it
        before.setattr(qgn.classes, "check_unique_names", lambda *a, **k: None)
        before.setattr(qgn.classes, "check_class_names", lambda *a, **k: None)
        classes = replace(window.annotator.classes, names=names)
        project = Project.create(tmp_path / "P", [samples[1]], classes)
        with Image.open(samples[1]) as picture:
            label = np.zeros(picture.size[::-1], np.uint8)
        label[:, ::2] = 1
        project.save_annotation(project.images[0], label)
    assert window.projects.open_project(tmp_path / "P")
    settle(qtbot, window)
    assert window.annotator.classes.names == names
    window.annotator.rename_class(1, "cafe 2")
    settle(qtbot, window)
    assert window.annotator.classes.names[:2] == (NFC, "cafe 2")
    again = Project.open(tmp_path / "P")
    assert again.classes.names[:2] == (NFC, "cafe 2")
    np.testing.assert_array_equal(again.load_annotation(again.images[0]), label)
