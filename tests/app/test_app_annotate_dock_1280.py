"""The Annotate dock on a 1280×800 screen (the smallest size supported), with eleven classes (the
bundled camvid model's): every control an annotator uses on each image - the tools, the cell
sizes, the class list and its edits, Start over, Show changes, Save, Done and Done ▸ next - and
the History show without scrolling. (The controls needed ~780 px and got ~440: they scrolled
342 px, Start from and Review below the fold.)"""
from __future__ import annotations

import pytest
from PySide6 import QtCore, QtWidgets

from qgn_studio.panels.annotate import ROW
from studio_steps import WAIT_MS, annotating, paint

WINDOW_SIZE = (1264, 752)  # what fitted_size leaves of a 1280×800 screen (frame, title bar)
SAMPLE_COUNT = 6


def camvid_model(tmp_path):
    """An untrained tiny model over the bundled camvid model's eleven classes (the tallest class list
    the app ships; the bundled model itself is slower to load)."""
    from qgn.resources import bundled_models
    from qgn_studio.testing import make_dev_model

    classes = {m.name: m.classes for m in bundled_models()}["camvid"]
    assert classes.num_classes == 11
    return make_dev_model(tmp_path / "camvid.safetensors", classes=classes)


def shown_whole(widget: QtWidgets.QWidget, panel: QtWidgets.QWidget) -> bool:
    """Whether ``widget`` shows whole: visible, inside the panel, and inside the controls' viewport
    (as scrolled now) when it lies in the controls."""
    if not widget.isVisible():
        return False
    rect = QtCore.QRect(widget.mapTo(panel, QtCore.QPoint(0, 0)), widget.size())
    if not panel.rect().contains(rect):
        return False
    viewport = panel.controls.viewport()
    if viewport.isAncestorOf(widget):
        inside = QtCore.QRect(widget.mapTo(viewport, QtCore.QPoint(0, 0)), widget.size())
        return viewport.rect().contains(inside)
    return True


def key_controls(panel) -> dict[str, QtWidgets.QWidget]:
    """Every control an annotator uses on each image, by name."""
    return {
        **{f"tool {name}": button for name, button in panel.tool_buttons.items()},
        **{f"cell size {1 << level}": button for level, button in panel.level_buttons.items()},
        "find a class": panel.class_search, "class list": panel.classes,
        **{f"class {name}": button for name, button in panel.class_buttons.items()},
        "start over from": panel.start_button, "show changes": panel.show_changed, "save": panel.save,
        "changes summary": panel.changed_text, "done": panel.done, "done and next": panel.done_next,
        "history": panel.history,
    }


def test_the_annotate_docks_controls_show_without_scrolling(qtbot, window, samples, tmp_path):
    annotating(qtbot, window, camvid_model(tmp_path), samples[:1])
    window.annotate_dock.raise_()
    QtWidgets.QApplication.processEvents()
    qtbot.wait(100)
    panel = window.annotator.panel
    assert window.annotator.classes.num_classes == 11
    assert panel.visibleRegion().boundingRect().size() == panel.size()  # the dock shows the whole panel
    assert panel.controls.verticalScrollBar().maximum() == 0
    hidden = [name for name, widget in key_controls(panel).items() if not shown_whole(widget, panel)]
    assert not hidden, hidden
    table = panel.classes
    rows_shown = table.viewport().height() // table.rowHeight(0)
    assert rows_shown >= 5, rows_shown  # the class list scrolls itself, from its sixth row on


ALL_TOOLS = ["paint", "fill", "erase", "pick", "superpixel", "snap", "wand"]


@pytest.mark.parametrize("size", [(256, 384), (1024, 2048)], ids=["samples-384x256", "cityscapes-2048x1024"])
@pytest.mark.parametrize("tool", ALL_TOOLS)
def test_every_tool_leaves_the_controls_unscrolled(qtbot, window, tmp_path, tool, size):
    """With each tool chosen (the image-aware ones show a note; the snap brush its "Snap to" row)
    and a realistic change summary (every pixel changed: "98,304 px … 6,144 cells of 4×4 px" on the
    bundled samples' 384×256, seven digits on a Cityscapes frame), nothing scrolls and every key
    control shows whole. (The snap brush's two-line note and row plus the summary's second line
    scrolled the controls 12 px, "Start from…" cut in half, the class list at its three rows.) The
    summary stays one line, its whole text in its tooltip."""
    from qgn_studio.testing import write_samples

    paths = write_samples(tmp_path / "data", 1, size)
    annotating(qtbot, window, camvid_model(tmp_path), paths)
    window.annotate_dock.raise_()
    panel = window.annotator.panel
    assert sorted(panel.tool_buttons) == sorted(ALL_TOOLS)
    window.annotator.start_from("empty")  # every pixel differs from the prediction: the longest counts
    pixels = size[0] * size[1]
    level = window.annotator.tools.level
    cells = pixels >> (2 * level)
    whole = f"Changed vs prediction: {pixels:,} px (100.0 %) in {cells:,} cells of {1 << level}×{1 << level} px"
    qtbot.waitUntil(lambda: f"<b>{cells:,}</b> cells" in panel.changed_text.text(), timeout=30000)
    panel.tool_buttons[tool].click()
    assert panel.tool_buttons[tool].isChecked() and window.annotator.tools.tool == tool
    QtWidgets.QApplication.processEvents()
    qtbot.wait(100)
    assert panel.controls.verticalScrollBar().maximum() == 0
    hidden = [name for name, widget in key_controls(panel).items() if not shown_whole(widget, panel)]
    assert not hidden, hidden
    line = panel.changed_text.fontMetrics().lineSpacing()
    assert panel.changed_text.height() < 2 * line  # one line
    assert f"<b>{pixels:,} px</b>" in panel.changed_text.text()  # the whole summary, as set
    assert panel.changed_text.toolTip() == whole  # and in the tooltip
    table = panel.classes
    assert table.viewport().height() // table.rowHeight(0) >= 4  # the class list keeps four rows
    if tool == "snap":
        assert not panel.snap_row.isHidden() and panel.tool_note.isHidden()
        assert "Shift + drag" in panel.snap_row.toolTip()  # the note, as the row's tooltip


def test_the_panels_save_and_start_over_act_as_the_menus(qtbot, window, samples, model_path, tmp_path):
    annotating(qtbot, window, model_path, samples[:1])
    paint(window, 2, 3, [(10, 10), (40, 20)])
    panel = window.annotator.panel
    assert window.projects.unsaved()
    window.projects.ask_folder = lambda title, new: tmp_path / "project"  # Ctrl+S without a project asks one
    with qtbot.waitSignal(window.projects.saved, timeout=WAIT_MS):
        panel.save.click()  # as File → Save annotations (Ctrl+S)
    assert not window.projects.unsaved()
    menu = panel.start_button.menu()
    assert [action.text() for action in menu.actions()] == [
        "Prediction", "Ground truth", "Import mask…", "Empty", "Head", "Previous"]
    assert all(menu.actions()[i] is panel.start_buttons[s] for i, s in enumerate(panel.start_buttons))
    assert panel.start_buttons["truth"].isEnabled()  # the samples have ground truth
    with qtbot.waitSignal(panel.start_requested, timeout=1000) as started:
        panel.start_buttons["truth"].trigger()
    assert started.args == ["truth"]


def test_the_images_list_shows_four_whole_rows(qtbot, window, samples):
    """Four whole rows (3½ showed: its spacing and the Layers dock took the rest of the column)."""
    window.start(samples, None)  # six rows
    qtbot.waitUntil(lambda: window.images.count() == 6, timeout=WAIT_MS)
    QtWidgets.QApplication.processEvents()
    qtbot.wait(50)
    view = window.images.list
    rows = [view.visualRect(view.model().index(row, 0)) for row in range(4)]
    assert all(view.viewport().rect().contains(rect) for rect in rows), (view.viewport().height(), rows[-1])


def test_at_1280x720_the_history_yields_to_the_controls(qtbot, window, samples, tmp_path):
    """On a 1280×720 screen (window 1264×672) the History gives the controls its third row: with
    the paint tool nothing scrolls (33 px did, "Start from…" below the fold), the History keeps two
    rows and its title, and the two panes do not overlap (set amid a layout, the splitter's sizes
    overlapped them by 18 px, the History's title hidden under the controls)."""
    annotating(qtbot, window, camvid_model(tmp_path), samples[:1])
    window.annotate_dock.raise_()
    panel = window.annotator.panel
    window.annotator.start_from("empty")
    qtbot.waitUntil(lambda: "cells of" in panel.changed_text.text(), timeout=30000)
    window.resize(1264, 672)  # (made smaller while annotating)
    QtWidgets.QApplication.processEvents()
    qtbot.wait(100)
    assert panel.controls.verticalScrollBar().maximum() == 0
    assert shown_whole(panel.start_button, panel)
    history_box = panel.splitter.widget(1)
    assert panel.controls.geometry().bottom() < history_box.geometry().top()  # side by side, not overlapping
    assert history_box.height() >= history_box.minimumSizeHint().height()  # its title and two rows show
    assert panel.history.height() >= 2 * ROW
