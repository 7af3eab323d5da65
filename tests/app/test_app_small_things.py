"""The small things people notice over a day: legend swatches beside their names and down the
columns, the class list's hint below its last row, a fine-tune panel that does not move after ↻, a
smoothed loss curve, cell sizes on the image for a model with a working scale, the hover naming the
annotation's class while annotating, the plot's axis never above 100 %, no "Open images…" hint while
images are listed, About with QGN Studio's version, a word about an image's alpha channel, toolbar
buttons that name their keys, a new project's folder chooser whose title fits its title bar, and a
screenshot named without ".png" that is saved as one and said so.
"""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from PySide6 import QtCore, QtWidgets

import qgn
from qgn.data.synthetic import SYNTHETIC_CLASSES

from studio_steps import WAIT_MS, annotating

SAMPLE_COUNT = 2  # the samples fixture
WINDOW_SIZE = (1200, 800)


def test_legend_swatch_beside_its_name_and_column_major(qtbot):
    from qgn_studio.panels.layers import Legend

    legend = Legend()
    qtbot.addWidget(legend)
    legend.resize(300, 400)
    legend.set_classes(SYNTHETIC_CLASSES)
    legend.show()
    qtbot.waitExposed(legend)
    rows = (SYNTHETIC_CLASSES.num_classes + 2) // 2  # the classes, then 'composite', down two columns
    labels = {w.text(): w for w in legend.findChildren(QtWidgets.QLabel) if w.text() in SYNTHETIC_CLASSES.names}
    for i, name in enumerate(SYNTHETIC_CLASSES.names):
        label = labels[name]
        icon = next(w for w in label.parentWidget().findChildren(QtWidgets.QLabel) if w.pixmap() and not w.text())
        gap = label.mapTo(legend, QtCore.QPoint(0, 0)).x() - (icon.mapTo(legend, QtCore.QPoint(0, 0)).x() + icon.width())
        assert 0 <= gap <= 10, f"{name}: {gap} px between swatch and name"
        column = 0 if i < rows else 1
        first = SYNTHETIC_CLASSES.names[column * rows]
        assert abs(label.mapTo(legend, QtCore.QPoint(0, 0)).x() - labels[first].mapTo(legend, QtCore.QPoint(0, 0)).x()) < 2
    # reading order goes down the first column: class 1 is below class 0
    assert labels[SYNTHETIC_CLASSES.names[1]].mapTo(legend, QtCore.QPoint(0, 0)).y() > \
        labels[SYNTHETIC_CLASSES.names[0]].mapTo(legend, QtCore.QPoint(0, 0)).y()


def test_class_table_rows_fit_the_height_it_takes(qtbot):
    from qgn_studio.panels.annotate import AnnotatePanel

    panel = AnnotatePanel()
    qtbot.addWidget(panel)
    panel.set_classes(SYNTHETIC_CLASSES)
    panel.resize(380, 900)
    panel.show()
    qtbot.waitExposed(panel)
    table = panel.classes
    last = table.visualRect(table.model().index(SYNTHETIC_CLASSES.num_classes - 1, 2))
    assert last.bottom() <= table.viewport().height(), "the last class row is cut off (the hint covers it)"


def test_finetune_panel_does_not_move_and_the_loss_is_smoothed(qtbot):
    from qgn_studio.panels.finetune import FinetunePanel, smoothed

    panel = FinetunePanel()
    qtbot.addWidget(panel)
    panel.resize(360, 700)
    panel.show()
    qtbot.waitExposed(panel)
    before = panel.lr.mapTo(panel, QtCore.QPoint(0, 0)).y()
    panel.set_corrections([f"a very long image name number {i}.png" for i in range(7)])
    QtWidgets.QApplication.processEvents()
    assert panel.lr.mapTo(panel, QtCore.QPoint(0, 0)).y() == before
    rng = np.random.default_rng(0)
    values = list(1.0 / np.arange(1, 301) + rng.normal(0, 0.2, 300))
    smooth = np.array(smoothed(values))
    assert np.abs(np.diff(smooth)).mean() < 0.2 * np.abs(np.diff(values)).mean()
    assert smooth[-50:].mean() == pytest.approx(np.mean(values[-50:]), abs=0.05)


def test_cell_sizes_follow_the_working_scale():
    from types import SimpleNamespace

    from qgn_studio.document import cell_size_text

    half = SimpleNamespace(grid_size=(50, 80), size=(100, 160))
    assert cell_size_text(2, half) == "8×8 px"
    assert cell_size_text(2, SimpleNamespace(grid_size=(100, 160), size=(100, 160))) == "4×4 px"
    assert cell_size_text(0, None) == "1×1 px"


def test_hover_in_annotation_mode_names_the_annotation(qtbot, window, model_path, samples):
    session = annotating(qtbot, window, model_path, [samples[0]])
    tools = window.annotator.tools
    prediction = int(session.label[10, 10])
    other = (prediction + 1) % SYNTHETIC_CLASSES.num_classes
    tools.set_level(3)
    tools.set_class(other)
    from studio_steps import drag

    window._hovered(10.5, 10.5)  # the pointer rests here: a click, then undo, change what it reads
    assert f"annotation: <b>{SYNTHETIC_CLASSES.names[prediction]}</b>" in window.hover_label.text()
    drag(window, [(10.5, 10.5)])
    assert int(session.label[10, 10]) == other
    assert f"annotation: <b>{SYNTHETIC_CLASSES.names[other]}</b>" in window.hover_label.text()
    session.undo.undo()
    assert f"annotation: <b>{SYNTHETIC_CLASSES.names[prediction]}</b>" in window.hover_label.text()
    assert window.fit_tool.toolTip() == "Fit to window (Home)", "F is the Fill tool in annotation mode"


def test_plot_axis_never_above_100(qtbot, window, model_path, samples):
    window.start([samples[0]], str(model_path))
    qtbot.waitUntil(lambda: window.current is not None and window.current.result is not None, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: len(window.current.curve) >= 2, timeout=WAIT_MS)
    window.explore.show_curve(list(window.current.curve.values()), window.explore.setting())
    qtbot.waitUntil(lambda: not window.explore.curve_pending(), timeout=WAIT_MS)
    (_x0, _x1), (_y0, y1) = window.explore.plot.getViewBox().viewRange()
    assert y1 <= 100.0 + 1e-6


def test_no_open_images_hint_while_images_are_listed(qtbot, window, model_path, samples):
    window.start(samples, str(model_path))
    qtbot.waitUntil(lambda: bool(window.docs), timeout=WAIT_MS)
    if window.canvas.placeholder.isVisible():
        assert "Ctrl+O" not in window.canvas.placeholder.text()


def test_about_names_the_version():
    from qgn_studio.dialogs import about_html

    assert f"QGN Studio {qgn.__version__}" in about_html(None, None)


def test_rgba_alpha_is_mentioned(tmp_path):
    from qgn_studio.document import ImageDocument

    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[..., :3] = 120
    rgba[..., 3] = 255
    rgba[:5, :5, 3] = 0
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    doc = ImageDocument(tmp_path / "a.png")
    doc.load()
    assert doc.image is not None and any("transparent" in note for note in doc.notes)
    Image.fromarray(np.full((20, 30, 4), 255, np.uint8), "RGBA").save(tmp_path / "opaque.png")
    opaque = ImageDocument(tmp_path / "opaque.png")
    opaque.load()
    assert not opaque.notes


def test_the_status_bar_progress_says_the_time_left(qtbot, monkeypatch):
    """A long task in the status bar (ordering by uncertainty) shows its time left once it has run a
    second, from its own items after the first report: a new task (done 0, or another total) starts
    the estimate again."""
    import qgn.progress
    from qgn_studio.panels.progress import TaskProgress

    clock = [0.0]
    monkeypatch.setattr(qgn.progress.time, "monotonic", lambda: clock[0])
    bar = TaskProgress()
    qtbot.addWidget(bar)
    bar.show_progress("Scoring 0/10", 0, 10)
    assert bar.label.text() == "Scoring 0/10"
    clock[0] = 4.0
    bar.show_progress("Scoring 2/10", 2, 10)
    assert bar.label.text() == "Scoring 2/10"  # the first items hold the start-up: no estimate from them
    clock[0] = 8.0
    bar.show_progress("Scoring 4/10", 4, 10)
    assert bar.label.text() == "Scoring 4/10 · about 12 s left"
    bar.show_progress("Scoring 10/10", 10, 10)
    assert bar.label.text() == "Scoring 10/10"
    bar.hide_progress()
    clock[0] = 100.0
    bar.show_progress("Other 1/4", 1, 4)  # a new task: its clock starts here, nothing known yet
    assert bar.label.text() == "Other 1/4"
    clock[0] = 103.0
    bar.show_progress("Other 2/4", 2, 4)
    assert bar.label.text() == "Other 2/4 · about 6 s left"


def test_the_task_progress_shows_each_running_task_until_its_own_end(qtbot):
    """One slot for several tasks at once (an export whose dialog was closed, a save round,
    uncertainty scoring): the end of one hid the other's line and Cancel. It shows the latest
    started still running (its Cancel), says how many others run, and one's end shows the next."""
    from qgn_studio.panels.progress import TaskProgress

    bar = TaskProgress()
    qtbot.addWidget(bar)
    stopped = []
    bar.show_progress("Exporting 1/9", 1, 9, lambda: stopped.append("export"), owner="export")
    bar.show_progress("Saving annotations 0/2", 0, 2, owner="save")
    assert bar.label.text() == "Saving annotations 0/2 (and 1 more task)"
    assert bar.cancel_button.text() == "Cancel exporting"  # (the save has none: the export's, named)
    bar.show_progress("Exporting 2/9", 2, 9, lambda: stopped.append("export"), owner="export")
    assert bar.label.text().startswith("Saving annotations 0/2")  # (the export's step is kept, not shown)
    bar.hide_progress("save")
    assert bar.isVisibleTo(bar.parentWidget() or bar) and bar.label.text().startswith("Exporting 2/9")
    assert bar.bar.value() == 2 and bar.cancel_button.isVisibleTo(bar)
    bar.cancel_button.click()
    assert stopped == ["export"]
    bar.hide_progress("scoring")  # a task that is not running: nothing changes
    assert bar.label.text() == "Cancelling exporting…" and not bar.isHidden()  # (winding down)
    bar.hide_progress("export")
    assert bar.isHidden()


def test_the_task_progress_offers_the_cancel_of_the_latest_task_that_has_one(qtbot):
    """It offered only the Cancel of the latest started task: a save round (no Cancel) started
    during an export whose dialog was closed left the export nothing to stop it with until the round
    ended. The Cancel is the latest started's that has one, named when it is not the line shown;
    in either order of start, it stops the export, never the other."""
    from qgn_studio.panels.progress import TaskProgress

    for export_first in (True, False):
        bar = TaskProgress()
        qtbot.addWidget(bar)
        stopped = []
        export = ("Exporting 1/900", 1, 900, lambda: stopped.append("export"))
        save = ("Saving annotations 0/40", 0, 40)
        for owner, step in ((("export", export), ("save", save)) if export_first else
                            (("save", save), ("export", export))):
            bar.show_progress(*step, owner=owner)
        assert bar.cancel_button.isVisibleTo(bar), export_first
        if export_first:  # the save's line shows; the Cancel says whose it is
            assert bar.label.text() == "Saving annotations 0/40 (and 1 more task)"
            assert bar.cancel_button.text() == "Cancel exporting"
            assert "Exporting 1/900" in bar.cancel_button.toolTip()
        else:
            assert bar.label.text() == "Exporting 1/900 (and 1 more task)"
            assert bar.cancel_button.text() == "Cancel"
        bar.cancel_button.click()
        assert stopped == ["export"], export_first
        bar.hide_progress("export")
        assert bar.label.text() == "Saving annotations 0/40" and not bar.cancel_button.isVisibleTo(bar)
    # three tasks: the latest started with a Cancel is the one the button stops, and after its end the one before
    bar = TaskProgress()
    qtbot.addWidget(bar)
    stopped = []
    bar.show_progress("Scoring uncertainty 0/10", 0, 10, lambda: stopped.append("scoring"), owner="scoring")
    bar.show_progress("Exporting 1/9", 1, 9, lambda: stopped.append("export"), owner="export")
    bar.show_progress("Saving annotations 0/2", 0, 2, owner="save")
    assert bar.cancel_button.text() == "Cancel exporting"
    bar.cancel_button.click()  # the export winds down (its line stays until its end)
    assert not bar.cancel_button.isEnabled()  # (a double click's second press is ignored)
    _end_press_guard(bar)  # then the next is offered
    assert bar.cancel_button.text() == "Cancel scoring uncertainty"
    bar.show_progress("Exporting 2/9", 2, 9, lambda: stopped.append("export"), owner="export")
    assert bar.cancel_button.text() == "Cancel scoring uncertainty"
    bar.hide_progress("export")
    assert bar.cancel_button.text() == "Cancel scoring uncertainty"
    bar.cancel_button.click()
    assert stopped == ["export", "scoring"]
    _end_press_guard(bar)
    assert not bar.cancel_button.isEnabled()  # (nothing left to stop: the save has no Cancel; scoring winds down)
    bar.hide_progress("scoring")
    assert not bar.cancel_button.isVisibleTo(bar)


def test_two_tasks_of_one_name_are_told_apart_by_their_cancels_tooltip(qtbot):
    """Two exports whose dialogs were closed: each line is its latest image's ("new_1: 1 file(s)");
    the Cancel is named by the job ("Cancel exporting", not "Cancel new_1") and its tooltip says
    which export it stops (its folder), and says Esc only for a task the window's Esc stops."""
    from qgn_studio.panels.progress import TaskProgress

    bar = TaskProgress()
    qtbot.addWidget(bar)
    stopped = []
    bar.show_progress("new_1: 1 file(s)", 1, 9, lambda: stopped.append("a"), "Exporting", "into /data/a", owner="a")
    assert (bar.cancel_button.text(), bar.cancel_button.toolTip()) == ("Cancel", "Stop exporting into /data/a")
    bar.show_progress("new_1: 1 file(s)", 1, 9, lambda: stopped.append("b"), "Exporting", "into /data/b", owner="b")
    bar.show_progress("Saving annotations 0/2", 0, 2, owner="save")
    assert bar.cancel_button.text() == "Cancel exporting"
    assert bar.cancel_button.toolTip().startswith("Stop exporting into /data/b, still running")
    bar.cancel_button.click()
    assert bar.cancel_button.toolTip().endswith("; exporting into /data/a can be stopped here in a moment")
    _end_press_guard(bar)
    assert bar.cancel_button.toolTip().startswith("Stop exporting into /data/a, still running")
    bar.cancel_button.click()
    assert stopped == ["b", "a"]
    for owner in ("a", "b", "save"):
        bar.hide_progress(owner)
    bar.show_progress("Scoring uncertainty 0/4", 0, 4, lambda: stopped.append("scoring"), esc=True, owner="scoring")
    assert bar.cancel_button.toolTip() == "Stop it (Esc)"
    bar.show_progress("Saving annotations 0/2", 0, 2, owner="save")
    assert bar.cancel_button.toolTip().startswith("Stop scoring uncertainty (Esc), still running")


def test_a_status_line_about_an_unreadable_image_goes_with_it(qtbot, window, samples, model_path, tmp_path):
    """'cannot read empty.png' in the status bar is about that image: showing another clears it."""
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    window.start([str(empty), str(samples[0])], str(model_path))
    qtbot.waitUntil(lambda: window.current is not None and window.current.error, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: "empty.png" in window.statusBar().currentMessage(), timeout=WAIT_MS)
    window.images.set_current(1)
    qtbot.waitUntil(lambda: window.current is window.docs[1], timeout=WAIT_MS)
    assert "empty.png" not in window.statusBar().currentMessage()
    window.statusBar().showMessage("Autosaved 1 annotation", 5000)  # another line stays when the image changes
    window.images.set_current(0)
    assert window.statusBar().currentMessage() == "Autosaved 1 annotation"


def test_the_import_dialog_names_its_own_fields_not_command_options(qtbot, tmp_path):
    """The library's messages name qgn import's options; the dialog names its fields instead."""
    from qgn_studio.import_dialog import in_dialog_words

    assert in_dialog_words("bare class ids; name the classes with --classes FILE (a classes.txt)") == (
        "bare class ids; name the classes with the Classes file field (a classes.txt)")
    assert in_dialog_words("no image found for x.png; name the image folder with --images") == (
        "no image found for x.png; name the image folder with the Images field")
    assert in_dialog_words("(qgn export --images DIR)") == "(qgn export --images DIR)"  # another command's


def test_the_import_dialog_says_which_field_names_the_classes(qtbot, tmp_path):
    from sample_files import ids_dataset

    from qgn_studio.import_dialog import ImportDialog
    from qgn_studio.jobs import JobRunner

    jobs = JobRunner()
    try:
        ds = ids_dataset(tmp_path / "ds", count=2)  # no classes.txt: bare ids
        dialog = ImportDialog(jobs)
        qtbot.addWidget(dialog)
        dialog.set_source(ds)
        qtbot.waitUntil(lambda: dialog.dataset is not None, timeout=WAIT_MS)
        assert "--classes" not in dialog.preview.text() and "the Classes file field" in dialog.preview.text()
        dialog.target.setText(str(tmp_path / "p"))
        dialog.import_button.click()
        qtbot.waitUntil(lambda: "Import failed" in dialog.log.text(), timeout=WAIT_MS)
        assert "--classes" not in dialog.log.text() and "the Classes file field" in dialog.log.text()
    finally:
        jobs.stop()


def test_every_toolbar_button_names_its_keys(qtbot, window):
    """Hovering a toolbar button says its name and keys, the ones the menus list (Fit and 1:1 said
    them; Open images, Open folder, Previous and Next did not, and Zoom-box said only "Left-drag
    draws a zoom box; hold Space to pan")."""
    from PySide6 import QtGui

    toolbar = window.findChild(QtWidgets.QToolBar, "main toolbar")
    menu_keys = {}
    for action in window.actions():
        for key in action.shortcuts():
            menu_keys.setdefault(action.text().replace("&", "").rstrip("…"), []).append(
                key.toString(QtGui.QKeySequence.SequenceFormat.NativeText))
    for action in toolbar.actions():
        if action.isSeparator():
            continue
        name = action.toolTip().partition(" (")[0]
        keys = [k for text, ks in menu_keys.items() if text == name or text.startswith(f"{name} (") for k in ks]
        keys = [k for k in keys if k != "F"]  # Fit to window's F is the Fill tool's in annotation mode (above)
        assert keys, f"{name!r} is no menu action"
        assert all(k in action.toolTip() for k in keys), (action.toolTip(), keys)


def test_the_new_project_chooser_fits_its_title_and_says_create(qtbot):
    """The new project's folder chooser said its instructions in a title the title bar cut in the
    middle ("…new or empty folde…w folder name…") and offered to *Save*."""
    from PySide6 import QtGui

    from qgn_studio.ask import new_folder_dialog

    dialog = new_folder_dialog(None, "New project", "")
    qtbot.addWidget(dialog)
    title_width = QtGui.QFontMetrics(dialog.font()).horizontalAdvance(dialog.windowTitle())
    assert title_width + 120 <= dialog.sizeHint().width(), (dialog.windowTitle(), title_width, dialog.sizeHint())
    assert dialog.labelText(QtWidgets.QFileDialog.DialogLabel.Accept) == "Create"


def test_the_start_over_actions_say_where_the_annotation_comes_from(window):
    """The menu's start-over actions name their source as the status messages do ("Start over from
    import mask…" read as if it imported something): a mask file, the prediction, an empty map."""
    texts = [a.text() for menu in window.menuBar().findChildren(QtWidgets.QMenu) for a in menu.actions()
             if a.text().startswith("Start over from")]
    assert "Start over from a mask file…" in texts, texts
    assert {"Start over from the prediction", "Start over from the ground truth", "Start over from an empty map",
            "Start over from the project head"} <= set(texts), texts
    assert not any("import mask" in t.lower() for t in texts), texts


def test_a_screenshot_named_without_png_is_saved_as_png_and_said(qtbot, window, tmp_path):
    """File → Save screenshot, a name typed without ".png": nothing was written and nothing said."""
    target = tmp_path / "view"

    def answer() -> None:  # the user types a name in the dialog and presses Save
        dialog = QtWidgets.QApplication.activeModalWidget()
        assert isinstance(dialog, QtWidgets.QFileDialog), dialog
        dialog.selectFile(str(target))
        dialog.accept()

    QtCore.QTimer.singleShot(0, answer)
    window.save_screenshot_dialog()
    saved = tmp_path / "view.png"
    assert saved.is_file(), sorted(p.name for p in tmp_path.iterdir())
    with Image.open(saved) as picture:
        assert picture.format == "PNG" and picture.size[0] > 100
    assert str(saved) in window.statusBar().currentMessage()


def test_a_screenshot_that_cannot_be_written_says_why(qtbot, window, tmp_path):
    assert not window.save_screenshot(tmp_path / "no such folder" / "view.png")
    message = window.statusBar().currentMessage()
    assert "Cannot save the screenshot" in message and "choose another folder" in message


def test_a_job_submitted_after_the_file_thread_stopped_fails_loudly(qtbot, capfd):
    """A job submitted once the window's file thread had stopped (the window closed) was queued for
    good: never run and never said. It now fails, as any job does (its ``failed`` gets why, on the
    UI thread) and stderr names it; a job submitted before the stop still runs."""
    import threading

    from qgn_studio.jobs import STOPPED, JobRunner

    jobs, ran, failed = JobRunner(), [], []
    release = threading.Event()
    jobs.submit(lambda: release.wait(30))
    jobs.submit(lambda: ran.append("queued before"), failed=failed.append)
    jobs.stop(wait=False)
    release.set()
    jobs.wait()
    jobs.submit(lambda: ran.append("after"), failed=failed.append, label="Autosaving")
    qtbot.waitUntil(lambda: bool(failed), timeout=WAIT_MS)
    assert ran == ["queued before"] and failed == [STOPPED]
    assert f"Autosaving: {STOPPED}" in capfd.readouterr().err


@pytest.mark.parametrize(("value", "shown"), [
    (999_700, "1 M"), (999_499, "999 k"), (999.7, "1 k"), (999, "999"), (1_234_567, "1.23 M"),
    (999_999_999, "1 G"), (-999_700, "-1 M"), (12.4, "12"), (0, "0")])
def test_a_count_rounded_up_to_the_next_prefix_takes_it(value, shown):
    """human_count rounds to three digits: 999 700 is '1 M', not '1e+03 k' (the review of uifix)."""
    from qgn_studio.document import human_count

    assert human_count(value) == shown


@pytest.mark.parametrize(("value", "shown"), [
    ((1 << 20) - 10, "1 MiB"), (1023, "1023 B"), (3 << 20, "3 MiB"), (1536, "1.5 KiB")])
def test_a_size_rounded_up_to_the_next_unit_takes_it(value, shown):
    from qgn_studio.document import human_bytes

    assert human_bytes(value) == shown


def test_every_action_with_keys_names_them_in_its_tooltip(qtbot, window, model_path, samples):
    """The menus' actions said their keys only in the menu: their tooltips ("Open images", "Paint
    the cells under the pointer…") did not, nor after an undo step or a class renamed them."""
    from PySide6 import QtGui

    annotating(qtbot, window, model_path, [samples[0]])  # the Annotate menu's actions and class keys built
    window.annotator.tools.set_level(0)
    keyed = [a for a in window.actions() if a.shortcuts()]
    assert len(keyed) > 40
    for action in keyed:
        for key in action.shortcuts():
            assert key.toString(QtGui.QKeySequence.SequenceFormat.NativeText) in action.toolTip(), \
                (action.text(), action.toolTip())
    undo = window.annotator.undo_action
    undo.setText("&Undo Paint 12 px")  # as an undo step names itself
    assert undo.toolTip() == "Undo Paint 12 px (Ctrl+Z)"


def test_a_cancelled_task_says_cancelling_until_it_has_stopped(qtbot):
    """The only stoppable task, cancelled and winding down (its current step ends first), hid its
    Cancel and kept its last step's line, as if it ran on: its line says "Cancelling <what>…" and
    its Cancel stays, disabled, until its end; a task cancelled elsewhere (Esc) says so too."""
    from qgn_studio.panels.progress import TaskProgress

    bar = TaskProgress()
    qtbot.addWidget(bar)
    stopped = []
    bar.show_progress("Scoring uncertainty 3/10: a.png", 3, 10, lambda: stopped.append(1), owner="scoring")
    bar.cancel_button.click()
    assert stopped == [1]
    assert bar.label.text() == "Cancelling scoring uncertainty…"
    assert bar.cancel_button.isVisibleTo(bar) and not bar.cancel_button.isEnabled()
    _end_press_guard(bar)
    assert not bar.cancel_button.isEnabled()  # (nothing else to stop)
    bar.show_progress("Scoring uncertainty 4/10: b.png", 4, 10, lambda: stopped.append(1), owner="scoring")
    assert bar.label.text() == "Cancelling scoring uncertainty…"  # (a step still coming: still winding down)
    assert not bar.cancel_button.isEnabled()
    bar.hide_progress("scoring")
    assert bar.isHidden()
    bar.cancelling("prediction", "the prediction")  # (a prediction shows its steps on the canvas)
    assert not bar.isHidden() and bar.label.text() == "Cancelling the prediction…"
    assert bar.cancel_button.isVisibleTo(bar) and not bar.cancel_button.isEnabled()
    bar.show_progress("Exporting 1/9", 1, 9, lambda: stopped.append(2), owner="export", name="Exporting")
    assert bar.cancel_button.isEnabled()  # another still stoppable: its Cancel
    bar.hide_progress("export")
    bar.hide_progress("prediction")
    assert bar.isHidden()


def test_a_task_without_a_count_shows_a_busy_bar_while_it_works_and_none_while_it_winds_down(qtbot):
    """A task without a count (a project's project.json being read: 0 of 0) showed an empty bar, as
    if stuck at 0 %, while it worked, and once cancelled a busy bar, as if it worked on: it now shows
    a busy bar while it works and none while it winds down ("Cancelling…" says that); a task with a
    count keeps its count, frozen, while it winds down."""
    from qgn_studio.panels.progress import TaskProgress

    bar = TaskProgress()
    qtbot.addWidget(bar)
    bar.show()
    bar.show_progress("Opening the project p: reading project.json", 0, 0, lambda: None, owner="open")
    assert bar.bar.isVisible() and (bar.bar.minimum(), bar.bar.maximum()) == (0, 0)  # busy: working
    bar.cancel_button.click()
    assert bar.label.text() == "Cancelling opening the project p…"
    assert not bar.bar.isVisible()  # no busy bar: it works on nothing but stopping
    bar.hide_progress("open")
    bar.cancelling("prediction", "the prediction")  # (a prediction, cancelled: no count here)
    assert bar.label.text() == "Cancelling the prediction…" and not bar.bar.isVisible()
    bar.hide_progress("prediction")
    bar.show_progress("Exporting 3/9", 3, 9, lambda: None, owner="export")
    assert bar.bar.isVisible() and (bar.bar.value(), bar.bar.maximum()) == (3, 9)
    bar.cancelling("export")
    assert bar.bar.isVisible() and (bar.bar.value(), bar.bar.maximum()) == (3, 9)  # its count, frozen


def _end_press_guard(bar) -> None:
    """The double-click interval after a press of the status bar's Cancel, ended now."""
    assert bar._press_guard.isActive()
    bar._press_guard.stop()
    bar._press_guard.timeout.emit()


def test_a_task_cancelled_from_its_line_says_cancelling_and_its_cancel_ignores_a_double_click(qtbot):
    """The Cancel of the line shown (scoring, started after a running export) pressed: the line
    jumped to the export's, whose plain "Cancel" took the press's place - a double click's second
    press cancelled the export. The line says "Cancelling scoring uncertainty…" and the export's
    step; presses are ignored for a double-click interval, then "Cancel exporting" is offered."""
    from qgn_studio.panels.progress import TaskProgress

    bar = TaskProgress()
    qtbot.addWidget(bar)
    stopped = []
    bar.show_progress("Exporting 2/9", 2, 9, lambda: stopped.append("export"), owner="export", name="Exporting")
    bar.show_progress("Scoring uncertainty 1/10: a.png", 1, 10, lambda: stopped.append("scoring"), owner="scoring")
    assert bar.cancel_button.text() == "Cancel" and bar.cancel_button.isEnabled()
    bar.cancel_button.click()
    assert bar.label.text() == "Cancelling scoring uncertainty… · Exporting 2/9", bar.label.text()
    assert not bar.cancel_button.isEnabled() and bar.cancel_button.isVisibleTo(bar)
    bar.cancel_button.click()  # (the second press of a double click)
    assert stopped == ["scoring"]
    _end_press_guard(bar)
    assert bar.cancel_button.text() == "Cancel exporting" and bar.cancel_button.isEnabled()
    bar.show_progress("Exporting 3/9", 3, 9, lambda: stopped.append("export"), owner="export", name="Exporting")
    assert bar.label.text() == "Cancelling scoring uncertainty… · Exporting 3/9"  # (still winding down)
    assert stopped == ["scoring"] and bar.cancel_button.text() == "Cancel exporting"
    bar.hide_progress("scoring")  # it stopped: the export's line, its own Cancel
    assert bar.label.text() == "Exporting 3/9" and bar.bar.value() == 3 and bar.bar.maximum() == 9
    assert bar.cancel_button.text() == "Cancel" and bar.cancel_button.isEnabled()
    assert bar.cancel_button.toolTip() == "Stop exporting"
    bar.cancel_button.click()
    assert stopped == ["scoring", "export"]


def test_a_cancel_made_elsewhere_leaves_the_other_tasks_stoppable_from_the_status_bar(qtbot):
    """An export runs, its dialog closed (the status bar's Cancel is its only stop); Esc on a
    prediction: while the prediction wound down, the line said "Cancelling the prediction… (and 1
    more task)" with the Cancel disabled - the export could not be stopped until that step ended.
    A cancel made elsewhere never disables the status bar's Cancel."""
    from qgn_studio.panels.progress import TaskProgress

    bar = TaskProgress()
    qtbot.addWidget(bar)
    stopped = []
    bar.show_progress("Exporting 2/900", 2, 900, lambda: stopped.append("export"), owner="export", name="Exporting")
    bar.cancelling("prediction", "the prediction")  # (window_predictions.cancel: Esc)
    for i in range(3, 6):
        bar.show_progress(f"Exporting {i}/900", i, 900, lambda: stopped.append("export"), owner="export",
                          name="Exporting")
    assert bar.label.text() == "Cancelling the prediction… · Exporting 5/900"
    assert bar.cancel_button.text() == "Cancel exporting" and bar.cancel_button.isEnabled()
    assert bar.cancel_button.toolTip() == "Stop exporting"
    bar.cancel_button.click()
    assert stopped == ["export"]
    bar.hide_progress("prediction")
    assert bar.label.text() == "Cancelling exporting…" and not bar.cancel_button.isEnabled()


def test_the_disabled_cancel_promises_no_task_it_cannot_stop(qtbot):
    """A save round (no Cancel) runs; scoring, started after, is cancelled from its line: the
    disabled Cancel's tooltip said "then the other tasks can be stopped here" - none can."""
    from qgn_studio.panels.progress import TaskProgress

    bar = TaskProgress()
    qtbot.addWidget(bar)
    bar.show_progress("Saving annotations 1/5", 1, 5, owner="save")
    bar.show_progress("Scoring uncertainty 1/10: a.png", 1, 10, lambda: None, owner="scoring")
    bar.cancel_button.click()
    _end_press_guard(bar)
    assert bar.label.text() == "Cancelling scoring uncertainty… (and 1 more task)"
    assert not bar.cancel_button.isEnabled()
    assert bar.cancel_button.toolTip() == "Cancelling scoring uncertainty: it stops after its current step"
    # with a task still stoppable, during the double-click interval it names that one
    bar.show_progress("Exporting 1/9", 1, 9, lambda: None, owner="export", name="Exporting")
    bar.show_progress("Reading 1/4", 1, 4, lambda: None, owner="read", name="Reading")
    bar.cancel_button.click()
    assert not bar.cancel_button.isEnabled()
    assert bar.cancel_button.toolTip() == ("Cancelling reading: it stops after its current step; "
                                           "exporting can be stopped here in a moment")


def test_the_cost_summary_while_all_is_measured_reads_as_a_sentence(qtbot):
    """Before the All scheme's MACs are measured the summary read "Decoder 58.6 M MACs = % of All:
    measuring…" (a bare "%" after "="; seen at 1280×800): it holds the place of the number."""
    from types import SimpleNamespace

    from PySide6 import QtGui

    from qgn_studio.panels.explore import ExplorePanel

    cost = SimpleNamespace(total_decoder_macs=58_600_000, decoder_seconds={5: 0.01}, total_macs=201_000_000,
                           seconds=0.084, encoder_seconds=0.042)
    result = SimpleNamespace(cost=cost, device="cpu", activation_bytes=None, grid_size=(256, 384), size=(256, 384))
    text = QtGui.QTextDocumentFragment.fromHtml(ExplorePanel._summary(result, None)).toPlainText()
    first = text.splitlines()[0]
    assert first == "Decoder 58.6 M MACs = … % of All (measuring)", first
    measured = QtGui.QTextDocumentFragment.fromHtml(ExplorePanel._summary(result, 117_200_000)).toPlainText()
    assert measured.splitlines()[0] == "Decoder 58.6 M MACs = 50.0 % of All at this depth"


def test_the_status_bars_time_left_under_a_second_reads_under_a_second(qtbot, monkeypatch):
    """A 20,000-image project's open ended on "Opening the project p: 19,500 of 20,000 images ·
    about 0 s left"; the status bar, the busy note, the dialogs and the command line all say
    "under a second left" there (``qgn.progress.left_phrase``)."""
    import qgn.progress
    from qgn_studio.panels.progress import TaskProgress

    clock = [0.0]
    monkeypatch.setattr(qgn.progress.time, "monotonic", lambda: clock[0])
    bar = TaskProgress()
    qtbot.addWidget(bar)
    bar.show_progress("Opening 0 of 20,000 images", 0, 20_000)
    clock[0] = 1.5
    bar.show_progress("Opening 500 of 20,000 images", 500, 20_000)
    clock[0] = 1.8  # 0.3 s for 19,000 images: 8 ms for the last 500
    bar.show_progress("Opening 19,500 of 20,000 images", 19_500, 20_000)
    assert bar.label.text() == "Opening 19,500 of 20,000 images · under a second left"
