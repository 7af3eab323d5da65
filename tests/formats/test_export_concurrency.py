"""Two CVAT exports into one folder at once keep every image in ImageSets/Segmentation/default.txt
(#16 item 9), and `qgn convert` never reads a Cityscapes-tree labelIds mask as class ids (#15)."""
from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from qgn.classes import ClassSet
from qgn.cli.main import main

CLASSES = ClassSet.generic(3, 255)


def _export(out_dir: str, first: int, count: int) -> None:
    from qgn.formats.cvat import FORMAT

    label = np.zeros((8, 8), np.uint8)
    label[:, 4:] = 2
    for i in range(first, first + count):
        FORMAT.write(label, CLASSES, Path(out_dir), f"frame_{i:03d}")


def test_concurrent_cvat_exports_lose_no_image_set_entry(tmp_path):
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_export, args=(str(tmp_path), 100 * w, 40)) for w in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    stems = (tmp_path / "ImageSets" / "Segmentation" / "default.txt").read_text().split()
    assert sorted(stems) == sorted(f"frame_{100 * w + i:03d}" for w in range(3) for i in range(40))
    assert not [p for p in (tmp_path / "ImageSets" / "Segmentation").iterdir() if p.name != "default.txt"]


def test_convert_refuses_or_maps_a_cityscapes_tree_mask(tmp_path, capsys):
    tree = tmp_path / "gtFine" / "val" / "city"
    tree.mkdir(parents=True)
    (tmp_path / "label_colors.txt").write_text("0 0 0 background\n255 0 0 a\n0 255 0 b\n0 0 255 c\n")
    ids = np.array([[0, 1], [2, 3]], np.uint8).repeat(4, 0).repeat(4, 1)  # Datumaro's numbering: a = 1
    mask = tree / "x_gtFine_labelIds.png"
    Image.fromarray(ids).save(mask)
    assert main(["convert", str(mask), str(tmp_path / "bare.qgt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "label_colors.txt" in err and "--classes" in err
    classes_txt = tmp_path / "classes.txt"
    classes_txt.write_text("a\nb\nc\nignore: 255\n")
    assert main(["convert", str(mask), str(tmp_path / "mapped.qgt"), "--classes", str(classes_txt)]) == 0
    from qgn.quadtree.qgt import read_qgt

    label = read_qgt(tmp_path / "mapped.qgt")[0].to_label()
    np.testing.assert_array_equal(label, np.array([[255, 0], [1, 2]]).repeat(4, 0).repeat(4, 1))


def test_cvat_folder_export_reads_its_image_list_once_and_keeps_another_writers_entries(tmp_path, monkeypatch):
    """A CVAT export of many images read default.txt twice per image, whole each time (quadratic
    in a folder export); the writer keeps the list it last read or wrote and reads it again only
    where another export changed the file - whose entries it keeps."""
    from qgn.formats import FORMATS, ExportItem
    from qgn.formats import cvat

    reads: list[int] = []  # parses of the list (its bytes are read and compared at each image)
    real = cvat.parse_image_set
    monkeypatch.setattr(cvat, "parse_image_set", lambda data: reads.append(1) or real(data))
    label = np.zeros((8, 8), np.uint8)
    label[:, 4:] = 2
    (tmp_path / "ImageSets" / "Segmentation").mkdir(parents=True)
    (tmp_path / "ImageSets" / "Segmentation" / "default.txt").write_text("earlier\n")
    names = [f"frame_{i:03d}" for i in range(60)]
    writer = FORMATS["cvat"].open_writer(CLASSES, tmp_path, 4)
    writer.plan(names, [None] * len(names))
    for i, name in enumerate(names):
        writer.add(ExportItem(name, label, None))
        if i == 30:  # another export into the folder meanwhile
            FORMATS["cvat"].write(label, CLASSES, tmp_path, "other")
    writer.finish()
    stems = (tmp_path / "ImageSets" / "Segmentation" / "default.txt").read_text().split()
    assert stems == ["earlier", *names[:31], "other", *names[31:]]
    assert len(reads) <= 4  # the first read, and again after the other export's change (and its own read)


def test_a_cvat_item_whose_list_write_failed_is_not_listed_by_the_next_one(tmp_path, monkeypatch):
    """default.txt's write failing once (ENOSPC) on item b: b's masks are taken back, and the next
    item's write of the list must not list b again (the writer kept b in its memory of the list).
    The line is appended now: written, then its sync fails - the file is cut back to a's line."""
    import errno

    from qgn.formats import FORMATS, ExportItem
    from qgn.formats import cvat
    from qgn.formats.base import add_to_every_writer

    real = cvat.atomic_write_bytes
    fail = {"now": False}

    def flaky(path, data, *args, **kwargs):
        if fail["now"] and Path(path).name == "default.txt":
            fail["now"] = False
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, data, *args, **kwargs)

    import os

    real_fsync = os.fsync

    def flaky_fsync(fd):  # an append to the list: its line written, its sync failing (the file is cut back)
        if fail["now"] and os.readlink(f"/proc/self/fd/{fd}").endswith("default.txt"):
            fail["now"] = False
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(cvat, "atomic_write_bytes", flaky)
    monkeypatch.setattr(os, "fsync", flaky_fsync)
    label = np.zeros((8, 8), np.uint8)
    label[:, 4:] = 2
    writer = FORMATS["cvat"].open_writer(CLASSES, tmp_path, 4)
    writer.plan(["a", "b", "c"], [None] * 3)
    failed = []
    for name in ("a", "b", "c"):
        fail["now"] = name == "b"
        try:
            add_to_every_writer([(writer, ExportItem(name, label, None))])
        except OSError:
            failed.append(name)
    writer.finish()
    assert failed == ["b"]
    assert (tmp_path / "ImageSets" / "Segmentation" / "default.txt").read_text().split() == ["a", "c"]
    assert sorted(p.name for p in (tmp_path / "SegmentationClass").iterdir()) == ["a.png", "c.png"]


@pytest.mark.parametrize("skew_s", [0, 5, 60])
def test_two_cvat_exports_keep_each_others_entries_on_coarse_timestamps(tmp_path, monkeypatch, skew_s):
    """Where file timestamps are coarse (FAT: 2 s; ext4 before Linux 6.13: 4 ms) and a freed inode
    number is reused, two versions of default.txt of the same size can share (inode, size, mtime,
    ctime): export A's cached list was taken for the file and B's entry lost. Simulated: every stat
    of default.txt gives one inode and a 2 s-grained mtime/ctime - stamped by a file server whose
    clock is ``skew_s`` behind this machine's (a NAS): the racily-clean window (the mtime more than
    2 s older than this machine's clock when cached) trusted the signature at once there (5 s: the
    list was wrong in 20 of 20 runs)."""
    import os
    import time

    from qgn.formats import cvat

    real_stat = os.stat

    class Coarse:
        def __init__(self, st):
            self._st = st
            self.st_ino = 1
            self.st_mtime_ns = self.st_ctime_ns = (time.time_ns() - skew_s * 10**9) // 2_000_000_000 * 2_000_000_000

        def __getattr__(self, name):
            return getattr(self._st, name)

    def stat(path, *args, **kwargs):
        st = real_stat(path, *args, **kwargs)
        return Coarse(st) if str(path).endswith("default.txt") else st

    monkeypatch.setattr(os, "stat", stat)
    a, b = cvat.ImageSet(tmp_path), cvat.ImageSet(tmp_path)
    b.add("b1")
    a.add("a1")  # A's list: b1 a1
    b.remove(["b1"])  # B's item failed (CvatWriter.undo)
    b.add("b2")  # the file: a1 b2 - as long as A's list
    a.add("a2")
    assert (tmp_path / "ImageSets" / "Segmentation" / "default.txt").read_text().split() == ["a1", "b2", "a2"]


class _FailingFormat:
    """An export's second format, failing on its item (disk full) after ``meanwhile`` ran."""

    replaced = None

    def __init__(self, meanwhile=lambda: None):
        self.meanwhile = meanwhile

    def mark(self):
        return None

    def add(self, item):
        import errno

        self.meanwhile()
        raise OSError(errno.ENOSPC, "No space left on device")

    def undo(self, mark, item, paths):
        pass


def _export_x(fmt, out, label):
    from qgn.formats import FORMATS, ExportItem
    from qgn.formats.base import add_to_every_writer

    writer = FORMATS[fmt].open_writer(CLASSES, out, 4)
    writer.plan(["x"], [None])
    add_to_every_writer([(writer, ExportItem("x", label, None))])
    writer.finish()


@pytest.mark.parametrize("fmt", ["cvat", "voc"])
@pytest.mark.parametrize("when", ["before A's masks", "after A's item"])
def test_an_undone_cvat_item_leaves_another_exports_line_of_the_same_image(tmp_path, monkeypatch, fmt, when):
    """Exports A and B into one folder both export x. A's item fails in A's second format, and A takes
    x back: the base undo leaves B's masks (written since), and the list must keep B's line. Before,
    A took x off default.txt whenever A had not seen it listed - asked outside the folder's lock before
    A wrote (B exported x just after: "before A's masks"), or B wrote x after A's add ("after A's
    item"): B's masks stayed, unlisted. VOC is the same writer."""
    from qgn.formats import FORMATS, ExportItem
    from qgn.formats import cvat
    from qgn.formats.base import add_to_every_writer

    label = np.zeros((8, 8), np.uint8)
    label[:, 4:] = 2
    label_b = label.copy()
    label_b[:4] = 1
    writer = FORMATS[fmt].open_writer(CLASSES, tmp_path, 4)
    writer.plan(["x"], [None])
    if when == "before A's masks":
        real = cvat.write_cvat_files
        ran = []

        def b_first(*args, **kwargs):  # B exports x whole between A's look at the list and its writes
            if not ran:
                ran.append(1)
                _export_x(fmt, tmp_path, label_b)
            return real(*args, **kwargs)

        monkeypatch.setattr(cvat, "write_cvat_files", b_first)
        second = _FailingFormat()
    else:
        second = _FailingFormat(lambda: _export_x(fmt, tmp_path, label_b))
    with pytest.raises(OSError):
        add_to_every_writer([(writer, ExportItem("x", label, None)), (second, ExportItem("x", label, None))])
    writer.finish()
    assert (tmp_path / "ImageSets" / "Segmentation" / "default.txt").read_text().split() == ["x"]
    assert cvat.read_cvat_file(tmp_path / "SegmentationClass" / "x.png", CLASSES).tolist() == label_b.tolist()


def test_an_undone_cvat_item_alone_is_taken_off_the_list(tmp_path):
    """Without another export, a CVAT item that failed in another format is in neither: no masks,
    no line (and an earlier export's line of an image put back stays: the handover tests)."""
    from qgn.formats import FORMATS, ExportItem
    from qgn.formats.base import add_to_every_writer

    label = np.zeros((8, 8), np.uint8)
    writer = FORMATS["cvat"].open_writer(CLASSES, tmp_path, 4)
    writer.plan(["a", "x"], [None, None])
    add_to_every_writer([(writer, ExportItem("a", label, None))])
    with pytest.raises(OSError):
        add_to_every_writer([(writer, ExportItem("x", label, None)), (_FailingFormat(), ExportItem("x", label, None))])
    writer.finish()
    assert (tmp_path / "ImageSets" / "Segmentation" / "default.txt").read_text().split() == ["a"]
    assert sorted(p.name for p in (tmp_path / "SegmentationClass").iterdir()) == ["a.png"]


@pytest.mark.parametrize("fmt", ["cvat", "voc"])
def test_no_other_cvat_export_comes_between_an_items_masks_and_its_line(tmp_path, monkeypatch, fmt):
    """Export B writes x's masks, then lists x. Before, export A could run whole in that window: its
    'before' was B's unlisted mask, it listed x itself, B then found x listed and wrote nothing; A
    failed in a later format, put B's mask back and took x off the list - B succeeded, its mask on
    disk, unlisted. Now an item's masks and its line are written under the list folder's lock: while
    B is between them, another export cannot take the lock."""
    from qgn.export_lock import export_lock_held
    from qgn.formats import FORMATS, ExportItem, cvat
    from qgn.formats.base import add_to_every_writer

    label = np.zeros((8, 8), np.uint8)
    label[:, 4:] = 2
    writer = FORMATS[fmt].open_writer(CLASSES, tmp_path, 4)
    writer.plan(["x"], [None])
    real_add, seen = cvat.ImageSet.add, []

    def add(self, stem):  # B's masks are written, its line not yet
        seen.append(export_lock_held(tmp_path / "ImageSets" / "Segmentation"))
        return real_add(self, stem)

    monkeypatch.setattr(cvat.ImageSet, "add", add)
    add_to_every_writer([(writer, ExportItem("x", label, None))])
    writer.finish()
    assert seen == [True]  # locked: another export waits until x is listed
    assert (tmp_path / "ImageSets" / "Segmentation" / "default.txt").read_text().split() == ["x"]


@pytest.mark.parametrize("fmt", ["cvat", "voc"])
def test_two_undone_cvat_exports_of_one_image_leave_neither(tmp_path, fmt):
    """A exports x (new), B exports x over it (keeping A's masks aside); A fails in a later format and
    is taken back (B's masks stay, and its line), then B fails too. Before, B's take_back put A's
    undone masks back and kept the line: a mask and a line of an export that did not succeed. Now A's
    undo hands B's set-aside of A's file what was before A (nothing): B's undo removes its masks and
    the line."""
    import threading

    from qgn.formats import FORMATS, ExportItem
    from qgn.formats.base import add_to_every_writer

    label = np.zeros((8, 8), np.uint8)
    label[:, 4:] = 2
    b_added, a_undone, errors = threading.Event(), threading.Event(), []

    def run_b():
        b = FORMATS[fmt].open_writer(CLASSES, tmp_path, 4)
        b.plan(["x"], [None])
        second = _FailingFormat(lambda: (b_added.set(), a_undone.wait()))
        try:
            add_to_every_writer([(b, ExportItem("x", label, None)), (second, ExportItem("x", label, None))])
        except OSError as exc:
            errors.append(exc)
        b.finish()

    b_thread = threading.Thread(target=run_b)
    a = FORMATS[fmt].open_writer(CLASSES, tmp_path, 4)
    a.plan(["x"], [None])
    second = _FailingFormat(lambda: (b_thread.start(), b_added.wait()))
    with pytest.raises(OSError):
        add_to_every_writer([(a, ExportItem("x", label, None)), (second, ExportItem("x", label, None))])
    a.finish()
    assert (tmp_path / "ImageSets" / "Segmentation" / "default.txt").read_text().split() == ["x"]  # B's, still
    a_undone.set()
    b_thread.join()
    assert len(errors) == 1
    assert (tmp_path / "ImageSets" / "Segmentation" / "default.txt").read_text().split() == []
    for folder in ("SegmentationClass", "SegmentationObject"):
        assert [p.name for p in (tmp_path / folder).iterdir()] == []


@pytest.mark.parametrize("fmt", ["cvat", "voc"])
def test_an_undone_export_between_two_others_puts_the_first_back(tmp_path, fmt):
    """C's x is listed; A exports x over it, then B over A's; A fails, then B fails: C's masks are put
    back (A's undo hands its set-aside of C's file to B's), listed. Before, B put A's undone masks back."""
    import threading

    from qgn.formats import FORMATS, ExportItem
    from qgn.formats.base import add_to_every_writer

    label_c = np.zeros((8, 8), np.uint8)
    label_c[:4] = 1
    label = np.zeros((8, 8), np.uint8)
    label[:, 4:] = 2
    _export_x(fmt, tmp_path, label_c)
    b_added, a_undone = threading.Event(), threading.Event()

    def run_b():
        b = FORMATS[fmt].open_writer(CLASSES, tmp_path, 4)
        b.plan(["x"], [None])
        second = _FailingFormat(lambda: (b_added.set(), a_undone.wait()))
        with pytest.raises(OSError):
            add_to_every_writer([(b, ExportItem("x", label, None)), (second, ExportItem("x", label, None))])
        b.finish()

    b_thread = threading.Thread(target=run_b)
    a = FORMATS[fmt].open_writer(CLASSES, tmp_path, 4)
    a.plan(["x"], [None])
    second = _FailingFormat(lambda: (b_thread.start(), b_added.wait()))
    with pytest.raises(OSError):
        add_to_every_writer([(a, ExportItem("x", label, None)), (second, ExportItem("x", label, None))])
    a.finish()
    a_undone.set()
    b_thread.join()
    from qgn.formats import cvat

    assert (tmp_path / "ImageSets" / "Segmentation" / "default.txt").read_text().split() == ["x"]
    assert cvat.read_cvat_file(tmp_path / "SegmentationClass" / "x.png", CLASSES).tolist() == label_c.tolist()
    assert sorted(p.name for p in (tmp_path / "SegmentationClass").iterdir()) == ["x.png"]


@pytest.mark.parametrize("fmt", ["cvat", "voc"])
def test_three_undone_cvat_exports_of_one_image_leave_nothing(tmp_path, fmt):
    """A exports x (new), B over A's, C over B's; then A, B and C fail in that order. Before the
    hand-over noticed a set-aside already taken away, B (whose set-aside of A's file A removed) left
    C's set-aside of B's undone file alone, and C put B's mask back."""
    import threading

    from qgn.formats import FORMATS, ExportItem
    from qgn.formats.base import add_to_every_writer

    label = np.zeros((8, 8), np.uint8)
    label[:, 4:] = 2
    n = 3
    added = [threading.Event() for _ in range(n)]
    undone = [threading.Event() for _ in range(n)]
    failed = []

    def export(i):
        def meanwhile():  # the next export adds x over this one's; this one fails after the one before
            if i + 1 < n:
                threads[i + 1].start()
                added[i + 1].wait()
            added[i].set()
            if i:
                undone[i - 1].wait()

        writer = FORMATS[fmt].open_writer(CLASSES, tmp_path, 4)
        writer.plan(["x"], [None])
        try:
            add_to_every_writer([(writer, ExportItem("x", label, None)),
                                 (_FailingFormat(meanwhile), ExportItem("x", label, None))])
        except OSError:
            failed.append(i)
        writer.finish()
        undone[i].set()

    threads = [None, *(threading.Thread(target=export, args=(i,)) for i in range(1, n))]
    export(0)
    for thread in threads[1:]:
        thread.join()
    assert failed == [0, 1, 2]
    assert (tmp_path / "ImageSets" / "Segmentation" / "default.txt").read_text().split() == []
    for folder in ("SegmentationClass", "SegmentationObject"):
        assert [p.name for p in (tmp_path / folder).iterdir()] == []


_KILLED_EXPORT = """
import sys
sys.path.insert(0, {root!r})
from pathlib import Path
import numpy as np
from qgn.classes import ClassSet
from qgn.formats import FORMATS, ExportItem
from qgn.formats.base import add_to_every_writer
label = np.zeros((8, 8), np.uint8)
label[:, 4:] = 2
names = [f"frame_{{i:03d}}" for i in range({count})]
writer = FORMATS["cvat"].open_writer(ClassSet.generic(3, 255), Path({out!r}), 4)
writer.plan(names, [None] * len(names))
class Failing:  # a later format failing on every image: each is added, then taken back
    replaced = None
    def mark(self):
        return None
    def add(self, item):
        raise OSError(28, "No space left on device")
    def undo(self, *args):
        pass
for name in names:
    try:
        add_to_every_writer([(writer, ExportItem(name, label, None))] + ([(Failing(), None)] if {fail} else []))
    except OSError:
        pass
    print(name, flush=True)
writer.finish()
"""


def _cvat_export_killed(out: Path, seed: int, fail: bool) -> tuple[list[str], int]:
    """A CVAT export of 60 images (``fail``: a later format failing on every one, so each is taken back)
    into ``out``, which holds an earlier export's five, killed (SIGKILL) at a point ``seed`` draws:
    the earlier names and the number of images the killed export had."""
    import random
    import signal
    import subprocess
    import sys
    import time

    from qgn.formats import FORMATS, ExportItem

    label = np.zeros((8, 8), np.uint8)
    label[:4] = 1
    earlier = [f"earlier_{i}" for i in range(5)]
    FORMATS["cvat"].export_items([ExportItem(name, label) for name in earlier], CLASSES, out, 4)
    count = 60
    code = _KILLED_EXPORT.format(root=str(Path(__file__).resolve().parents[2]), count=count, out=str(out),
                                 fail=fail)
    rng = random.Random(seed)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    for _ in range(rng.randrange(count // 2)):
        child.stdout.readline()
    time.sleep(rng.random() * 0.02)  # somewhere inside the next image (not an assertion on time)
    child.send_signal(signal.SIGKILL)
    child.wait()
    return earlier, count


@pytest.mark.parametrize("seed", range(6))
def test_a_cvat_export_killed_at_any_point_leaves_a_list_of_masks_on_disk(tmp_path, seed):
    """SIGKILL at a random point of a CVAT export into a folder an earlier export filled: the list
    (appended in place, a line after its masks) keeps every line of the earlier list, each line is
    one whole name, every name listed has its masks on disk, and at most the one image in flight
    has masks but no line."""
    earlier, count = _cvat_export_killed(tmp_path, seed, fail=False)
    listed = (tmp_path / "ImageSets" / "Segmentation" / "default.txt").read_bytes().decode("utf-8").splitlines()
    names = [f"frame_{i:03d}" for i in range(count)]
    assert listed[: len(earlier)] == earlier
    assert listed[len(earlier):] == names[: len(listed) - len(earlier)]  # whole names, in order
    masks = {p.stem for p in (tmp_path / "SegmentationClass").glob("*.png")}
    objects = {p.stem for p in (tmp_path / "SegmentationObject").glob("*.png")}
    assert set(listed) <= masks and set(listed) <= objects
    assert len(masks - set(listed)) <= 1


@pytest.mark.parametrize("seed", range(6))
def test_a_cvat_export_whose_every_image_is_taken_back_killed_at_any_point_keeps_the_list(tmp_path, seed):
    """As above, with a later format failing on every image: each image is added to the list and taken
    back off it. SIGKILL at a random point leaves the earlier list's lines whole and in place, each with
    its masks, and at most the one image in flight listed after them (whole)."""
    earlier, count = _cvat_export_killed(tmp_path, seed, fail=True)
    data = (tmp_path / "ImageSets" / "Segmentation" / "default.txt").read_bytes()
    assert data.endswith(b"\n")
    listed = data.decode("utf-8").splitlines()
    names = [f"frame_{i:03d}" for i in range(count)]
    assert listed[: len(earlier)] == earlier
    assert len(listed) <= len(earlier) + 1 and set(listed[len(earlier):]) <= set(names)
    masks = {p.stem for p in (tmp_path / "SegmentationClass").glob("*.png")}
    assert set(earlier) <= masks and len(masks - set(earlier)) <= 1


def test_taking_an_image_back_off_the_cvat_list_writes_its_line_not_the_whole_list(tmp_path, monkeypatch):
    """An image added and taken back (a later format of the export failed on it) had its line taken off
    by rewriting the whole list: an export of new images into a folder listing many, failing in a later
    format on every image, wrote the list once per image (quadratic). Now, where the line is the last
    one and the list is as this writer left it, the list is cut back in place: the bytes a take-back
    writes no longer grow with the list, and the list is as before the export."""
    import qgn.fileio
    from qgn.formats import FORMATS, ExportItem
    from qgn.formats.base import add_to_every_writer

    label = np.zeros((8, 8), np.uint8)
    label[:4] = 1
    earlier = [f"earlier_{i:04d}" for i in range(300)]
    FORMATS["cvat"].export_items([ExportItem(name, label) for name in earlier], CLASSES, tmp_path, 4)
    path = tmp_path / "ImageSets" / "Segmentation" / "default.txt"
    before = path.read_bytes()
    written: list[int] = []
    atomic_write = qgn.fileio.atomic_write_bytes

    def counting(target, data):  # (the lists' writes: every other file written is an image's)
        if Path(target).name == "default.txt":
            written.append(len(data))
        return atomic_write(target, data)

    monkeypatch.setattr(qgn.fileio, "atomic_write_bytes", counting)
    monkeypatch.setattr("qgn.formats.cvat.atomic_write_bytes", counting)
    writer = FORMATS["cvat"].open_writer(CLASSES, tmp_path, 4)
    names = [f"new_{i}" for i in range(20)]
    writer.plan(names, [None] * len(names))
    for name in names:
        with pytest.raises(OSError):
            add_to_every_writer([(writer, ExportItem(name, label, None)), (_FailingFormat(), ExportItem(name, label))])
    writer.finish()
    assert path.read_bytes() == before
    assert sum(written) == 0, f"{len(written)} rewrites of the list, {sum(written)} bytes"
    assert {p.stem for p in (tmp_path / "SegmentationClass").glob("*.png")} == set(earlier)


@pytest.mark.parametrize("kill_in", ["the line's take-back", "the masks' take-back"])
def test_a_cvat_take_back_killed_half_way_never_leaves_a_listed_name_without_its_masks(tmp_path, monkeypatch, kill_in):
    """An image added and taken back (a later format failed on it), the take-back killed half-way. Fails
    before (killed in the line's take-back): the masks went first, so a kill between them and the line left
    the name listed with no masks (a CVAT reader fails on it). Now the line goes first: killed anywhere,
    every listed name has its masks (at most masks that no line names are left)."""
    from qgn.formats import FORMATS, ExportItem
    from qgn.formats import base, cvat
    from qgn.formats.base import add_to_every_writer

    class Killed(BaseException):
        pass

    def killed(*_a, **_k):
        raise Killed()

    label = np.zeros((8, 8), np.uint8)
    label[:4] = 1
    FORMATS["cvat"].export_items([ExportItem("earlier", label)], CLASSES, tmp_path, 4)
    writer = FORMATS["cvat"].open_writer(CLASSES, tmp_path, 4)
    writer.plan(["x"], [None])
    if kill_in == "the line's take-back":
        monkeypatch.setattr(cvat.ImageSet, "remove", killed)
    else:
        monkeypatch.setattr(base.DatasetWriter, "undo", killed)
    with pytest.raises(Killed):
        add_to_every_writer([(writer, ExportItem("x", label, None)), (_FailingFormat(), ExportItem("x", label, None))])
    listed = (tmp_path / "ImageSets" / "Segmentation" / "default.txt").read_text().split()
    for folder in ("SegmentationClass", "SegmentationObject"):
        assert set(listed) <= {p.stem for p in (tmp_path / folder).glob("*.png")}, (folder, listed)
    assert "earlier" in listed
