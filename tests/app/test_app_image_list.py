"""The image list over a working day: thumbnails stay after ordering by uncertainty and after adding
images; ordering shows n/N, can be cancelled, and its order comes back on the next start; a file
replaced on disk under the same name is read again (not its stale "unreadable" result); a tiny
image's row is as tall as the others; a sliver of an image (20000×2) has a thumbnail that paints.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from qgn_studio.app import make_application
from qgn_studio.testing import answering_window, write_samples

from studio_steps import WAIT_MS


@pytest.fixture
def make_window(qtbot):
    make_application()
    made = []

    def make():
        win = answering_window()
        qtbot.addWidget(win)
        win.resize(1100, 700)
        win.show()
        made.append(win)
        return win

    yield make
    for win in made:
        win.close()


def icon_is_a_thumbnail(icon) -> bool:
    """A thumbnail has more than one colour; the placeholder is a flat square."""
    image = icon.pixmap(56, 56).toImage()
    colours = {image.pixel(x, y) for x in range(0, image.width(), 4) for y in range(0, image.height(), 4)}
    return len(colours) > 1


def all_thumbnails(win) -> bool:
    return all(icon_is_a_thumbnail(win.images.row_icon(r)) for r in range(win.images.count()))


def test_thumbnails_survive_ordering_and_adding(qtbot, make_window, model_path, tmp_path):
    win = make_window()
    paths = write_samples(tmp_path / "data", 4, (64, 96), layout="none")
    win.start(paths, str(model_path))
    qtbot.waitUntil(lambda: win.model_info is not None and all_thumbnails(win), timeout=WAIT_MS)
    seen = []
    order = win.uncertainty_order
    order.order()
    order.job.scored.connect(lambda *_: seen.append(win.progress.label.text()))
    qtbot.waitUntil(lambda: bool(order.scores), timeout=WAIT_MS)
    assert seen and all(re.search(r"\b\d+/4\b", text) for text in seen), seen
    assert all_thumbnails(win), "ordering must not drop the thumbnails"
    more = write_samples(tmp_path / "more", 2, (64, 96), layout="none")
    win.open_paths([str(p) for p in more], append=True)
    qtbot.waitUntil(lambda: win.images.count() == 6, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: all_thumbnails(win), timeout=WAIT_MS)


def test_ordering_can_be_cancelled_and_is_remembered(qtbot, make_window, model_path, tmp_path):
    paths = write_samples(tmp_path / "data", 5, (64, 96), layout="none")
    win = make_window()
    win.start(paths, str(model_path))
    qtbot.waitUntil(lambda: win.model_info is not None, timeout=WAIT_MS)
    order = win.uncertainty_order
    order.order()
    assert win.progress.isVisible() and win.progress.cancel_button.isVisible()
    assert win.progress.cancel_button.toolTip() == "Stop it (Esc)"  # (Esc stops it)
    win.cancel()  # Esc
    # until its job ends (its current image first) it says it cancels, its Cancel disabled, not gone:
    # its line went at once, and an image scored after the cancel showed it again, Cancel and all
    assert win.progress.label.text() == "Cancelling scoring uncertainty…"
    assert win.progress.cancel_button.isVisible() and not win.progress.cancel_button.isEnabled()
    order.job.wait()
    qtbot.waitUntil(lambda: not win.progress.isVisible(), timeout=WAIT_MS)
    assert not order.scores and [d.path for d in win.docs] == paths
    order.order()
    qtbot.waitUntil(lambda: bool(order.scores), timeout=WAIT_MS)
    ranked = [d.path for d in win.docs]
    assert sorted(ranked) == sorted(paths)
    win.close()
    again = make_window()
    again.start(paths, str(model_path))
    qtbot.waitUntil(lambda: len(again.docs) == 5, timeout=WAIT_MS)
    assert [d.path for d in again.docs] == ranked, "the order scored last time comes back"
    assert "uncertainty" in again.images.row_text(0)


def test_a_replaced_file_is_read_again(qtbot, make_window, model_path, tmp_path):
    folder = tmp_path / "data"
    good = write_samples(folder, 1, (64, 96), layout="none")[0]
    broken = folder / "later.png"
    broken.write_bytes(b"not a png at all")
    win = make_window()
    win.start([good, broken], str(model_path))
    qtbot.waitUntil(lambda: len(win.docs) == 2, timeout=WAIT_MS)
    win.images.set_current(1)
    qtbot.waitUntil(lambda: win.docs[1].error is not None, timeout=WAIT_MS)
    Image.fromarray(np.full((40, 50, 3), 90, np.uint8)).save(broken)  # the user fixes the file
    win.images.set_current(0)
    win.images.set_current(1)
    qtbot.waitUntil(lambda: win.docs[1].image is not None, timeout=WAIT_MS)
    assert win.docs[1].error is None and win.docs[1].size == (40, 50)
    qtbot.waitUntil(lambda: "unreadable" not in win.images.row_text(1), timeout=WAIT_MS)


def test_a_tiny_image_keeps_the_row_height(qtbot, make_window, model_path, tmp_path):
    folder = tmp_path / "data"
    paths = write_samples(folder, 2, (64, 96), layout="none")
    tiny = folder / "tiny.png"
    Image.fromarray(np.full((20, 20, 3), 200, np.uint8)).save(tiny)
    win = make_window()
    win.start(paths + [tiny], str(model_path))
    qtbot.waitUntil(lambda: all_thumbnails(win) or win.images.count() == 3, timeout=WAIT_MS)
    qtbot.wait(300)
    heights = [win.images.list.visualRect(win.images.rows.index(r)).height() for r in range(3)]
    assert min(heights) == max(heights) >= 40, heights


def test_a_sliver_of_an_image_has_a_thumbnail_that_paints(qtbot, make_window, model_path, tmp_path, qtlog):
    """A 20000×2 image's thumbnail (64×1) scaled into the list's icon was 0 px high: Qt printed
    "QPainter::begin: Paint device returned engine == 0" on every repaint of its row."""
    from PySide6 import QtGui

    from qgn_studio.workers import ThumbnailLoader

    wide = tmp_path / "wide.png"
    Image.fromarray(np.full((2, 20000, 3), 200, np.uint8)).save(wide)
    thumbnail = ThumbnailLoader().read(wide)
    assert min(thumbnail.width(), thumbnail.height()) >= 8
    win = make_window()
    win.start([str(wide)], str(model_path))
    qtbot.waitUntil(lambda: win.images.has_thumbnail(wide.resolve()), timeout=WAIT_MS)
    icon = win.images.row_icon(0)
    size = win.images.list.iconSize()
    for mode in QtGui.QIcon.Mode:  # the list paints the selected row's icon in Selected mode
        assert not icon.pixmap(size, mode).isNull()
    win.images.list.grab()
    assert not [r.message for r in qtlog.records if "QPainter" in r.message]


def test_a_repaint_of_the_list_asks_each_row_once_not_once_a_role(qtbot, tmp_path):
    """The view's delegate asks a row for ~7 roles at once: the rows answer them in one call into
    Python (``multiData``) — each call from the UI thread must take the interpreter lock back from a
    busy job thread. What it answers is what ``data`` answers, role by role."""
    from PySide6 import QtCore, QtWidgets

    from qgn_studio.document import ImageDocument
    from qgn_studio.panels.images import ImageListPanel

    make_application()
    panel = ImageListPanel()
    qtbot.addWidget(panel)
    panel.resize(270, 600)
    panel.show()
    docs = [ImageDocument(tmp_path / f"img_{i:03d}.png") for i in range(40)]
    rows = panel.rows
    rows.set_documents(docs)
    calls = {"data": 0, "multiData": 0}
    for name in calls:
        original = getattr(rows, name)
        setattr(rows, name, lambda *args, _name=name, _original=original: calls.__setitem__(
            _name, calls[_name] + 1) or _original(*args))
    panel.list.viewport().grab()
    painted = calls["multiData"]
    assert painted >= 5 and calls["data"] <= painted, calls  # 7 data calls a row before
    option = QtWidgets.QStyleOptionViewItem()
    panel.list.itemDelegate().initStyleOption(option, rows.index(3))
    assert option.text == rows.data(rows.index(3)) == rows.text(docs[3])
    assert not option.icon.isNull()
    assert panel.list.sizeHintForRow(3) == rows.data(rows.index(3), QtCore.Qt.ItemDataRole.SizeHintRole).height()


@pytest.mark.parametrize("name, feature", [("a.avif", "avif"), ("a.JP2", "jpg_2000")])
def test_a_folder_of_only_avif_or_jpeg2000_files_lists_and_opens_them(qtbot, make_window, model_path, tmp_path,
                                                                        monkeypatch, name, feature):
    """A folder holding one AVIF (or JPEG 2000, named in capitals) said "no images in this folder"
    while the file itself opened: the app's folders list what read_rgb opens (qgn.imagefile's one
    list), and the Open dialog offers it, in either case. The AVIF, flat blocks of 584 bytes, was
    then refused as "stored uncompressed" in fewer bytes than its pixels (check_compressed_size)."""
    from PIL import features
    from PySide6 import QtWidgets

    if not features.check(feature):
        pytest.skip(f"this Pillow reads no {name} (no {feature})")
    folder = tmp_path / "photos"
    folder.mkdir()
    pixels = np.repeat(np.repeat(np.random.default_rng(3).integers(0, 256, (4, 6, 3), dtype=np.uint8), 16, 0), 16, 1)
    Image.fromarray(pixels).save(folder / name)
    win = make_window()
    win.start([str(folder)], str(model_path))
    qtbot.waitUntil(lambda: win.current is not None and win.current.image is not None, timeout=WAIT_MS)
    assert [d.path.name for d in win.docs] == [name] and win.current.error is None
    assert win.current.size == (64, 96)
    assert np.abs(win.current.image.astype(int) - pixels.astype(int)).mean() < 6
    assert "no images" not in win.canvas.banner.messages.get("open", ("",))[0]
    offered = []
    monkeypatch.setattr(QtWidgets.QFileDialog, "getOpenFileNames",
                        staticmethod(lambda *a, **k: offered.append(a[3]) or ([], "")))
    win.open_images_dialog()
    patterns = offered[0].split("Images (")[1].split(")")[0].split()
    suffix = name[1:]
    assert f"*{suffix.lower()}" in patterns and f"*{suffix.upper()}" in patterns, offered
