"""(Windows simulated; a review found it) st_ctime on Windows is the CREATION time, which a rename does not
change. An autosave last written > 60 s ago and taken under .taking by a LIVE writer (a save dropping its
own autosave; a Discard) therefore looks 'stale' at once to bring_back_taken, which another window's open
(recoverable) runs: it puts the file back mid-take."""
from __future__ import annotations

import os
import time
from types import SimpleNamespace

import pytest

import qgn.project_kept
from qgn.project import Project
from test_project_lost_work import label_for, project_with_work


def windows_lstat(real):
    def lstat(p, *a, **k):
        st = real(p, *a, **k)
        # Windows: st_ctime = creation time (never later than the last write), unchanged by a rename
        return SimpleNamespace(**{n: getattr(st, n) for n in dir(st) if n.startswith("st_")} | {
            "st_ctime": st.st_mtime, "st_ctime_ns": st.st_mtime_ns})
    return lstat


@pytest.mark.parametrize("how", ["save", "discard"])
def test_live_take_put_back_by_another_open(tmp_path, monkeypatch, how):
    project = project_with_work(tmp_path / "p")
    image = project.images[0]
    path = project.autosave_path(image)
    old = time.time_ns() - 120 * 10**9  # the autosave was written 2 minutes ago
    os.utime(path, ns=(old, old))
    ours = project.autosave_version(image)
    real_rename, opened = os.rename, []

    def rename_then_other_open(src, dst, *a, **k):
        r = real_rename(src, dst, *a, **k)
        if str(dst).endswith(".taking") and not opened:
            opened.append(Project.open(project.root).recoverable())  # another window opens the project now
        return r

    monkeypatch.setattr(qgn.project_kept.os, "lstat", windows_lstat(os.lstat))
    monkeypatch.setattr(qgn.project_kept.os, "rename", rename_then_other_open)
    error = None
    try:
        if how == "save":
            project.save_annotation(image, label_for(1), over=project.annotation_version(image), autosave=ours)
        else:
            print("discard ->", project.discard_autosave(image, ours=ours))
    except OSError as exc:
        error = exc
    monkeypatch.undo()
    print(how, "| error:", error, "| autosave back at its path:", path.exists(),
          "| recoverable after:", Project.open(project.root).recoverable(),
          "| discarded/:", sorted(p.name for p in (project.root / "discarded").glob("*")) if how == "discard" else "")
    assert opened
    assert error is None and not path.exists(), "the live writer's take was undone by another open"


def _dead_pid() -> int:
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_take_is_a_crashed_writers_by_the_pid_and_clock_in_its_name():
    """The rule reads the name only: a live process's take is never stale however old its clock; a gone
    one's once past TAKEN_STALE_SECONDS; any once past TAKEN_ABANDONED_SECONDS (a pid reused, another
    host's writer). Fails before: no ``taken_stale`` (the rule was the file's ctime)."""
    from qgn.project_kept import TAKEN_ABANDONED_SECONDS, TAKEN_STALE_SECONDS, taken_stale

    now = time.time_ns()
    ago = lambda s: now - int(s * 1e9)  # noqa: E731
    live, dead = os.getpid(), _dead_pid()
    assert not taken_stale(f".a.qgt.{live}-{ago(TAKEN_STALE_SECONDS + 3600)}.taking", now)
    assert not taken_stale(f".a.qgt.{dead}-{ago(TAKEN_STALE_SECONDS - 5)}.taking", now)
    assert taken_stale(f".a.qgt.{dead}-{ago(TAKEN_STALE_SECONDS + 5)}.taking", now)
    assert taken_stale(f".a.qgt.{live}-{ago(TAKEN_ABANDONED_SECONDS + 5)}.taking", now)
    assert not taken_stale(f".a.qgt.{dead}-{now + 10**12}.taking", now)  # a clock ahead: never
    assert not taken_stale(".a.qgt.taking", now)


def test_a_saved_annotation_a_crashed_save_left_taken_is_put_back(tmp_path):
    """A save parking another writer's annotation (``_park_unless`` -> ``move_aside``) takes it under
    ``annotations/.<key>.qgt.<pid>-<ns>.taking``; killed there, the image looked unannotated for good.
    Fails before: ``bring_back_taken`` looked in the autosave folder only. Put back at an open, never
    over a newer file, never deleted."""
    import numpy as np

    from qgn.quadtree.label_io import read_label_file
    from test_project_lost_work import CLASSES

    project = project_with_work(tmp_path / "p")
    image, other = project.images[0], project.images[1]
    path = project.annotation_path(image)
    saved = read_label_file(path, CLASSES)
    old = time.time_ns() - 3600 * 10**9
    taken = path.with_name(f".{path.name}.{_dead_pid()}-{old}.taking")
    os.rename(path, taken)
    Project.open(project.root).recoverable()
    assert path.is_file() and not taken.exists()
    np.testing.assert_array_equal(read_label_file(path, CLASSES), saved)

    # a newer save there: the leftover stays (both kept); a write's clean-up looks too, and leaves it
    os.link(path, taken)
    again = Project.open(project.root)
    again.save_annotation(other, label_for(9), over=again.annotation_version(other))
    assert taken.exists() and path.is_file()


def test_a_take_moved_away_meanwhile_says_so(tmp_path, monkeypatch):
    """Another process moving the file this writer took (under its private name) before it is kept:
    a clear message naming the file and that nothing was deleted, not a raw [Errno 2] of a private
    name. Fails before: the OSError named '.….taking' -> 'discarded/…'."""
    project = project_with_work(tmp_path / "p")
    image = project.images[0]
    path = project.autosave_path(image)
    real_rename, moved = os.rename, []

    def rename_then_moved_back(src, dst, *a, **k):
        r = real_rename(src, dst, *a, **k)
        if str(dst).endswith(".taking") and not moved:
            moved.append(dst)
            real_rename(dst, path)  # put back by another process at once
        return r

    ours = project.autosave_version(image)
    monkeypatch.setattr(qgn.project_kept.os, "rename", rename_then_moved_back)
    with pytest.raises(OSError) as caught:
        project.discard_autosave(image, ours=ours)
    monkeypatch.undo()
    text = str(caught.value)
    assert ".taking" not in text and "nothing was deleted" in text and path.name in text, text
    assert path.exists()


def test_a_take_a_read_only_project_cannot_put_back_is_said(tmp_path, monkeypatch):
    """(lost6 2a) A crashed writer's autosave under its private name, in a project this process cannot
    write: not put back, not offered - and said (``taken_left_text``), naming the file and its own name,
    nothing deleted. Fails before: nothing said (no ``taken_left``)."""
    import errno

    project = project_with_work(tmp_path / "p")
    image = project.images[0]
    path = project.autosave_path(image)
    old = time.time_ns() - 25 * 3600 * 10**9  # taken over a day ago: a crashed writer's, whatever its pid
    private = path.with_name(f".{path.name}.{os.getpid()}-{old}.taking")
    os.rename(path, private)

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(qgn.project_kept.os, "link", read_only)
    monkeypatch.setattr(qgn.project_kept, "_copy_into_new", read_only)
    reader = Project.open(project.root)
    assert reader.recoverable() == []  # not offered: it cannot be put back
    text = reader.taken_left_text()
    assert text is not None and str(private) in text and path.name in text and "Read-only file system" in text, text
    assert private.exists()  # kept as it is
    from qgn_studio.project_open import read_project

    opening = read_project(project.root, [])
    assert opening.hidden == text
    monkeypatch.undo()
    assert Project.open(project.root).recoverable() == [image]  # writable again: put back and offered
    assert Project.open(project.root).taken_left_text() is None


def _leftover_under_a_newer_autosave(tmp_path):
    """A writable project; a crashed writer's autosave under its private name (2 h ago, a dead pid), a
    newer autosave at its own name."""
    project = project_with_work(tmp_path / "p")
    image = project.images[0]
    path = project.autosave_path(image)
    private = path.with_name(f".{path.name}.999999-{time.time_ns() - 7200 * 10**9}.taking")
    private.write_bytes(path.read_bytes())
    project.autosave(image, label_for(77))  # the newer one, other bytes
    return project, image, path, private


def test_a_take_a_newer_file_keeps_from_its_name_is_kept_listed_and_said_truly(tmp_path):
    """(lostfix6 4) A writable project: the leftover cannot go back (a newer autosave has its name). Before,
    it was said as if the project were read-only ("open the project where it can be written") and stayed
    hidden under its private name, offered by nothing, at every open. Now it is kept in conflicts/ as
    another writer's unsaved edits (never over a file), listed by Kept copy…, and said so. Fails before."""
    from qgn.quadtree.label_io import read_label_file
    from test_project_lost_work import CLASSES

    project, image, path, private = _leftover_under_a_newer_autosave(tmp_path)
    leftover, newer = private.read_bytes(), path.read_bytes()
    reader = Project.open(project.root)
    reader.recoverable()
    text = reader.taken_left_text()
    assert text is not None and "where it can be written" not in text and "a newer file has its name" in text, text
    (copy,) = reader.kept_copies(image)
    assert copy.path.read_bytes() == leftover and copy.why == "another window's unsaved edits"
    assert str(copy.path) in text and "Kept copy" in text, text
    assert not private.exists() and path.read_bytes() == newer  # the newer one untouched
    assert (read_label_file(copy.path, CLASSES) == label_for(100)).all()
    assert Project.open(project.root).taken_left_text() is None  # kept: nothing hidden any more


def test_a_take_neither_its_name_nor_conflicts_can_take_is_said_where_it_stays(tmp_path):
    """conflicts/ a file in the way too: the leftover stays under its private name, and the text says where
    and how to read it - not to open the project where it can be written."""
    project, image, path, private = _leftover_under_a_newer_autosave(tmp_path)
    (project.root / "conflicts").write_text("in the way")
    reader = Project.open(project.root)
    reader.recoverable()
    text = reader.taken_left_text()
    assert text is not None and str(private) in text and "Import mask" in text, text
    assert "where it can be written" not in text
    assert private.exists()


def test_a_kill_between_keeping_a_take_and_letting_its_name_go_keeps_it_once(tmp_path, monkeypatch):
    """(lost6b 2) The open keeping the leftover in conflicts/ killed between its link there and the unlink of
    its private name: the next open finds the same file in conflicts/ already and lets the private name go -
    one kept copy, not two. Fails before (a second name in conflicts/, listed twice)."""
    project, image, path, private = _leftover_under_a_newer_autosave(tmp_path)
    leftover = private.read_bytes()
    real_unlink = type(private).unlink

    def killed(self, *args, **kwargs):
        if self == private:
            raise SystemExit("killed between the link and the unlink")
        return real_unlink(self, *args, **kwargs)

    monkeypatch.setattr(type(private), "unlink", killed)
    with pytest.raises(SystemExit):
        Project.open(project.root).recoverable()
    monkeypatch.undo()
    assert private.exists() and len(list((project.root / "conflicts").iterdir())) == 1
    reader = Project.open(project.root)
    reader.recoverable()
    (kept,) = (project.root / "conflicts").iterdir()
    assert not private.exists() and kept.read_bytes() == leftover
    assert [copy.path for copy in reader.kept_copies(image)] == [kept]
    text = reader.taken_left_text()
    assert text is not None and str(kept) in text, text


def test_two_openers_at_once_keep_a_take_once_and_say_it_truly(tmp_path, monkeypatch):
    """(lost6b 3) Two processes open the project at once (``recoverable`` runs ``_bring_back_taken`` without
    the write lock). (B) the other's whole open runs just before this one links the private name: this one
    says it was kept by another process, not "it stays as ….taking (No such file)". (C) it runs between this
    one's link into conflicts/ and its unlink: one name in conflicts/, and this one says where it is kept,
    not that conflicts/ could not take it. Both fail before."""
    import qgn.project_kept as pk

    # (B)
    project, image, path, private = _leftover_under_a_newer_autosave(tmp_path / "b")
    leftover = private.read_bytes()
    real_second = pk._second_name
    ran = []

    def other_first(source, target):
        if source == private and not ran:
            ran.append(Project.open(project.root))
            ran[0].recoverable()
        return real_second(source, target)

    opener = Project.open(project.root)
    monkeypatch.setattr(pk, "_second_name", other_first)
    opener.recoverable()
    monkeypatch.undo()
    (kept,) = (project.root / "conflicts").iterdir()
    assert ran and not private.exists() and kept.read_bytes() == leftover
    text = opener.taken_left_text()
    assert text is not None and "kept by another process" in text and "No such file" not in text, text
    assert "could not be put back" not in text and "not put back under its own name by this open" in text, text
    assert str(ran[0].taken_left[0][3]) == str(kept)

    # (C)
    project, image, path, private = _leftover_under_a_newer_autosave(tmp_path / "c")
    real_sync = pk.sync_folder

    def other_now(folder):
        monkeypatch.setattr(pk, "sync_folder", real_sync)
        Project.open(project.root).recoverable()
        return real_sync(folder)

    opener = Project.open(project.root)
    monkeypatch.setattr(pk, "sync_folder", other_now)
    opener.recoverable()
    monkeypatch.undo()
    (kept,) = (project.root / "conflicts").iterdir()
    assert not private.exists() and kept.read_bytes() == leftover
    assert [copy.path for copy in opener.kept_copies(image)] == [kept]
    text = opener.taken_left_text()
    assert text is not None and f"kept as {kept}" in text and "could not take it" not in text, text


def test_a_take_found_kept_already_is_synced_there_before_its_private_name_goes(tmp_path, monkeypatch):
    """(lost6c 2) An open killed after linking the leftover into conflicts/ but before syncing conflicts/: the
    next open finds that name and lets the private one go - conflicts/ synced first (the link made durable
    before the only other name goes). Fails before (the private name unlinked unsynced)."""
    import qgn.project_kept as pk

    project, image, path, private = _leftover_under_a_newer_autosave(tmp_path)
    real_sync = pk.sync_folder

    def killed(folder):
        raise SystemExit("killed between the link and the sync")

    monkeypatch.setattr(pk, "sync_folder", killed)
    with pytest.raises(SystemExit):
        Project.open(project.root).recoverable()
    events = []
    real_unlink = type(private).unlink

    def unlink(self, *args, **kwargs):
        if self == private:
            events.append("unlink private")
        return real_unlink(self, *args, **kwargs)

    monkeypatch.setattr(pk, "sync_folder", lambda folder: (events.append(f"sync {os.path.basename(folder)}"),
                                                           real_sync(folder))[1])
    monkeypatch.setattr(type(private), "unlink", unlink)
    Project.open(project.root).recoverable()
    monkeypatch.undo()
    assert "unlink private" in events and "sync conflicts" in events[:events.index("unlink private")], events
    assert len(list((project.root / "conflicts").iterdir())) == 1 and not private.exists()


def test_two_openers_linking_a_take_at_once_keep_it_under_one_name(tmp_path, monkeypatch):
    """(lost6c 3) B looks in conflicts/ (nothing yet), then A's whole open runs - linking its name, its unlink
    of the private name held back (A between its link and its unlink) - and B links a second name: B looks
    again after linking, finds A's earlier name of the same file and drops only its own. One name, both
    saying it. Fails before (two names of one file, listed twice)."""
    import qgn.project_kept as pk

    project, image, path, private = _leftover_under_a_newer_autosave(tmp_path)
    leftover = private.read_bytes()
    real_kept_already, real_unlink = pk._kept_already, type(private).unlink
    other = []

    def held(self, *args, **kwargs):
        if self == private:
            return None  # A has not got there yet
        return real_unlink(self, *args, **kwargs)

    def a_runs_now(*args, **kwargs):
        found = real_kept_already(*args, **kwargs)
        monkeypatch.setattr(pk, "_kept_already", real_kept_already)
        monkeypatch.setattr(type(private), "unlink", held)
        other.append(Project.open(project.root))
        other[0].recoverable()
        monkeypatch.setattr(type(private), "unlink", real_unlink)
        return found

    opener = Project.open(project.root)
    monkeypatch.setattr(pk, "_kept_already", a_runs_now)
    opener.recoverable()
    monkeypatch.undo()
    (kept,) = (project.root / "conflicts").iterdir()
    assert not private.exists() and kept.read_bytes() == leftover
    assert [copy.path for copy in opener.kept_copies(image)] == [kept]
    for said in (opener.taken_left_text(), other[0].taken_left_text()):
        assert said is not None and f"kept as {kept}" in said, said
