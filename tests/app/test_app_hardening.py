"""Issue #16, the app's rough edges (offscreen): hover after switching to a smaller image, the
banner's ✕, what browsing in annotation mode counts as annotated, opening images into a project."""
from __future__ import annotations

import numpy as np
from PIL import Image

from PySide6 import QtCore, QtWidgets

from qgn_studio.panels.images import annotation_badges
from qgn_studio.testing import write_samples

from studio_steps import WAIT_MS


def wait_result(qtbot, win, path):
    qtbot.waitUntil(lambda: win.current is not None and win.current.path == path.resolve()
                    and win.current.result is not None and win.canvas.result is win.current.result, timeout=WAIT_MS)


def test_hover_survives_switching_to_a_smaller_image(qtbot, window, model_path, tmp_path):
    rng = np.random.default_rng(0)
    big, small = tmp_path / "a_big.png", tmp_path / "b_small.png"
    Image.fromarray(rng.integers(0, 255, (200, 160, 3), dtype=np.uint8)).save(big)
    Image.fromarray(rng.integers(0, 255, (64, 48, 3), dtype=np.uint8)).save(small)
    window.start([big, small], str(model_path))
    wait_result(qtbot, window, big)
    window._hovered(150.5, 190.5)  # near the bottom of the big image
    assert "x 150  y 190" in window.hover_label.text()
    window.step_image(1)  # N, the mouse not moved: the stored hover lies outside the small image
    wait_result(qtbot, window, small)  # _result_ready re-runs the hover handler: no IndexError
    assert window.hover_label.text() == ""
    qtbot.waitUntil(lambda: "measuring" not in window.explore.summary.text(), timeout=WAIT_MS)


def test_banner_close_button_closes_it(qtbot, window):
    banner = window.canvas.banner
    banner.show_message("one", "error", "image")
    banner.show_message("two", "warning", "open")
    assert banner.isVisible()
    close = next(b for b in banner.findChildren(QtWidgets.QToolButton) if b.text() == "✕")
    qtbot.mouseClick(close, QtCore.Qt.MouseButton.LeftButton)
    assert not banner.isVisible() and banner.messages == {}


def test_browsing_in_annotation_mode_annotates_nothing(qtbot, window, model_path, tmp_path):
    samples = write_samples(tmp_path / "data", 3, (64, 96))
    window.start([samples[0].parent], str(model_path))
    wait_result(qtbot, window, samples[0])
    window.annotator.set_mode(True)
    for i, path in enumerate(samples):
        if i:
            window.step_image(1)
            wait_result(qtbot, window, path)
        qtbot.waitUntil(lambda: window.current.annotation is not None, timeout=WAIT_MS)
    window.jobs.wait_idle()
    assert all(doc.annotation is None or not doc.annotation.is_annotation for doc in window.docs)
    assert all("✎" not in annotation_badges(doc) for doc in window.docs)
    assert window.finetuner.corrections() == []


def test_opening_images_keeps_the_projects_images(qtbot, window, model_path, tmp_path):
    samples = write_samples(tmp_path / "data", 2, (64, 96))
    window.start(samples, str(model_path))
    wait_result(qtbot, window, samples[0])
    window.projects.ask_folder = lambda title, new: tmp_path / "proj"
    assert window.projects.new_project()
    extra = write_samples(tmp_path / "more", 1, (64, 96))
    window.open_paths([extra[0]])  # File ▸ Open while the project is open
    assert [d.path for d in window.docs] == [p.resolve() for p in samples] + [extra[0].resolve()]


def test_finetune_panel_progress_and_a_worse_result_is_flagged(qtbot):
    from types import SimpleNamespace

    from qgn_studio.panels.finetune import FinetunePanel

    panel = FinetunePanel()
    qtbot.addWidget(panel)
    assert panel.progress.maximum() == panel.iterations.value() == 300  # not "0 / 100"
    panel.iterations.setValue(120)
    assert panel.progress.maximum() == 120
    assert "No corrected" not in panel.corrections.text()  # nothing was counted yet
    metrics = {"acc": 0.9, "miou": 0.6, "agreement": 0.874}
    worse = SimpleNamespace(before=metrics, after={**metrics, "agreement": 0.855}, per_image=[], scheme="pc",
                            changed_cells=3, changed_pixels=12, pixels=100)
    panel.show_comparison(worse)
    assert "Worse after fine-tuning: cells right" in panel.changed.text()
    assert panel.table.item(2, 2).text().endswith("▼")


def test_autosave_shows_in_the_status_bar(qtbot, window):
    window.projects.autosaved.emit(2)
    assert "Autosaved 2 annotations" in window.statusBar().currentMessage()


def test_shortcut_list_shows_whole_actions(qtbot, window):
    from qgn_studio.dialogs import ShortcutsDialog

    dialog = ShortcutsDialog(window.shortcut_rows, window)
    qtbot.addWidget(dialog)
    needed = sum(dialog.table.columnWidth(c) for c in range(3))
    assert dialog.width() >= min(needed, 1200 - 60)


def test_recent_paths_and_last_folder(qtbot, window, model_path, tmp_path):
    from qgn.resources import samples_dir

    samples = write_samples(tmp_path / "data", 2, (64, 96))
    window.start([samples[0].parent], str(model_path))
    wait_result(qtbot, window, samples[0])
    window.projects.ask_folder = lambda title, new: tmp_path / "proj"
    assert window.projects.new_project()
    window._fill_recent_menu()
    texts = [a.text() for a in window.recent_menu.actions()]
    assert texts[0].startswith("Project: proj") and any(t.startswith("Folder: images") for t in texts)
    assert window._last_folder() == str(samples[0].parent)
    window._remember_folder(samples_dir() / "images" / "x.png")  # the bundled samples are not "where I was"
    assert window._last_folder() == str(samples[0].parent)


def test_the_last_project_reopens_after_a_normal_quit(qtbot, window, model_path, tmp_path):
    from qgn.resources import samples_dir

    from qgn_studio.main_window import MainWindow, make_settings

    samples = write_samples(tmp_path / "data", 1, (64, 96))
    window.start(samples, str(model_path))
    wait_result(qtbot, window, samples[0])
    window.projects.ask_folder = lambda title, new: tmp_path / "proj"
    assert window.projects.new_project()
    window.close()  # a normal quit
    again = MainWindow(settings=make_settings())
    qtbot.addWidget(again)
    assert again._last_project_instead_of_samples([str(samples_dir() / "images")]) == [str((tmp_path / "proj").resolve())]
    assert again._last_project_instead_of_samples([str(samples[0])]) == [str(samples[0])]  # asked for: opened
