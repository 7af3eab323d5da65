"""The image-aware tools in QGN Studio under pytest-qt (offscreen): superpixel click and drag with
granularity keys, the snapped brush, the magic wand — each ONE undo step, the over-segmentation
computed off the UI thread, and the result equal to the library's own functions (issue #21)."""
from __future__ import annotations

import numpy as np

from PySide6 import QtWidgets

from qgn_studio.document import SchemeChoice
from qgn_studio.testing import write_samples

from studio_steps import WAIT_MS, drag

WINDOW_SIZE = (1200, 800)
SIZE = (96, 128)


def annotating(qtbot, win, model_path, paths, tool):
    win.explore.set_setting(SchemeChoice("pc", depth=0))
    win.start(paths, str(model_path))
    qtbot.waitUntil(lambda: win.current is not None and win.current.result is not None, timeout=WAIT_MS)
    win.annotator.set_mode(True)
    qtbot.waitUntil(lambda: win.current.annotation is not None, timeout=WAIT_MS)
    win.annotator.start_from("empty")
    win.jobs.wait_idle()
    tools = win.annotator.image_tools
    qtbot.waitUntil(lambda: win.current.path in tools.contexts and tools.contexts[win.current.path].over is not None,
                    timeout=WAIT_MS)
    win.annotator.tools.set_tool(tool)
    win.canvas.fit()
    QtWidgets.QApplication.processEvents()
    session = win.current.annotation
    session.undo.clear()
    return session


def test_superpixel_click_and_drag_are_one_undo_step_each(qtbot, window, tmp_path, model_path):
    from qgn.annotation.superpixels import paint_segments

    paths = write_samples(tmp_path / "data", 1, SIZE)
    session = annotating(qtbot, window, model_path, paths, "superpixel")
    tools = window.annotator.image_tools
    over = tools.contexts[window.current.path].over
    assert over.shape == SIZE  # computed on the image, off the UI thread
    before = session.label.copy()
    expected = paint_segments(before, over, tools.granularity, np.array([[20.5, 30.5]]), 0)
    drag(window, [(20.5, 30.5)])
    assert session.undo.count() == 1
    assert np.array_equal(np.flatnonzero(session.label != before), expected.index)
    drag(window, [(60.5, 30.5), (100.5, 70.5)])  # a drag: every segment it crosses, one step
    assert session.undo.count() == 2
    window.annotator.undo_group.undo()
    window.annotator.undo_group.undo()
    assert np.array_equal(session.label, before)
    # [ / ] step the granularity while the superpixel tool is on (not the cell level)
    level, granularity = window.annotator.tools.level, tools.granularity
    window.annotator.tools.step_level(1)
    assert tools.granularity == max(0, granularity - 1) and window.annotator.tools.level == level


def test_snap_brush_applies_the_snapped_stroke_as_one_step(qtbot, window, tmp_path, model_path):
    from qgn.annotation.brush import brush_points
    from qgn.annotation.edit import cells_along
    from qgn.annotation.snap import snapped_stroke

    paths = write_samples(tmp_path / "data", 1, SIZE)
    session = annotating(qtbot, window, model_path, paths, "snap")
    window.annotator.tools.set_level(3)
    before = session.label.copy()
    drag(window, [(10.5, 40.5), (100.5, 40.5)])
    assert session.undo.count() == 1
    context = window.annotator.image_tools.contexts[window.current.path]
    cells = np.concatenate([brush_points(3, cells_along(3, (10.5, 40.5), (10.5, 40.5)), 0),
                            brush_points(3, cells_along(3, (10.5, 40.5), (100.5, 40.5)), 0)])
    path = np.concatenate([[[10.5, 40.5]], cells_along(0, (10.5, 40.5), (100.5, 40.5)) + 0.5])
    expected = snapped_stroke(before, context.working, 3, cells, 0, path=path)
    assert np.array_equal(np.flatnonzero(session.label != before), expected.index)
    window.annotator.undo_group.undo()
    assert np.array_equal(session.label, before)


def test_wand_click_and_tolerance_keys(qtbot, window, tmp_path, model_path):
    from qgn.annotation.wand import magic_wand

    paths = write_samples(tmp_path / "data", 1, SIZE)
    session = annotating(qtbot, window, model_path, paths, "wand")
    tools = window.annotator.image_tools
    window.annotator.tools.step_level(1)  # [ : larger tolerance
    tolerance = tools.tolerances[tools.tolerance]
    before = session.label.copy()
    drag(window, [(50.5, 50.5)])
    context = tools.contexts[window.current.path]
    expected = magic_wand(before, context.working, 50.5, 50.5, 0, tolerance)
    assert session.undo.count() == (0 if expected.is_empty else 1)
    assert np.array_equal(np.flatnonzero(session.label != before), expected.index)


def test_a_wand_or_fill_click_that_changes_nothing_says_so_in_the_status_line(qtbot, window, tmp_path, model_path):
    """A click on a region that has the class already was silent: no undo step and no word of why."""
    paths = write_samples(tmp_path / "data", 1, SIZE)
    session = annotating(qtbot, window, model_path, paths, "wand")
    controller = window.annotator.tools
    name = session.classes.names[controller.class_id]
    drag(window, [(50.5, 50.5)])  # the first click gives the region the class ...
    steps, label = session.undo.count(), session.label.copy()
    window.statusBar().clearMessage()
    drag(window, [(50.5, 50.5)])  # ... the second has nothing left to change
    assert session.undo.count() == steps and np.array_equal(session.label, label)
    assert window.statusBar().currentMessage() == f"Wand: nothing to change here — the region is already {name}"
    controller.set_tool("fill")
    window.statusBar().clearMessage()
    drag(window, [(50.5, 50.5)])
    assert session.undo.count() == steps and np.array_equal(session.label, label)
    assert window.statusBar().currentMessage() == f"Fill: nothing to change here — the region is already {name}"

def test_the_superpixels_of_images_left_behind_are_dropped_and_made_again_on_return(qtbot, window, tmp_path,
                                                                                    model_path):
    # a long session visited every image once: each kept its working image and over-segmentation
    # (megabytes each) for good, so memory grew with every image annotated
    from qgn.annotation.superpixels import paint_segments
    from qgn_studio.window_images import RECENT_RESULTS

    paths = write_samples(tmp_path / "data", RECENT_RESULTS + 3, SIZE)
    annotating(qtbot, window, model_path, paths, "superpixel")
    tools = window.annotator.image_tools
    for row in range(1, len(paths)):
        window.select_image(row)
        qtbot.waitUntil(lambda: window.current.path in tools.contexts
                        and tools.contexts[window.current.path].over is not None, timeout=WAIT_MS)
    assert len(tools.contexts) <= RECENT_RESULTS
    window.select_image(0)  # back to the first: its superpixels are made again, and work
    qtbot.waitUntil(lambda: window.current.annotation is not None and window.current.path in tools.contexts
                    and tools.contexts[window.current.path].over is not None, timeout=WAIT_MS)
    window.canvas.fit()
    QtWidgets.QApplication.processEvents()
    session = window.current.annotation
    before, count = session.label.copy(), session.undo.count()
    over = tools.contexts[window.current.path].over
    expected = paint_segments(before, over, tools.granularity, np.array([[20.5, 30.5]]), 0)
    drag(window, [(20.5, 30.5)])
    assert session.undo.count() == count + (0 if expected.is_empty else 1)


def _snap_stroke_inputs(a, b, level):
    """The cells and the path the snap brush records for a drag from ``a`` to ``b``."""
    from qgn.annotation.brush import brush_points
    from qgn.annotation.edit import cells_along

    cells = np.concatenate([brush_points(level, cells_along(level, a, a), 0), brush_points(level, cells_along(level, a, b), 0)])
    path = np.concatenate([[a], cells_along(0, a, b) + 0.5])
    return cells, path


def test_snap_brush_follows_the_prediction_when_asked(qtbot, window, tmp_path, model_path):
    from PySide6 import QtCore
    from PySide6.QtTest import QTest

    from qgn.annotation.snap import snapped_stroke

    paths = write_samples(tmp_path / "data", 1, SIZE)
    session = annotating(qtbot, window, model_path, paths, "snap")
    panel, tools = window.annotator.panel, window.annotator.image_tools
    assert not panel.snap_row.isHidden() and tools.snap_to == "image"
    assert session.reference is not None and panel.snap_buttons["prediction"].isEnabled()
    QTest.mouseClick(panel.snap_buttons["prediction"], QtCore.Qt.MouseButton.LeftButton)
    assert tools.snap_to == "prediction" and panel.snap_buttons["prediction"].isChecked()
    assert "prediction" in panel.tool_note.text()
    window.annotator.tools.set_level(3)
    before = session.label.copy()
    a, b = (10.5, 40.5), (100.5, 40.5)
    drag(window, [a, b])
    assert session.undo.count() == 1 and "prediction" in session.undo.text(0)
    context = tools.contexts[window.current.path]
    cells, path = _snap_stroke_inputs(a, b, 3)
    expected = snapped_stroke(before, context.working, 3, cells, 0, path=path, evidence=session.reference == 0)
    assert np.array_equal(np.flatnonzero(session.label != before), expected.index)
    by_image = snapped_stroke(before, context.working, 3, cells, 0, path=path)
    assert not np.array_equal(expected.index, by_image.index)  # the choice made a difference here
    window.annotator.undo_group.undo()
    assert np.array_equal(session.label, before)
    # back to image edges; Shift + drag: this one stroke follows the prediction, the next the image
    QTest.mouseClick(panel.snap_buttons["image"], QtCore.Qt.MouseButton.LeftButton)
    assert tools.snap_to == "image"
    drag(window, [a, b], modifiers=QtCore.Qt.KeyboardModifier.ShiftModifier)
    assert np.array_equal(np.flatnonzero(session.label != before), expected.index)
    window.annotator.undo_group.undo()
    drag(window, [a, b])
    assert np.array_equal(np.flatnonzero(session.label != before), by_image.index)
    assert session.undo.count() == 1 and "prediction" not in session.undo.text(0)  # one step per stroke
    # the other tools hide the choice
    window.annotator.tools.set_tool("paint")
    assert panel.snap_row.isHidden()


def test_snap_to_prediction_is_unavailable_without_a_prediction(qtbot, window, tmp_path, model_path):
    from qgn.annotation.snap import snapped_stroke
    from qgn_studio.tools.image_tools import NO_PREDICTION

    paths = write_samples(tmp_path / "data", 1, SIZE)
    session = annotating(qtbot, window, model_path, paths, "snap")
    panel, tools = window.annotator.panel, window.annotator.image_tools
    session.set_reference(None)  # e.g. a model whose classes the annotation's cannot take
    window.annotator.set_snap_to("prediction")
    button = panel.snap_buttons["prediction"]
    assert not button.isEnabled() and button.toolTip() == NO_PREDICTION
    assert panel.snap_buttons["image"].isChecked()  # what a stroke here will follow
    assert NO_PREDICTION in window.statusBar().currentMessage()
    window.annotator.tools.set_level(3)
    before = session.label.copy()
    a, b = (10.5, 40.5), (100.5, 40.5)
    drag(window, [a, b])
    cells, path = _snap_stroke_inputs(a, b, 3)
    expected = snapped_stroke(before, tools.contexts[window.current.path].working, 3, cells, 0, path=path)
    assert np.array_equal(np.flatnonzero(session.label != before), expected.index)
