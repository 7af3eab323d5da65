"""At 1280×800 (a laptop) every row of the Layers list and the whole fine-tune panel (Keep / Revert,
its per-image table) show without scrolling - compact layouts, the fonts unchanged."""
from __future__ import annotations

from types import SimpleNamespace

from PySide6 import QtCore, QtWidgets

WINDOW_SIZE = (1264, 752)  # what fitted_size leaves of a 1280×800 screen (frame, title bar)


def settle(qtbot) -> None:
    QtWidgets.QApplication.processEvents()
    qtbot.wait(50)


def in_view(widget: QtWidgets.QWidget, scroll: QtWidgets.QScrollArea) -> bool:
    viewport = scroll.viewport()
    top_left = widget.mapTo(viewport, QtCore.QPoint(0, 0))
    return viewport.rect().contains(QtCore.QRect(top_left, widget.size()))


def rows(tree: QtWidgets.QTreeWidget) -> list[QtWidgets.QTreeWidgetItem]:
    found, item = [], tree.topLevelItem(0)
    while item is not None:
        found.append(item)
        item = tree.itemBelow(item)
    return found


def largest_bundled_classes():
    from qgn.resources import bundled_models

    models = bundled_models()
    assert {m.name for m in models} >= {"demo", "camvid"}
    return max((m.classes for m in models), key=lambda classes: classes.num_classes)


def test_every_row_of_the_layers_list_shows_without_scrolling(qtbot, window):
    classes = largest_bundled_classes()  # camvid's eleven: a legend of six rows (the demo's eight, five)
    assert classes.num_classes >= 11
    window.layer_panel.legend.set_classes(classes)
    settle(qtbot)
    tree = window.layer_panel.tree
    shown = rows(tree)
    assert len(shown) == len(window.layer_panel.items) + 1  # every layer and the levels' group, expanded
    viewport = tree.viewport().rect()
    for item in shown:
        rect = tree.visualItemRect(item)
        assert viewport.top() <= rect.top() and rect.bottom() <= viewport.bottom(), item.text(0)
    assert tree.verticalScrollBar().maximum() == 0
    scroll = window.layers_dock.widget()
    assert scroll.verticalScrollBar().maximum() == 0  # and the panel itself needs no scrolling
    legend = window.layer_panel.legend_scroll  # the legend gives way: scrolls its last rows, if any
    assert legend.isVisible() and legend.viewport().height() > 0


def test_camvids_legend_shows_whole_its_level_and_uncertainty_keys_beside_their_rows(qtbot, window):
    """With the largest bundled class set the legend shows whole at 1280×800 (it scrolled its last
    row, the uncertainty scale, 13 px): the level colours and the uncertainty scale are keyed in
    the Layers list, beside their rows, each with its tooltip."""
    panel = window.layer_panel
    panel.legend.set_classes(largest_bundled_classes())
    settle(qtbot)
    assert panel.legend_scroll.verticalScrollBar().maximum() == 0
    assert window.layers_dock.widget().verticalScrollBar().maximum() == 0
    assert panel.tree.verticalScrollBar().maximum() == 0
    tree = panel.tree
    for key, words in (("sites", "finest level"), ("uncertainty", "0 (certain) … 1 (doubtful)")):
        item = panel.items[key]
        assert not item.icon(1).isNull() and words in item.toolTip(1), key
        rect = tree.visualRect(tree.indexFromItem(item, 1))
        assert tree.viewport().rect().contains(rect.adjusted(0, 0, -(rect.width() - tree.iconSize().width()), 0)), key


def test_the_demo_models_legend_shows_whole(qtbot, window):
    from qgn.data.synthetic import SYNTHETIC_CLASSES

    window.layer_panel.legend.set_classes(SYNTHETIC_CLASSES)  # the demo model's eight classes
    settle(qtbot)
    assert window.layer_panel.tree.verticalScrollBar().maximum() == 0
    assert window.layer_panel.legend_scroll.verticalScrollBar().maximum() == 0
    assert window.layers_dock.widget().verticalScrollBar().maximum() == 0


def test_keep_and_revert_show_without_scrolling(qtbot, window):
    panel = window.finetuner.panel
    window.finetune_dock.raise_()
    panel.set_running(True, 300)
    for i in range(1, 50):
        panel.add_loss(i, 1 / i)
    panel.set_running(False)
    metrics = {"acc": 0.9, "miou": 0.6, "agreement": 0.874}
    per_image = [{"name": f"scene_0{i}.png", "before": {"miou": 0.5}, "after": {"miou": 0.6}, "changed_cells": 4}
                 for i in range(3)]
    panel.show_comparison(SimpleNamespace(before=metrics, after=metrics, per_image=per_image, scheme="pc",
                                          changed_cells=3, changed_pixels=12, pixels=100))
    panel.set_status("Done: 300 iterations in 2 min 10 s. Not saved: keep it to save it as a new model, or revert.")
    settle(qtbot)
    scroll = window.finetune_dock.widget()
    assert scroll.verticalScrollBar().value() == 0
    for widget in (panel.keep, panel.revert, panel.plot, panel.status, panel.table):
        assert in_view(widget, scroll), widget
    assert scroll.verticalScrollBar().maximum() == 0  # the panel needs no scrolling at all (46 px did)
    assert panel.per_image.verticalScrollBar().maximum() == 0  # nor its per-image table (three images)
    plot, status = (QtCore.QRect(w.mapTo(panel, QtCore.QPoint(0, 0)), w.size()) for w in (panel.plot, panel.status))
    assert plot.bottom() < status.top()  # the status under the loss plot, not over it
    assert panel.keep.isEnabled() and panel.revert.isEnabled()


def test_the_level_rows_site_counts_show_whole(qtbot, window):
    """The decoder levels' site counts (column 1, e.g. "1.81 k sites") end inside the list at
    1280×800: they were cut by the dock's edge ("1.11 k site") with the default indentation."""
    from qgn_studio.canvas.layers import LevelLayer

    panel = window.layer_panel
    settle(qtbot)
    panel.tree.resizeColumnToContents(0)  # as refresh sizes it once the prediction's rows are set
    widest = panel.tree.fontMetrics().horizontalAdvance("8.88 k sites")  # human_count: 3 digits
    start = panel.tree.header().sectionPosition(1)
    levels = [item for key, item in panel.items.items() if isinstance(panel.layers[key], LevelLayer)]
    assert levels
    margin = 2 * panel.tree.style().pixelMetric(QtWidgets.QStyle.PixelMetric.PM_FocusFrameHMargin)
    assert start + widest + margin <= panel.tree.viewport().width(), (start, widest, panel.tree.viewport().width())


def test_the_level_and_uncertainty_keys_show_in_a_narrowed_layers_dock(qtbot, window):
    """Narrowed to its least width, the Layers dock still shows the level and uncertainty keys and a
    level's site count whole beside their rows - the names elide instead (the names' column kept its
    185 px, so at 200 px 5 px of a 72-px key showed, none at the least, 166 px; the review of uifix);
    back at its width the names show whole again."""
    from qgn_studio.canvas.layers import LevelLayer

    panel = window.layer_panel
    tree = panel.tree
    settle(qtbot)
    default, names = window.layers_dock.width(), tree.columnWidth(0)
    inset = tree.style().pixelMetric(QtWidgets.QStyle.PixelMetric.PM_FocusFrameHMargin) + 1
    widest = tree.fontMetrics().horizontalAdvance("8.88 k sites")  # human_count: 3 digits
    for width in (200, 1):  # 1: the dock's least
        window.resizeDocks([window.layers_dock], [width], QtCore.Qt.Orientation.Horizontal)
        settle(qtbot)
        assert window.layers_dock.width() < default
        for key, item in panel.items.items():
            start = tree.visualRect(tree.indexFromItem(item, 1)).x()
            need = tree.iconSize().width() if key in ("sites", "uncertainty") else widest
            if key in ("sites", "uncertainty") or isinstance(panel.layers[key], LevelLayer):
                assert start + inset + need <= tree.viewport().width(), (width, key, start, tree.viewport().width())
            # an elided name ("Anno…" for both annotation layers) is told whole by its tooltip
            assert item.toolTip(0).startswith(panel.layers[key].title), (key, item.toolTip(0))
    window.resizeDocks([window.layers_dock], [default], QtCore.Qt.Orientation.Horizontal)
    settle(qtbot)
    assert tree.columnWidth(0) == names


def test_a_narrow_layers_dock_elides_the_legends_names_with_their_tooltips(qtbot, window):
    """At the Layers dock's least width (166 px at 1280×800) camvid's legend was wider than its
    scroll area, which cut "sign/symbol" and "pedestrian" to "sign/sym" and "pedestr" at its edge:
    the legend now fits the dock, a name that does not fit is drawn elided, whole in its tooltip."""
    panel = window.layer_panel
    classes = largest_bundled_classes()
    panel.legend.set_classes(classes)
    window.resizeDocks([window.layers_dock], [100], QtCore.Qt.Orientation.Horizontal)  # its least width
    settle(qtbot)
    viewport = panel.legend_scroll.viewport()
    assert panel.legend.mapTo(viewport, QtCore.QPoint(panel.legend.width(), 0)).x() <= viewport.width()
    labels = {w.text(): w for w in panel.legend.findChildren(QtWidgets.QLabel) if w.text() in classes.names}
    assert set(labels) == set(classes.names)
    elided = 0
    for name, label in labels.items():
        assert label.mapTo(viewport, QtCore.QPoint(label.width(), 0)).x() <= viewport.width(), name
        whole = label.fontMetrics().horizontalAdvance(name) <= label.contentsRect().width()
        shown = label.shown_text()
        if whole:
            assert shown == name
        else:
            elided += 1
            assert shown.endswith("…") and name.startswith(shown[:-1]), (name, shown)
            assert name in label.toolTip(), name
    assert elided, "the dock at its least width should elide a long name (a test that checks nothing)"


def test_at_1280x720_camvids_legend_shows_whole_the_levels_folded_until_the_user_unfolds_them(qtbot, window):
    """At 1280×720 (window 1264×672) camvid's legend scrolled 32 px: the decoder levels' six rows
    fold while the legend lacks room (their group row, its check box and the Layers menu's
    Show Q̂5 … Q̂0 stay), and unfold at 1280×800; once the user unfolds them they stay so."""
    panel = window.layer_panel
    panel.legend.set_classes(largest_bundled_classes())
    window.resize(1264, 672)
    settle(qtbot)
    settle(qtbot)
    assert panel.legend_scroll.verticalScrollBar().maximum() == 0
    assert window.layers_dock.widget().verticalScrollBar().maximum() == 0
    assert not panel.group.isExpanded() and not panel.group.isHidden()
    window.resize(*WINDOW_SIZE)
    settle(qtbot)
    settle(qtbot)
    assert panel.group.isExpanded() and panel.legend_scroll.verticalScrollBar().maximum() == 0
    window.resize(1264, 672)
    settle(qtbot)
    settle(qtbot)
    assert not panel.group.isExpanded()
    panel.tree.expandItem(panel.group)  # the user's unfold (the legend scrolls then)
    settle(qtbot)
    window.resize(1264, 660)
    settle(qtbot)
    assert panel.group.isExpanded()
