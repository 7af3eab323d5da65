"""Find the UI thread's stalls of QGN Studio as a person uses it: a launcher that logs every stall
with the stacks seen during it, an xdotool driver for a display (Xvfb + a window manager), and a
generated big photo to drive it on.

    python benchmarks/ui_stalls.py photo OUT.jpg [--size 6000x4000]
    python benchmarks/ui_stalls.py launch --log LOG [--stall-ms 50] -- [qgn-studio arguments]
    python benchmarks/ui_stalls.py drive --log LOG [annotate|explore]

``launch`` runs the app with a 5-ms timer on the UI thread; a watchdog thread samples the UI
thread's stack every 5 ms while the timer is late and, when it beats again, writes ``STALL N ms``
and the most frequent stacks (innermost frame | the qgn/qgn_studio frames) to LOG if N >= --stall-ms.
Key and mouse presses and the window's close are logged as they arrive; ``EXIT`` says when the
process ended after the close. Times are ``time.perf_counter()`` (one clock for every process on
a machine), so ``drive``'s ``====`` marks of what it did land in order in the same LOG.

``drive`` finds the QGN Studio window on $DISPLAY and, for ``annotate``: clicks the image, presses
A, paints four strokes, undoes and redoes, paints with Erase and with a finer level, toggles the
changed-vs-prediction layer, switches tools and undoes twice (positions for the 1280×800 layout).
Isolate the app's settings and files (XDG_CONFIG_HOME, XDG_DATA_HOME, XDG_CACHE_HOME).
"""
from __future__ import annotations

import argparse
import atexit
import collections
import subprocess
import sys
import threading
import time


# ------------------------------------------------------------------------------------------ photo
def make_photo(path: str, width: int, height: int) -> None:
    """A synthetic photo-like JPEG: a sky gradient, a road, blocks and discs, sensor noise."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(0)
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    sky = np.array([90, 140, 220], np.float32) + y * np.array([100, -60, -150], np.float32)
    picture = Image.fromarray(np.broadcast_to(sky, (height, width, 3)).clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    draw.rectangle([0, int(0.65 * height), width, height], fill=(80, 80, 85))
    for _ in range(40):
        x0, y0 = int(rng.integers(0, width * 9 // 10)), int(rng.integers(height // 5, height * 7 // 10))
        box = [x0, y0, x0 + int(rng.integers(width // 30, width // 7)), y0 + int(rng.integers(height // 20, height // 3))]
        draw.rectangle(box, fill=tuple(int(v) for v in rng.integers(30, 230, 3)))
    for _ in range(60):
        x0, y0, r = int(rng.integers(0, width)), int(rng.integers(height * 3 // 8, height)), int(rng.integers(width // 150, width // 20))
        draw.ellipse([x0 - r, y0 - r, x0 + r, y0 + r], fill=(int(rng.integers(20, 90)), int(rng.integers(90, 180)), 40))
    noisy = np.asarray(picture).astype(np.int16) + rng.integers(-12, 13, (height, width, 1), dtype=np.int16)
    Image.fromarray(noisy.clip(0, 255).astype(np.uint8)).save(path, quality=90)


# ----------------------------------------------------------------------------------------- launch
class StallLog:
    def __init__(self, path: str, stall_ms: float):
        self.file = open(path, "a", buffering=1)
        self.stall_ms = stall_ms
        self.main = threading.main_thread().ident
        self.beat = time.perf_counter()
        self.active = False
        self.closed_at: float | None = None

    def write(self, text: str) -> None:
        self.file.write(f"{time.perf_counter():12.3f} {text}\n")

    def watch(self) -> None:
        start, samples, count = None, collections.Counter(), 0
        while True:
            time.sleep(0.005)
            if not self.active:
                continue
            if time.perf_counter() - self.beat > 0.02:
                if start is None:
                    start, samples, count = self.beat, collections.Counter(), 0
                frame = sys._current_frames().get(self.main)
                if frame is not None:
                    stack = []
                    while frame is not None:
                        stack.append(frame)
                        frame = frame.f_back
                    ours = " < ".join(where(f) for f in stack if "qgn" in f.f_code.co_filename)
                    samples[(where(stack[0]), ours)] += 1
                    count += 1
            elif start is not None:
                length = 1000 * (self.beat - start)
                if length >= self.stall_ms:
                    self.write(f"STALL {length:.0f} ms ({count} samples)")
                    for (inner, ours), n in samples.most_common(4):
                        self.write(f"    {n:3d}x {inner}  |  {ours}")
                start = None

    def install(self, app) -> None:
        from PySide6 import QtCore

        log = self

        def beat() -> None:
            log.beat = time.perf_counter()

        class Marks(QtCore.QObject):
            def eventFilter(self, obj, event):
                kind = event.type()
                if kind == QtCore.QEvent.Type.KeyPress and not event.isAutoRepeat() and obj.isWindowType():
                    log.write(f"key {event.key()} {event.text()!r}")
                elif kind == QtCore.QEvent.Type.MouseButtonPress and obj.isWindowType():
                    log.write("mouse press")
                elif kind == QtCore.QEvent.Type.Close and obj.isWidgetType() and obj.isWindow() \
                        and type(obj).__name__ == "MainWindow":
                    log.write("close MainWindow")
                    log.closed_at = time.perf_counter()
                return False

        timer = QtCore.QTimer(app)
        timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        timer.timeout.connect(beat)
        timer.start(5)
        app._stall_timer, app._stall_marks = timer, Marks(app)
        app.installEventFilter(app._stall_marks)
        self.active = True
        self.write("heartbeat on")


def where(frame) -> str:
    name = frame.f_code.co_filename
    for key in ("qgn_studio/", "qgn/", "site-packages/"):
        if key in name:
            name = name[name.index(key):]
            break
    return f"{name}:{frame.f_lineno} {frame.f_code.co_name}"


def launch(log_path: str, stall_ms: float, argv: list[str]) -> int:
    import qgn_studio.app as studio

    log = StallLog(log_path, stall_ms)
    threading.Thread(target=log.watch, daemon=True).start()
    atexit.register(lambda: log.closed_at is not None and log.write(
        f"EXIT {1000 * (time.perf_counter() - log.closed_at):.0f} ms after the close"))
    make = studio.make_application

    def make_application():
        app = make()
        log.install(app)
        return app

    studio.make_application = make_application
    return studio.main(argv)


# ------------------------------------------------------------------------------------------ drive
def drive(log_path: str, scenario: str) -> None:
    log = open(log_path, "a", buffering=1)

    def mark(text: str) -> None:
        log.write(f"{time.perf_counter():12.3f} ==== {text}\n")

    def x(*args) -> None:
        subprocess.run(["xdotool", *map(str, args)], check=False)

    def key(name: str, pause: float = 1.5) -> None:
        mark(f"key {name}")
        x("key", name)
        time.sleep(pause)

    def stroke(x0: int, y0: int, x1: int, y1: int, steps: int = 30) -> None:
        mark(f"stroke {x0},{y0} -> {x1},{y1}")
        x("mousemove", x0, y0)
        x("mousedown", 1)
        for i in range(1, steps + 1):
            x("mousemove", x0 + (x1 - x0) * i // steps, y0 + (y1 - y0) * i // steps)
            time.sleep(0.02)
        x("mouseup", 1)
        time.sleep(2.0)

    found = subprocess.run(["xdotool", "search", "--name", "QGN Studio"], capture_output=True, text=True).stdout.split()
    if found:
        x("windowactivate", found[-1])
    time.sleep(0.5)
    mark("click the image")
    x("mousemove", 560, 450)
    x("click", 1)
    time.sleep(1.5)
    if scenario == "annotate":
        key("a", 6)
        for i in range(4):
            stroke(420 + 40 * i, 350, 700, 400 + 30 * i)
        for name in ("ctrl+z", "ctrl+shift+z", "e"):
            key(name)
        stroke(450, 500, 650, 520)
        key("b")
        key("bracketleft")
        stroke(450, 540, 650, 560)
        for name in ("bracketright", "c", "c", "g", "b", "ctrl+z", "ctrl+z"):
            key(name)
    else:  # explore: depths, layers
        for name in ("3", "1", "5", "0", "l", "l", "g", "g", "u", "u", "s", "s"):
            key(name, 2)
    mark("end")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("photo")
    p.add_argument("out")
    p.add_argument("--size", default="6000x4000")
    p = sub.add_parser("launch")
    p.add_argument("--log", required=True)
    p.add_argument("--stall-ms", type=float, default=50.0)
    p.add_argument("args", nargs=argparse.REMAINDER)
    p = sub.add_parser("drive")
    p.add_argument("--log", required=True)
    p.add_argument("scenario", nargs="?", default="annotate", choices=("annotate", "explore"))
    args = parser.parse_args()
    if args.what == "photo":
        width, height = (int(v) for v in args.size.lower().split("x"))
        make_photo(args.out, width, height)
        return 0
    if args.what == "launch":
        return launch(args.log, args.stall_ms, [a for a in args.args if a != "--"])
    drive(args.log, args.scenario)
    return 0


if __name__ == "__main__":
    sys.exit(main())
