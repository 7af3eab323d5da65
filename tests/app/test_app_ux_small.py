"""Small defects of the shell: Depth reachable from the keyboard in annotation mode too (the digits
and [ ] serve the classes and the cell level there), a tooltip on every dock button, the status
bar's word after an unreadable autosave, and the image made current after a Remove under a filter.
"""
from __future__ import annotations

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


def dock_buttons(win):
    """Every push / tool / radio / check button of the docks (the title bar's float and close buttons
    are Qt's own)."""
    for dock in (win.images_dock, win.layers_dock, win.explore_dock, win.annotate_dock, win.finetune_dock):
        for button in dock.widget().findChildren(QtWidgets.QAbstractButton):
            if button.parent() is not dock:
                yield dock.windowTitle(), button


def test_every_dock_button_says_what_it_does_and_its_key(qtbot, window, model_path, samples):
    annotating(qtbot, window, model_path, [samples[0]])  # the annotate panel's buttons built and shown
    missing = [(title, button.text() or button.metaObject().className()) for title, button in dock_buttons(window)
               if not button.toolTip().strip() and button.metaObject().className() != "QTableCornerButton"]
    assert not missing  # a table's corner is Qt's own select-all, no action of the app
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
