"""The window fits a laptop: at 1280×720, and at device-pixel-ratio 2 and 1.5 (a 2560×1440 or
1920×1080 screen scaled), with the bundled camvid model (the tallest panels), everything a user
needs — the dock tabs, the legend, the History list, the status bar — is on screen.

Each case runs the app in its own process, because the screen and the scale factor are fixed when
the QApplication starts (offscreen platform with a screen of the given size).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest


PROBE = textwrap.dedent(r"""
    import json, sys, time
    from qgn_studio.app import make_application
    app = make_application()
    from PySide6 import QtCore, QtWidgets
    from qgn.resources import bundled_model_path, samples_dir
    from qgn_studio.main_window import MainWindow, make_settings

    def settle(seconds):
        end = time.time() + seconds
        while time.time() < end:
            app.processEvents()
            time.sleep(0.02)

    win = MainWindow(settings=make_settings())
    win.show()
    model = bundled_model_path("camvid") or bundled_model_path("demo")
    win.start([str(samples_dir())], str(model))
    end = time.time() + 120
    while win.model_info is None and time.time() < end:
        settle(0.1)
    win.annotate_dock.raise_()  # the tallest panel
    win.annotator.set_mode(True)
    settle(1.0)
    if sys.argv[1] == "maximized":
        win.showMaximized()
        settle(1.0)
    screen = win.screen()
    avail = screen.availableGeometry()

    def on_screen(widget):
        if widget is None or not widget.isVisible():
            return False
        top_left = widget.mapToGlobal(QtCore.QPoint(0, 0))
        rect = QtCore.QRect(top_left, widget.size())
        return avail.contains(rect) and win.geometry().contains(rect)

    names = {"Explore", "Annotate", "Fine-tune"}
    tabs = [bar for bar in win.findChildren(QtWidgets.QTabBar)
            if bar.isVisible() and {bar.tabText(i) for i in range(bar.count())} == names]
    frame = win.frameGeometry()
    out = {
        "model": win.model_info.name if win.model_info else None,
        "dpr": screen.devicePixelRatio(),
        "available": [avail.width(), avail.height()],
        "frame": [frame.x(), frame.y(), frame.width(), frame.height()],
        "minimum": [win.minimumSizeHint().width(), win.minimumSizeHint().height()],
        "frame_on_screen": avail.contains(frame) or (frame.width() <= avail.width() + 8
                                                     and frame.height() <= avail.height() + 8),
        "status_bar": on_screen(win.statusBar()),
        "dock_tabs": any(on_screen(bar) for bar in tabs),  # (Qt keeps spare tab bars off-screen)
        "history": on_screen(win.annotator.panel.history),
        # the legend's own scroll area (the Layers list has priority: a tall legend scrolls its last rows),
        # and that it shows at least the half of the legend
        "legend": on_screen(win.layer_panel.legend_scroll)
        and win.layer_panel.legend_scroll.viewport().height() * 2 >= win.layer_panel.legend_scroll.widget().height(),
        "legend_shown": [win.layer_panel.legend_scroll.viewport().height(),
                         win.layer_panel.legend_scroll.widget().height()],
    }
    print("RESULT " + json.dumps(out), flush=True)
    win.close()
""")


def run_probe(tmp_path, width, height, scale, mode="normal"):
    config = tmp_path / "screen.json"
    config.write_text(json.dumps({"screens": [{"name": "laptop", "x": 0, "y": 0, "width": width, "height": height,
                                               "logicalDpi": 96, "logicalBaseDpi": 96}]}))
    env = dict(os.environ, QT_QPA_PLATFORM=f"offscreen:configfile={config}", QT_SCALE_FACTOR=str(scale),
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               QGN_STUDIO_SETTINGS=str(tmp_path / "settings.ini"), QGN_STUDIO_SCRATCH=str(tmp_path / "scratch"))
    done = subprocess.run([sys.executable, "-c", PROBE, mode], env=env, capture_output=True, text=True, timeout=300)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
    assert lines, f"the probe failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return json.loads(lines[-1][len("RESULT "):])


EVERYTHING = ("status_bar", "dock_tabs", "history", "legend")


@pytest.mark.parametrize("width, height, scale, logical, parts", [
    (1280, 720, 1, (1280, 720), EVERYTHING),  # a laptop
    (2560, 1440, 2, (1280, 720), EVERYTHING),  # device-pixel-ratio 2
    (1920, 1080, 1.5, (1280, 720), EVERYTHING),  # 150 % on a full-HD screen
    (1920, 1080, 2, (960, 540), EVERYTHING[:3]),  # 200 % on full HD: the legend is a scroll away
])
def test_window_fits_the_screen(tmp_path, width, height, scale, logical, parts):
    out = run_probe(tmp_path, width, height, scale)
    assert out["dpr"] == pytest.approx(scale)
    assert tuple(out["available"]) == logical
    assert out["minimum"][0] <= logical[0] and out["minimum"][1] <= logical[1], out
    assert out["frame_on_screen"], out
    for part in parts:
        assert out[part], f"{part} is off-screen: {out}"


def test_maximized_laptop_window_shows_everything(tmp_path):
    out = run_probe(tmp_path, 1280, 720, 1, "maximized")
    assert out["frame"][3] <= 720 and out["frame"][2] <= 1280, out
    for part in EVERYTHING:
        assert out[part], f"{part} is off-screen: {out}"
