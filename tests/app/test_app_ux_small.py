"""Small defects of the shell: Depth reachable from the keyboard in annotation mode too (the digits
and [ ] serve the classes and the cell level there), a tooltip on every dock button, the status
bar's word after an unreadable autosave, and the image made current after a Remove under a filter.
"""
from __future__ import annotations

import pytest
from PySide6 import QtCore, QtGui, QtWidgets
from PySide6.QtTest import QTest
from studio_steps import annotating

SAMPLE_COUNT = 2  # the samples fixture
WINDOW_SIZE = (1200, 800)

Key, Mod = QtCore.Qt.Key, QtCore.Qt.KeyboardModifier


def depth(win) -> int:
    return win.explore.setting().depth


def test_depth_keys_work_in_annotation_mode_and_the_digits_still_pick_classes(qtbot, window, model_path, samples):
    annotating(qtbot, window, model_path, [samples[0]])
    window.explore.set_depth(2)
    for mode in (True, False):
        window.annotator.set_mode(mode)
        QTest.keyClick(window, Key.Key_BracketLeft, Mod.AltModifier)
        assert depth(window) == 3, mode
        QTest.keyClick(window, Key.Key_BracketRight, Mod.AltModifier)
        assert depth(window) == 2, mode
    window.annotator.set_mode(True)
    QTest.keyClick(window, Key.Key_3)
    assert window.annotator.tools.class_id == 2  # the class key, not Depth Q3
    assert depth(window) == 2
    window.annotator.set_mode(False)
    QTest.keyClick(window, Key.Key_4)
    assert depth(window) == 4  # outside the mode the digits set the depth, as before
    keys = {text: names for _section, names, text in window.shortcut_rows}
    alt = QtGui.QKeySequence("Alt+[").toString(QtGui.QKeySequence.SequenceFormat.NativeText)
    assert alt in keys["Coarser (depth +1)"]  # listed in the shortcut help (F1)


def unseen_corner(button) -> bool:
    """A table's corner button where the table shows no row header (so no corner either)."""
    table = button.parentWidget()
    return button.metaObject().className() == "QTableCornerButton" and isinstance(table, QtWidgets.QTableView) \
        and table.verticalHeader().isHidden()


def dock_buttons(win):
    """Every push / tool / radio / check button of the docks, their title bars' float and close buttons
    (Qt's own) included."""
    for dock in (win.images_dock, win.layers_dock, win.explore_dock, win.annotate_dock, win.finetune_dock):
        for button in dock.findChildren(QtWidgets.QAbstractButton):
            yield dock.windowTitle(), button


def test_the_docks_title_buttons_say_what_they_do(qtbot, window):
    """Qt gives a dock's float and close buttons no tooltip; the float button's changes once floating."""
    dock = window.layers_dock
    buttons = {b.objectName(): b for b in dock.findChildren(QtWidgets.QAbstractButton) if b.parent() is dock}
    assert "Float the Layers panel" in buttons["qt_dockwidget_floatbutton"].toolTip()
    assert "Close the Layers panel" in buttons["qt_dockwidget_closebutton"].toolTip()
    dock.setFloating(True)
    assert "back in the window" in buttons["qt_dockwidget_floatbutton"].toolTip()
    dock.setFloating(False)
    assert "Float the Layers panel" in buttons["qt_dockwidget_floatbutton"].toolTip()


def test_every_dock_button_says_what_it_does_and_its_key(qtbot, window, model_path, samples):
    annotating(qtbot, window, model_path, [samples[0]])  # the annotate panel's buttons built and shown
    missing = [(title, button.text() or button.metaObject().className()) for title, button in dock_buttons(window)
               if not button.toolTip().strip() and not unseen_corner(button)]
    assert not missing  # the fine-tune score table's corner (Qt's own select-all) had none
    explore, panel = window.explore, window.annotator.panel
    keys = {"all": "Alt+A", "pc": "Alt+C", "pc_tau": "Alt+T", "uncertainty": "Alt+U", "gtc": "Alt+G"}
    for scheme, key in keys.items():  # the keys of Explore → Propagation
        assert key in explore.scheme_buttons[scheme].toolTip(), scheme
        assert QtGui.QKeySequence(key) in next(a for a in window.actions()
                                               if a.text().startswith("Propagation: ")
                                               and explore.scheme_buttons[scheme].text() in a.text()).shortcuts()
    assert all("[" in button.toolTip() and "]" in button.toolTip() for button in panel.level_buttons.values())
    assert "Ctrl+D" in panel.done.toolTip()
    assert "Ctrl+Return" in panel.done_next.toolTip()
    assert "(C)" in panel.show_changed.toolTip()


def test_every_dock_slider_and_list_box_says_what_it_does(qtbot, window, model_path, samples):
    """The docks' sliders, list boxes, fields and spin boxes have a tooltip, their own or that of
    a widget they sit in (Qt shows the nearest one): the Layers dock's opacity slider and the
    Explore dock's score choice (mIoU / pixel accuracy) had none."""
    annotating(qtbot, window, model_path, [samples[0]])
    kinds = (QtWidgets.QAbstractSlider, QtWidgets.QComboBox, QtWidgets.QLineEdit, QtWidgets.QAbstractSpinBox)
    missing = []
    for dock in (window.images_dock, window.layers_dock, window.explore_dock, window.annotate_dock,
                 window.finetune_dock):
        for control in dock.findChildren(QtWidgets.QWidget):
            if not isinstance(control, kinds) or isinstance(control, QtWidgets.QScrollBar):
                continue
            holder = control
            while holder is not dock and not holder.toolTip().strip():
                holder = holder.parentWidget()
            if holder is dock:
                missing.append((dock.windowTitle(), control.metaObject().className(), control.objectName()))
    assert not missing, missing


def test_the_status_bar_after_an_unreadable_autosave_speaks_of_the_autosave(qtbot, windows, samples, model_path,
                                                                             tmp_path):
    """The restore of an autosave cut short fails; annotating the image then said "its saved
    annotation cannot be read … Fix the classes" - there was no saved annotation, nor a class at fault."""
    from studio_steps import crashed_with_autosave_cut_short, status_on_annotating_the_unreadable

    crashed_with_autosave_cut_short(qtbot, windows, samples, model_path, tmp_path / "cut")
    second = windows(recover="restore")
    text = status_on_annotating_the_unreadable(qtbot, second, [], model_path)
    assert "autosave cannot be read" in text and "class" not in text and "saved annotation" not in text, text
    assert "kept" in text and "Annotate panel" in text, text  # what became of it, and what to do
    assert second.docs[0].annotation is None  # still not started over silently
    # the short part first: what happened and what to do fit a 1280×800 status bar (the reason, a long
    # path, may be cut there: the banner has the whole text)
    second.resize(1264, 752)
    QtWidgets.QApplication.processEvents()
    bar = second.statusBar()
    short = text[: text.index(" (")]
    assert short.endswith("to edit the image") and "Annotate panel" in short and "nothing was restored" in short
    room = bar.width() - sum(w.width() for w in bar.findChildren(QtWidgets.QLabel) if w.isVisible()) - 24
    assert bar.fontMetrics().horizontalAdvance(short) <= room, (short, room)
    assert "truncated" in text  # the reason (the banner too: "the autosave cannot be read: …")
    assert "autosave cannot be used" in second.annotator.panel.status.text()  # not "Waiting for the prediction"


def cut_short(path) -> None:
    path.write_bytes(path.read_bytes()[:-9])  # a file damaged: no class at fault


def with_other_classes(path) -> None:
    """Rewrite the .qgt at ``path`` with its classes renamed: it reads, but names classes the project lacks."""
    import dataclasses

    from qgn.quadtree.qgt import read_qgt, write_qgt

    qt, classes = read_qgt(path)
    write_qgt(path, qt, dataclasses.replace(classes, names=tuple(f"other {n}" for n in classes.names)))


@pytest.mark.parametrize("damage, classes_at_fault", [(cut_short, False), (with_other_classes, True)])
def test_the_status_bar_gives_class_advice_on_a_saved_annotation_only_when_the_classes_are_the_cause(
        qtbot, windows, samples, model_path, tmp_path, damage, classes_at_fault):
    """A saved annotation cut short said "… Fix the classes" too, as one whose classes the project
    lacks does (the fix there): the reason is told apart."""
    from qgn.project import Project
    from studio_steps import WAIT_MS, paint, start_annotating, status_on_annotating_the_unreadable

    folder = tmp_path / "unreadable"
    first = windows(folder=folder)
    start_annotating(qtbot, first, [samples[0]], model_path)
    assert first.projects.new_project()
    paint(first, 3, 6, [(4, 4), (60, 4)])
    with qtbot.waitSignal(first.projects.saved, timeout=WAIT_MS):
        assert first.projects.save()
    first.jobs.wait_idle()
    first.close()
    project = Project.open(folder)
    damage(project.annotation_path(project.images[0]))

    second = windows()
    text = status_on_annotating_the_unreadable(qtbot, second, [folder], model_path)
    assert "saved annotation cannot be read" in text and "kept" in text and "Annotate panel" in text, text
    assert ("Fix the classes" in text) == classes_at_fault, text
    if not classes_at_fault:
        assert "class" not in text.split("(")[0], text  # the reason (in brackets) may name the file only
    assert second.docs[0].annotation is None  # not started over silently


def listed(win) -> list[str]:
    return [win.docs[row].name for row in win.images.visible_rows()]


def three_images(qtbot, win, samples, tmp_path) -> None:
    """keep_a, hide_b, keep_c listed in that order, the list filtered to "keep", keep_a current."""
    import shutil

    folder = tmp_path / "three"
    folder.mkdir()
    for name, sample in (("keep_a.png", samples[0]), ("hide_b.png", samples[1]), ("keep_c.png", samples[0])):
        shutil.copy(sample, folder / name)
    win.open_paths([str(folder / n) for n in ("keep_a.png", "hide_b.png", "keep_c.png")])
    qtbot.waitUntil(lambda: len(win.docs) == 3 and win.current is not None, timeout=10_000)
    win.images.set_filter("all", "keep")
    win.images.set_current(0)
    qtbot.waitUntil(lambda: win.current is not None and win.current.name == "keep_a.png", timeout=10_000)
    assert listed(win) == ["keep_a.png", "keep_c.png"]
    win.projects.ask_remove = lambda names, project: True


def test_after_a_remove_under_a_filter_the_next_current_image_passes_it(qtbot, window, samples, tmp_path):
    three_images(qtbot, window, samples, tmp_path)
    window.remove_current_images()
    qtbot.waitUntil(lambda: [d.name for d in window.docs] == ["hide_b.png", "keep_c.png"], timeout=10_000)
    QtWidgets.QApplication.processEvents()
    assert window.current is not None and window.current.name == "keep_c.png"  # not hide_b, the row below
    assert listed(window) == ["keep_c.png"]  # hide_b is not listed again


def test_after_a_remove_of_the_last_image_a_filter_shows_none_is_current(qtbot, window, samples, tmp_path):
    three_images(qtbot, window, samples, tmp_path)
    window.images.set_filter("all", "keep_a")
    assert listed(window) == ["keep_a.png"]
    window.remove_current_images()
    qtbot.waitUntil(lambda: len(window.docs) == 2, timeout=10_000)
    QtWidgets.QApplication.processEvents()
    assert window.current is None and window.images.current() == -1
    assert listed(window) == []  # the filter shows nothing: nothing hidden is listed again
    assert window.canvas.doc is None  # nor is the removed image left on screen
    assert "filter" in window.images.summary.text() or "shown" in window.images.summary.text()
