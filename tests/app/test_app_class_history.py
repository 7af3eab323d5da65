"""Class edits keep the image's history: after a merge, delete, add or rename, Ctrl+Z still walks
back every stroke (in the new classes); class changes have undo AND redo; the merge dialog says
how many pixels in how many images change before anything does. And the "unsaved" mark follows
the undo log: undoing back to the saved step is saved again.
"""
from __future__ import annotations

import numpy as np
import pytest

from PySide6 import QtWidgets

from qgn.classes_edit import delete_class, remap_label

from studio_steps import WAIT_MS, annotating, drag

SAMPLE_COUNT = 2  # the samples fixture
WINDOW_SIZE = (1200, 800)

STROKES = [(1, (5.5, 5.5), (40.5, 5.5)), (2, (5.5, 30.5), (60.5, 30.5)), (3, (70.5, 10.5), (70.5, 60.5)),
           (1, (20.5, 50.5), (90.5, 50.5))]


def paint_strokes(window, session):
    tools = window.annotator.tools
    tools.set_level(1)
    maps = [session.label.copy()]
    for class_id, a, b in STROKES:
        tools.set_class(class_id)
        drag(window, [a, b])
        maps.append(session.label.copy())
    assert session.undo.count() == len(STROKES)
    return maps


@pytest.mark.parametrize("change", ["merge", "delete", "add", "rename"])
def test_class_edits_keep_the_undo_history(qtbot, window, model_path, samples, change):
    session = annotating(qtbot, window, model_path, [samples[0]])
    annotator = window.annotator
    maps = paint_strokes(window, session)
    before = annotator.classes
    if change == "merge":
        annotator.remove_class(1, 2)
    elif change == "delete":
        annotator.remove_class(3, None)
    elif change == "add":
        annotator.add_class("brand new")
    else:
        annotator.rename_class(2, "renamed")
    qtbot.waitUntil(lambda: annotator.classes != before, timeout=WAIT_MS)
    session = window.current.annotation
    assert session.undo.count() == len(STROKES), f"{change} wiped the history"
    edit = {"merge": lambda: delete_class(before, 1, 2), "delete": lambda: delete_class(before, 3, None)}.get(change)
    expected = [remap_label(m, edit()) if edit else m for m in maps]
    np.testing.assert_array_equal(session.label, expected[-1])
    for step in range(len(STROKES) - 1, -1, -1):
        window.annotator.undo_action.trigger()
        np.testing.assert_array_equal(session.label, expected[step], err_msg=f"undo to step {step} after {change}")
    while session.undo.canRedo():
        session.undo.redo()
    np.testing.assert_array_equal(session.label, expected[-1])


def test_class_changes_have_redo(qtbot, window, model_path, samples):
    session = annotating(qtbot, window, model_path, [samples[0]])
    annotator = window.annotator
    maps = paint_strokes(window, session)
    original, painted = annotator.classes, session.label.copy()
    annotator.remove_class(1, 2)
    qtbot.waitUntil(lambda: annotator.classes.num_classes == original.num_classes - 1, timeout=WAIT_MS)
    merged_classes, merged = annotator.classes, window.current.annotation.label.copy()
    qtbot.waitUntil(lambda: len(annotator.class_undo) == 1, timeout=WAIT_MS)
    annotator.undo_class_edit()
    qtbot.waitUntil(lambda: annotator.classes == original, timeout=WAIT_MS)
    np.testing.assert_array_equal(window.current.annotation.label, painted)  # the merged pixels come back
    undo = window.current.annotation.undo
    while undo.canUndo():  # and the strokes of the merged class undo to what they were
        undo.undo()
    np.testing.assert_array_equal(window.current.annotation.label, maps[0])
    while undo.canRedo():
        undo.redo()
    qtbot.waitUntil(lambda: len(annotator.class_redo) == 1, timeout=WAIT_MS)
    annotator.panel.class_buttons["redo"].click()
    qtbot.waitUntil(lambda: annotator.classes == merged_classes, timeout=WAIT_MS)
    np.testing.assert_array_equal(window.current.annotation.label, merged)
    assert window.current.annotation.undo.count() == len(STROKES)


def test_merge_dialog_counts_pixels_and_images_first(qtbot, window, model_path, samples, tmp_path, monkeypatch):
    annotating(qtbot, window, model_path, samples)
    annotator = window.annotator
    window.annotator.tools.set_level(1)
    first = window.current
    annotator.tools.set_class(5)
    drag(window, [(5.5, 5.5), (40.5, 5.5)])
    assert window.projects.new_project(tmp_path / "project")
    window.projects.save()
    window.jobs.wait_idle()
    qtbot.waitUntil(lambda: not first.annotation.dirty, timeout=WAIT_MS)
    window.step_image(1)
    qtbot.waitUntil(lambda: window.current is not first and window.current.annotation is not None, timeout=WAIT_MS)
    second = window.current
    expected_pixels = sum(int((d.annotation.label == 5).sum()) for d in (first, second))
    expected_images = sum(1 for d in (first, second) if (d.annotation.label == 5).any())
    asked = []

    def choose(class_id, pixels, images):
        asked.append((class_id, pixels, images, annotator.classes.num_classes))
        return -1  # cancel: nothing changes

    annotator.choose_merge_target = choose

    def modal(*_args, **_kwargs):
        raise AssertionError("a modal dialog without the counts")

    monkeypatch.setattr(QtWidgets.QInputDialog, "getItem", modal)
    import threading

    counted_on_ui = []  # the open maps' counts (10-20 ms each at 24 MP) are made on the job thread
    real_count = np.count_nonzero

    def count_nonzero(a, *args, **kwargs):
        if threading.current_thread() is threading.main_thread() and np.shape(a) == first.annotation.shape:
            counted_on_ui.append(np.shape(a))
        return real_count(a, *args, **kwargs)

    monkeypatch.setattr(np, "count_nonzero", count_nonzero)
    before = annotator.classes
    annotator.remove_class(5)
    qtbot.waitUntil(lambda: bool(asked), timeout=WAIT_MS)
    monkeypatch.setattr(np, "count_nonzero", real_count)
    assert counted_on_ui == []
    assert asked == [(5, expected_pixels, expected_images, before.num_classes)]
    assert expected_pixels > 0 and annotator.classes == before


def test_undoing_back_to_the_saved_step_is_saved(qtbot, window, model_path, samples, tmp_path):
    session = annotating(qtbot, window, model_path, [samples[0]])
    tools = window.annotator.tools
    tools.set_level(2)
    tools.set_class(4)
    drag(window, [(5.5, 5.5), (30.5, 5.5)])
    assert session.dirty and "unsaved" in window.annotator.panel.status.text()
    window.annotator.undo_action.trigger()
    assert not session.dirty, "back at the start there is nothing to save"
    assert "unsaved" not in window.annotator.panel.status.text() and "●" not in window.windowTitle()
    drag(window, [(5.5, 40.5), (30.5, 40.5)])
    assert window.projects.new_project(tmp_path / "p")
    window.projects.save()
    window.jobs.wait_idle()
    qtbot.waitUntil(lambda: not session.dirty, timeout=WAIT_MS)
    drag(window, [(50.5, 40.5), (80.5, 40.5)])
    assert session.dirty
    window.annotator.undo_action.trigger()
    assert not session.dirty, "undoing back to the saved step is the saved map"
    window.annotator.undo_action.trigger()
    assert session.dirty
    window.annotator.redo_action.trigger()
    assert not session.dirty


def test_a_merge_keeps_what_it_takes_from_the_history_not_a_copy_of_it(qtbot, window, model_path, samples):
    from qgn_studio.tools.commands import undo_bytes

    session = annotating(qtbot, window, model_path, [samples[0]])
    annotator = window.annotator
    paint_strokes(window, session)
    history = undo_bytes(session.undo)
    before = annotator.classes
    annotator.remove_class(before.num_classes - 1, before.num_classes - 2)  # the last class into the one before
    qtbot.waitUntil(lambda: annotator.classes != before, timeout=WAIT_MS)
    (taken,) = annotator._class_snapshots.values()  # {open map: (its patch, {step: its values before})}
    ((patch, steps),) = taken.values()
    kept = sum(step.nbytes - step.inverse.nbytes for step in steps.values())  # beside a class table a step
    assert kept < history / 4, f"the merge kept {kept} bytes of a {history}-byte history"


def test_a_class_added_mid_session_can_be_painted_on_the_image_already_open(qtbot, window, model_path, samples):
    # the open map's live pyramid was built for the old class count: painting the new class was
    # refused ("Not changed") after changing the map anyway, outside the undo log, and the pyramid
    # took the ignore pixels for the new class (its code is the old ignore code)
    from qgn_studio.annotation_doc import LivePyramid

    session = annotating(qtbot, window, model_path, [samples[0]])
    tools = window.annotator.tools
    tools.set_tool("erase")
    tools.set_level(1)
    drag(window, [(5.5, 5.5), (30.5, 5.5)])  # some ignore pixels
    window.annotator.add_class("extra")
    window.jobs.wait_idle()
    classes = window.annotator.classes
    new = classes.num_classes - 1
    tools.set_tool("paint")
    tools.set_class(new)
    before = session.label.copy()
    count = session.undo.count()
    drag(window, [(5.5, 40.5), (60.5, 40.5)])
    assert session.undo.count() == count + 1  # one step, not refused
    painted = session.label != before
    assert painted.any() and (session.label[painted] == new).all()
    fresh = LivePyramid(session.label, classes.num_classes, classes.ignore_index)  # what the canvas must draw
    for level, codes in enumerate(fresh.codes):
        np.testing.assert_array_equal(session.pyramid.codes[level], codes, err_msg=f"level {level}")
    window.annotator.undo_group.undo()
    np.testing.assert_array_equal(session.label, before)


def test_the_class_lists_undo_and_redo_name_the_change_and_are_off_without_one(qtbot, window, model_path, samples):
    annotating(qtbot, window, model_path, [samples[0]])
    annotator = window.annotator
    undo, redo = annotator.panel.class_buttons["undo"], annotator.panel.class_buttons["redo"]
    assert not undo.isEnabled() and not redo.isEnabled()
    annotator.rename_class(2, "renamed")
    qtbot.waitUntil(lambda: undo.isEnabled(), timeout=WAIT_MS)
    assert "Rename" in undo.toolTip() and "renamed" in undo.toolTip() and not redo.isEnabled()
    undo.click()
    qtbot.waitUntil(lambda: redo.isEnabled(), timeout=WAIT_MS)
    assert not undo.isEnabled() and "renamed" in redo.toolTip()
    redo.click()
    qtbot.waitUntil(lambda: undo.isEnabled() and not redo.isEnabled(), timeout=WAIT_MS)


def test_the_edit_menu_holds_undo_redo_and_the_class_changes(qtbot, window, model_path, samples):
    annotating(qtbot, window, model_path, [samples[0]])
    annotator = window.annotator
    edit = window.menuBar().actions()[1].menu()
    assert edit.title() == "&Edit"
    actions = edit.actions()
    assert actions[0] is annotator.undo_action and actions[1] is annotator.redo_action  # one shortcut each
    class_undo, class_redo = annotator.class_undo_action, annotator.class_redo_action
    assert class_undo in actions and class_redo in actions and not class_undo.isEnabled()
    annotator.rename_class(2, "renamed")
    qtbot.waitUntil(class_undo.isEnabled, timeout=WAIT_MS)
    assert "renamed" in class_undo.text() and not class_redo.isEnabled()
    class_undo.trigger()
    qtbot.waitUntil(lambda: annotator.classes.names[2] != "renamed", timeout=WAIT_MS)
    assert class_redo.isEnabled() and not class_undo.isEnabled()


def test_a_merge_remaps_the_open_maps_off_the_ui_thread_and_they_take_no_edit_meanwhile(qtbot, window, model_path,
                                                                                        samples, monkeypatch):
    """A merge remapped each open map, its references and undo log and built its live pyramid on the
    UI thread (~0.5-1 s for a 24-megapixel map). The maps, references, checks and pyramids are made on
    the job thread; meanwhile a stroke or a Ctrl+Z is refused (not applied to a half-remapped map);
    the map, its history and the class undo come out as before."""
    import threading

    import qgn.annotation.annotation as annotation_module
    import qgn.classes_edit as classes_edit
    from qgn_studio.annotation_doc import LivePyramid

    session = annotating(qtbot, window, model_path, [samples[0]])
    annotator = window.annotator
    maps = paint_strokes(window, session)
    before = annotator.classes
    window.jobs.wait_idle()
    QtWidgets.QApplication.processEvents()
    on_ui = []

    def spy(name, function):
        def called(*args, **kwargs):
            if threading.current_thread() is threading.main_thread():
                on_ui.append(name)
            return function(*args, **kwargs)
        return called

    for name in ("remap_label", "inverse_patch"):
        monkeypatch.setattr(classes_edit, name, spy(name, getattr(classes_edit, name)))
    monkeypatch.setattr(annotation_module, "check_label", spy("check", annotation_module.check_label))
    monkeypatch.setattr(LivePyramid, "__init__", spy("pyramid", LivePyramid.__init__))
    annotator.remove_class(1, 2)  # merge class 1 into class 2
    assert on_ui == [], on_ui
    painted, count = session.label.copy(), session.undo.count()
    drag(window, [(5.5, 70.5), (90.5, 70.5)])  # while the maps are remapped: refused
    window.annotator.undo_action.trigger()
    assert session.undo.count() == count and session.undo.index() == count
    np.testing.assert_array_equal(session.label, painted)
    qtbot.waitUntil(lambda: annotator.classes != before and not annotator.class_change_pending(), timeout=WAIT_MS)
    assert on_ui == [], on_ui
    monkeypatch.undo()
    session = window.current.annotation

    def merged(m):  # class 1 → 2, the classes above 1 one down (an independent reference)
        m = m.astype(np.int64)
        return np.where(m == 1, 1, np.where(m > 1, m - 1, m))

    np.testing.assert_array_equal(session.label, merged(maps[-1]))
    assert session.pyramid.label is session.label
    fresh = LivePyramid(session.label, annotator.classes.num_classes, annotator.classes.ignore_index)
    for level, codes in enumerate(fresh.codes):
        np.testing.assert_array_equal(session.pyramid.codes[level], codes, err_msg=f"level {level}")
    for step in range(len(STROKES) - 1, -1, -1):
        session.undo.undo()
        np.testing.assert_array_equal(session.label, merged(maps[step]), err_msg=f"undo to step {step}")
    while session.undo.canRedo():
        session.undo.redo()
    qtbot.waitUntil(lambda: len(annotator.class_undo) == 1, timeout=WAIT_MS)
    annotator.undo_class_edit()
    qtbot.waitUntil(lambda: annotator.classes == before, timeout=WAIT_MS)
    np.testing.assert_array_equal(window.current.annotation.label, maps[-1])  # the merged pixels come back


def test_legend_after_a_merge_says_it_is_the_predictions(qtbot, window, model_path, samples):
    """After a merge in annotation mode the Layers dock's legend still lists the merged-away class:
    by design, it keys the prediction layers (the model still predicts that class, and the
    prediction draws it), not the annotation's classes (the Annotate panel's class list). Its title
    says so, so the entry is not taken for a stale one (it said only "Legend")."""
    session = annotating(qtbot, window, model_path, [samples[0]])
    annotator, panel = window.annotator, window.layer_panel
    model_names = list(window.model_info.classes.names)
    gone = annotator.classes.names[1]
    before = annotator.classes
    annotator.remove_class(1, 2)
    qtbot.waitUntil(lambda: annotator.classes != before, timeout=WAIT_MS)
    assert gone not in annotator.classes.names and session.classes is annotator.classes
    shown = [w.text() for w in panel.legend.findChildren(QtWidgets.QLabel) if w.text()]
    assert [name for name in model_names if name in shown] == model_names  # the model's classes, all
    assert "prediction" in panel.legend_box.title().lower()
    assert "Annotate panel" in panel.legend_box.toolTip()
