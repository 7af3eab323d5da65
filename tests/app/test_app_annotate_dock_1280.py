"""The Annotate dock on a 1280×800 screen (the smallest size supported), with eleven classes (the
bundled camvid model's): every control an annotator uses on each image - the tools, the cell
sizes, the class list and its edits, Start over, Show changes, Save, Done and Done ▸ next - and
the History show without scrolling. (The controls needed ~780 px and got ~440: they scrolled
342 px, Start from and Review below the fold.)"""
from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from studio_steps import WAIT_MS, annotating, paint

WINDOW_SIZE = (1264, 752)  # what fitted_size leaves of a 1280×800 screen (frame, title bar)


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


def test_the_annotate_docks_controls_show_without_scrolling(qtbot, window, samples, tmp_path):
    annotating(qtbot, window, camvid_model(tmp_path), samples[:1])
    window.annotate_dock.raise_()
    QtWidgets.QApplication.processEvents()
    qtbot.wait(100)
    panel = window.annotator.panel
    assert window.annotator.classes.num_classes == 11
    assert panel.visibleRegion().boundingRect().size() == panel.size()  # the dock shows the whole panel
    assert panel.controls.verticalScrollBar().maximum() == 0
    controls = {
        **{f"tool {name}": button for name, button in panel.tool_buttons.items()},
        **{f"cell size {1 << level}": button for level, button in panel.level_buttons.items()},
        "find a class": panel.class_search, "class list": panel.classes,
        **{f"class {name}": button for name, button in panel.class_buttons.items()},
        "start over from": panel.start_button, "show changes": panel.show_changed, "save": panel.save,
        "done": panel.done, "done and next": panel.done_next, "history": panel.history,
    }
    hidden = [name for name, widget in controls.items() if not shown_whole(widget, panel)]
    assert not hidden, hidden
    table = panel.classes
    rows_shown = table.viewport().height() // table.rowHeight(0)
    assert rows_shown >= 5, rows_shown  # the class list scrolls itself, from its sixth row on


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
