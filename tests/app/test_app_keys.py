"""Keys and clicks that work on real window managers (offscreen part; tests/app/test_app_x11_input.py
sends real X11 events): no two shortcuts that an X11 keyboard makes one key press, brush keys,
Ctrl + click pick, a pick with the Pick tool is one action, class keys that stay with their class
after a merge or delete, and a class search that reaches every class.
"""
from __future__ import annotations

import pytest

from PySide6 import QtCore, QtGui, QtWidgets
from PySide6.QtTest import QTest
from studio_steps import WAIT_MS, annotating, drag

SAMPLE_COUNT = 2  # the samples fixture
WINDOW_SIZE = (1200, 800)

# US layout: the unshifted key of each shifted symbol (what X11 reports with Shift held).
SHIFTED = dict(zip('~!@#$%^&*()_+{}|:"<>?', "`1234567890-=[]\\;',./"))


def x11_presses(sequence: QtGui.QKeySequence) -> set[str]:
    """The physical key presses (modifiers + unshifted key) that can trigger ``sequence`` on X11,
    where Qt matches a shifted symbol both by itself and with Shift + its unshifted key."""
    text = sequence.toString(QtGui.QKeySequence.SequenceFormat.PortableText)
    *mods, key = text.split("+") if text != "+" and not text.endswith("++") else (text[:-1].rstrip("+").split("+")
                                                                                  + ["+"])
    mods = {m for m in mods if m}
    if key in SHIFTED:
        mods, key = mods | {"Shift"}, SHIFTED[key]
    return {"+".join(sorted(mods) + [key.upper()])}


def active_shortcuts(win):
    return [(a, s) for a in win.actions() if a.isEnabled() for s in a.shortcuts()]


@pytest.mark.parametrize("mode", [False, True])
def test_no_two_shortcuts_are_one_x11_key_press(qtbot, window, model_path, samples, mode):
    """An action listing Shift+] and } (or two actions sharing a press) is "ambiguous" on X11:
    neither fires. Every enabled shortcut must be its own key press, in and out of annotation mode."""
    annotating(qtbot, window, model_path, [samples[0]])
    window.annotator.set_mode(mode)
    seen = {}
    for action, sequence in active_shortcuts(window):
        for press in x11_presses(sequence):
            other = seen.setdefault(press, (action, sequence))
            assert other[0] is action and other[1] == sequence or other == (action, sequence), (
                f"{press}: {other[0].text()!r} ({other[1].toString()}) and {action.text()!r} ({sequence.toString()})")


def test_brush_keys_and_wheel(qtbot, window, model_path, samples):
    annotating(qtbot, window, model_path, [samples[0]])
    tools = window.annotator.tools
    Key, Mod = QtCore.Qt.Key, QtCore.Qt.KeyboardModifier
    QTest.keyClick(window, Key.Key_BracketRight, Mod.ControlModifier)
    assert tools.radius == 1
    QTest.keyClick(window, Key.Key_BracketRight, Mod.ShiftModifier)  # as Windows and macOS report Shift+]
    assert tools.radius == 2
    QTest.keyClick(window, Key.Key_BracketLeft, Mod.ControlModifier)
    QTest.keyClick(window, Key.Key_BracketLeft, Mod.ShiftModifier)
    assert tools.radius == 0
    QTest.keyClick(window, Key.Key_BracketRight)  # plain ] still means finer cells
    assert tools.radius == 0 and tools.level == 1


def test_ctrl_click_picks_and_the_pick_tool_is_one_action(qtbot, window, model_path, samples):
    session = annotating(qtbot, window, model_path, [samples[0]])
    tools = window.annotator.tools
    label = session.label
    values = sorted({int(v) for v in label.flat})
    assert len(values) >= 2
    a, b = values[0], values[-1]
    (ya, xa), (yb, xb) = [tuple(int(c[len(c) // 2]) for c in (label == v).nonzero()) for v in (a, b)]
    tools.set_class(b)
    tools.set_tool("erase")
    tools.set_tool("pick")
    drag(window, [(xa + 0.5, ya + 0.5)])
    assert tools.class_id == a and tools.tool == "erase", "the Pick tool picks once, then the tool before is back"
    tools.set_tool("paint")
    before = session.label.copy()
    drag(window, [(xb + 0.5, yb + 0.5)], modifiers=QtCore.Qt.KeyboardModifier.ControlModifier)
    assert tools.class_id == b and tools.tool == "paint"
    assert session.undo.count() == 0 and (session.label == before).all(), "a Ctrl + click paints nothing"


def test_class_keys_stay_with_their_class_after_merge_and_delete(qtbot, window, model_path, samples):
    annotating(qtbot, window, model_path, [samples[0]])
    annotator = window.annotator
    names = list(annotator.classes.names)  # 8 synthetic classes on keys 1–8
    key_of = {name: annotator.class_keys[i] for i, name in enumerate(names)}
    annotator.remove_class(2, 0)  # merge the third class into the first
    qtbot.waitUntil(lambda: annotator.classes.num_classes == 7, timeout=WAIT_MS)
    annotator.remove_class(0, None)  # delete the first
    qtbot.waitUntil(lambda: annotator.classes.num_classes == 6, timeout=WAIT_MS)
    now = annotator.classes.names
    for class_id, name in enumerate(now):
        assert annotator.class_keys[class_id] == key_of[name], f"{name} moved from key {key_of[name]}"
        QTest.keyClick(window, getattr(QtCore.Qt.Key, f"Key_{key_of[name]}"))
        assert annotator.tools.class_id == class_id, f"key {key_of[name]} no longer chooses {name}"
    table = annotator.panel.classes
    assert [table.item(r, 0).text() for r in range(table.rowCount())] == [key_of[n] for n in now]
    annotator.add_class("new one")
    qtbot.waitUntil(lambda: annotator.classes.num_classes == 7, timeout=WAIT_MS)
    assert annotator.class_keys[6] == key_of[names[0]], "an added class takes the first free key"


def test_class_search_reaches_every_class(qtbot, window, model_path, samples):
    annotating(qtbot, window, model_path, [samples[0]])
    annotator = window.annotator
    for i in range(14):  # 22 classes: most without a key
        annotator.add_class(f"extra class {i:02d}")
    qtbot.waitUntil(lambda: annotator.classes.num_classes == 22, timeout=WAIT_MS)
    assert len(annotator.class_keys) == 10
    QTest.keyClick(window, QtCore.Qt.Key.Key_Slash)
    search = annotator.panel.class_search
    assert search.hasFocus() or QtGui.QGuiApplication.focusObject() is search
    QTest.keyClicks(search, "class 13")
    table = annotator.panel.classes
    shown = [r for r in range(table.rowCount()) if not table.isRowHidden(r)]
    assert [table.item(r, 2).text() for r in shown] == ["extra class 13"]
    QTest.keyClick(search, QtCore.Qt.Key.Key_Return)
    assert annotator.tools.class_id == 21
    assert not any(table.isRowHidden(r) for r in range(table.rowCount())), "Enter clears the search"


def test_escape_leaves_the_class_search_before_any_shortcut_takes_it(qtbot, window, model_path, samples):
    """Esc in the class search did nothing under a real window manager: the window's own Esc
    (cancel the computation) took the key first, so the search kept its text and focus, and the
    next tool key was typed into it ("ro" + E = "roe") instead of choosing the Erase tool."""
    annotating(qtbot, window, model_path, [samples[0]])
    window.canvas.setFocus()
    QTest.keyClick(window, QtCore.Qt.Key.Key_Slash)
    search = window.annotator.panel.class_search
    QTest.keyClicks(search, "ro")
    QTest.keyClick(search, QtCore.Qt.Key.Key_Escape)
    assert search.text() == "" and not search.hasFocus()
    QTest.keyClick(QtWidgets.QApplication.focusWidget() or window, QtCore.Qt.Key.Key_E)
    assert search.text() == "" and window.annotator.tools.tool == "erase"


# --------------------------------------------------------------------------------- the shortcut list
def test_shortcut_list_shows_whole_actions(qtbot, window):
    from qgn_studio.dialogs import ShortcutsDialog

    dialog = ShortcutsDialog(window.shortcut_rows, window)
    qtbot.addWidget(dialog)
    needed = sum(dialog.table.columnWidth(c) for c in range(3))
    assert dialog.width() >= min(needed, 1200 - 60)


def test_a_focused_spin_box_types_numbers_and_leaves_letters_to_the_shortcuts(qtbot, window, model_path, samples):
    """The fine-tune dock's Iterations and Learning rate, focused, swallowed the tools' letters (E
    typed nothing and chose no tool); they pass a letter to its shortcut and keep the digits they
    type, while a line edit (the image list's name filter) keeps every key it types."""
    annotating(qtbot, window, model_path, [samples[0]])
    tools, panel = window.annotator.tools, window.finetuner.panel
    window.finetune_dock.raise_()
    # (the Learning rate types an exponent's E: test_the_learning_rate_types_an_exponent…)
    for box, key, tool in ((panel.iterations, QtCore.Qt.Key.Key_E, "erase"), (panel.lr, QtCore.Qt.Key.Key_F, "fill")):
        tools.set_tool("paint")
        box.setFocus()
        QtWidgets.QApplication.processEvents()
        before = box.lineEdit().text()
        QTest.keyClick(box, key)
        assert tools.tool == tool and box.lineEdit().text() == before, box.toolTip()
    tools.set_class(0)
    panel.iterations.lineEdit().setCursorPosition(0)
    QTest.keyClick(panel.iterations, QtCore.Qt.Key.Key_2)
    assert panel.iterations.lineEdit().text() == "2300" and tools.class_id == 0  # typed, not class 2's key
    tools.set_tool("paint")
    edit = window.images.name_filter
    edit.setFocus()
    QTest.keyClick(edit, QtCore.Qt.Key.Key_E)
    assert edit.text() == "e" and tools.tool == "paint"


@pytest.mark.parametrize("key", [QtCore.Qt.Key.Key_Escape, QtCore.Qt.Key.Key_Return])
def test_esc_or_enter_in_the_name_filter_gives_the_keys_back_to_the_image(qtbot, window, model_path, samples, key):
    """Once a name was typed in the image list's filter, N, P, the tools' letters and the class
    digits were typed into it until the user clicked the image: Esc or Enter leaves it (the filter
    stays) and the next E chooses the eraser."""
    annotating(qtbot, window, model_path, [samples[0]])
    tools, edit = window.annotator.tools, window.images.name_filter
    tools.set_tool("paint")
    edit.setFocus()
    QTest.keyClicks(edit, "scene")
    QTest.keyClick(edit, key)
    assert edit.text() == "scene" and not edit.hasFocus()
    QTest.keyClick(QtWidgets.QApplication.focusWidget() or window, QtCore.Qt.Key.Key_E)
    assert tools.tool == "erase" and edit.text() == "scene"


def test_the_learning_rate_types_an_exponent_and_its_e_chooses_no_tool(qtbot, window, model_path, samples):
    """Typing 1e-3 in the focused Learning rate left "1" and chose the eraser (its E went to the
    shortcuts): the box keeps the e / E it types, reads the exponent, and the tool stays."""
    annotating(qtbot, window, model_path, [samples[0]])
    tools, panel = window.annotator.tools, window.finetuner.panel
    window.finetune_dock.raise_()
    for written, value in (("1e-3", 0.001), ("5E-4", 0.0005), ("0.002", 0.002)):
        tools.set_tool("paint")
        panel.lr.setFocus()
        QtWidgets.QApplication.processEvents()
        panel.lr.lineEdit().selectAll()
        QTest.keyClicks(panel.lr, written)
        assert panel.lr.lineEdit().text() == written and tools.tool == "paint"
        QTest.keyClick(panel.lr, QtCore.Qt.Key.Key_Return)
        assert panel.lr.value() == pytest.approx(value)
