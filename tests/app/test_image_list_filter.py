"""The image list's filter on a big list: a filter change is one layout change of the list's model
(not a ``setRowHidden`` per row, each calling back into Python and queueing a relayout: ~45 ms for
5,000 images), and the rows, the current image and the selection follow their documents."""
from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from qgn_studio.app import make_application
from qgn_studio.document import ImageDocument
from qgn_studio.panels.images import ImageListPanel

COUNT = 3000


def panel_over(tmp_path, count=COUNT):
    make_application()
    panel = ImageListPanel()
    docs = [ImageDocument(tmp_path / f"img_{i:05d}.png") for i in range(count)]
    for i, doc in enumerate(docs):
        doc.done = i % 3 == 0
    panel.set_documents(docs)
    panel.resize(300, 600)
    panel.show()
    return panel, docs


def test_a_filter_change_is_one_layout_change_not_a_call_per_row(qtbot, tmp_path, monkeypatch):
    panel, docs = panel_over(tmp_path)
    qtbot.addWidget(panel)
    hidden_calls = []
    monkeypatch.setattr(panel.list, "setRowHidden", lambda *args: hidden_calls.append(args))
    layouts = []
    panel.rows.layoutChanged.connect(lambda *_: layouts.append(1))
    panel.show_rows([d.done for d in docs])
    assert hidden_calls == [] and len(layouts) == 1
    done = [i for i, d in enumerate(docs) if d.done]
    assert panel.visible_rows() == done
    assert [panel.rows.data(panel.rows.index(r)).split("\n")[0] for r in range(panel.rows.rowCount())] == \
        [f"{docs[i].name}  ✓" for i in done]  # an independent reference: the documents done, marked so
    assert "1000 shown" in panel.summary.text()
    panel.show_rows([d.done for d in docs])  # the same rows again: nothing laid out
    assert len(layouts) == 1
    panel.show_rows([True] * COUNT)
    assert hidden_calls == [] and len(layouts) == 2 and panel.visible_rows() == list(range(COUNT))


def test_the_current_image_and_the_selection_follow_their_documents(qtbot, tmp_path):
    panel, docs = panel_over(tmp_path, 30)
    qtbot.addWidget(panel)
    seen = []
    panel.current_changed.connect(seen.append)
    panel.set_current(9)
    flags = QtCore.QItemSelectionModel.SelectionFlag
    panel.list.selectionModel().select(panel.rows.index(12), flags.Select | flags.Rows)
    panel.list.selectionModel().select(panel.rows.index(13), flags.Select | flags.Rows)
    assert panel.selected_rows() == [9, 12, 13] and seen == [9]
    panel.show_rows([d.done for d in docs])  # 9 and 12 are done, 13 is not
    assert panel.current() == 9 and panel.selected_rows() == [9, 12]
    assert panel.list.currentIndex().row() == 3  # the 4th row shown: 0, 3, 6, 9
    panel.list.setCurrentIndex(panel.rows.index(5))  # a click on the 6th row shown: document 15
    assert seen[-1] == 15 and panel.current() == 15
    panel.set_current(16)  # the app steps to an image the filter hides: it is listed again
    assert panel.current() == 16 and 16 in panel.visible_rows() and panel.selected_rows() == [16]
    panel.show_rows([True] * 30)
    assert panel.current() == 16 and panel.list.currentIndex().row() == 16
    QtWidgets.QApplication.processEvents()


def test_a_whole_list_selected_then_filtered_keeps_exactly_the_images_selected(qtbot, tmp_path):
    """Qt keeps a selection of a whole list of over 1,000 rows as one range and moves only its ends
    through a layout change: Ctrl+A under "Not done" (2,000 rows), then "All images", selected the
    1,000 done images between them too (Image → Remove took them out); the other way round, the
    selection emptied. Exactly the selected images still shown stay selected."""
    panel, docs = panel_over(tmp_path)
    qtbot.addWidget(panel)
    not_done = [i for i, d in enumerate(docs) if not d.done]
    panel.show_rows([not d.done for d in docs])
    panel.set_current(not_done[0])
    panel.list.selectAll()
    assert panel.selected_rows() == not_done
    panel.show_rows([True] * len(docs))
    assert panel.selected_rows() == not_done  # none of the done images, never selected
    panel.list.selectAll()
    panel.show_rows([d.done for d in docs])
    assert panel.selected_rows() == [i for i, d in enumerate(docs) if d.done]  # all of them still selected


def test_a_filter_waiting_for_the_counts_keeps_the_rows_until_they_arrive(qtbot, window, samples, model_path,
                                                                          monkeypatch):
    """"Annotated" and "Has class" were applied twice: first without the saved annotations' counts
    (every image not open hidden: the list flashed empty), then again when they arrived. The rows
    now stay as they are, the summary saying the counts are coming, until they are there."""
    import numpy as np

    from qgn.project_stats import ProjectStatistics
    from studio_steps import WAIT_MS

    window.start(samples, str(model_path))
    qtbot.waitUntil(lambda: window.current is not None and window.current.result is not None, timeout=WAIT_MS)
    assert window.images.current() == 0 and window.workspace.classes is not None
    asked = []
    monkeypatch.setattr(window.projects, "statistics",
                        lambda done, failed=None, progress=None: asked.append((done, failed)))
    shown_lists = []
    show_rows = window.images.show_rows
    monkeypatch.setattr(window.images, "show_rows", lambda rows: (shown_lists.append(list(rows)), show_rows(rows)))
    everything = list(range(len(samples)))
    assert window.images.visible_rows() == everything

    window.images.set_filter("annotated")
    assert len(asked) == 1 and shown_lists == []  # nothing hidden before the counts
    assert window.images.visible_rows() == everything
    assert "counting" in window.images.summary.text()
    classes = window.workspace.classes
    counts = np.zeros(classes.num_classes + 1, np.int64)
    counts[2] = 10
    docs = window.docs
    stats = ProjectStatistics(classes, [(d.path, False) for d in docs], {docs[2].path: counts})
    asked[0][0](stats)  # the counts arrive: image 2 is annotated (and image 0, on screen, stays listed)
    assert window.images.visible_rows() == [0, 2] and shown_lists[-1][1] is False
    assert "counting" not in window.images.summary.text() and "2 shown" in window.images.summary.text()

    window.images.set_filter("class:2")  # another count: the rows of the last filter stay meanwhile
    assert window.images.visible_rows() == [0, 2] and "counting" in window.images.summary.text()
    asked[1][1]("the disk is gone")  # no counts: the open annotations only, and the status line says why
    assert window.images.visible_rows() == [0] and "counting" not in window.images.summary.text()
    assert "Cannot read the saved annotations: the disk is gone" in window.statusBar().currentMessage()
