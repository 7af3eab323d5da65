"""The app's export of a project whose image files are gone or loop (b.png deleted, c.png a link to
itself): the export job raised its first failure after writing the rest, so the dialog said "Export
failed: b: …" though a was exported, and c was never named. Now it says what was written and names
each image that failed, with why."""
from __future__ import annotations

import numpy as np
from PIL import Image

from qgn.classes import ClassSet
from studio_steps import WAIT_MS


def test_export_dialog_names_each_image_that_failed(qtbot, window, model_path, tmp_path):
    from qgn.project import Project

    paths = []
    for name in ("a", "b", "c"):
        Image.new("RGB", (12, 8), (10, 20, 30)).save(tmp_path / f"{name}.png")
        paths.append(tmp_path / f"{name}.png")
    project = Project.create(tmp_path / "proj", paths, ClassSet(("road", "sky"), (), 255))
    for image in project.images:
        project.save_annotation(image, np.ones((8, 12), np.uint8))
    window.start([], str(model_path))
    assert window.projects.open_project(tmp_path / "proj")
    qtbot.waitUntil(lambda: len(window.docs) == 3, timeout=WAIT_MS)
    paths[1].unlink()
    paths[2].unlink()
    paths[2].symlink_to("c.png")
    dialog = window.show_export()
    assert dialog is not None
    dialog.set_formats(["coco"])
    out = tmp_path / "out"
    dialog.folder.setText(str(out))
    dialog.export_button.click()
    qtbot.waitUntil(lambda: not dialog.running and dialog.log.text().strip() not in ("", "Saving, then exporting…"),
                    timeout=WAIT_MS)
    text = dialog.log.text()
    assert "Export failed" not in text and "Wrote" in text, text
    assert "2 of 3 images failed" in text, text
    assert "b.png is not there" in text and "c.png: is a loop of symbolic links" in text, text
    assert (out / "coco" / "annotations" / "instances_default.json").is_file()
