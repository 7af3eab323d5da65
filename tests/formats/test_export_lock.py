"""Two exports of the same image into one folder at once: every format's per-image files are set aside,
written and taken back under the folder's lock (as CVAT/VOC's were), and an export that must wait for
another's lock says who it waits for and can be stopped, with nothing lost."""
from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from file_systems import no_locks_under
from PIL import Image

from qgn.classes import ClassSet

CLASSES = ClassSet.generic(3, 255)
ROOT = Path(__file__).resolve().parents[2]


class _FailingFormat:
    """A later format of the export that fails on every image: the earlier writers take it back."""

    replaced = None

    def mark(self):
        return None

    def add(self, item):
        raise OSError(errno.ENOSPC, "No space left on device")

    def undo(self, *args):
        pass


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.startswith(".")}


@pytest.mark.parametrize("fmt", ["png", "labelme", "fiftyone", "coco", "labelstudio", "qgt", "ids", "json", "levels",
                                 "cityscapes", "camvid"])
def test_an_undone_export_leaves_the_file_another_export_wrote_between_its_set_aside_and_rename(
        tmp_path, monkeypatch, fmt):
    """Export A sets x's file aside (nothing there yet); before A's rename, export E writes x and
    succeeds; A then fails in a later format and is taken back. Before, E ran whole in that window
    (only CVAT/VOC held a lock), A's file replaced E's unseen and A's undo removed it: E succeeded
    and its file (png, labelme's JSON and image copy, FiftyOne's mask, COCO's and Label Studio's
    image copies …) was gone. Now E waits for the folder's lock until A's item is written (it says
    so), and A's undo leaves E's file."""
    import qgn.fileio as fio
    from qgn.export_lock import saying_waits
    from qgn.formats import FORMATS, ExportItem
    from qgn.formats.base import SHARED_FILES, add_to_every_writer

    images = tmp_path / "images"
    # each export's image in a folder of one name: Cityscapes names its files by the image's folder (the city)
    for who, value in (("e", 10), ("a", 200)):
        (images / who / "city").mkdir(parents=True)
        Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(images / who / "city" / "x.png")
    e_label = np.zeros((8, 8), np.uint8)
    e_label[:4] = 1
    a_label = np.zeros((8, 8), np.uint8)
    a_label[:, 4:] = 2
    out = tmp_path / "out"
    e_files: dict[str, bytes] = {}
    e_stopped = threading.Event()  # E finished, or waits for A's lock (it said so)
    said: list[str] = []

    def export_e() -> None:
        def say(text):
            said.append(text)
            e_stopped.set()

        try:
            with saying_waits(say):
                writer = FORMATS[fmt].open_writer(CLASSES, out, 4, images="copy")
                writer.plan(["x"], [images / "e" / "city" / "x.png"])
                add_to_every_writer([(writer, ExportItem("x", e_label, images / "e" / "city" / "x.png"))])
                writer.finish()
            e_files.update(_files(out))
        finally:
            e_stopped.set()

    real, a_thread, fired = fio.set_aside_replaced, threading.current_thread(), []
    e_thread = threading.Thread(target=export_e)

    def set_aside(path):  # A's first per-image file set aside, not yet renamed: E runs now
        real(path)
        if threading.current_thread() is a_thread and not fired and Path(path).name not in SHARED_FILES:
            fired.append(path)
            e_thread.start()
            e_stopped.wait()

    monkeypatch.setattr(fio, "set_aside_replaced", set_aside)
    writer = FORMATS[fmt].open_writer(CLASSES, out, 4, images="copy")
    writer.plan(["x"], [images / "a" / "city" / "x.png"])
    with pytest.raises(OSError):
        add_to_every_writer([(writer, ExportItem("x", a_label, images / "a" / "city" / "x.png")),
                             (_FailingFormat(), ExportItem("x", a_label, None))])
    writer.finish()
    e_thread.join()
    assert fired and e_files
    now = _files(out)
    per_image = {name: data for name, data in e_files.items() if not name.endswith((".json", ".txt", ".tsv"))
                 or fmt in ("labelme", "json") and Path(name).stem == "x"}
    assert per_image and {name: now.get(name) for name in per_image} == per_image  # E's files, as E wrote them
    assert said and "waiting for another export into" in said[0] and f"pid {os.getpid()}" in said[0]


def _hold(folder: Path, then: str = "sleep") -> subprocess.Popen:
    """Another process holding ``folder``'s export lock (``holding_folder``, its note written), until killed."""
    code = (f"import sys, time, os; sys.path.insert(0, {str(ROOT)!r})\n"
            f"from pathlib import Path; from qgn.formats.base import holding_folder\n"
            f"with holding_folder(Path({str(folder)!r})):\n"
            f"    print('held', flush=True)\n"
            + ("    child = os.fork()\n    if child == 0:\n        time.sleep(60)\n        os._exit(0)\n"
               "    print(child, flush=True)\n    os._exit(0)\n" if then == "fork" else "    time.sleep(60)\n"))
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_an_export_waiting_for_a_stopped_holder_says_who_and_stops_with_nothing_written(tmp_path):
    """A CVAT export stopped mid-item (Ctrl-Z) holds the list folder's lock: before, another export
    into the folder waited without a word and without end. Now it says once who it waits for (the
    holder's note: pid, host, since when) and the user's Stop ends the wait (LockWaitStopped), with
    nothing written and the earlier writers' items taken back."""
    from qgn.export_lock import LockWaitStopped, saying_waits
    from qgn.formats import FORMATS, ExportItem
    from qgn.formats.base import add_to_every_writer

    folder = tmp_path / "out" / "cvat" / "ImageSets" / "Segmentation"
    folder.mkdir(parents=True)
    holder = _hold(folder)
    try:
        holder.send_signal(signal.SIGSTOP)
        png = FORMATS["png"].open_writer(CLASSES, tmp_path / "out" / "png", 4)
        cvat = FORMATS["cvat"].open_writer(CLASSES, tmp_path / "out" / "cvat", 4)
        said: list[str] = []
        label = np.zeros((8, 8), np.uint8)
        with saying_waits(said.append, should_stop=lambda: bool(said)), pytest.raises(LockWaitStopped):
            add_to_every_writer([(png, ExportItem("x", label)), (cvat, ExportItem("x", label))])
        assert len(said) == 1 and str(folder) in said[0] and f"pid {holder.pid} on host" in said[0]
        assert not list((tmp_path / "out" / "png").glob("*.png"))  # the png writer's item taken back
        assert not (tmp_path / "out" / "cvat" / "SegmentationClass").exists()
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_holders_lock_is_free_and_an_ended_holders_live_child_is_waited_for(tmp_path):
    """A holder killed mid-item (SIGKILL) holds nothing: the system dropped its lock, so the next
    export takes it at once - nothing to take over. A lock still held whose noted holder is gone is
    held by a live process (a child that kept the descriptor): named as such, and never taken."""
    from qgn.export_lock import export_lock_held, lock_holder_text
    from qgn.formats import FORMATS, ExportItem

    out = tmp_path / "out"
    folder = out / "ImageSets" / "Segmentation"
    folder.mkdir(parents=True)
    holder = _hold(folder)
    holder.kill()
    holder.wait()
    said: list[str] = []
    from qgn.export_lock import saying_waits

    with saying_waits(said.append):
        FORMATS["cvat"].export_items([ExportItem("x", np.zeros((8, 8), np.uint8))], CLASSES, out, 4)
    assert not said and (folder / "default.txt").read_text() == "x\n"

    parent = _hold(folder, then="fork")
    child = int(parent.stdout.readline())
    parent.wait()  # ended; its child holds the lock on
    try:
        assert export_lock_held(folder)  # held: never taken over
        text = lock_holder_text(folder)
        assert f"pid {parent.pid} on host" in text and "that process has ended" in text
    finally:
        os.kill(child, signal.SIGKILL)


def _annotated_project(tmp_path):
    """A project of two 8×8 images, each with a saved annotation, under ``tmp_path``."""
    from qgn.project import Project

    paths = []
    for name in ("a", "b"):
        path = tmp_path / "images" / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)
        paths.append(path)
    project = Project.create(tmp_path / "project", paths, CLASSES)
    for image in project.images:
        project.save_annotation(image, np.zeros((8, 8), np.uint8))
    return project


def test_a_project_export_stopped_while_waiting_counts_the_rest_as_not_reached(tmp_path):
    """``export_project``: the wait is said on its progress line (the app's export job shows it), and
    its ``should_stop`` (the app's Stop) ends the export there, as a stop before the image."""
    from qgn.project_export import export_project

    project = _annotated_project(tmp_path)
    folder = tmp_path / "out" / "png"
    folder.mkdir(parents=True)
    holder = _hold(folder)
    steps: list[tuple[int, int, str]] = []
    try:
        exported = export_project(project, tmp_path / "out", ["png"], lambda i, n, text: steps.append((i, n, text)),
                                  should_stop=lambda: bool(steps))
    finally:
        holder.kill()
        holder.wait()
    assert len(steps) == 1 and steps[0][:2] == (0, 2) and "waiting for another export into" in steps[0][2]
    assert exported.not_reached == 2 and not list(folder.glob("*.png"))



def test_the_export_lock_never_meets_a_serve_or_a_project_holding_the_folder_itself(tmp_path):
    """The export lock was ``flock`` on the output folder itself - the lock a ``qgn serve`` holds on
    its --train-out for its whole life (``KeptAnnotations.claim``) and a project's writes hold on its
    root (``qgn.project._folder_lock``): an export into a running server's --train-out waited for ever
    ("waiting for another export ... its holder left no note"), a serve started while an export
    wrote there refused ("another qgn serve is fine-tuning into ..."), and an export into a project's
    root waited behind the project's writes. The export lock is now its own (a lock file in the folder)."""
    from qgn.export_lock import LockWaitStopped, saying_waits
    from qgn.formats import FORMATS, ExportItem
    from qgn.formats.base import holding_folder
    from qgn.serve.kept import KeptAnnotations

    train_out = tmp_path / "train_out"
    server = KeptAnnotations(train_out)
    server.claim()  # a qgn serve holding train_out for its life
    said: list[str] = []
    try:
        with saying_waits(said.append, should_stop=lambda: bool(said)):  # a wait: stopped as soon as said
            try:
                FORMATS["png"].export_items([ExportItem("x", np.zeros((8, 8), np.uint8))], CLASSES, train_out, 4)
            except LockWaitStopped:
                pass
    finally:
        for fd in server.locks:
            os.close(fd)
    assert not said and (train_out / "x.png").is_file()

    out = tmp_path / "out"
    out.mkdir()
    with holding_folder(out):  # an export writing an image there: a serve starts, a project writes
        server = KeptAnnotations(out)
        server.claim()  # raised TrainOutInUse
        for fd in server.locks:
            os.close(fd)
        from qgn.project import _folder_lock

        with _folder_lock(out, 0.5):  # raised ProjectBusyError after its timeout
            pass


@pytest.mark.parametrize("kind", ["no locks", "named pipe"])
def test_an_export_where_no_lock_can_be_taken_writes_every_format_and_says_so_once(tmp_path, monkeypatch, kind):
    """A file system without working locks (ENOLCK: NFSv3 without its lock manager, some FUSE
    mounts): every format failed on every image with "[Errno 37] No locks available", naming no
    path (before the export lock only CVAT/VOC failed). Now the export goes on without cross-process
    protection - as every format but CVAT/VOC did before - and says so once, in one line naming
    the folder: refusing would leave no way to export there at all, while the only file at risk is
    one that a second export into the same folder at the same moment writes (the line says to run
    one at a time). So does a named pipe at the lock file's name (never opened to wait)."""
    import fcntl

    import qgn.export_lock as elock
    from qgn.formats import ExportItem, export_dataset

    out = tmp_path / "out"
    if kind == "no locks":
        def flock(fd, op):
            raise OSError(errno.ENOLCK, "No locks available")

        monkeypatch.setattr(fcntl, "flock", flock)
    else:
        for name in ("png", "labelme", "coco", "cvat/ImageSets/Segmentation"):  # the folders locked
            (out / name).mkdir(parents=True)
            os.mkfifo(out / name / elock.EXPORT_LOCK)
    said: list[str] = []
    items = [ExportItem(name, np.full((8, 8), i, np.uint8), None) for i, name in enumerate(("x", "y"))]
    with elock.saying_waits(said.append):
        written = export_dataset(items, CLASSES, out, ["png", "labelme", "coco", "cvat"])
    assert {p.name for p in written} >= {"x.png", "y.png", "x.json", "default.txt"}
    assert (out / "cvat" / "ImageSets" / "Segmentation" / "default.txt").read_text() == "x\ny\n"
    if kind == "no locks":
        assert len(said) == 1 and str(out) in said[0] and "one at a time" in said[0]
    else:  # one line per pipe: each names its own
        assert len(said) == 4 and all("named pipe" in s and "one at a time" in s for s in said)


def test_a_named_pipe_at_the_lock_note_never_holds_an_export(tmp_path):
    """A named pipe where the export lock's holder writes its note (``.qgn-lock-holder`` before; the
    lock file now): the export hung for ever in the note's open, holding the folder's lock. Run in a
    child process: a hang fails the test instead of stopping the run."""
    out = tmp_path / "out"
    (out / "png").mkdir(parents=True)
    os.mkfifo(out / "png" / ".qgn-lock-holder")
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
            "import numpy as np; from pathlib import Path; from qgn.classes import ClassSet\n"
            "import qgn.export_lock as elock\n"
            "from qgn.formats import ExportItem, export_dataset\n"
            f"out = Path({str(out)!r})\n"
            "lock = out / 'png' / getattr(elock, 'EXPORT_LOCK', '.qgn-lock-holder')\n"
            "lock.exists() or __import__('os').mkfifo(lock)\n"
            "export_dataset([ExportItem('x', np.zeros((8, 8), np.uint8), None)], ClassSet.generic(3, 255), out, ['png'])\n"
            "print('done')\n")
    try:
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("the export waits on the named pipe")
    assert run.returncode == 0 and run.stdout.strip() == "done", run.stderr
    assert (out / "png" / "x.png").is_file()


def _held_by_another(folder: Path, said: list[str], should_stop=None, unstoppable=False) -> None:
    """A wait for another process's export lock on ``folder`` until it is said; the holder is then killed."""
    from qgn.export_lock import LockWaitStopped, saying_waits, unstoppable_waits
    from qgn.formats.base import holding_folder

    holder = _hold(folder)

    def say(text):
        said.append(text)
        holder.kill()

    try:
        with saying_waits(say, should_stop):
            with unstoppable_waits() if unstoppable else saying_waits(say, should_stop), holding_folder(folder):
                pass
    except LockWaitStopped:
        pass
    finally:
        holder.kill()
        holder.wait()


def test_a_wait_says_how_this_export_can_be_stopped_where_it_can(tmp_path):
    """The wait's line said "cancelling this export (Cancel, Ctrl-C) loses nothing" everywhere: the
    CLI has no Cancel, and while an item is being taken back (``unstoppable_waits``) Cancel does
    nothing. Now: the command line's says Ctrl-C, a caller that can stop it (the export dialog's
    Cancel) says cancelling, and a take-back says it cannot be cancelled."""
    folder = tmp_path / "out"
    folder.mkdir()
    cli, dialog, take_back = [], [], []
    _held_by_another(folder, cli)
    _held_by_another(folder, dialog, should_stop=lambda: False)
    _held_by_another(folder, take_back, should_stop=lambda: False, unstoppable=True)
    for said in (cli, dialog, take_back):
        assert len(said) == 1 and "waiting for another export into" in said[0] and str(folder) in said[0]
    assert "Ctrl-C" in cli[0] and "Cancel" not in cli[0]
    assert "cancel" in dialog[0].lower() and "Ctrl-C" not in dialog[0]
    assert "cannot be cancelled" in take_back[0] and "loses nothing" not in take_back[0]


def test_each_project_export_without_locks_says_so_and_keeps_the_line(tmp_path, monkeypatch):
    """The 'exporting without the folder's export lock ... run one at a time' line was said once per
    process (a second export in the app said nothing) and only on a progress line, which the next
    one replaced at once. Now each export says it, and keeps it in its result (``notes``: the
    dialog's end line)."""
    from qgn.project_export import export_project

    project = _annotated_project(tmp_path)
    no_locks_under(monkeypatch, tmp_path / "out")
    for run in (1, 2):
        said: list[str] = []
        exported = export_project(project, tmp_path / "out" / str(run), ["png", "cvat"],
                                  lambda i, n, text: said.append(text), should_stop=lambda: False)
        unlocked = [text for text in said if "one at a time" in text]
        assert len(unlocked) == 1 and str(tmp_path / "out" / str(run)) in unlocked[0], said
        assert list(exported.notes) == unlocked


def test_an_export_without_locks_leaves_no_lock_file(tmp_path, monkeypatch):
    """ENOLCK: the export went on, but the lock file it made before flock failed stayed in every
    output folder for good. Now a lock file this call made is removed where no lock could be taken."""
    import qgn.export_lock as elock
    from qgn.formats import ExportItem, export_dataset

    out = tmp_path / "out"
    no_locks_under(monkeypatch, out)
    (out / "png").mkdir(parents=True)
    (out / "png" / elock.EXPORT_LOCK).write_bytes(b"")  # another's (an older export's): never removed by this one
    with elock.saying_waits(lambda text: None):
        written = export_dataset([ExportItem("x", np.zeros((8, 8), np.uint8), None)], CLASSES, out,
                                 ["png", "labelme", "coco", "cvat"])
    assert {p.name for p in written} >= {"x.png", "x.json", "default.txt"}
    assert sorted(str(p.relative_to(out)) for p in out.rglob(elock.EXPORT_LOCK)) == [f"png/{elock.EXPORT_LOCK}"]


def test_a_wait_cancelled_leaves_no_lock_file_once_the_holder_lets_go(tmp_path):
    """Cancel while waiting for another export's lock: the wait's helper thread waits on, and once the
    holder let go it took the lock of a new file and only closed it - an empty lock file stayed in
    the folder for good. Now it removes the name before closing, as ``export_lock`` does."""
    import qgn.export_lock as elock
    from qgn.formats import FORMATS, ExportItem

    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); from pathlib import Path\n"
        "from qgn.formats.base import holding_folder\n"
        f"with holding_folder(Path({str(out)!r})):\n    print('held', flush=True)\n    sys.stdin.readline()\n")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        said: list[str] = []
        with pytest.raises(elock.LockWaitStopped), elock.saying_waits(said.append, should_stop=lambda: bool(said)):
            FORMATS["png"].export_items([ExportItem("x", np.zeros((8, 8), np.uint8))], CLASSES, out, 4)
    finally:
        holder.communicate("go\n")  # lets go normally: its own lock file removed
    for thread in threading.enumerate():
        if thread.name == "qgn-lock-wait":
            thread.join()
    assert holder.returncode == 0 and sorted(p.name for p in out.iterdir()) == []


@pytest.mark.parametrize("kind", ["socket", "hard link"])
def test_a_socket_or_a_hard_link_at_the_lock_files_name_is_left_alone(tmp_path, monkeypatch, kind):
    """A Unix socket at the lock file's name made every image fail with ENXIO (no open takes one);
    a hard link there (another file's data: O_NOFOLLOW stops only symbolic links) had the holder's
    note written over its start and was cut to it. Now both are not-a-lock-file cases: the export
    goes on without the lock and says so in one line, and the linked file is never written."""
    import socket

    import qgn.export_lock as elock
    from qgn.formats import ExportItem, export_dataset

    out = tmp_path / "out"
    (out / "png").mkdir(parents=True)
    lock = out / "png" / elock.EXPORT_LOCK
    data = tmp_path / "notes.txt"
    data.write_text("precious line\n" * 20)
    server = None
    if kind == "socket":
        server = socket.socket(socket.AF_UNIX)
        monkeypatch.chdir(lock.parent)  # a socket's path is short (108 bytes)
        server.bind(lock.name)
    else:
        os.link(data, lock)
    said: list[str] = []
    try:
        with elock.saying_waits(said.append):
            written = export_dataset([ExportItem("x", np.zeros((8, 8), np.uint8), None)], CLASSES, out, ["png"])
    finally:
        if server is not None:
            server.close()
    assert {p.name for p in written} >= {"x.png"}
    assert data.read_text() == "precious line\n" * 20
    assert len(said) == 1 and kind in said[0] and "one at a time" in said[0] and str(lock) in said[0]


def test_a_stale_handle_while_taking_the_lock_tries_the_name_again(tmp_path, monkeypatch):
    """NFS shared by two machines: a waiter's flock or fstat may fail with ESTALE once the holder (on
    the other machine) removed the file - as 'the name changed', the name is tried again (bounded),
    never an export failed."""
    import fcntl

    import qgn.export_lock as elock
    from qgn.formats.base import holding_folder

    real, stale = fcntl.flock, [3]

    def flock(fd, op):
        if stale[0]:
            stale[0] -= 1
            raise OSError(errno.ESTALE, "Stale file handle")
        return real(fd, op)

    monkeypatch.setattr(fcntl, "flock", flock)
    said: list[str] = []
    with elock.saying_waits(said.append), holding_folder(tmp_path):
        assert str(os.getpid()) in (tmp_path / elock.EXPORT_LOCK).read_text()
    assert said == [] and not (tmp_path / elock.EXPORT_LOCK).exists()


@pytest.mark.parametrize("how", ["export_dataset", "export_project"])
def test_a_killed_exports_lock_file_goes_with_the_next_export_even_one_of_nothing(tmp_path, how):
    """A killed export (SIGKILL) leaves its ``.qgn-export-lock`` in the user's output folder (its note
    in it): the next export removed it only from a folder it wrote an image into, so one that wrote
    nothing (every image without a saved annotation) left the stray dotfile for good. Now each writer
    removes, as it opens, the lock files of its folders that no process holds; a live export's is
    left (and never waited for: the export of nothing does not wait)."""
    from qgn.export_lock import EXPORT_LOCK
    from qgn.formats import export_dataset
    from qgn.project import Project
    from qgn.project_export import export_project

    out = tmp_path / "out"
    killed = [out / "png", out / "cvat" / "ImageSets" / "Segmentation"]
    live = out / "labelme"
    for folder in (*killed, live):
        folder.mkdir(parents=True)
    for folder in killed:
        holder = _hold(folder)
        holder.kill()
        holder.wait()
        assert (folder / EXPORT_LOCK).is_file()
    holder = _hold(live)
    try:
        if how == "export_dataset":
            assert export_dataset([], CLASSES, out, ["png", "cvat", "labelme"]) == []
        else:
            image = tmp_path / "a.png"
            Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
            project = Project.create(tmp_path / "project", [image], CLASSES)  # no saved annotation: skipped
            assert list(export_project(project, out, ["png", "cvat", "labelme"])) == []
        assert not any((folder / EXPORT_LOCK).exists() for folder in killed)
        assert (live / EXPORT_LOCK).is_file()
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("exit_code, ended", [(0, True), (259, False)])  # 259: STILL_ACTIVE
def test_asking_whether_a_lock_holder_has_ended_never_signals_it_on_windows(tmp_path, monkeypatch, exit_code, ended):
    """The export lock's holder text asked ``os.kill(pid, 0)`` whether the holder still ran: on Windows
    every signal but the console ones is TerminateProcess - asking killed the other exporter. It asks
    the process's exit code (simulated Windows: a fake kernel32; ``os.kill`` must not be called)."""
    import ctypes
    import json
    import socket

    from qgn import export_lock as lock_module

    class Kernel32:
        def OpenProcess(self, access, inherit, pid):
            return 7

        def GetExitCodeProcess(self, handle, code):
            code._obj.value = exit_code
            return 1

        def CloseHandle(self, handle):
            return 1

    def no_kill(pid, sig):
        raise AssertionError(f"os.kill({pid}, {sig}) would terminate the process on Windows")

    (tmp_path / lock_module.EXPORT_LOCK).write_text(json.dumps({"pid": 4242, "host": socket.gethostname(), "since": 0}))
    monkeypatch.setattr(os, "name", "nt")
    monkeypatch.setattr(os, "kill", no_kill)
    monkeypatch.setattr(ctypes, "WinDLL", lambda name, use_last_error=False: Kernel32(), raising=False)
    monkeypatch.setattr(ctypes, "get_last_error", lambda: 0, raising=False)
    text = lock_module.lock_holder_text(tmp_path)
    assert text.startswith("pid 4242 on host ")
    assert ("that process has ended" in text) is ended
