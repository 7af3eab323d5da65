"""The app's export of a project saved with class names no importer reads back (a tab in one, in
the project from before the class-name door): refused with the one line that names the class and
the way out (``qgn.formats.check_exportable_names``), no traceback, and nothing written."""
from __future__ import annotations

from PIL import Image

import qgn.classes
from qgn.classes import ClassSet
from studio_steps import WAIT_MS


def test_export_dialog_refuses_a_legacy_class_name_in_one_line(qtbot, window, model_path, tmp_path, monkeypatch):
    from qgn.project import Project

    image = tmp_path / "img.png"
    Image.new("RGB", (12, 8)).save(image)
    with monkeypatch.context() as before:  # the code before the door checked only repeats
        before.setattr(qgn.classes, "check_unique_names", lambda *args, **kw: None)
        Project.create(tmp_path / "proj", [image], ClassSet(("a\tb", "road"), (), 255))
    window.start([], str(model_path))
    assert window.projects.open_project(tmp_path / "proj")
    qtbot.waitUntil(lambda: len(window.docs) == 1, timeout=WAIT_MS)
    dialog = window.show_export()
    assert dialog is not None
    out = tmp_path / "out"
    dialog.set_formats(["coco", "labelme"])
    dialog.folder.setText(str(out))
    dialog.export_button.click()
    qtbot.waitUntil(lambda: not dialog.running and "Export failed" in dialog.log.text(), timeout=WAIT_MS)
    text = dialog.log.text()
    assert "the class 'a\\tb' holds a tab" in text and "rename it in the project first" in text, text
    assert "Traceback" not in text and "\n" not in text, text
    assert not out.exists() or not any(out.rglob("*"))
