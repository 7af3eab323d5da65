"""File → Import dataset… (issue #15): the dialog previews what it detected, imports on the job
thread, and the result is the same project ``qgn import`` makes."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PySide6 import QtWidgets

from qgn.classes import ClassSet
from qgn.formats import ExportItem, export_dataset
from qgn.quadtree.label_io import read_classes_file, read_label, read_label_file

SAMPLES = Path(__file__).resolve().parents[2] / "resources" / "samples"
WAIT_MS = 30_000


@pytest.fixture
def jobs(qtbot):
    from qgn_studio.jobs import JobRunner

    runner = JobRunner()
    yield runner
    runner.stop()


def test_import_dialog_previews_then_imports(qtbot, tmp_path, jobs):
    from qgn_studio.import_dialog import ImportDialog

    classes = read_classes_file(SAMPLES / "classes.txt")
    images = sorted((SAMPLES / "images").glob("*"))[:2]
    labels = {im.stem: read_label(SAMPLES / "labels" / f"{im.stem}.png") for im in images}
    export_dataset([ExportItem(im.stem, labels[im.stem], im) for im in images], classes, tmp_path / "out", ["cvat"])
    dialog = ImportDialog(jobs)
    qtbot.addWidget(dialog)
    assert not dialog.import_button.isEnabled()
    dialog.set_source(tmp_path / "out" / "cvat", images=SAMPLES / "images")
    qtbot.waitUntil(lambda: dialog.dataset is not None, timeout=WAIT_MS)
    text = dialog.preview.text()
    assert "cvat: CVAT/Pascal-VOC segmentation export, 2 masks" in text and "images found for 2" in text
    assert "A new project gets the classes the files name: " + classes.names[0] in text
    dialog.target.setText(str(tmp_path / "p"))
    assert dialog.import_button.isEnabled()
    with qtbot.waitSignal(dialog.imported, timeout=WAIT_MS) as done:
        dialog.import_button.click()
    report = done.args[0]
    assert report.created and sorted(report.imported) == sorted(labels) and not report.skipped
    for image in report.project.images:
        np.testing.assert_array_equal(report.project.load_annotation(image), labels[image.path.stem])
    assert "Imported 2 of 2" in dialog.log.text()


def test_import_dialog_says_what_is_wrong(qtbot, tmp_path, jobs):
    from qgn_studio.import_dialog import ImportDialog

    (tmp_path / "empty").mkdir()
    dialog = ImportDialog(jobs, None)
    qtbot.addWidget(dialog)
    dialog.set_source(tmp_path / "empty")
    qtbot.waitUntil(lambda: "found no dataset" in dialog.preview.text(), timeout=WAIT_MS)
    assert dialog.dataset is None and not dialog.import_button.isEnabled()
    # Labels that match none of the open project's classes are shown in red before importing.
    project = type("P", (), {"classes": ClassSet(("road",), (), 255), "root": tmp_path / "p"})()
    classes = read_classes_file(SAMPLES / "classes.txt")
    image = sorted((SAMPLES / "images").glob("*"))[0]
    export_dataset([ExportItem(image.stem, read_label(SAMPLES / "labels" / f"{image.stem}.png"), image)], classes,
                   tmp_path / "out", ["coco"])
    dialog = ImportDialog(jobs, project)
    qtbot.addWidget(dialog)
    dialog.set_source(tmp_path / "out" / "coco")
    qtbot.waitUntil(lambda: dialog.dataset is not None, timeout=WAIT_MS)
    assert "→ no class" in dialog.preview.text() and "--map" in dialog.preview.text()
    # Into another folder, the labels become a new project's classes: no label is "no class" there
    # (the preview matched them to the open project whatever Into project said).
    dialog.target.setText(str(tmp_path / "elsewhere"))
    assert "→ no class" not in dialog.preview.text() and "--map" not in dialog.preview.text()
    assert "A new project gets the classes the files name: " + classes.names[0] in dialog.preview.text()
    dialog.target.setText(str(tmp_path / "p"))
    assert "→ no class" in dialog.preview.text()


def test_import_dialog_previews_a_fiftyone_dataset(qtbot, tmp_path, jobs):
    """A FiftyOne ImageSegmentationDirectory: the classes its mask targets name, images by data.json."""
    from qgn_studio.import_dialog import ImportDialog

    classes = read_classes_file(SAMPLES / "classes.txt")
    images = sorted((SAMPLES / "images").glob("*"))[:3]
    labels = {im.stem: read_label(SAMPLES / "labels" / f"{im.stem}.png") for im in images}
    export_dataset([ExportItem(im.stem, labels[im.stem], im) for im in images], classes, tmp_path / "out",
                   ["fiftyone"], images="copy")
    dialog = ImportDialog(jobs)
    qtbot.addWidget(dialog)
    dialog.set_source(tmp_path / "out" / "fiftyone")
    qtbot.waitUntil(lambda: dialog.dataset is not None, timeout=WAIT_MS)
    text = dialog.preview.text()
    assert "fiftyone: an ImageSegmentationDirectory of 3 masks, classes from mask_targets.json" in text
    assert "images found for 3" in text and "A new project gets the classes the files name: sky" in text
    dialog.target.setText(str(tmp_path / "p"))
    with qtbot.waitSignal(dialog.imported, timeout=WAIT_MS) as done:
        dialog.import_button.click()
    report = done.args[0]
    assert report.project.classes == classes and sorted(report.imported) == sorted(labels)
    for image in report.project.images:
        np.testing.assert_array_equal(report.project.load_annotation(image), labels[image.path.stem])


def test_import_dialog_says_the_time_left(qtbot, tmp_path, jobs, monkeypatch):
    """Each item's line in the dialog ends with the batch's time left (none on the last)."""
    import qgn.progress
    from qgn_studio.import_dialog import ImportDialog

    monkeypatch.setattr(qgn.progress, "SHOW_AFTER_S", 0.0)
    classes = read_classes_file(SAMPLES / "classes.txt")
    images = sorted((SAMPLES / "images").glob("*"))[:3]
    export_dataset([ExportItem(im.stem, read_label(SAMPLES / "labels" / f"{im.stem}.png"), im) for im in images],
                   classes, tmp_path / "out", ["cvat"])
    dialog = ImportDialog(jobs)
    qtbot.addWidget(dialog)
    dialog.set_source(tmp_path / "out" / "cvat", images=SAMPLES / "images")
    qtbot.waitUntil(lambda: dialog.dataset is not None, timeout=WAIT_MS)
    dialog.target.setText(str(tmp_path / "p"))
    shown = []
    step = dialog._step

    def recording(i, n, text):  # what the dialog's own step shows
        step(i, n, text)
        shown.append(dialog.log.text())

    dialog._step = recording
    with qtbot.waitSignal(dialog.imported, timeout=WAIT_MS):
        dialog.import_button.click()
    assert len(shown) == 3
    assert " left" not in shown[0]  # the first item holds the start-up: no estimate from it
    assert re.search(r" · (about [1-9]\d* s|under a second) left$", shown[1]), shown  # (never "about 0 s")
    assert " left" not in shown[2]


def test_import_dialog_brings_corrections_back_into_the_project(qtbot, tmp_path, jobs):
    """With "Replace the annotations…" on, a corrected export of the project replaces the annotation
    of the project's own image (the export's copy is matched by name) and keeps the old one."""
    from PIL import Image

    from qgn.project import REPLACED_DIR, Project
    from qgn.project_export import export_project
    from qgn_studio.import_dialog import ImportDialog

    classes = read_classes_file(SAMPLES / "classes.txt")
    images = sorted((SAMPLES / "images").glob("*"))[:2]
    project = Project.create(tmp_path / "p", images, classes)
    labels = {}
    for image in project.images:
        labels[image.key] = read_label(SAMPLES / "labels" / f"{image.path.stem}.png")
        project.save_annotation(image, labels[image.key])
    export_project(project, tmp_path / "out", ["fiftyone"], images="copy")
    key = project.images[1].key
    mask_path = tmp_path / "out" / "fiftyone" / "labels" / f"{key}.png"
    mask = np.asarray(Image.open(mask_path)).copy()
    mask[:8, :20] = 3  # class 2 there: the correction made in FiftyOne
    Image.fromarray(mask).save(mask_path)
    dialog = ImportDialog(jobs, project)
    qtbot.addWidget(dialog)
    dialog.set_source(tmp_path / "out" / "fiftyone")
    qtbot.waitUntil(lambda: dialog.dataset is not None, timeout=WAIT_MS)
    dialog.update_box.setChecked(True)
    with qtbot.waitSignal(dialog.imported, timeout=WAIT_MS) as done:
        dialog.import_button.click()
    report = done.args[0]
    assert report.replaced == [key] and len(report.unchanged) == 1
    assert "Imported 2 of 2 (1 replaced, 1 unchanged)" in dialog.log.text()
    back = Project.open(tmp_path / "p")
    assert len(back.images) == 2
    expected = labels[key].copy()
    expected[:8, :20] = 2
    np.testing.assert_array_equal(back.load_annotation(back.images[1]), expected)
    (kept,) = (tmp_path / "p" / REPLACED_DIR).glob("*.qgt")
    np.testing.assert_array_equal(read_label_file(kept, classes), labels[key])


def test_import_dialog_closed_during_its_scan_drops_the_result(qtbot, window, tmp_path):
    """The dialog is closed (deleted) while its scan runs: the result arriving later touches no widget."""
    from sample_files import ids_dataset

    dialog = window.show_import()
    dialog.set_source(ids_dataset(tmp_path / "ds", count=3))
    dialog.close()
    assert window.jobs.wait_idle()
    qtbot.wait(50)  # the callback and the deferred delete run; pytest-qt fails on an exception in a slot
    assert dialog.dataset is None


def test_closing_the_import_dialog_starts_no_scan(qtbot, window, tmp_path):
    """Focus in the Dataset field after a finished scan: clicking Close ends the field's editing,
    which must not scan the same source again."""
    from sample_files import ids_dataset

    dialog = window.show_import()
    dialog.activateWindow()
    dialog.source.setFocus()
    dialog.set_source(ids_dataset(tmp_path / "ds", count=3))
    qtbot.waitUntil(lambda: dialog.dataset is not None, timeout=WAIT_MS)
    submitted = []
    submit = window.jobs.submit
    window.jobs.submit = lambda *args, **kw: (submitted.append(args[-1] if args else kw), submit(*args, **kw))[1]
    dialog.source.editingFinished.emit()  # what focus leaving the field does, unchanged
    dialog.buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Close).click()
    assert submitted == []
    assert window.jobs.wait_idle()
    qtbot.wait(50)


def import_then_close(qtbot, window, tmp_path, classes_file: str = "") -> None:
    """Start importing a 3-image dataset into ``tmp_path/proj`` from the dialog (``classes_file``
    in its Classes field when given), close the dialog at once, and wait for the job."""
    from sample_files import ids_dataset

    ds = ids_dataset(tmp_path / "ds", count=3)
    (ds / "classes.txt").write_text("a\nb\nc\n")
    dialog = window.show_import()
    dialog.set_source(ds)
    qtbot.waitUntil(lambda: dialog.dataset is not None, timeout=WAIT_MS)
    dialog.target.setText(str(tmp_path / "proj"))
    if classes_file:
        dialog.classes.setText(classes_file)
    dialog.import_button.click()
    dialog.close()
    assert window.jobs.wait_idle()


def test_an_import_that_ends_after_its_dialog_closed_opens_its_project(qtbot, window, tmp_path):
    """The user started the import, then closed the dialog: the window says so and opens the project."""
    import_then_close(qtbot, window, tmp_path)
    qtbot.waitUntil(lambda: window.projects.project is not None, timeout=WAIT_MS)
    assert window.projects.project.root == (tmp_path / "proj").resolve()
    assert len(window.workspace.docs) == 3
    text, kind = window.canvas.banner.messages["import"]
    assert text.startswith("Imported 3 of 3 into ") and kind == "info"


def test_an_import_that_fails_after_its_dialog_closed_says_so(qtbot, window, tmp_path):
    import_then_close(qtbot, window, tmp_path, classes_file=str(tmp_path / "no-such-classes.txt"))
    qtbot.waitUntil(lambda: "import" in window.canvas.banner.messages, timeout=WAIT_MS)
    text, kind = window.canvas.banner.messages["import"]
    assert text.startswith("Import failed: ") and kind == "warning"
    assert window.projects.project is None


def test_import_preview_shows_names_as_text_not_markup(qtbot, tmp_path, jobs):
    """A file named ``a<i>b.png`` and a COCO category ``<b>x</b>`` are names, never markup."""
    import json

    from sample_files import ids_dataset
    from qgn_studio.import_dialog import ImportDialog

    ds = ids_dataset(tmp_path / "ds", count=1)
    label = next((ds / "labels").glob("*.png"))
    label.rename(ds / "labels" / "a<i>b.png")
    next((ds / "images").glob("*.png")).rename(ds / "images" / "a<i>b.png")
    (ds / "classes.txt").write_text("<b>sky</b>\nroad\ncar\n")
    dialog = ImportDialog(jobs)
    qtbot.addWidget(dialog)
    dialog.set_source(ds)
    qtbot.waitUntil(lambda: dialog.dataset is not None, timeout=WAIT_MS)
    text = dialog.preview.text()
    assert "First: a&lt;i&gt;b" in text and "<i>b" not in text
    assert "the files name: &lt;b&gt;sky&lt;/b&gt;, road, car" in text
    coco = {"images": [{"id": 1, "file_name": "p.png", "height": 4, "width": 4}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[0, 0, 3, 0, 3, 3]],
                             "area": 4, "bbox": [0, 0, 3, 3], "iscrowd": 0}],
            "categories": [{"id": 1, "name": "<b>x</b>"}]}
    (tmp_path / "coco.json").write_text(json.dumps(coco))
    project = type("P", (), {"classes": ClassSet(("road",), (), 255), "root": tmp_path / "p"})()
    dialog = ImportDialog(jobs, project)
    qtbot.addWidget(dialog)
    dialog.set_source(tmp_path / "coco.json")
    qtbot.waitUntil(lambda: dialog.preview.text() != "Looking…", timeout=WAIT_MS)
    assert "&lt;b&gt;x&lt;/b&gt; → no class" in dialog.preview.text(), dialog.preview.text()
    assert "<b>x</b>" not in dialog.preview.text()


def test_banner_warnings_show_paths_as_text(qtbot, window, tmp_path):
    """A warning naming a file ``<b>x</b>.png`` (a plain-text message) reaches the banner escaped."""
    window.workspace.warn(f"Cannot open {tmp_path / '<b>x</b>.png'}", "project")
    text, _kind = window.canvas.banner.messages["project"]
    assert "&lt;b&gt;x&lt;/b&gt;.png" in text and "<b>" not in text
    assert window.statusBar().currentMessage().endswith("<b>x</b>.png")  # the status bar is plain text


def test_cancel_stops_an_import_and_keeps_what_it_imported(qtbot, tmp_path, jobs, monkeypatch):
    """Cancel during an import: it stops before the next item, the items imported so far are the
    project's (annotations and all), and the dialog says how many were not imported."""
    import threading

    import qgn.project_import
    from qgn.project import Project
    from qgn_studio.import_dialog import ImportDialog

    classes = read_classes_file(SAMPLES / "classes.txt")
    images = sorted((SAMPLES / "images").glob("*"))[:3]
    labels = {im.stem: read_label(SAMPLES / "labels" / f"{im.stem}.png") for im in images}
    export_dataset([ExportItem(im.stem, labels[im.stem], im) for im in images], classes, tmp_path / "out", ["cvat"])
    gate, real = threading.Event(), qgn.project_import.import_into_project

    def held(*args, progress=None, **kwargs):  # the first item reported, the import waits for the test
        def step(i, n, text):
            progress(i, n, text)
            if i == 1:
                gate.wait(WAIT_MS / 1000)
        return real(*args, progress=step, **kwargs)

    monkeypatch.setattr(qgn.project_import, "import_into_project", held)
    dialog = ImportDialog(jobs)
    qtbot.addWidget(dialog)
    dialog.set_source(tmp_path / "out" / "cvat", images=SAMPLES / "images")
    qtbot.waitUntil(lambda: dialog.dataset is not None, timeout=WAIT_MS)
    dialog.target.setText(str(tmp_path / "p"))
    assert not dialog.cancel_button.isEnabled()
    dialog.import_button.click()
    qtbot.waitUntil(lambda: dialog.progress.value() == 1, timeout=WAIT_MS)
    assert dialog.cancel_button.isEnabled()
    with qtbot.waitSignal(dialog.imported, timeout=WAIT_MS) as done:
        dialog.cancel_button.click()
        gate.set()
    report = done.args[0]
    assert len(report.imported) == 1 and report.not_reached == 2
    project = Project.open(tmp_path / "p")
    assert len(project.images) == 1
    np.testing.assert_array_equal(project.load_annotation(project.images[0]), labels[report.imported[0]])
    assert "cancelled, 2 item(s) not imported" in dialog.log.text()
    assert dialog.progress.value() < dialog.progress.maximum()  # not a full bar
    assert not dialog.cancel_button.isEnabled() and dialog.import_button.isEnabled()


def test_import_preview_counts_one_mask_in_the_singular(qtbot, tmp_path, jobs):
    from qgn_studio.import_dialog import ImportDialog

    classes = read_classes_file(SAMPLES / "classes.txt")
    image = sorted((SAMPLES / "images").glob("*"))[0]
    export_dataset([ExportItem(image.stem, read_label(SAMPLES / "labels" / f"{image.stem}.png"), image)], classes,
                   tmp_path / "out", ["cvat"])
    dialog = ImportDialog(jobs)
    qtbot.addWidget(dialog)
    dialog.set_source(tmp_path / "out" / "cvat", images=SAMPLES / "images")
    qtbot.waitUntil(lambda: dialog.dataset is not None, timeout=WAIT_MS)
    assert "1 mask;" in dialog.preview.text() and "1 masks" not in dialog.preview.text()


def test_an_import_whose_dialog_closed_is_named_on_the_status_bars_cancel(qtbot, window, tmp_path):
    """The status bar's line of an import whose dialog was closed is its latest item's; its Cancel
    was named from that line when another task's showed ("Cancel <item>") and promised Esc, which
    does not stop an import. It says the job ("Cancel importing dataset") and where it imports to."""
    seen = []

    def step(text, *_):
        if not window.progress.isVisible() or seen:
            return
        own = window.progress.cancel_button.toolTip()
        window.progress.show_progress("Saving annotations 0/2", 0, 2, owner="save")  # as a Ctrl+S round does
        seen.append((own, window.progress.cancel_button.text(), window.progress.cancel_button.toolTip()))
        window.progress.hide_progress("save")

    window.workspace.progress.connect(step)
    import_then_close(qtbot, window, tmp_path)
    qtbot.waitUntil(lambda: window.projects.project is not None, timeout=WAIT_MS)
    proj = str(tmp_path / "proj")
    assert seen and seen[0][0] == f"Stop importing dataset into {proj}", seen
    assert seen[0][1] == "Cancel importing dataset", seen
    assert seen[0][2].startswith(f"Stop importing dataset into {proj}, still running"), seen
