"""The app's export of a project whose image files are gone or loop (b.png deleted, c.png a link to
itself): the export job raised its first failure after writing the rest, so the dialog said "Export
failed: b: …" though a was exported, and c was never named. Now it says what was written and names
each image that failed, with why; with every image failed it says nothing was written (it said
"Wrote 0 files … — no saved annotations to export", "Export done: 0 files"), and a cancelled export
names the images that failed before the cancel too."""
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
    dialog.set_formats(["fiftyone"])  # (its data.json leads to each image: one not there fails)
    out = tmp_path / "out"
    dialog.folder.setText(str(out))
    dialog.export_button.click()
    qtbot.waitUntil(lambda: not dialog.running and dialog.log.text().strip() not in ("", "Saving, then exporting…"),
                    timeout=WAIT_MS)
    text = dialog.log.text()
    assert "Export failed" not in text and "Wrote" in text, text
    assert "2 of 3 images failed" in text, text
    assert "b.png is not there" in text and "c.png: is a loop of symbolic links" in text, text
    assert (out / "fiftyone" / "data.json").is_file()
    dialog._done(_exported([out / "x.png"], images=3, not_reached=1, failed=("b: failed: its image b.png is gone",)))
    text = dialog.log.text()  # cancelled after an image failed: both said
    assert "Export cancelled after 2 of 3 images" in text and "1 of 3 images failed:\nb: its image b.png is gone" in text


def _exported(paths, images, not_reached=0, failed=(), partly=()):
    from qgn.project_export import ExportedFiles

    exported = ExportedFiles(paths)
    exported.images, exported.not_reached, exported.failed, exported.partly = images, not_reached, failed, partly
    return exported


def test_export_end_lines_are_true_when_all_some_or_none_failed():
    from qgn_studio.export_dialog import failed_lines, status_line, written_line

    gone = tuple(f"{k}: failed: its image {k}.png is not there" for k in "abc")
    every = _exported([], 3, failed=gone)
    assert written_line(0, 0, "O", every) == "Wrote no files into O"
    assert failed_lines(every) == "\n3 of 3 images failed:\na: its image a.png is not there" + "".join(
        f"\n{k}: its image {k}.png is not there" for k in "bc")
    assert status_line(every, "O") == "Export into O wrote nothing; 3 images failed (the export dialog names them)"
    some = _exported(["O/qgt/a.qgt", "O/png/a.png"], 3, failed=gone[1:],
                     partly=("a: failed as fiftyone: its image a.png is not there",))
    assert written_line(2, 2, "O", some) == "Wrote 2 files into O (2 folders)"
    assert failed_lines(some).endswith("\n1 of 3 images were written in some formats only:"
                                       "\na: not as fiftyone: its image a.png is not there")
    assert status_line(some, "O") == ("Export done: 2 files into O; 2 images failed; 1 image written in some "
                                      "formats only (the export dialog names them)")
    none = _exported(["O/qgt/a.qgt"], 1)
    assert (written_line(1, 1, "O", none), failed_lines(none), status_line(none, "O")) == (
        "Wrote 1 file into O (1 folder)", "", "Export done: 1 file into O")
    assert written_line(0, 0, "O", _exported([], 2)) == "Wrote no files into O: no saved annotations to export"
