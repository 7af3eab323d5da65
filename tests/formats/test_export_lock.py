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
            with fio.saying_waits(say):
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
    from qgn.fileio import LockWaitStopped, saying_waits
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
    from qgn.fileio import lock_folder, lock_holder_text
    from qgn.formats import FORMATS, ExportItem

    out = tmp_path / "out"
    folder = out / "ImageSets" / "Segmentation"
    folder.mkdir(parents=True)
    holder = _hold(folder)
    holder.kill()
    holder.wait()
    said: list[str] = []
    from qgn.fileio import saying_waits

    with saying_waits(said.append):
        FORMATS["cvat"].export_items([ExportItem("x", np.zeros((8, 8), np.uint8))], CLASSES, out, 4)
    assert not said and (folder / "default.txt").read_text() == "x\n"

    parent = _hold(folder, then="fork")
    child = int(parent.stdout.readline())
    parent.wait()  # ended; its child holds the lock on
    try:
        fd = lock_folder(folder, wait=False)
        assert fd is None  # held: never taken over
        text = lock_holder_text(folder)
        assert f"pid {parent.pid} on host" in text and "that process has ended" in text
    finally:
        os.kill(child, signal.SIGKILL)


def test_a_project_export_stopped_while_waiting_counts_the_rest_as_not_reached(tmp_path):
    """``export_project``: the wait is said on its progress line (the app's export job shows it), and
    its ``should_stop`` (the app's Stop) ends the export there, as a stop before the image."""
    from qgn.project import Project, export_project

    paths = []
    for name in ("a", "b"):
        path = tmp_path / "images" / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)
        paths.append(path)
    project = Project.create(tmp_path / "project", paths, CLASSES)
    for image in project.images:
        project.save_annotation(image, np.zeros((8, 8), np.uint8))
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

