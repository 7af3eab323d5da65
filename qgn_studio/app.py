"""``qgn-studio [PATHS…] [--model M] [--depth D] [--scheme S] [--device D] [--annotate] [--screenshot OUT.png]``

PATHS are images, folders of images, or a model (.safetensors). Without ``--model`` the bundled
demo model is used. ``--screenshot`` renders the window once the prediction (and, when the image
has ground truth, the accuracy-vs-compute plot) is ready, saves it and exits; it works headless
(without a display it renders with Qt's ``offscreen`` platform, as ``QT_QPA_PLATFORM=offscreen``).
"""
from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from qgn.quadtree import NUM_LEVELS
from qgn_studio.document import SCHEME_CHOICES, SchemeChoice

SCREENSHOT_TIMEOUT_S = 180


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="qgn-studio", description="QGN Studio: explore quadtree segmentation (Quadtree Generating Networks).")
    parser.add_argument("paths", nargs="*",
                        help="images, folders of images, or a model (.safetensors); default: the bundled samples")
    parser.add_argument("--model", "-m", help="a bundled model's name (demo, camvid) or a model file "
                        "(.safetensors + .json); default: the bundled demo model")
    parser.add_argument("--depth", "-d", type=int, choices=range(NUM_LEVELS), metavar=f"{{{NUM_LEVELS - 1}..0}}",
                        help="finest level computed: 5 = root cells of 32 px … 0 = pixels (default 0)")
    parser.add_argument("--scheme", "-s", choices=list(SCHEME_CHOICES), help="propagation scheme (default pc)")
    parser.add_argument("--tau", type=float, help="τ of the pc_tau scheme (0..1)")
    parser.add_argument("--entropy", type=float, help="entropy threshold of the uncertainty scheme (0..1)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), help="where the network runs (default auto)")
    parser.add_argument("--screenshot", metavar="OUT.png", help="render the window to OUT.png and exit")
    parser.add_argument("--layers", help="comma-separated layers to show, e.g. prediction,grid,q3 "
                        "(keys: image truth prediction q5…q0 uncertainty sites grid)")
    parser.add_argument("--annotate", action="store_true",
                        help="start in annotation mode (the first image's annotation starts from its prediction)")
    parser.add_argument("--size", default="1600x1000", help="window size WxH for --screenshot (default 1600x1000)")
    parser.add_argument("--timeout", type=float, default=SCREENSHOT_TIMEOUT_S,
                        help=f"--screenshot gives up waiting after this many seconds (default {SCREENSHOT_TIMEOUT_S})")
    args = parser.parse_args(argv)
    if not args.paths:
        args.paths = default_paths()
    if args.screenshot and not args.paths:
        parser.error("--screenshot needs an image to render (none given, and no bundled samples found)")
    if args.screenshot and not any(Path(p).expanduser().exists() for p in args.paths):
        # nothing would ever be predicted: it waited --timeout (3 minutes) for a typo, then wrote a picture
        from qgn_studio.discovery import missing_path_problem

        parser.error(f"--screenshot has nothing to render: {missing_path_problem(Path(args.paths[0]).expanduser())}; "
                     "name an image or a folder of images")
    for name in ("tau", "entropy"):
        value = getattr(args, name)
        if value is not None and not 0 <= value <= 1:
            parser.error(f"--{name} must be in 0..1")
    try:
        args.size = tuple(int(v) for v in args.size.lower().split("x"))
        assert len(args.size) == 2
    except (ValueError, AssertionError):
        parser.error("--size must look like 1600x1000")
    return args


def default_paths() -> list[str]:
    """What opens when no path is given: the bundled sample images, if they are there."""
    from qgn.resources import samples_dir

    images = samples_dir() / "images"
    return [str(images)] if images.is_dir() else []


UI_SWITCH_INTERVAL_S = 0.001


def make_application():
    """The QApplication (reused when one exists, e.g. under pytest-qt), styled and configured."""
    from qgn_studio.torch_loading import start_import

    start_import()  # torch loads while the window is built, not beside the workers (torch_loading.py)
    import pyqtgraph as pg
    from PySide6 import QtWidgets

    from qgn.allocator import tune_allocator
    from qgn_studio.compat import guard_singleton_refcounts
    from qgn_studio.style import apply_style

    tune_allocator()  # freed tensor buffers are reused, not page-faulted in again (qgn/allocator.py)
    # The UI thread takes the interpreter lock back from a busy worker (reading a project, a
    # prediction's Python parts) within this many seconds instead of Python's 5 ms: Qt calls into
    # Python many times per repaint (the image list's rows, pyqtgraph's items), and each call waited
    # up to the interval; a 20,000-image project's open showed 100-200 ms gaps (bench_open_project.py)
    sys.setswitchinterval(UI_SWITCH_INTERVAL_S)
    guard_singleton_refcounts()
    pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    app.setApplicationName("QGN Studio")
    app.setOrganizationName("QGN")
    app.setDesktopFileName("qgn-studio")  # packaging/qgn-studio.desktop: the desktop's icon and name
    app.setWindowIcon(app_icon())
    apply_style(app)
    return app


def app_icon():
    """The QIcon of the app from resources/icons (every PNG size; empty when the icons are missing)."""
    from PySide6 import QtGui

    from qgn.resources import app_icon_paths

    icon = QtGui.QIcon()
    for path in app_icon_paths():
        icon.addFile(str(path))
    return icon


def initial_setting(args: argparse.Namespace, current: SchemeChoice) -> SchemeChoice:
    """``current`` with whatever the command line overrides."""
    return SchemeChoice(
        args.scheme or current.scheme,
        current.tau if args.tau is None else args.tau,
        current.entropy if args.entropy is None else args.entropy,
        current.depth if args.depth is None else args.depth,
    )


def apply_layers(window, spec: str) -> None:
    wanted = {k.strip() for k in spec.split(",") if k.strip()}
    unknown = wanted - set(window.canvas.layers)
    if unknown:
        print(f"qgn-studio: error: --layers: unknown layers {sorted(unknown)}; choose from "
              f"{', '.join(window.canvas.layers)}", file=sys.stderr)
        raise SystemExit(2)  # bad input, as argparse's own errors
    for key in window.canvas.layers:
        window.set_layer_visible(key, key in wanted)


def headless_platform(environ, screenshot: bool, platform: str = sys.platform) -> str | None:
    """``offscreen`` where ``--screenshot`` would otherwise abort: on Linux without a display
    (neither ``DISPLAY`` nor ``WAYLAND_DISPLAY``) and no platform chosen (``QT_QPA_PLATFORM``), Qt's
    xcb plugin cannot start and ends the process (SIGABRT) before a line of ours runs. A window
    that is only rendered to a PNG needs no display; one a person would see is left to Qt's error."""
    if not screenshot or not platform.startswith("linux") or environ.get("QT_QPA_PLATFORM"):
        return None
    if environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"):
        return None
    return "offscreen"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import os

    from PySide6 import QtWidgets

    owns_app = QtWidgets.QApplication.instance() is None
    platform = headless_platform(os.environ, bool(args.screenshot)) if owns_app else None
    if platform:
        os.environ["QT_QPA_PLATFORM"] = platform
    app = make_application()
    from qgn_studio.main_window import MainWindow, make_settings

    window = MainWindow(settings=None if args.screenshot else make_settings())
    window.ends_process = owns_app  # closing need not wait for computations (end_process)
    if owns_app:  # Ctrl+C in the terminal quits (not when embedded, e.g. under pytest)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    reporter = watch_uncaught(window)
    terminator = None
    if owns_app:  # a logout or kill: autosave, then close (qgn_studio.termination)
        from qgn_studio.termination import TerminationHandler

        terminator = TerminationHandler(window)
    try:
        code = run_window(app, window, args)
    finally:
        reporter.uninstall()
        if terminator is not None:
            terminator.uninstall()
    if owns_app and window.threads_stopped:
        end_process(code)
    return code


def end_process(code: int) -> None:
    """End the process now: the window has closed and the threads that write (saves, autosaves,
    exports, the project's head) have finished (``MainWindow._stop_threads``). The exit handlers
    run and the output is flushed; skipped are the interpreter's teardown (~1 s with a 24 MP photo
    open: its arrays, Qt's objects, torch) and the wait for a computation still under way (a
    prediction's step of a big photo takes seconds) whose result nobody would see."""
    import atexit
    import os

    from PySide6 import QtCore

    # PySide's own exit handler deletes the QApplication and every object under it: a thread still
    # computing is then a QThread destroyed while running, which aborts the process
    atexit.unregister(getattr(QtCore, "__moduleShutdown"))
    atexit._run_exitfuncs()  # (CPython's own: the other handlers a normal exit runs, e.g. logging's flush)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):  # closed or gone: nothing to flush
            pass
    os._exit(code)


def watch_uncaught(window):
    """From now on an exception no code caught (in a slot, a worker) is logged and shown in
    ``window`` in one line, besides its traceback on stderr (``qgn_studio.uncaught``)."""
    from qgn_studio.uncaught import UncaughtReporter

    reporter = UncaughtReporter(window)
    reporter.caught.connect(window.show_uncaught)
    reporter.install()
    return reporter


def run_window(app, window, args: argparse.Namespace) -> int:
    window.explore.set_setting(initial_setting(args, window.explore.setting()))
    if args.layers:
        apply_layers(window, args.layers)
    if args.screenshot:
        window.resize(*args.size)
        screenshot = Screenshot(window, Path(args.screenshot), args.timeout)
    window.show()
    try:
        window.start(args.paths, args.model, args.device)
    except Exception:  # a bug opening what was asked for: reported, and the window stays usable
        sys.excepthook(*sys.exc_info())
    if args.annotate:
        window.annotator.set_mode(True)
    if not args.screenshot:
        return app.exec()
    screenshot.loop.exec()  # a local loop: quitting it leaves the application alone (tests)
    print(screenshot.message, file=sys.stderr if screenshot.code else sys.stdout)
    return screenshot.code


class Screenshot:
    """Saves the window to ``path`` when the first result (and its plot) is on screen, then quits.

    Exit codes: 0 saved with a prediction; 1 saved, but showing an error instead; 2 timed out.
    """

    def __init__(self, window, path: Path, timeout: float):
        from PySide6 import QtCore

        self.window, self.path = window, path
        self.loop = QtCore.QEventLoop()
        self.code, self.message = 2, ""
        self.have_result = False
        self.done = False
        window.result_shown.connect(self._result)
        window.measurements_done.connect(self._measured)
        window.worker.model_failed.connect(lambda msg: self._finish(1, f"model failed: {msg}"))
        window.worker.failed.connect(lambda _doc, msg: self._finish(1, msg))
        window.worker.document_loaded.connect(self._loaded)
        QtCore.QTimer.singleShot(int(timeout * 1000), lambda: self._finish(2, f"timed out after {timeout:.0f} s"))

    def _loaded(self, doc) -> None:
        if doc.error:
            self._finish(1, doc.error)

    def _result(self, result) -> None:
        self.have_result = True
        if result.metrics is None:  # no ground truth: no plot to wait for
            self._finish(0, "")

    def _measured(self) -> None:
        if self.have_result:
            self._finish(0, "")

    def _finish(self, code: int, message: str) -> None:
        from PySide6 import QtCore, QtWidgets

        if self.done:
            return
        self.done = True
        self.code = code

        def grab() -> None:
            QtWidgets.QApplication.processEvents()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            saved = self.window.grab().save(str(self.path))
            self.message = f"saved {self.path}" if saved else f"could not write {self.path}"
            if message:
                self.message += f" ({message})"
            if not saved:
                self.code = 1
            self.window.close()
            self.loop.quit()

        def when_settled(tries: int = 100) -> None:
            # After an error, let the first image finish loading so that the picture shows it.
            doc = self.window.current
            preparing = bool(self.window.annotator.preparing)  # --annotate: the annotation is on its way
            painting = self.window.canvas.pictures_pending()  # a big overlay is still being coloured
            if tries > 0 and (doc is None and self.window.docs or doc is not None and not doc.loaded or preparing
                              or painting):
                QtCore.QTimer.singleShot(100, lambda: when_settled(tries - 1))
            else:
                QtCore.QTimer.singleShot(300, grab)

        when_settled()


if __name__ == "__main__":
    sys.exit(main())
