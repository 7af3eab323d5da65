"""Fixtures shared by the whole suite.

Isolation (autouse, every test): the user's home, the XDG folders, the app's settings file, its
per-user scratch/autosave folder and the CLI's log folder all point into a fresh temporary folder,
and Qt's standard paths are in test mode. So nothing a user has on disk — a crashed autosave, a
setting, a recent project — can reach a test (a recovery question would block it on a modal
dialog), and no test writes into the user's folders. ``REAL_ENVIRON`` keeps the environment the
suite started with.

Every test that uses ``qtbot`` (autouse): the widgets it closed and the Qt objects its reference
cycles kept are destroyed at its own teardown, not inside the next test (``_qt_objects_end_with_their_test``).

Shared fixtures: ``model_path`` (an untrained tiny model), ``samples`` (synthetic scenes with
ground truth), ``model_with_reference`` (a copy of the tiny model with a domain reference the samples
are inside of) and ``noise`` (an image outside it), ``window`` (a shown MainWindow whose questions answer themselves), ``windows``
(several: restarts, two app instances), ``run_cli``, ``resources`` (an empty redirected resources
folder), ``snapshot``, ``user_state``, ``real_environ``, ``fused_isa`` (pick the sparse conv's fused
kernels; put back after the test), ``fifo`` (named pipes no reader may wait on). A test module tunes them with module
constants: ``SAMPLE_COUNT`` and ``SAMPLE_SIZE`` (H, W) for ``samples``, ``WINDOW_SIZE`` (W, H) for
``window``. Helper modules the tests import live beside this file (``sample_files``, ``tool_venvs``:
the venvs of the live third-party tools; tests/app has ``studio_steps``, tests/formats ``hostile_cases``); ``pythonpath = ["tests"]`` in pyproject.toml.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

REAL_ENVIRON = dict(os.environ)  # before any isolation: what the app would see outside the suite
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # no display needed (scripts/test sets it too)

# Where each redirected variable points, below a test's own user folder.
USER_FOLDERS = {
    "HOME": "home",
    "XDG_CONFIG_HOME": "home/.config",
    "XDG_DATA_HOME": "home/.local/share",
    "XDG_CACHE_HOME": "home/.cache",
    "XDG_STATE_HOME": "home/.local/state",
}
APP_VARIABLES = {
    "QGN_STUDIO_SETTINGS": "settings.ini",
    "QGN_STUDIO_SCRATCH": "scratch",
    "QGN_LOG_DIR": "logs",  # tracebacks of unexpected CLI failures
}


@pytest.fixture(scope="session", autouse=True)
def _qt_standard_paths_in_test_mode():
    """Qt's standard locations (AppDataLocation, …) go to ``~/.qttest`` of the redirected home."""
    try:
        from PySide6 import QtCore
    except ImportError:
        yield
        return
    QtCore.QStandardPaths.setTestModeEnabled(True)
    yield
    QtCore.QStandardPaths.setTestModeEnabled(False)


@pytest.fixture(autouse=True)
def user_state(tmp_path_factory, monkeypatch) -> Path:
    """Every test (autouse): every per-user location the app and the CLI derive — from HOME,
    XDG_* or their own variables — is inside the test's user folder, returned (``home/``,
    ``scratch/`` the app's scratch project, ``settings.ini``, ``logs/``); no ``$COLUMNS``."""
    user = tmp_path_factory.mktemp("user")
    for name, rel in {**USER_FOLDERS, **APP_VARIABLES}.items():
        monkeypatch.setenv(name, str(user / rel))
    (user / "home").mkdir()
    monkeypatch.delenv("COLUMNS", raising=False)  # a shell's width would cut the CLI's progress lines
    return user


@pytest.fixture(autouse=True)
def _no_progress_line_left_drawn():
    """No CLI progress line outlives its test (autouse). ``qgn.cli.progress_line`` remembers the line
    last drawn and not ended (a module global, ``_drawn``) so that a failure's message blanks it
    first; ``qgn train`` ends its line with a plain newline, so after test_progress.py's resumed
    training the next in-process command of the same worker, say an ``qgn eval`` refusing an
    option, printed that blanking (``\\r`` + spaces + ``\\r``) before its one-line error - a failure
    that depended on which test ran before it in the process (seen under pytest-xdist)."""
    yield
    import sys

    module = sys.modules.get("qgn.cli.progress_line")
    if module is not None:
        module._drawn = None


@pytest.fixture(autouse=True)
def _qt_objects_end_with_their_test(request):
    """A Qt test's objects are destroyed at its own teardown (autouse, for tests that use ``qtbot``).

    pytest-qt closes the widgets a test registered and calls ``deleteLater`` on them, but the
    ``processEvents`` of its teardown does not run deferred deletions: those widget trees were
    destroyed at the next test's first wait (say the ``waitUntil`` of its ``start_annotating``,
    with that test's image reader and model loader threads starting), and the cyclic garbage a
    window test leaves (~4,900 objects, ~860 of them Qt wrappers: pyqtgraph's QMenus, QSettings, ...)
    went at the collector's next full collection, wherever in a later test an allocation set it off
    (the CI segfault: in the event loop of such a wait). Both happen here instead, after the
    test's own fixtures closed its windows: a crash in a destruction is reported at the teardown of
    the test whose objects they are, and no longer overlaps another test's threads."""
    yield
    if "qtbot" not in request.fixturenames:
        return
    import gc

    from PySide6 import QtCore

    QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete)
    gc.collect()


@pytest.fixture(scope="session")
def real_environ() -> dict:
    """The environment the suite started with (before isolation)."""
    return dict(REAL_ENVIRON)


# ------------------------------------------------------------------------------------------ models
@pytest.fixture(scope="session")
def model_path(tmp_path_factory) -> Path:
    """An untrained tiny QGN over the synthetic classes, biased towards "composite" so that PC
    refines part of each image (read only: tests that change a model copy it)."""
    from qgn_studio.testing import make_dev_model

    return make_dev_model(tmp_path_factory.mktemp("model") / "dev.safetensors", composite_bias=0.6)


@pytest.fixture
def resources(tmp_path, monkeypatch) -> Path:
    """An empty resources folder (``models/`` inside) that ``qgn.resources`` reads instead of the
    bundled one; the test writes the models it needs."""
    root = tmp_path / "resources"
    (root / "models").mkdir(parents=True)
    monkeypatch.setenv("QGN_RESOURCES", str(root))
    return root


# ------------------------------------------------------------------------------------------ files
@pytest.fixture
def samples(request, tmp_path) -> list[Path]:
    """Synthetic scenes in ``tmp_path/data/images`` with ground truth in ``data/labels``:
    ``SAMPLE_COUNT`` (default 3) images of ``SAMPLE_SIZE`` (default (64, 96)) from the test module."""
    from qgn_studio.testing import write_samples

    count = getattr(request.module, "SAMPLE_COUNT", 3)
    size = getattr(request.module, "SAMPLE_SIZE", (64, 96))
    return write_samples(tmp_path / "data", count, size)


@pytest.fixture
def model_with_reference(model_path, samples, tmp_path) -> Path:
    """A copy of the tiny model (``model_path``, with its JSON) in ``tmp_path/model`` and a domain
    reference beside it (``sample_files.write_domain_reference``): the samples are inside its
    domain, ``noise`` is not."""
    from sample_files import write_domain_reference

    path = tmp_path / "model" / model_path.name
    path.parent.mkdir()
    shutil.copy(model_path, path)
    shutil.copy(model_path.with_suffix(".json"), path.with_suffix(".json"))
    write_domain_reference(path, samples)
    return path


@pytest.fixture
def noise(request, tmp_path) -> Path:
    """``tmp_path/noise.png``: colour noise of the samples' size, outside ``model_with_reference``'s domain."""
    import numpy as np
    from PIL import Image

    size = getattr(request.module, "SAMPLE_SIZE", (64, 96))
    path = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture
def snapshot():
    """``snapshot(root)``: see ``sample_files.tree_snapshot``."""
    from sample_files import tree_snapshot

    return tree_snapshot


@pytest.fixture
def read_only(monkeypatch):
    """``read_only(folder)``: every write under ``folder`` fails from then on as on a read-only mount
    (EROFS), as the system would; os.access says it cannot be written."""
    import errno
    import tempfile

    def make(folder: Path) -> None:
        root = str(folder.resolve())

        def inside(value) -> bool:
            return isinstance(value, (str, bytes, os.PathLike)) and str(Path(os.fsdecode(value)).resolve()).startswith(root)

        def guarded(fn):
            def call(*args, **kwargs):
                if any(inside(v) for v in (*args[:2], kwargs.get("dir"))):
                    raise OSError(errno.EROFS, "Read-only file system", str(args[0] if args else kwargs.get("dir")))
                return fn(*args, **kwargs)
            return call

        monkeypatch.setattr(tempfile, "mkstemp", guarded(tempfile.mkstemp))
        for name in ("replace", "rename", "unlink", "mkdir", "rmdir", "symlink"):
            monkeypatch.setattr(os, name, guarded(getattr(os, name)))
        access = os.access
        monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if inside(path) and mode & os.W_OK
                            else access(path, mode, **kw))

    return make


@pytest.fixture
def fused_isa():
    """``fused_isa(wanted)``: the fused sparse-conv kernels of "auto" | "avx2" | "off" for this
    test (returns the instruction set now in use, "" for none); the best again afterwards."""
    from qgn.sparse.fused_conv import set_fused_isa

    yield set_fused_isa
    set_fused_isa("auto")


@pytest.fixture
def fifo():
    """``fifo(path)`` makes a named pipe at ``path``; a reader that opens it blocking is let go
    (a writer opens and closes it), so that code which waits on a pipe fails instead of hanging —
    and the test fails at its end, having waited on a pipe. A reader that only looks (opens it
    without waiting, sees a pipe, closes it) is not counted: a writer's open succeeds while any
    reader has the pipe open, so a second open 0.3 s later, with the first writer still there,
    tells a reader still holding it (waiting in open or read) from one that looked and went (a
    single open made the fixture fail on a look that a busy machine had held up for a moment)."""
    import threading

    made: list[Path] = []
    released: list[Path] = []
    stop = threading.Event()

    def still_held(path: Path) -> bool:
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))  # ENXIO unless a reader has it open
            return True
        except OSError:
            return False

    def release():
        while not stop.is_set():
            for path in list(made):
                try:
                    writer = os.open(path, os.O_WRONLY | os.O_NONBLOCK)  # a reader has it open: lets a waiting one go
                except OSError:
                    continue
                try:
                    time.sleep(0.3)
                    if still_held(path):
                        released.append(path)
                finally:
                    os.close(writer)  # a reader blocked in read() now sees the end
            stop.wait(0.02)

    thread = threading.Thread(target=release, daemon=True)
    thread.start()

    def make(path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(path)
        made.append(path)
        return path

    yield make
    stop.set()
    thread.join()
    assert not released, f"a reader waited on the named pipe(s) {sorted(set(map(str, released)))}"


# ------------------------------------------------------------------------------------------ the CLI
@pytest.fixture
def run_cli(capsys):
    """``run_cli(*argv)`` runs ``qgn`` in this process: (exit code, stdout, stderr)."""
    from qgn.cli.main import main

    def run(*argv):
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


# ------------------------------------------------------------------------------------------ the app
@pytest.fixture
def window(request, qtbot):
    """A shown MainWindow with its own (isolated) settings whose recover / unsaved-edits / class
    questions answer themselves; ``WINDOW_SIZE`` (W, H) of the test module resizes it."""
    from qgn_studio.app import make_application
    from qgn_studio.testing import answering_window

    make_application()
    win = answering_window()
    qtbot.addWidget(win)
    size = getattr(request.module, "WINDOW_SIZE", None)
    if size is not None:
        win.resize(*size)
    win.show()
    yield win
    win.projects.ask_unsaved = lambda count, what: "discard"  # a test may have changed the answer
    win.finetuner.ask_unkept = lambda running, detail, path: "discard"
    win.close()


class Windows:
    """``windows(recover=, unsaved=, folder=)`` makes a shown MainWindow whose recover / unsaved /
    project-folder questions answer as told (autosave after 50 ms); all are closed at the end."""

    def __init__(self, qtbot):
        self.qtbot = qtbot
        self.made: list = []

    def __call__(self, recover="later", unsaved="discard", folder=None):
        from qgn_studio.testing import answering_window

        win = answering_window(recover, unsaved)
        win.projects.ask_folder = lambda title, new: folder
        win.projects.timer.setInterval(50)
        self.qtbot.addWidget(win)
        win.show()
        self.made.append(win)
        return win

    def crash(self, win) -> None:
        """Let ``win`` go as a killed process would: nothing saved, nothing discarded."""
        win.jobs.wait_idle()
        win.projects.watch.stop()  # nor looks at the disk again
        win.annotator.forget(win.docs)
        win.projects.closed = lambda: None  # a killed process never gets to say it closed normally
        win.projects.live_marks.release()  # the system drops a killed process's locks
        win.projects.confirm_discard = lambda *args, **kwargs: True  # nor to discard its done marks
        win.close()


@pytest.fixture
def windows(qtbot):
    """Several windows of one test (two app instances on one project, a restart after a crash):
    see ``Windows``."""
    from qgn_studio.app import make_application

    make_application()
    maker = Windows(qtbot)
    yield maker
    for win in maker.made:
        win.projects.ask_unsaved = lambda count, what: "discard"
        win.finetuner.ask_unkept = lambda running, detail, path: "discard"
        win.close()
