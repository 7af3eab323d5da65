"""Undo as a demanding annotator uses it (offscreen, the real shortcuts through QTest): Ctrl+Z with
the mouse button still down, the menu naming the step it undoes, another writer's save arriving
during a stroke, and the undo history kept within its memory budget, oldest steps first."""
from __future__ import annotations

import gc
import weakref

import numpy as np
from PySide6 import QtCore, QtWidgets
from PySide6.QtTest import QTest

from qgn_studio.tools import commands
from studio_steps import WAIT_MS, annotating, drag, paint, send_mouse, wait_for_image

SAMPLE_COUNT, SAMPLE_SIZE = 2, (64, 96)
WINDOW_SIZE = (1200, 800)
CTRL = QtCore.Qt.KeyboardModifier.ControlModifier
MOVE, PRESS, RELEASE = (QtCore.QEvent.Type.MouseMove, QtCore.QEvent.Type.MouseButtonPress,
                        QtCore.QEvent.Type.MouseButtonRelease)


def keys(win, key, modifiers=CTRL):
    QTest.keyClick(win, key, modifiers)
    QtWidgets.QApplication.processEvents()


def another_window_saves(qtbot, first, second) -> None:
    """``first`` paints image 0 and saves it; ``second``'s watch sees the save and acts on it."""
    paint(first, 0, 1, [(1, 1), (40, 1)])
    with qtbot.waitSignal(first.projects.saved, timeout=WAIT_MS):
        first.projects.save()
    first.jobs.wait_idle()
    second.projects.check_project_on_disk()  # its watch
    second.jobs.wait_idle()
    QtWidgets.QApplication.processEvents()


def test_ctrl_z_with_the_button_still_down_undoes_that_stroke(qtbot, window, model_path, samples):
    """Ctrl+Z in the middle of a stroke ends the stroke and undoes it; before, it undid the step
    before (writing its old pixels over the stroke's) and the stroke's push then cut that step from
    the history: undoing everything no longer gave the start back."""
    session = annotating(qtbot, window, model_path, [samples[0]])
    tools = window.annotator.tools
    start = session.label.copy()
    tools.set_level(2)
    tools.set_class(4)
    drag(window, [(5.5, 5.5), (60.5, 5.5)])
    first = session.label.copy()
    tools.set_class(6)
    send_mouse(window, PRESS, 5.5, 5.5)
    send_mouse(window, MOVE, 30.5, 5.5)
    keys(window, QtCore.Qt.Key.Key_Z)
    np.testing.assert_array_equal(session.label, first)  # the stroke under way is what went
    send_mouse(window, MOVE, 60.5, 5.5)  # the button is still down: nothing more is painted
    send_mouse(window, RELEASE, 60.5, 5.5)
    np.testing.assert_array_equal(session.label, first)
    keys(window, QtCore.Qt.Key.Key_Z)
    np.testing.assert_array_equal(session.label, start)
    keys(window, QtCore.Qt.Key.Key_Y)
    np.testing.assert_array_equal(session.label, first)
    keys(window, QtCore.Qt.Key.Key_Z, CTRL | QtCore.Qt.KeyboardModifier.ShiftModifier)
    assert (session.label[4:8, 4:32] == 6).all(), "redo gives the part of the stroke painted before Ctrl+Z"


def test_the_menu_names_the_step_and_is_off_with_nothing_to_undo(qtbot, window, model_path, samples):
    session = annotating(qtbot, window, model_path, samples)
    annotator = window.annotator
    undo, redo = annotator.undo_action, annotator.redo_action
    assert not undo.isEnabled() and not redo.isEnabled() and undo.text() == "&Undo"
    annotator.tools.set_tool("fill")
    annotator.tools.set_class(4)
    drag(window, [(10.5, 40.5)])
    step = session.undo.command(0).text()
    assert step.startswith("Fill ") and undo.text() == f"&Undo {step}" and undo.isEnabled()
    keys(window, QtCore.Qt.Key.Key_Z)
    assert undo.text() == "&Undo" and not undo.isEnabled()
    assert redo.text() == f"&Redo {step}" and redo.isEnabled()
    window.step_image(1)  # another image, nothing done there yet: nothing to undo or redo
    wait_for_image(qtbot, window, samples[1])
    assert undo.text() == "&Undo" and redo.text() == "&Redo" and not undo.isEnabled() and not redo.isEnabled()
    window.step_image(-1)
    wait_for_image(qtbot, window, samples[0])
    assert redo.text() == f"&Redo {step}" and redo.isEnabled()


def test_another_writers_save_during_a_stroke_keeps_the_stroke(qtbot, windows, samples, model_path, tmp_path):
    """A stroke under way on a map without unsaved edits when another window saves that image:
    the map is not read again under the stroke (before, the session went mid-stroke, the stroke
    was lost and its push failed on a deleted undo stack); the stroke is an unsaved edit."""
    from test_app_project_concurrency import two_windows

    first, second = two_windows(qtbot, windows, samples, model_path, tmp_path / "p")
    second.annotator.set_mode(True)
    wait_for_image(qtbot, second, samples[0])  # loaded and predicted: nothing else ends the stroke
    second.jobs.wait_idle()
    session = second.docs[0].annotation
    tools = second.annotator.tools
    tools.set_level(0)
    tools.set_class(3)
    tools.press(1.5, 50.5)
    tools.move(30.5, 50.5)
    another_window_saves(qtbot, first, second)
    tools.move(60.5, 50.5)
    tools.release()
    assert second.docs[0].annotation is session
    assert (session.label[50, 1:61] == 3).all() and session.dirty and session.undo.count() == 1


def fill_steps(window, session, count):
    """``count`` clicks of the fill tool at the top-left pixel of a uniform map, alternating two
    classes: each changes every pixel. The maps after each step, the start first, and weak
    references to the values each step holds."""
    tools = window.annotator.tools
    tools.set_tool("fill")
    maps, held = [session.label.copy()], []
    for i in range(count):
        tools.set_class(1 + i % 2)
        drag(window, [(0.5, 0.5)])
        held.append(weakref.ref(session.undo.command(session.undo.count() - 1).edit.after))
        QtWidgets.QApplication.processEvents()  # the budget is kept on the next turn
        maps.append(session.label.copy())
    return maps, held


def test_the_undo_history_keeps_within_its_budget_oldest_steps_first(qtbot, window, model_path, samples,
                                                                      monkeypatch):
    """Past the budget the oldest steps go — the other image's (edited earlier) first, then this
    image's, never its newest — their memory is freed, the kept steps still undo and redo exactly,
    and the bottom of the trimmed log is not taken for the map the image started from."""
    first = annotating(qtbot, window, model_path, samples)
    window.annotator.start_from("empty")
    window.jobs.wait_idle()
    qtbot.waitUntil(lambda: first.undo.count() == 1, timeout=WAIT_MS)
    fill_steps(window, first, 2)
    step_bytes = first.undo.command(first.undo.count() - 1).nbytes
    monkeypatch.setattr(commands, "UNDO_BUDGET_BYTES", 5 * step_bytes, raising=False)
    watched = [weakref.ref(first.undo.command(i).edit.after) for i in range(first.undo.count())]

    window.step_image(1)
    wait_for_image(qtbot, window, samples[1])
    qtbot.waitUntil(lambda: window.current.annotation is not None, timeout=WAIT_MS)
    second = window.current.annotation
    window.annotator.start_from("empty")
    window.jobs.wait_idle()
    qtbot.waitUntil(lambda: second.undo.count() == 1, timeout=WAIT_MS)
    maps, held = fill_steps(window, second, 14)
    assert first.undo.count() == 0, "the image edited longest ago gives its steps first"
    assert first.dirty, "its map is still not the one it started from"
    gc.collect()
    assert all(ref() is None for ref in watched), "the dropped steps' memory is freed"
    assert commands.undo_bytes(first.undo) + commands.undo_bytes(second.undo) <= 5 * step_bytes
    kept = second.undo.count()
    assert 1 <= kept < 15 and second.undo.index() == kept
    assert all(ref() is None for ref in held[:14 - kept]) and all(ref() is not None for ref in held[14 - kept:])
    assert window.annotator.panel.history.model().rowCount() == kept + 1  # the history view follows
    for back in range(1, kept + 1):  # the newest steps stayed: each undo gives the map before it
        window.annotator.undo_action.trigger()
        np.testing.assert_array_equal(second.label, maps[-1 - back])
    assert not window.annotator.undo_action.isEnabled() and second.dirty
    while second.undo.canRedo():
        window.annotator.redo_action.trigger()
    np.testing.assert_array_equal(second.label, maps[-1])


def test_edits_undone_back_to_the_saved_map_can_be_redone_after_another_writers_save(
        qtbot, windows, samples, model_path, tmp_path):
    """Edits undone back to the saved step live only in the redo list (their autosave goes, the map
    is "saved"); another window then saves the image. Before, the watch read the map again and the
    redo list went with the old one: Ctrl+Y gave nothing back. Now the map is kept while it can be
    redone; the redone edits save over the other window's, which is kept in conflicts/."""
    from test_app_project_concurrency import two_windows

    folder = tmp_path / "p"
    first, second = two_windows(qtbot, windows, samples, model_path, folder)
    second.annotator.set_mode(True)
    wait_for_image(qtbot, second, samples[0])
    second.jobs.wait_idle()
    session = second.docs[0].annotation
    paint(second, 0, 3, [(1, 50), (60, 50)])
    mine = session.label.copy()
    second.annotator.undo_action.trigger()
    assert not session.dirty and session.undo.canRedo()
    another_window_saves(qtbot, first, second)
    second.jobs.wait_idle()
    keys(second, QtCore.Qt.Key.Key_Y)
    assert second.docs[0].annotation is session
    np.testing.assert_array_equal(session.label, mine)
    with qtbot.waitSignal(second.projects.saved, timeout=WAIT_MS):
        second.projects.save()
    second.jobs.wait_idle()
    assert list((folder / "conflicts").iterdir()), "the other window's save is kept"


def test_discarding_unsaved_edits_keeps_even_the_latest_in_discarded(qtbot, windows, samples, model_path, tmp_path):
    """Closing the images with "Discard" moves their autosaves to discarded/ (a wrong click is
    undone from there). Before, edits newer than the last autosave (made in the last two seconds)
    were in no file at all; now they are autosaved first, so discarded/ holds the map as it was."""
    from qgn.quadtree.label_io import read_label_file

    folder = tmp_path / "p"
    win = windows(folder=folder)
    session = annotating(qtbot, win, model_path, [samples[0]])
    paint(win, 2, 1, [(5.5, 5.5), (60.5, 5.5)])
    with qtbot.waitSignal(win.projects.saved, timeout=WAIT_MS):
        win.projects.save()
    win.jobs.wait_idle()
    win.projects.timer.setInterval(60_000)  # the last edits are younger than the autosave delay
    paint(win, 2, 3, [(5.5, 40.5), (60.5, 40.5)])
    mine = session.label.copy()
    assert win.projects.confirm_discard("closing the images")  # the windows fixture answers "discard"
    win.jobs.wait_idle()
    kept = list(folder.rglob("discarded/*.qgt"))
    assert len(kept) == 1, "the discarded edits are kept"
    np.testing.assert_array_equal(read_label_file(kept[0], win.annotator.classes), mine)


def test_ctrl_z_outside_annotation_mode_says_what_it_undid(qtbot, window, model_path, samples):
    """Outside annotation mode the annotation is hidden, yet Ctrl+Z still undoes its last step
    (the menu is there): before, it changed the hidden map without a word."""
    session = annotating(qtbot, window, model_path, [samples[0]])
    paint(window, 2, 1, [(5.5, 5.5), (60.5, 5.5)])
    step = session.undo.command(0).text()
    window.annotator.set_mode(False)
    said = []
    window.workspace.status.connect(lambda text, timeout: said.append(text))
    keys(window, QtCore.Qt.Key.Key_Z)
    assert session.undo.index() == 0
    assert said and step in said[-1] and "annotation mode" in said[-1]
    keys(window, QtCore.Qt.Key.Key_Y)
    assert session.undo.index() == 1 and said[-1].startswith("Redone") and step in said[-1]
