"""The Annotate dock on a 1280×800 screen (the smallest size supported), with eleven classes (the
bundled camvid model's): every control an annotator uses on each image - the tools, the cell
sizes, the class list and its edits, Start over, Show changes, Save, Done and Done ▸ next - and
the History show without scrolling. (The controls needed ~780 px and got ~440: they scrolled
342 px, Start from and Review below the fold.)"""
from __future__ import annotations

import pytest
from PySide6 import QtCore, QtWidgets

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


def rows_cut(table: QtWidgets.QTableWidget) -> list[int]:
    """The rows that show only in part (cut by the table's bottom edge)."""
    viewport = table.viewport().rect()
    rects = [(row, table.visualRect(table.model().index(row, 0))) for row in range(table.rowCount())]
    return [row for row, rect in rects if rect.intersects(viewport) and not viewport.contains(rect)]


ALL_TOOLS = ["paint", "fill", "erase", "pick", "superpixel", "snap", "wand"]
SAMPLES, CITYSCAPES = (256, 384), (1024, 2048)
WINDOWS = {  # what fitted_size leaves of each screen (frame, title bar) → the class rows shown at least
    "1280x720": ((1264, 672), 4), "1280x800": ((1264, 752), 8), "1920x1080": ((1904, 1032), 11)}
NOTED_TOOLS = ("superpixel", "snap", "wand")  # a note or the "Snap to" row under the tools: a class row less


@pytest.mark.parametrize("screen,size", [("1280x800", SAMPLES), ("1280x800", CITYSCAPES), ("1280x720", CITYSCAPES),
                                         ("1920x1080", CITYSCAPES)],
                         ids=["1280x800-samples-384x256", "1280x800-cityscapes-2048x1024",
                              "1280x720-cityscapes-2048x1024", "1920x1080-cityscapes-2048x1024"])
def test_every_tool_leaves_the_controls_unscrolled(qtbot, window, tmp_path, screen, size):
    """With each tool chosen (the image-aware ones show a note; the snap brush its "Snap to" row)
    and a realistic change summary (every pixel changed: "98,304 px … 6,144 cells of 4×4 px" on the
    bundled samples' 384×256, seven digits on a Cityscapes frame), nothing scrolls and every key
    control shows whole, on a 1280×720, 1280×800 and 1920×1080 screen. (The snap brush's two-line
    note and row plus the summary's second line scrolled the controls 12 px at 1280×800, "Start
    from…" cut in half, the class list at its three rows; at 1280×720 the image-aware tools
    scrolled them 14-26 px.) The class list shows whole rows, four at 1280×720 and eight at
    1280×800, a row less under an image-aware tool's note (three and six: the History asked for
    three rows, and the list showed a part row). The summary stays one line and shows whole (its
    old prefix "Changed vs prediction:" had it cut with "…" at every size), its whole text also in
    its tooltip. The tools are chosen one after another on one window, as an annotator does (each
    tool was a test of its own, with its own window and prediction of the frame: 28 windows for the
    same checks)."""
    from qgn_studio.testing import write_samples

    window_size, most_rows = WINDOWS[screen]
    window.resize(*window_size)
    paths = write_samples(tmp_path / "data", 1, size)
    annotating(qtbot, window, camvid_model(tmp_path), paths)
    window.annotate_dock.raise_()
    panel = window.annotator.panel
    assert sorted(panel.tool_buttons) == sorted(ALL_TOOLS)
    window.annotator.start_from("empty")  # every pixel differs from the prediction: the longest counts
    pixels = size[0] * size[1]
    level = window.annotator.tools.level
    cells = pixels >> (2 * level)
    whole = f"Changed: {pixels:,} px (100.0 %) · {cells:,} cells of {1 << level}×{1 << level} px"
    qtbot.waitUntil(lambda: f"<b>{cells:,}</b> cells" in panel.changed_text.text(), timeout=30000)
    for tool in ALL_TOOLS:
        class_rows = most_rows - (tool in NOTED_TOOLS and screen != "1920x1080")
        panel.tool_buttons[tool].click()
        assert panel.tool_buttons[tool].isChecked() and window.annotator.tools.tool == tool
        QtWidgets.QApplication.processEvents()
        qtbot.wait(100)
        assert window.size() == QtCore.QSize(*window_size), tool
        assert panel.controls.verticalScrollBar().maximum() == 0, tool
        hidden = [name for name, widget in key_controls(panel).items() if not shown_whole(widget, panel)]
        assert not hidden, (tool, hidden)
        line = panel.changed_text.fontMetrics().lineSpacing()
        assert panel.changed_text.height() < 2 * line, tool  # one line
        assert f"<b>{pixels:,} px</b>" in panel.changed_text.text(), tool  # the whole summary, as set
        assert not panel.changed_text.elided(), (tool, panel.changed_text.width(), panel.changed_text.plain)  # shown whole
        assert panel.changed_text.toolTip() == whole, tool  # and in the tooltip
        table = panel.classes
        assert table.viewport().height() // table.rowHeight(0) >= class_rows, tool  # the class list keeps its rows
        assert not rows_cut(table), (tool, rows_cut(table))  # whole rows: the splitter stops at a row's edge
        history_box = panel.splitter.widget(1)
        assert history_box.height() >= history_box.minimumSizeHint().height(), tool  # the History's title and two rows
        assert panel.history.height() >= 2 * panel.history.row_height(), tool
        if tool == "snap":
            assert not panel.snap_row.isHidden() and panel.tool_note.isHidden()
            assert "Shift + drag" in panel.snap_row.toolTip()  # the note, as the row's tooltip


def test_the_summary_shows_whole_at_every_cell_size(qtbot, window, tmp_path):
    """On a Cityscapes frame with every pixel changed, the summary shows whole at 1280×800 whatever
    the cell size: 1×1 px (as many cells as pixels) to 32×32 px."""
    from qgn_studio.testing import write_samples

    paths = write_samples(tmp_path / "data", 1, CITYSCAPES)
    annotating(qtbot, window, camvid_model(tmp_path), paths)
    panel, annotator = window.annotator.panel, window.annotator
    annotator.start_from("empty")
    pixels = CITYSCAPES[0] * CITYSCAPES[1]
    for level in range(6):
        annotator.tools.set_level(level)
        cells = pixels >> (2 * level)
        qtbot.waitUntil(lambda: f"<b>{cells:,}</b> cells of {1 << level}×" in panel.changed_text.text(), timeout=30000)
        QtWidgets.QApplication.processEvents()
        assert not panel.changed_text.elided(), (level, panel.changed_text.width(), panel.changed_text.plain)


def tab_stops(panel) -> list[QtWidgets.QWidget]:
    """The panel's widgets that Tab stops at (shown, enabled, taking Tab focus), in the order Tab
    goes: the focus chain from the mode switch, once round."""
    stops, widget = [], panel.mode
    while True:
        if (panel.isAncestorOf(widget) and widget.isVisible() and widget.isEnabled()
                and widget.focusPolicy() & QtCore.Qt.FocusPolicy.TabFocus == QtCore.Qt.FocusPolicy.TabFocus):
            stops.append(widget)
        widget = widget.nextInFocusChain()
        if widget is panel.mode:
            return stops


def reads_before(panel, first: QtWidgets.QWidget, second: QtWidgets.QWidget) -> bool:
    """Whether ``first`` comes before ``second`` reading the panel: in the same row (their heights
    overlap by half the smaller) and left of it, or in a row above."""
    a = QtCore.QRect(first.mapTo(panel, QtCore.QPoint(0, 0)), first.size())
    b = QtCore.QRect(second.mapTo(panel, QtCore.QPoint(0, 0)), second.size())
    overlap = min(a.bottom(), b.bottom()) - max(a.top(), b.top())
    if overlap >= min(a.height(), b.height()) / 2:
        return a.left() < b.left()
    return a.bottom() <= b.top()


@pytest.mark.parametrize("tool", ["paint", "snap"])
def test_tab_goes_through_the_dock_in_visual_order(qtbot, window, samples, tmp_path, tool):
    """Tab goes through the Annotate dock's controls row by row, left to right, "Start from…" beside
    the switch and "Save" beside "Show changes" included (the image-aware tools' row, added after the
    panel was built, came last: Tab went from "Done ▸ next" to "Superpixel")."""
    annotating(qtbot, window, camvid_model(tmp_path), samples[:1])
    window.annotate_dock.raise_()
    panel = window.annotator.panel
    window.annotator.start_from("empty")  # (Undo enabled: one Tab stop more)
    panel.tool_buttons[tool].click()
    QtWidgets.QApplication.processEvents()
    qtbot.wait(50)
    stops = tab_stops(panel)
    wanted = [panel.start_button, *panel.tool_buttons.values(), *panel.level_buttons.values(), panel.class_search,
              panel.class_buttons["add"], panel.show_changed, panel.save, panel.done, panel.done_next]
    if tool == "snap":
        wanted += panel.snap_buttons.values()
    missing = [w for w in wanted if w not in stops]
    assert not missing, [getattr(w, "text", lambda: "")() for w in missing]
    misplaced = [(getattr(a, "text", lambda: type(a).__name__)(), getattr(b, "text", lambda: type(b).__name__)())
                 for a, b in zip(stops, stops[1:]) if not reads_before(panel, a, b)]
    assert not misplaced, misplaced


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
        "Prediction", "Ground truth", "Import mask…", "Kept copy…", "Empty", "Head", "Previous"]
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
    assert panel.history.height() >= 2 * panel.history.row_height()


@pytest.mark.parametrize("level,cells", [(0, "24 M"), (2, "1.5 M")])
def test_a_24_megapixel_photos_counts_show_whole(qtbot, window, samples, tmp_path, level, cells):
    """A 24-megapixel photo (6000×4000) changed all over: its exact counts are wider than the
    dock at 1280×800 ("Changed: 24,000,000 px (100.0 %) · 24,000,000 cells of 1×1 px" was cut);
    the line shows them rounded, the exact ones in its tooltip, and exact again where they fit."""
    from qgn_studio.annotator import change_summary

    annotating(qtbot, window, camvid_model(tmp_path), samples[:1])
    window.annotate_dock.raise_()
    label = window.annotator.panel.changed_text
    pixels = 6000 * 4000
    exact = f"Changed: {pixels:,} px (100.0 %) · {pixels >> 2 * level:,} cells of {1 << level}×{1 << level} px"
    summary = change_summary(pixels, pixels, pixels >> 2 * level, level)
    window.annotator.panel.set_changed_summary(*summary)
    QtWidgets.QApplication.processEvents()
    probe = QtWidgets.QLabel(summary[0])  # the exact line, as the label shows it (its counts bold)
    probe.setFont(label.font())
    assert probe.sizeHint().width() > label.width()  # does not fit
    assert not label.elided(), (label.width(), label.shown())
    assert f"<b>{cells}</b> cells" in label.shown() and "<b>24 M px</b> (100.0 %)" in label.shown()
    assert label.toolTip() == exact and f"<b>{pixels:,} px</b>" in label.text()
    window.resize(1904, 1032)  # a wide dock: the exact counts
    window.annotate_dock.parentWidget().resizeDocks([window.annotate_dock], [700], QtCore.Qt.Orientation.Horizontal)
    QtWidgets.QApplication.processEvents()
    qtbot.wait(50)
    assert label.shown() == label.text() and not label.elided(), label.width()


def test_switching_tools_leaves_the_history_at_its_least_while_the_class_list_lacks_rows(qtbot, window, samples,
                                                                                         tmp_path):
    """Through every tool and back at 1280×800, the class list gets the height first: while it lacks
    rows the History has its least (two rows, and less than a class row more), and back at the
    paint tool the list shows the rows it showed at first (the image-aware tools' note and the
    "Snap to" row left the History a row taller, the list a row or two shorter)."""
    annotating(qtbot, window, camvid_model(tmp_path), samples[:1])
    window.annotate_dock.raise_()
    panel = window.annotator.panel
    table, history_box = panel.classes, panel.splitter.widget(1)

    def settle():
        QtWidgets.QApplication.processEvents()
        qtbot.wait(60)
        QtWidgets.QApplication.processEvents()
        return table.viewport().height() // table.rowHeight(0)

    first = settle()
    for tool in [*ALL_TOOLS, "paint"]:
        panel.tool_buttons[tool].click()
        rows = settle()
        least = max(history_box.minimumSizeHint().height(), history_box.minimumHeight())
        if rows < table.rowCount():
            assert history_box.height() < least + table.rowHeight(0), (tool, rows, history_box.height(), least)
        assert not rows_cut(table), (tool, rows_cut(table))
    assert rows == first


def annotating_at_1280x720(qtbot, window, samples, tmp_path):
    """``window`` at 1280x720's size annotating the first sample with the camvid model, its Annotate dock
    raised: (the dock's panel, its class list, the splitter between the class list and the History)."""
    window.resize(1264, 672)
    annotating(qtbot, window, camvid_model(tmp_path), samples[:1])
    window.annotate_dock.raise_()
    panel = window.annotator.panel
    return panel, panel.classes, panel.splitter


def settled(qtbot) -> None:
    """Let the dock's layout settle (a few event rounds)."""
    for _ in range(3):
        QtWidgets.QApplication.processEvents()
        qtbot.wait(60)


def drag_history_up(splitter: QtWidgets.QSplitter, by: int) -> None:
    """Drag the History's handle ``by`` px upwards in 5-px steps, as a hand would."""
    from PySide6 import QtTest

    handle, left, none = splitter.handle(1), QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier
    start = handle.rect().center()
    QtTest.QTest.mousePress(handle, left, none, start)
    for dy in range(-5, -by - 1, -5):
        QtTest.QTest.mouseMove(handle, start + QtCore.QPoint(0, dy))
        QtWidgets.QApplication.processEvents()
    QtTest.QTest.mouseRelease(handle, left, none, start + QtCore.QPoint(0, -by))


def test_the_users_history_drag_outlasts_a_tool_round_trip(qtbot, window, samples, tmp_path):
    """The History the user dragged taller keeps its height: the image-aware tools' note and "Snap
    to" row may take some of it while they show, and back at the paint tool it is the dragged
    height again, as after a taller window and back (it fell to its least, 82 px of the 104 dragged,
    at 1264x672; the review of uifix)."""
    panel, table, splitter = annotating_at_1280x720(qtbot, window, samples, tmp_path)

    def settle():
        settled(qtbot)
        return splitter.sizes()[1]

    at_first = settle()
    drag_history_up(splitter, 50)
    dragged = settle()
    assert dragged >= at_first + table.rowHeight(0) // 2, (at_first, dragged)  # the drag took
    for tool in [*ALL_TOOLS, "paint"]:
        panel.tool_buttons[tool].click()
        history = settle()
        assert history <= dragged and not rows_cut(table), (tool, history, rows_cut(table))
    assert history == dragged
    window.resize(1264, 752)
    settle()
    window.resize(1264, 672)
    assert settle() == dragged and not rows_cut(table)


def test_a_history_drag_that_did_nothing_is_not_remembered(qtbot, window, samples, tmp_path):
    """At 1280×720 with the snap brush's rows taking the room, a drag of the History's handle
    upwards is taken back step by step (the class list keeps its least rows): it visibly did
    nothing, yet the last step's height was remembered, and back at the paint tool the History
    took it - 3 class rows instead of the 4 shown without the drag."""
    panel, table, splitter = annotating_at_1280x720(qtbot, window, samples, tmp_path)

    def settle():
        settled(qtbot)
        return splitter.sizes()[1], table.viewport().height() // table.rowHeight(0)

    at_paint = settle()
    panel.tool_buttons["snap"].click()
    before = settle()
    drag_history_up(splitter, 25)
    assert settle() == before  # the drag visibly did nothing
    panel.tool_buttons["paint"].click()
    assert settle() == at_paint and not rows_cut(table)
