"""QGN Studio end to end under pytest-qt (offscreen): open, predict, explore, errors, settings.

The model is an untrained tiny QGN written to a temporary folder (the tests never need the
bundled demo model); its composite bias makes PC refine part of each image.
"""
from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image

from PySide6 import QtCore, QtWidgets

from qgn_studio.app import main, make_application
from qgn_studio.document import SchemeChoice
from qgn_studio.main_window import MainWindow, make_settings
from qgn_studio.testing import write_samples

from studio_steps import WAIT_MS, wait_for_image


def wait_for_result(qtbot, win, check=lambda r: True, timeout=WAIT_MS):
    def ready():
        doc = win.current
        banner = win.canvas.banner.label.text() if win.canvas.banner.isVisible() else ""
        assert doc is not None and doc.result is not None and check(doc.result), banner
        assert win.canvas.result is doc.result

    qtbot.waitUntil(ready, timeout=timeout)
    return win.current.result


def settled_result(qtbot, win, timeout=WAIT_MS):
    """The result on screen once the start's predictions are all done and heard: start() can
    compute the starting setting twice (the image read and the model's end heard both ask for it),
    the second result coming after the first was waited for (a test then held or cancelled it)."""
    worker = win.worker

    def idle() -> int | None:  # the last run's id, when nothing is queued or running
        with worker._cond:
            busy = worker._predict or worker._running or worker._model_job or getattr(worker, "_dropped", None)
            return None if busy else worker._run

    def settled():
        run = idle()
        assert run is not None and not win._busy
        qtbot.wait(200)  # (what the last run sent as it ended is heard)
        assert idle() == run and not win._busy

    wait_for_result(qtbot, win)
    qtbot.waitUntil(settled, timeout=timeout)
    return wait_for_result(qtbot, win)


def test_open_predict_move_depth_switch_scheme(qtbot, window, model_path, samples):
    window.explore.set_setting(SchemeChoice("pc", depth=0))
    window.start([samples[0].parent], str(model_path))
    result = wait_for_result(qtbot, window)
    assert len(window.docs) == 3 and window.current.ground_truth is not None
    assert result.label.shape == (64, 96)
    assert window.canvas.layers["prediction"].item.image.shape[:2] == (64, 96)
    assert window.explore.table.item(0, 1).text() == "6"  # Q̂5: 2 × 3 root cells
    assert "of All" in window.explore.summary.text()

    window.explore.set_depth(3)
    result = wait_for_result(qtbot, window, lambda r: r.setting.depth == 3)
    assert min(result.levels) >= 3
    assert not window.canvas.layers["q0"].available()
    assert window.explore.table.item(5, 1).text() == "–"  # Q̂0 not computed
    sites_pc = result.cost.active_sites

    window.explore.set_scheme("all")
    result = wait_for_result(qtbot, window, lambda r: r.setting.scheme == "all")
    assert result.cost.active_sites == {5: 6, 4: 24, 3: 96}
    assert sum(result.cost.active_sites.values()) >= sum(sites_pc.values())
    assert window.explore.table.item(2, 1).text() == "96"
    assert "100.0 %" in window.explore.summary.text() or "measuring" in window.explore.summary.text()

    window.explore.set_scheme("gtc")  # ground truth exists, so GTC is offered
    wait_for_result(qtbot, window, lambda r: r.setting.scheme == "gtc")

    window.set_layer_visible("q4", True)
    window.set_layer_visible("grid", True)
    level = window.canvas.layers["q4"]
    assert level.item.image is not None and level.item.image.shape[:2] == (4, 6)
    grid = window.canvas.layers["grid"]
    assert not grid.over["border"].path().isEmpty()
    assert any(not grid.over[lv].path().isEmpty() for lv in range(6))


def test_next_previous_and_hover(qtbot, window, model_path, samples):
    window.start([samples[0].parent], str(model_path))
    wait_for_result(qtbot, window)
    first = window.current
    window.step_image(1)
    wait_for_result(qtbot, window, lambda r: r.path == samples[1].resolve())
    assert window.current is not first
    window._hovered(10.5, 20.5)
    text = window.hover_label.text()
    assert "x 10  y 20" in text and "Q̂" in text and "truth:" in text
    names = window.model_info.classes.names
    assert any(name in text for name in names)
    window._hovered(float("nan"), float("nan"))
    assert window.hover_label.text() == ""


def test_level_layers_show_composite_cells(qtbot, window, model_path, samples):
    window.explore.set_setting(SchemeChoice("pc_tau", tau=0.15, depth=0))
    window.start([samples[0]], str(model_path))
    result = wait_for_result(qtbot, window)
    composite_levels = [lv for lv, view in result.levels.items() if (view.codes == 0).any()]
    assert composite_levels, "the dev model should predict some composite cells"
    lv = composite_levels[0]
    window.set_layer_visible(f"q{lv}", True)
    layer = window.canvas.layers[f"q{lv}"]
    assert not layer.hatch.path().isEmpty() and not layer.edge.path().isEmpty()
    for key in ("uncertainty", "sites"):
        window.set_layer_visible(key, True)
    uncertainty = window.canvas.layers["uncertainty"]
    entropy_picture = uncertainty.item.image.copy()
    finest = min(result.levels)
    assert entropy_picture.shape[:2] == result.levels[finest].codes.shape  # one image, the finest cells
    window.layer_panel.set_measure("composite")
    assert uncertainty.measure == "composite"
    assert not np.array_equal(uncertainty.item.image, entropy_picture)


def test_ui_thread_is_never_blocked_by_inference(qtbot, window, model_path, samples, monkeypatch):
    """Inference runs on a worker thread: while a prediction is held in flight, the window's event
    loop still delivers a queued call and shows that it is busy. (How fast it answers is measured
    in benchmarks/bench_app_latency.py, against a baseline of the same run.)"""
    from qgn_studio.engine import Engine

    gui = threading.get_ident()
    started, release, threads = threading.Event(), threading.Event(), []
    original = Engine.predict

    def held_predict(self, *args, **kwargs):
        threads.append(threading.get_ident())
        started.set()
        release.wait(WAIT_MS / 1000)  # on the GUI thread this wait would freeze the window: the test fails
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Engine, "predict", held_predict)
    busy = []
    window.worker.busy_changed.connect(lambda on, _text: busy.append(on))
    window.start([samples[0]], str(model_path))
    qtbot.waitUntil(started.is_set, timeout=WAIT_MS)
    answered = []
    QtCore.QTimer.singleShot(0, lambda: answered.append(threading.get_ident()))
    qtbot.waitUntil(lambda: bool(answered), timeout=WAIT_MS)  # delivered while the prediction is in flight
    assert not release.is_set() and window.current.result is None
    assert answered == [gui] and True in busy
    release.set()
    wait_for_result(qtbot, window)
    assert threads and gui not in threads


def test_cancel_keeps_previous_result(qtbot, window, model_path, tmp_path):
    big = write_samples(tmp_path / "big", 1, (768, 1024), layout="none")
    window.explore.set_setting(SchemeChoice("pc", depth=5))
    window.start(big, str(model_path))
    wait_for_result(qtbot, window)
    qtbot.waitUntil(lambda: not window.canvas.busy.busy, timeout=WAIT_MS)
    qtbot.wait(200)
    first = window.current.result
    busy = []
    window.worker.busy_changed.connect(lambda on, _text: busy.append(on))
    with qtbot.waitSignal(window.worker.cancelled, timeout=WAIT_MS):
        window.explore.set_setting(SchemeChoice("all", depth=0))  # down to pixels on 768×1024: seconds
        window._request()
        qtbot.waitUntil(lambda: True in busy, timeout=WAIT_MS)
        window.cancel()
    qtbot.waitUntil(lambda: busy[-1] is False, timeout=WAIT_MS)
    assert not window.canvas.busy.isVisible()
    assert window.current.result is first and window.canvas.result is first
    assert "Cancelled" in window.statusBar().currentMessage()


def test_errors_surface_in_the_window(qtbot, window, tmp_path, samples, model_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image at all")
    window.start([bad, samples[0]], str(tmp_path / "missing.safetensors"))
    qtbot.waitUntil(lambda: window.canvas.banner.isVisible(), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: "cannot read broken.png" in window.canvas.banner.label.text()
                    or "Model" in window.canvas.banner.label.text(), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: "unreadable" in window.images.row_text(0), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: "cannot read broken.png" in window.canvas.banner.label.text(), timeout=WAIT_MS)
    assert window.docs[0].error is not None
    window.load_model(model_path)  # recover: a good model, then the good image
    qtbot.waitUntil(lambda: window.model_info is not None, timeout=WAIT_MS)
    window.step_image(1)
    wait_for_result(qtbot, window)


def test_odd_sizes_and_formats_never_show_padding(qtbot, window, model_path, tmp_path):
    rng = np.random.default_rng(3)
    gray16 = tmp_path / "gray16.png"
    Image.fromarray(rng.integers(0, 65535, (50, 70), dtype=np.uint16)).save(gray16)
    rgba = tmp_path / "rgba.png"
    Image.fromarray(rng.integers(0, 255, (33, 41, 4), dtype=np.uint8), "RGBA").save(rgba)
    window.start([gray16, rgba], str(model_path))
    result = wait_for_result(qtbot, window)
    assert result.label.shape == (50, 70)
    rect = window.canvas.clip.rect()
    assert (rect.width(), rect.height()) == (70, 50)
    window.step_image(1)
    result = wait_for_result(qtbot, window, lambda r: r.label.shape == (33, 41))
    assert all(view.codes.shape == (-(-33 >> lv), -(-41 >> lv)) or True for lv, view in result.levels.items())
    assert result.levels[5].codes.shape == (2, 2)


def test_accuracy_against_compute_fills_in(qtbot, window, model_path, samples):
    window.explore.set_setting(SchemeChoice("pc", depth=0))
    window.start([samples[0]], str(model_path))
    result = wait_for_result(qtbot, window)
    assert result.metrics is not None and 0 <= result.metrics["miou"] <= 1
    assert "mIoU" in window.explore.metrics.text()
    qtbot.waitUntil(lambda: len(window.current.curve) >= 12, timeout=WAIT_MS)  # PC and All × 6 depths
    families = {s.scheme for (_f, _d), p in window.current.curve.items() for s in [p.setting]}
    assert {"pc", "all"} <= families
    qtbot.waitUntil(lambda: 0 in window.current.reference, timeout=WAIT_MS)
    assert "of All at this depth" in window.explore.summary.text()
    qtbot.waitUntil(lambda: not window.explore.curve_pending(), timeout=WAIT_MS)  # a sweep's points are drawn together
    assert len(window.explore.plot._families) >= 2  # one curve per setting family


def test_settings_are_remembered(qtbot, model_path, samples):
    make_application()
    first = MainWindow(settings=make_settings())
    qtbot.addWidget(first)
    first.set_layer_visible("grid", False)
    first.set_layer_visible("uncertainty", True)
    first.set_layer_opacity("prediction", 0.3)
    first.explore.set_setting(SchemeChoice("pc_tau", tau=0.3, depth=2))
    first.workspace.remember_folder(samples[0])
    first.close()
    second = MainWindow(settings=make_settings())
    qtbot.addWidget(second)
    assert not second.canvas.layers["grid"].visible and second.canvas.layers["uncertainty"].visible
    assert abs(second.canvas.layers["prediction"].opacity - 0.3) < 1e-6
    assert second.explore.setting() == SchemeChoice("pc_tau", tau=0.3, depth=2)
    assert second.workspace.last_folder() == str(samples[0].parent)
    second.close()


def test_help_and_about_describe_the_app(qtbot, window, model_path, samples):
    from qgn_studio.dialogs import ShortcutsDialog, about_html

    dialog = ShortcutsDialog(window.shortcut_rows)
    qtbot.addWidget(dialog)
    keys = " ".join(k for _s, k, _t in dialog.rows)
    assert "Space" in keys and "PgDown" in keys
    window.start([samples[0]], str(model_path))
    qtbot.waitUntil(lambda: window.model_info is not None, timeout=WAIT_MS)
    text = about_html(window.model_info, window.model_info.device)
    assert "sky" in text and "cpu" in text and "dev" in text


def test_drop_adds_images(qtbot, window, model_path, samples):
    window.start([samples[0]], str(model_path))
    wait_for_result(qtbot, window)
    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(str(p)) for p in samples[1:]])
    event = QtWidgets.QApplication  # keep flake happy about the import
    assert event is not None
    from PySide6 import QtGui

    drop = QtGui.QDropEvent(QtCore.QPointF(10, 10), QtCore.Qt.DropAction.CopyAction, mime,
                            QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier)
    window.dropEvent(drop)
    assert len(window.docs) == 3
    wait_for_result(qtbot, window, lambda r: r.path == samples[1].resolve())


def test_screenshot_command_line(tmp_path, model_path, samples, qapp):
    out = tmp_path / "shot.png"
    code = main([str(samples[0]), "--model", str(model_path), "--depth", "2", "--size", "900x600",
                 "--layers", "image,prediction,grid,q3", "--screenshot", str(out)])
    assert code == 0 and out.is_file()
    with Image.open(out) as image:
        assert image.size[0] >= 900 and image.size[1] >= 600


def test_screenshot_without_a_display_renders_offscreen(tmp_path, model_path, samples):
    """The README's headless `qgn-studio IMAGE --depth 2 --screenshot out.png`: on a machine without
    a display (no DISPLAY, WAYLAND_DISPLAY or QT_QPA_PLATFORM) Qt's xcb plugin aborted the process
    (exit 134, "could not connect to display") before anything was rendered; it now renders with
    the offscreen platform. A run that would show a window is left to Qt (no PNG asked for)."""
    import os
    import subprocess
    import sys

    out = tmp_path / "shot.png"
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    done = subprocess.run([sys.executable, "-m", "qgn_studio", str(samples[0]), "--model", str(model_path),
                           "--depth", "2", "--size", "640x400", "--screenshot", str(out)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    with Image.open(out) as image:
        assert image.size[0] >= 640 and image.size[1] >= 400
    from qgn_studio.app import headless_platform

    assert headless_platform({}, screenshot=False, platform="linux") is None
    assert headless_platform({"DISPLAY": ":0"}, screenshot=True, platform="linux") is None
    assert headless_platform({"WAYLAND_DISPLAY": "wayland-0"}, screenshot=True, platform="linux") is None
    assert headless_platform({"QT_QPA_PLATFORM": "xcb"}, screenshot=True, platform="linux") is None
    assert headless_platform({}, screenshot=True, platform="win32") is None


def test_bundled_sample_when_present(qtbot, window, model_path):
    from qgn.resources import samples_dir

    images = sorted((samples_dir() / "images").glob("*.png")) if (samples_dir() / "images").is_dir() else []
    if not images:
        pytest.skip("no bundled samples in this checkout")
    window.start([images[0]], str(model_path))
    result = wait_for_result(qtbot, window)
    assert window.current.ground_truth is not None  # picked up from samples/labels/
    assert result.metrics is not None and result.label.shape == window.current.size


def test_device_switch_recomputes(qtbot, window, model_path, samples):
    window.start([samples[0]], str(model_path))
    first = wait_for_result(qtbot, window)
    assert not window.device_actions["cuda"].isEnabled() or window.model_info.cuda_available
    with qtbot.waitSignal(window.worker.model_loaded, timeout=WAIT_MS):
        window.set_device("cpu")
    second = wait_for_result(qtbot, window, lambda r: r is not first)
    assert second.device == "cpu" and window.model_info.device == "cpu"
    assert "cpu" in window.device_label.text()


# --------------------------------------------------------------------------------------- rough edges
def test_hover_survives_switching_to_a_smaller_image(qtbot, window, model_path, tmp_path):
    rng = np.random.default_rng(0)
    big, small = tmp_path / "a_big.png", tmp_path / "b_small.png"
    Image.fromarray(rng.integers(0, 255, (200, 160, 3), dtype=np.uint8)).save(big)
    Image.fromarray(rng.integers(0, 255, (64, 48, 3), dtype=np.uint8)).save(small)
    window.start([big, small], str(model_path))
    wait_for_image(qtbot, window, big)
    window._hovered(150.5, 190.5)  # near the bottom of the big image
    assert "x 150  y 190" in window.hover_label.text()
    window.step_image(1)  # N, the mouse not moved: the stored hover lies outside the small image
    wait_for_image(qtbot, window, small)  # _result_ready re-runs the hover handler: no IndexError
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


def test_a_cancelled_prediction_says_cancelling_until_it_has_stopped(qtbot, window, model_path, samples,
                                                                     monkeypatch):
    """Esc (or the canvas's Cancel) during a level that runs on for seconds said "Cancelled — the
    previous result stays" at once and kept the level's note and an enabled Cancel while it ran on.
    Until it stops: "Cancelling the prediction…" in the status bar and on the canvas, its Cancel
    disabled; then "Cancelled", and the result of the step that ended after the cancel is not shown."""

    window.start([samples[0]], str(model_path))
    first = settled_result(qtbot, window)
    release = _a_held_prediction_running(qtbot, window, monkeypatch)  # a level that runs on
    cancelled = []
    window.worker.cancelled.connect(lambda: cancelled.append(True))
    window.cancel()
    qtbot.wait(50)
    assert not cancelled and "Cancelled" not in window.statusBar().currentMessage()
    assert window.progress.label.text() == "Cancelling the prediction…"
    assert window.progress.cancel_button.isVisibleTo(window.progress)
    assert not window.progress.cancel_button.isEnabled()
    assert window.canvas.busy.label.text() == "Cancelling the prediction…"
    assert not window.canvas.busy.button.isEnabled()
    release.set()
    qtbot.waitUntil(lambda: bool(cancelled), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not window.canvas.busy.busy, timeout=WAIT_MS)
    assert window.progress.isHidden()
    assert "Cancelled" in window.statusBar().currentMessage()
    assert window.current.result.setting == first.setting == window.canvas.result.setting
    # the controls say the setting on screen: they kept the cancelled one's (All, Q̂1) over the result
    # shown, and the next arrow key stepped from it
    assert window.explore.setting() == first.setting != SchemeChoice("all", depth=1)


def test_a_setting_moved_while_a_cancel_winds_down_is_kept(qtbot, window, model_path, samples, monkeypatch):
    """A cancel puts the controls back to the result on screen, when the cancelled prediction has
    stopped; a setting the user moved to meanwhile (its prediction queued behind) is theirs: kept."""

    window.start([samples[0]], str(model_path))
    wait_for_result(qtbot, window)
    release = _a_held_prediction_running(qtbot, window, monkeypatch)  # a level that runs on
    cancelled = []
    window.worker.cancelled.connect(lambda: cancelled.append(True))
    window.cancel()
    window.explore.set_setting(SchemeChoice("all", depth=2))  # moved on meanwhile
    window._request()
    release.set()
    qtbot.waitUntil(lambda: bool(cancelled), timeout=WAIT_MS)
    assert window.explore.setting() == SchemeChoice("all", depth=2)
    wait_for_result(qtbot, window, lambda r: r.setting == SchemeChoice("all", depth=2))


def _held_predict(monkeypatch, calls: int = 1):
    """Engine.predict held until released, per call: (started, release) events for each of the
    first ``calls`` predictions (later ones run at once); ``returned`` is set as each one returns."""
    from qgn_studio.engine import Engine

    started = [threading.Event() for _ in range(calls)]
    release = [threading.Event() for _ in range(calls)]
    returned, count = threading.Event(), []
    original = Engine.predict

    def held_predict(self, *args, **kwargs):
        index = len(count)
        count.append(index)
        if index < calls:
            started[index].set()
            release[index].wait(WAIT_MS / 1000)
        try:
            return original(self, *args, **kwargs)
        finally:
            returned.set()

    monkeypatch.setattr(Engine, "predict", held_predict)
    return started, release, returned


def _a_held_prediction_running(qtbot, window, monkeypatch, setting=SchemeChoice("all", depth=1)):
    """``setting`` asked with Engine.predict held (``_held_predict``): its release event, once the
    prediction runs and the window is busy."""
    (started,), (release,), _returned = _held_predict(monkeypatch)
    window.explore.set_setting(setting)
    window._request()
    qtbot.waitUntil(started.is_set, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window._busy, timeout=WAIT_MS)
    return release


def test_esc_just_after_a_prediction_finished_keeps_the_controls_on_its_result(
        qtbot, window, model_path, samples, monkeypatch):
    """(Review of b54267b/6dee532.) The worker has finished S (its result and its end queued, not
    yet heard): Esc found no run to stop, said 'cancelled' at once, and the controls went back to the
    old result's setting; S's result then showed under controls naming the old one."""
    window.start([samples[0]], str(model_path))
    first = wait_for_result(qtbot, window)
    (started,), (release,), returned = _held_predict(monkeypatch)
    cancelled = []
    window.worker.cancelled.connect(lambda: cancelled.append(True))
    asked = SchemeChoice("all", depth=1)
    assert asked != first.setting
    window.explore.set_setting(asked)
    window._request()
    qtbot.waitUntil(started.is_set, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window._busy, timeout=WAIT_MS)
    release.set()
    returned.wait(WAIT_MS / 1000)  # (no Qt events processed: the result and the end stay queued)
    deadline = threading.Event()
    while window.worker._running is not None and not deadline.wait(0.01):
        pass
    deadline.wait(0.2)
    window.cancel()  # Esc, a few ms late
    qtbot.waitUntil(lambda: not window._busy, timeout=WAIT_MS)
    qtbot.wait(100)
    assert window.canvas.result.setting == asked  # the finished result is shown
    assert window.explore.setting() == asked  # and the controls say it
    assert not cancelled and "Cancelled" not in window.statusBar().currentMessage()


def test_esc_during_a_model_load_keeps_the_controls(qtbot, window, model_path, samples, monkeypatch):
    """(Review of 6dee532.) Esc while a model loads, a setting's prediction queued behind it: the
    controls went back to the old result's setting at once, and the loaded model computed that."""
    from qgn_studio.engine import Engine

    window.start([samples[0]], str(model_path))
    first = wait_for_result(qtbot, window)
    entered, release = threading.Event(), threading.Event()
    original = Engine.load_model

    def held_load(self, *args, **kwargs):
        entered.set()
        release.wait(WAIT_MS / 1000)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Engine, "load_model", held_load)
    window.load_model(model_path)
    qtbot.waitUntil(entered.is_set, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window._busy, timeout=WAIT_MS)
    asked = SchemeChoice("all", depth=1)
    assert asked != first.setting
    window.explore.set_setting(asked)
    window._request()
    window.cancel()
    assert window.explore.setting() == asked
    release.set()
    wait_for_result(qtbot, window, lambda r: r.setting == asked)
    assert window.explore.setting() == asked


def test_a_setting_left_and_come_back_to_while_a_cancel_winds_down_is_kept(
        qtbot, window, model_path, samples, monkeypatch):
    """(Review of 6dee532.) Esc on S, then the user steps to T and back to S (S's prediction queued):
    the cancel's end found the controls on S and put them back to the old result's setting while S
    computed; S's result then showed under the old setting's controls."""
    window.start([samples[0]], str(model_path))
    wait_for_result(qtbot, window)
    asked = SchemeChoice("all", depth=1)
    release = _a_held_prediction_running(qtbot, window, monkeypatch, asked)
    window.cancel()
    window.explore.set_setting(SchemeChoice("all", depth=2))
    window._request()
    window.explore.set_setting(asked)  # and back
    window._request()
    release.set()
    wait_for_result(qtbot, window, lambda r: r.setting == asked)
    qtbot.wait(100)
    assert window.explore.setting() == asked


def test_a_step_note_sent_before_esc_keeps_the_cancelling_note(qtbot, window, model_path, samples, monkeypatch):
    """(Review of b54267b.) A level's note sent just before Esc (queued, not yet shown) arrived after
    the note said "Cancelling the prediction…": it said the level again, its Cancel enabled, while
    the status bar said Cancelling. Its count-down likewise."""
    from qgn.progress import TimedText
    from qgn_studio.engine import Engine

    window.start([samples[0]], str(model_path))
    wait_for_result(qtbot, window)
    go, noted, release = threading.Event(), threading.Event(), threading.Event()
    original = Engine.predict

    def predict(self, doc, setting, stop=lambda: False, progress=None):
        go.wait(WAIT_MS / 1000)
        progress("computing Q̂3")
        progress(TimedText("computing Q̂2", 30.0))
        noted.set()
        release.wait(WAIT_MS / 1000)
        return original(self, doc, setting, stop, progress)

    monkeypatch.setattr(Engine, "predict", predict)
    window.explore.set_setting(SchemeChoice("all", depth=1))
    window._request()
    qtbot.waitUntil(lambda: window._busy, timeout=WAIT_MS)
    go.set()
    noted.wait(WAIT_MS / 1000)  # the notes are queued, not yet shown
    window.cancel()
    qtbot.wait(100)
    pill = window.canvas.busy
    assert pill.label.text() == "Cancelling the prediction…" and not pill.button.isEnabled()
    assert window.progress.label.text() == "Cancelling the prediction…"
    qtbot.wait(1100)  # (a count-down would have ticked)
    assert pill.label.text() == "Cancelling the prediction…"
    release.set()
    qtbot.waitUntil(lambda: not window._busy, timeout=WAIT_MS)
    assert not pill.busy and window.progress.isHidden()


def test_a_result_finished_as_esc_lands_is_not_shown_as_cancelled(qtbot, window, model_path, samples, monkeypatch):
    """(Review of b54267b.) Esc while the result's outlines were drawn (after the check for a cancel):
    the result was shown anyway, under 'Cancelled — the previous result stays on screen'."""
    import qgn_studio.workers as workers

    window.start([samples[0]], str(model_path))
    first = settled_result(qtbot, window)
    inside, release = threading.Event(), threading.Event()
    original = workers.attach_paths

    def slow_paths(result):
        inside.set()
        release.wait(WAIT_MS / 1000)
        return original(result)

    monkeypatch.setattr(workers, "attach_paths", slow_paths)
    asked = SchemeChoice("all", depth=1)
    window.explore.set_setting(asked)
    window._request()
    qtbot.waitUntil(inside.is_set, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window._busy, timeout=WAIT_MS)
    window.cancel()
    release.set()
    qtbot.waitUntil(lambda: not window._busy, timeout=WAIT_MS)
    qtbot.wait(100)
    assert window.canvas.result.setting == first.setting == window.current.result.setting != asked
    assert "previous result stays" in window.statusBar().currentMessage()
    assert window.explore.setting() == first.setting


def test_a_second_cancel_says_cancelling_until_its_own_run_stopped(qtbot, window, model_path, samples, monkeypatch):
    """(Review of b54267b.) Esc, a new prediction starts, Esc again before the first run's end is
    heard: the first run's end hid the status bar's "Cancelling the prediction…" of the second."""
    window.start([samples[0]], str(model_path))
    wait_for_result(qtbot, window)
    started, release, _returned = _held_predict(monkeypatch, calls=2)
    cancelled = []
    window.worker.cancelled.connect(lambda: cancelled.append(True))
    window.explore.set_setting(SchemeChoice("all", depth=1))
    window._request()
    qtbot.waitUntil(started[0].is_set, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window._busy, timeout=WAIT_MS)
    window.cancel()
    window.explore.set_setting(SchemeChoice("all", depth=2))
    window._request()
    release[0].set()
    assert started[1].wait(WAIT_MS / 1000)  # (no Qt events: the first run's end stays queued)
    window.cancel()
    qtbot.waitUntil(lambda: len(cancelled) == 1, timeout=WAIT_MS)
    qtbot.wait(50)
    assert window.progress.isVisible() and window.progress.label.text() == "Cancelling the prediction…"
    assert window.canvas.busy.label.text() == "Cancelling the prediction…"
    release[1].set()
    qtbot.waitUntil(lambda: len(cancelled) == 2, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not window._busy, timeout=WAIT_MS)
    assert window.progress.isHidden()


def test_esc_during_a_failing_device_switch_drops_the_asked_setting_silently(
        qtbot, window, model_path, samples, monkeypatch):
    """(Second review of c2bcdf7; the reviewer's repro.) Esc while a device switch runs, a setting's
    prediction queued behind it: cancel() dropped the queued prediction and returned None (the
    window said nothing, kept the controls), counting on model_loaded's _request(). The switch
    fails: no model_loaded, no request, no result of the asked setting ever; the controls named a
    setting that is not on screen. Now the drop is said when the switch has ended: the controls go
    back to the result on screen."""
    from qgn_studio.engine import Engine

    window.start([samples[0]], str(model_path))
    first = settled_result(qtbot, window)
    entered, release = threading.Event(), threading.Event()

    def failing_switch(self, device):
        entered.set()
        release.wait(WAIT_MS / 1000)
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(Engine, "set_device", failing_switch)
    cancelled = []
    window.worker.cancelled.connect(lambda: cancelled.append(True))
    window.set_device("cpu")
    qtbot.waitUntil(entered.is_set, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window._busy, timeout=WAIT_MS)
    asked = SchemeChoice("all", depth=1)
    assert asked != first.setting
    window.explore.set_setting(asked)
    window._request()
    window.cancel()  # Esc
    assert window.canvas.busy.label.text().startswith("Moving the model")  # (the switch runs on)
    release.set()
    qtbot.waitUntil(lambda: bool(cancelled), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not window._busy, timeout=WAIT_MS)
    qtbot.wait(100)
    assert window.explore.setting() == window.canvas.result.setting == first.setting, \
        "controls name a setting not on screen"
    assert window.current.result.setting == first.setting
    assert "out of memory" in window.canvas.banner.label.text()
    assert "previous result stays" in window.statusBar().currentMessage()


def test_esc_on_a_setting_asked_for_as_the_last_run_ended_puts_the_controls_back(
        qtbot, window, model_path, samples, monkeypatch):
    """(Second review of c2bcdf7.) S computed and sent (its result not yet shown), T asked for
    before the worker took it, Esc: T was dropped without a word (nothing was running), and S's
    result showed under controls naming T, never computed. Now the drop is said after S's result:
    the controls go back to S, on screen."""
    window.start([samples[0]], str(model_path))
    settled_result(qtbot, window)
    worker = window.worker
    ended, release = threading.Event(), threading.Event()
    original = worker._idle

    def held_idle(*run):  # S's end: its result sent, the loop not yet back for the next job
        if not ended.is_set():
            ended.set()
            release.wait(WAIT_MS / 1000)
        return original(*run)

    monkeypatch.setattr(worker, "_idle", held_idle)
    cancelled = []
    window.worker.cancelled.connect(lambda: cancelled.append(True))
    sent, asked = SchemeChoice("all", depth=1), SchemeChoice("all", depth=2)
    window.explore.set_setting(sent)
    window._request()
    qtbot.waitUntil(lambda: window._busy, timeout=WAIT_MS)  # S runs
    assert ended.wait(WAIT_MS / 1000)  # (no Qt events: S's result stays queued)
    window.explore.set_setting(asked)
    window._request()
    window.cancel()  # Esc: T was queued, nothing running
    release.set()
    qtbot.waitUntil(lambda: bool(cancelled), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not window._busy, timeout=WAIT_MS)
    qtbot.wait(100)
    assert window.canvas.result.setting == window.current.result.setting == sent
    assert window.explore.setting() == sent, "controls name a setting not on screen"
    assert "previous result stays" in window.statusBar().currentMessage()


def _blocking_failing(monkeypatch, name: str):
    """Engine.<name> (set_device, load_model) blocks until released, then fails."""
    from qgn_studio.engine import Engine

    entered, release = threading.Event(), threading.Event()

    def failing(self, *args, **kwargs):
        entered.set()
        release.wait(WAIT_MS / 1000)
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(Engine, name, failing)
    return entered, release


def test_two_drops_then_a_setting_asked_for_say_no_cancel(qtbot, window, model_path, samples, monkeypatch):
    """(Third review of ui5; the reviewer's repro.) Two Esc drops behind a device switch, a setting
    moved to between and after them: the window kept one dropped id, the first drop's end fell
    through to the unconditional 'Cancelled — the previous result stays on screen' while the last
    setting was being computed."""
    window.start([samples[0]], str(model_path))
    first = settled_result(qtbot, window)
    entered, release = _blocking_failing(monkeypatch, "set_device")
    messages = []
    window.statusBar().messageChanged.connect(messages.append)
    cancelled = []
    window.worker.cancelled.connect(cancelled.append)
    window.set_device("cpu")
    qtbot.waitUntil(entered.is_set, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window._busy, timeout=WAIT_MS)
    t1, t2, t3 = SchemeChoice("all", depth=1), SchemeChoice("all", depth=2), SchemeChoice("all", depth=3)
    assert first.setting not in (t1, t2, t3)
    window.explore.set_setting(t1)
    window._request()
    window.cancel()  # Esc: t1 dropped
    window.explore.set_setting(t2)
    window._request()
    window.cancel()  # Esc: t2 dropped
    window.explore.set_setting(t3)
    window._request()  # asked for since: computed
    release.set()
    qtbot.waitUntil(lambda: len(cancelled) == 2, timeout=WAIT_MS)
    wait_for_result(qtbot, window, lambda r: r.setting == t3)
    assert window.explore.setting() == t3
    assert not [m for m in messages if "Cancelled" in m]


@pytest.mark.parametrize("failing", ["set_device", "load_model"])
def test_esc_behind_a_failing_model_job_still_reads_the_chosen_image(
        qtbot, window, model_path, samples, monkeypatch, failing):
    """(Third review of ui5; the reviewer's repro, and the same behind a failing first model load.)
    An image not read yet chosen while a device switch (the first model load) runs, Esc: the queued
    job that would also read it was dropped; the switch failed: the image was never read, the list
    selected it while the canvas showed the other one, and nothing was said. Now Esc drops only the
    prediction: the image is read and shown."""
    if failing == "set_device":
        window.start([samples[0].parent], str(model_path))
        settled_result(qtbot, window)
        entered, release = _blocking_failing(monkeypatch, failing)
        window.set_device("cpu")
    else:
        entered, release = _blocking_failing(monkeypatch, failing)
        window.start([samples[0].parent], str(model_path))
    other = next(i for i, d in enumerate(window.docs) if d is not window.current and not d.loaded)
    cancelled = []
    window.worker.cancelled.connect(cancelled.append)
    qtbot.waitUntil(entered.is_set, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window._busy, timeout=WAIT_MS)
    window.images.set_current(other)
    qtbot.waitUntil(lambda: window.current is window.docs[other], timeout=WAIT_MS)
    window.cancel()  # Esc
    release.set()
    qtbot.waitUntil(lambda: bool(cancelled), timeout=WAIT_MS)
    doc = window.docs[other]
    qtbot.waitUntil(lambda: doc.loaded and not window._busy, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.canvas.doc is doc, timeout=WAIT_MS)  # the chosen image is shown
    assert doc.result is None and window.canvas.result is None  # (its prediction was dropped)
    assert "out of memory" in window.canvas.banner.label.text()
    if failing == "set_device":  # (the model in use stays: the drop is said)
        assert f"no prediction for {doc.name}" in window.statusBar().currentMessage()


def test_esc_on_a_running_prediction_still_reads_the_image_chosen_since(
        qtbot, window, model_path, samples, monkeypatch):
    """(Third review of ui5.) A prediction runs, an image not read yet is chosen (its read and
    prediction queued), Esc before the running one stopped: the queued read was dropped with the
    prediction; the image was never read, the canvas stayed on the other one under 'the previous
    result stays'. Now the image is read and shown, and the status bar says it has no prediction."""
    window.start([samples[0].parent], str(model_path))
    settled_result(qtbot, window)
    release = _a_held_prediction_running(qtbot, window, monkeypatch)
    cancelled = []
    window.worker.cancelled.connect(cancelled.append)
    other = next(i for i, d in enumerate(window.docs) if d is not window.current and not d.loaded)
    window.images.set_current(other)
    qtbot.waitUntil(lambda: window.current is window.docs[other], timeout=WAIT_MS)
    window.cancel()  # Esc: the running prediction stops
    release.set()
    qtbot.waitUntil(lambda: bool(cancelled), timeout=WAIT_MS)
    doc = window.docs[other]
    qtbot.waitUntil(lambda: doc.loaded and not window._busy, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.canvas.doc is doc, timeout=WAIT_MS)
    assert doc.result is None and window.canvas.result is None
    assert window.statusBar().currentMessage() == f"Cancelled — no prediction for {doc.name}"
    # the controls still name the setting cancelled: the panel says it was not computed ("No result yet")
    assert window.explore.summary.text().startswith("Not computed: its prediction was cancelled"), \
        window.explore.summary.text()


def test_esc_during_a_model_load_says_it_goes_on(qtbot, window, model_path, monkeypatch):
    """Esc while the model loads (nothing else to stop) said nothing: the status bar now says the
    load goes on and cannot be cancelled."""
    from qgn_studio.engine import Engine

    entered, release, original = threading.Event(), threading.Event(), Engine.load_model

    def held(self, *args, **kwargs):
        entered.set()
        release.wait(WAIT_MS / 1000)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Engine, "load_model", held)
    window.start([], str(model_path))
    qtbot.waitUntil(entered.is_set, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window._busy, timeout=WAIT_MS)
    window.cancel()  # Esc
    assert window.statusBar().currentMessage() == "Loading the model goes on: it cannot be cancelled"
    release.set()
    qtbot.waitUntil(lambda: window.model_info is not None, timeout=WAIT_MS)


def test_esc_during_a_read_alone_does_not_say_cancelling_the_prediction(
        qtbot, window, model_path, samples, monkeypatch):
    """A prediction runs, an image not read yet is chosen, Esc: the image is still read (its
    prediction dropped). Esc during that read said "Cancelling the prediction…" (and "Cancelled"
    after) where no prediction ran: it now says the read goes on."""
    from qgn_studio.document import ImageDocument

    window.start([samples[0].parent], str(model_path))
    settled_result(qtbot, window)
    (started,), (release,), _returned = _held_predict(monkeypatch)
    other = next(i for i, d in enumerate(window.docs) if d is not window.current and not d.loaded)
    doc = window.docs[other]
    reading, read_release, load = threading.Event(), threading.Event(), ImageDocument.load

    def held_load(self, *args):
        if self is doc:
            reading.set()
            read_release.wait(WAIT_MS / 1000)
        load(self, *args)

    monkeypatch.setattr(ImageDocument, "load", held_load)
    window.explore.set_setting(SchemeChoice("all", depth=1))
    window._request()
    qtbot.waitUntil(started.is_set, timeout=WAIT_MS)
    window.images.set_current(other)
    qtbot.waitUntil(lambda: window.current is doc, timeout=WAIT_MS)
    window.cancel()  # Esc: the running prediction stops, the chosen image's read is kept
    release.set()
    qtbot.waitUntil(reading.is_set, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.canvas.busy.label.text().startswith(f"Reading {doc.name}"), timeout=WAIT_MS)
    window.cancel()  # Esc during the read alone
    assert window.statusBar().currentMessage() == f"Reading {doc.name} goes on: it cannot be cancelled"
    assert window.canvas.busy.label.text().startswith(f"Reading {doc.name}")
    assert "Cancelling" not in window.progress.label.text() or window.progress.isHidden()
    read_release.set()
    qtbot.waitUntil(lambda: doc.loaded and not window._busy and window.canvas.doc is doc, timeout=WAIT_MS)


def test_the_read_of_a_big_image_stops_when_another_image_is_chosen(qtbot, window, model_path, tmp_path,
                                                                      monkeypatch):
    """A 24-megapixel photo is one decode of seconds that nothing stopped: choosing another image
    meanwhile waited for its end. The read now stops at its next block of the file once another
    image is asked for: that image is shown, and the big one is not kept half read (read again when
    it is shown)."""
    from PIL import PngImagePlugin

    folder = tmp_path / "imgs"
    folder.mkdir()
    write_samples(folder, 1, layout="none")
    big = folder / "zz_big.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (600, 800, 3), dtype=np.uint8)).save(big)
    blocks = big.stat().st_size // (64 << 10)
    reading, release, calls, real = threading.Event(), threading.Event(), [], PngImagePlugin.PngImageFile.load_read

    def held(self, size):
        if getattr(self, "filename", None) == str(big) and QtCore.QThread.currentThread() is window.worker:
            calls.append(size)
            if len(calls) == 1:
                reading.set()
                release.wait(WAIT_MS / 1000)
        return real(self, size)

    window.start([folder], str(model_path))
    settled_result(qtbot, window)
    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load_read", held)
    first = window.current
    big_doc = next(d for d in window.docs if d.path.name == big.name)
    assert not big_doc.loaded and first is not big_doc, [d.path.name for d in window.docs]
    window.images.set_current(window.docs.index(big_doc))
    assert reading.wait(WAIT_MS / 1000)
    window.images.set_current(window.docs.index(first))  # another image, while the big one is read
    release.set()
    qtbot.waitUntil(lambda: window.canvas.doc is first and not window._busy, timeout=WAIT_MS)
    settled_result(qtbot, window)  # (the worker idle: the big one's read ended, one way or the other)
    assert len(calls) < blocks, f"{len(calls)} of ~{blocks} blocks read after another image was chosen"
    assert not big_doc.loaded and big_doc.error is None  # stopped: no error, read again when shown
    window.images.set_current(window.docs.index(big_doc))
    qtbot.waitUntil(lambda: big_doc.loaded and window.canvas.doc is big_doc, timeout=WAIT_MS)
    assert big_doc.error is None and big_doc.image.shape == (600, 800, 3)


def test_esc_while_the_image_of_a_prediction_is_read_says_it_is_read_first(qtbot, window, model_path, samples,
                                                                           monkeypatch):
    """Esc while a prediction's image is still being read (a 24 MP photo: seconds) said "Cancelling the
    prediction…" as if it stopped at once, then nothing happened until the whole image was read (the
    image chosen is shown: its read is kept). It now says the prediction ends once that image is read."""
    from qgn_studio.document import ImageDocument

    window.start([samples[0].parent], str(model_path))
    settled_result(qtbot, window)
    other = next(i for i, d in enumerate(window.docs) if d is not window.current and not d.loaded)
    doc = window.docs[other]
    reading, release, load = threading.Event(), threading.Event(), ImageDocument.load

    def held_load(self, *args):
        if self is doc:
            reading.set()
            release.wait(WAIT_MS / 1000)
        load(self, *args)

    monkeypatch.setattr(ImageDocument, "load", held_load)
    window.images.set_current(other)  # its prediction is asked for: its image is read first
    assert reading.wait(WAIT_MS / 1000)
    qtbot.waitUntil(lambda: window.canvas.busy.label.text().startswith(f"Reading {doc.name}"), timeout=WAIT_MS)
    window.cancel()  # Esc during the read
    said = f"Cancelling the prediction once {doc.name} is read…"
    assert window.canvas.busy.label.text() == said
    assert window.progress.label.text() == said
    release.set()
    qtbot.waitUntil(lambda: doc.loaded and not window._busy and window.canvas.doc is doc, timeout=WAIT_MS)
    assert doc.result is None and window.progress.isHidden()


def test_a_webp_photo_opens_and_is_predicted(qtbot, window, model_path, tmp_path):
    """The stoppable read once broke every WebP (Pillow's reader closes the file and reads from a
    copy: "cannot read a.webp: read of closed file"): a folder of one .webp opens, read and shown
    with the pixels Pillow reads, and predicted."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    pixels = np.random.default_rng(2).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(folder / "a.webp", lossless=True)
    window.start([folder], str(model_path))
    settled_result(qtbot, window)
    doc = window.current
    assert doc.path.name == "a.webp" and doc.loaded and doc.error is None, doc.error
    assert np.array_equal(doc.image, pixels) and window.canvas.doc is doc
