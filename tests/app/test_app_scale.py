"""The app at dataset scale: the window shows before torch is imported, decoded images of pages
left behind are dropped (read again on return), and a rule change restyles the accuracy curve
instead of rebuilding it."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from types import SimpleNamespace

import numpy as np

from qgn_studio.document import CurvePoint, ImageDocument, SchemeChoice


def test_the_window_is_built_and_shown_without_importing_torch() -> None:
    """The UI thread never imports torch: the app starts the import on a thread of its own
    (qgn_studio/torch_loading.py) and builds and shows the window meanwhile."""
    code = textwrap.dedent("""
        import os, sys, threading
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        importers = set()

        class ImportSpy:  # which threads ask for torch
            def find_spec(self, name, path=None, target=None):
                if name == "torch":
                    importers.add(threading.current_thread() is threading.main_thread())

        sys.meta_path.insert(0, ImportSpy())
        from qgn_studio.app import make_application
        app = make_application()
        from qgn_studio.main_window import MainWindow
        window = MainWindow(settings=None)
        window.show()
        app.processEvents()
        names = [a.text() for a in window.bundled_menu.actions()]
        from qgn_studio.torch_loading import import_torch
        import_torch()  # what a worker does: waits for the import thread
        print(True in importers, False in importers, any(n.startswith("camvid") for n in names))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    by_ui_thread, by_another, camvid_listed = out.stdout.split()[-3:]
    assert by_ui_thread == "False" and by_another == "True"
    assert camvid_listed == "True"  # the bundled-model menu is filled from the JSON files alone


def test_bundled_models_are_described_from_their_json_without_torch() -> None:
    code = "import sys; from qgn.resources import bundled_models; m = bundled_models(); print('torch' in sys.modules, len(m))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "2"]


def _loaded(tmp_path: Path, name: str) -> ImageDocument:
    doc = ImageDocument(tmp_path / name)
    doc.image = np.zeros((36, 48, 3), np.uint8)
    doc.ground_truth = np.zeros((36, 48), np.int64)
    return doc


def test_unload_drops_the_pixels_and_load_reads_them_again(tmp_path: Path) -> None:
    from PIL import Image

    Image.fromarray(np.full((6, 8, 3), 200, np.uint8)).save(tmp_path / "a.png")
    doc = ImageDocument(tmp_path / "a.png")
    doc.load()
    assert doc.loaded and doc.image[0, 0, 0] == 200
    assert doc.unload() and not doc.loaded and doc.image is None and doc.ground_truth is None
    doc.load()
    assert doc.image.shape == (6, 8, 3)
    doc.annotation = SimpleNamespace(dirty=True)  # an annotation with unsaved edits keeps its image
    assert not doc.unload() and doc.image is not None
    doc.annotation = SimpleNamespace(dirty=False)  # a saved one does not (its map stays)
    assert doc.unload() and doc.image is None and doc.annotation is not None


def test_the_window_keeps_the_pixels_of_recent_pages_only(qtbot, tmp_path: Path) -> None:
    from qgn_studio.main_window import MainWindow
    from qgn_studio.window_images import RECENT_RESULTS

    window = MainWindow(settings=None)
    qtbot.addWidget(window)
    docs = [_loaded(tmp_path, f"{i}.png") for i in range(RECENT_RESULTS + 5)]
    docs[0].annotation = SimpleNamespace(dirty=True)
    docs[1].annotation = SimpleNamespace(dirty=False)
    for doc in docs:
        window._keep_recent_results(doc)
    kept = [d for d in docs if d.image is not None]
    assert kept == [docs[0]] + docs[-RECENT_RESULTS:]


SAMPLE_COUNT = 11  # the samples fixture: more images than the window keeps decoded (RECENT_RESULTS)


def test_a_long_session_keeps_the_pixels_of_saved_images_left_behind_no_longer(qtbot, windows, samples, model_path,
                                                                              tmp_path) -> None:
    # in annotation mode every image visited kept its decoded image and ground truth for the
    # whole session (unload refused any image with a map): memory grew with every image annotated
    from qgn_studio.window_images import RECENT_RESULTS
    from studio_steps import WAIT_MS, paint, start_annotating

    assert len(samples) > RECENT_RESULTS + 1
    win = windows(folder=tmp_path / "project")
    first = start_annotating(qtbot, win, samples, model_path)
    paint(win, 2, 5, [(8, 8), (40, 30)])
    with qtbot.waitSignal(win.projects.saved, timeout=WAIT_MS):
        assert win.projects.save()
    saved = first.label.copy()
    for row in range(1, RECENT_RESULTS + 2):
        win.step_image(1)
        qtbot.waitUntil(lambda: win.current.annotation is not None and win.current.result is not None,
                        timeout=WAIT_MS)
        if row == 1:
            paint(win, 2, 4, [(8, 8), (40, 30)])  # unsaved edits: this one keeps its image
    docs = win.docs
    assert docs[0].image is None and docs[0].annotation is first  # the map (and its undo log) stays
    assert docs[1].image is not None and docs[1].annotation.dirty
    win.select_image(0)  # back: the image is read again, the same map shown and edited
    qtbot.waitUntil(lambda: win.current is docs[0] and docs[0].image is not None and win.current.result is not None,
                    timeout=WAIT_MS)
    assert win.current.annotation is first
    np.testing.assert_array_equal(first.label, saved)
    paint(win, 2, 3, [(50, 40)])
    assert first.dirty and (first.label != saved).any()
    win.annotator.undo_group.undo()
    np.testing.assert_array_equal(first.label, saved)


def test_a_rule_change_restyles_the_curves_without_rebuilding_them(qtbot) -> None:
    from qgn_studio.panels.explore import CurvePlot

    plot = CurvePlot()
    qtbot.addWidget(plot)
    points = [CurvePoint(Path("x"), SchemeChoice(rule, depth=d), 10 ** (6 + d / 2 + (rule == "all")), 10 ** 9,
                         0.5 + 0.05 * d, 0.8) for rule in ("all", "pc") for d in range(6)]
    plot.show_points(points, SchemeChoice("pc"), None)
    items = dict(plot._families)

    def names():
        return sorted(label.text for _sample, label in plot.legend.items)

    assert names() == ["All", "PC (current)"]
    plot.show_points(points, SchemeChoice("all"), None)
    assert plot._families == items  # the same plot items, restyled
    assert names() == ["All (current)", "PC"]
    assert [t.toPlainText() for t in plot._depth_labels if t.isVisible()] == [f"Q{d}" for d in range(5, -1, -1)]


def test_a_sweep_of_curve_points_is_drawn_together_not_once_a_point(qtbot) -> None:
    """The curve points of a sweep arrive one by one, each redrawing the whole plot (10-40 ms of
    the UI thread each): the first is drawn at once, those that follow within the interval together
    at its end, and the plot then shows every point."""
    from qgn_studio.panels.explore import ExplorePanel

    panel = ExplorePanel()
    qtbot.addWidget(panel)
    drawn = []
    show_points = panel.plot.show_points
    panel.plot.show_points = lambda points, *args: drawn.append(len(points)) or show_points(points, *args)
    points = [CurvePoint(Path("x"), SchemeChoice(rule, depth=d), 10 ** (6 + d / 2 + (rule == "all")), 10 ** 9,
                         0.5 + 0.05 * d, 0.8) for rule in ("all", "pc") for d in range(6)]
    for n in range(1, len(points) + 1):
        panel.show_curve(points[:n], SchemeChoice("pc"))
    assert drawn == [1]
    qtbot.waitUntil(lambda: not panel.curve_pending(), timeout=5000)
    assert drawn == [1, len(points)]
    assert sorted(panel.plot._families) == sorted({p.setting.family() for p in points})


def test_past_the_memory_budget_saved_maps_left_behind_close_and_come_back_from_their_file(
        qtbot, windows, samples, model_path, tmp_path, monkeypatch) -> None:
    # every image visited in annotation mode kept its map, reference and pyramid to the end of the
    # session (~6 bytes a pixel, 70 MB a 12-megapixel photo; the soak: +0.44 MB an image at 320x240)
    from qgn_studio.tools import commands
    from studio_steps import WAIT_MS, paint, start_annotating

    win = windows(folder=tmp_path / "project")
    first = start_annotating(qtbot, win, samples, model_path)
    one_map = win.annotator._map_bytes(first)
    monkeypatch.setattr(commands, "UNDO_BUDGET_BYTES", int(3.5 * one_map))  # room for about three maps
    paint(win, 2, 5, [(8, 8), (40, 30)])
    with qtbot.waitSignal(win.projects.saved, timeout=WAIT_MS):
        assert win.projects.save()
    saved = first.label.copy()
    win.step_image(1)
    qtbot.waitUntil(lambda: win.current.annotation is not None, timeout=WAIT_MS)
    paint(win, 2, 4, [(8, 8), (40, 30)])  # unsaved: stays, whatever the budget
    unsaved = win.current.annotation
    win.step_image(1)
    qtbot.waitUntil(lambda: win.current.annotation is not None, timeout=WAIT_MS)
    paint(win, 2, 3, [(8, 8), (40, 30)])
    win.annotator.undo_group.undo()  # back to the start with a step to redo: stays too
    to_redo = win.current.annotation
    for _ in range(3):
        win.step_image(1)
        qtbot.waitUntil(lambda: win.current.annotation is not None, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: win.docs[0].annotation is None, timeout=WAIT_MS)  # the saved one, seen longest ago
    assert win.docs[1].annotation is unsaved and win.docs[2].annotation is to_redo
    docs = [d for d in win.docs if d.annotation is not None]
    assert sum(win.annotator._map_bytes(d.annotation) for d in docs) <= 4 * one_map
    win.select_image(0)  # back: its saved file is read again
    qtbot.waitUntil(lambda: win.current is win.docs[0] and win.current.annotation is not None, timeout=WAIT_MS)
    np.testing.assert_array_equal(win.current.annotation.label, saved)
    assert not win.current.annotation.dirty
