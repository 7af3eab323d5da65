"""The docks at 1280×800 (a laptop): the Images list shows four images, and the fine-tune panel
keeps its loss plot's axis, its status and the before / after scores in view without scrolling."""
from __future__ import annotations

from types import SimpleNamespace

from PySide6 import QtCore, QtWidgets

WINDOW_SIZE = (1280, 800)


def settle(qtbot) -> None:
    QtWidgets.QApplication.processEvents()
    qtbot.wait(50)


def in_view(widget: QtWidgets.QWidget, scroll: QtWidgets.QScrollArea) -> bool:
    """Whether ``widget`` lies whole inside ``scroll``'s viewport as it is scrolled now."""
    viewport = scroll.viewport()
    top_left = widget.mapTo(viewport, QtCore.QPoint(0, 0))
    return viewport.rect().contains(QtCore.QRect(top_left, widget.size()))


def test_the_images_list_shows_four_rows(qtbot, window):
    from qgn_studio.panels.images import ROW_HEIGHT

    settle(qtbot)
    assert window.images.list.viewport().height() >= 4 * ROW_HEIGHT  # 300:560 of the column left 3


def test_the_fine_tune_panel_keeps_its_plot_status_and_scores_in_view(qtbot, window):
    panel = window.finetuner.panel
    window.finetune_dock.raise_()
    panel.set_running(True, 300)
    for i in range(1, 50):
        panel.add_loss(i, 1 / i)
    panel.set_running(False)
    metrics = {"acc": 0.9, "miou": 0.6, "agreement": 0.874}
    panel.show_comparison(SimpleNamespace(before=metrics, after=metrics, per_image=[], scheme="pc",
                                          changed_cells=3, changed_pixels=12, pixels=100))
    panel.set_status("Done: 300 iterations in 2 min 10 s. Not saved: keep it to save it as a new model, or revert.")
    settle(qtbot)
    scroll = window.finetune_dock.widget()
    assert scroll.verticalScrollBar().value() == 0
    for widget in (panel.plot, panel.status, panel.table):
        assert in_view(widget, scroll), widget
