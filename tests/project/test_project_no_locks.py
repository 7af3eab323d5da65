"""A project on a file system without locks (NFSv3 without its lock manager, some FUSE or SMB mounts:
``flock`` fails with ENOLCK): it opens and saves, says once that its writers are not kept apart, and
does nothing there that rests on the lock's proof that no live writer is mid-write."""
from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest
from file_systems import no_locks_under
from PIL import Image

from qgn.classes import ClassSet
from qgn.classes_edit import rename_class
from qgn.project import PROJECT_FILE, Project
from qgn.project_generations import JOURNAL_FILE, generation_dirs
from qgn.project_class_edit import apply_class_edit

CLASSES = ClassSet(("sky", "road", "pole"), ((70, 130, 180), (128, 64, 128), (153, 153, 153)), 255)


def images(folder: Path, n: int, start: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(start, start + n):
        Image.new("RGB", (16, 16), (i, i, i)).save(folder / f"im{i}.png")
        out.append(folder / f"im{i}.png")
    return out


def label(value: int) -> np.ndarray:
    return np.full((16, 16), value, np.int64)


def unlocked_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if "gives no locks" in line]


def test_a_project_without_locks_opens_saves_and_says_so_once(tmp_path, monkeypatch, capsys):
    """Every write failed with "[Errno 37] No locks available" (Project._folder_lock's flock), naming no
    file: a project there could be created and opened but never saved, marked done or added to. Now
    the writes go on, and the first one says once per process and file system (not per write, not
    per Project object) that concurrent writers are not kept apart there."""
    root = tmp_path / "p"
    no_locks_under(monkeypatch, tmp_path)
    project = Project.create(root, images(tmp_path / "images", 2), CLASSES)
    assert project.no_lock is not None and project.no_lock.errno == errno.ENOLCK
    project.save_annotation(project.images[0], label(1))
    project.autosave(project.images[1], label(2))
    project.set_done(project.images[0], True)
    other = Project.open(root)  # a second writer in this process: merged, as with locks
    other.add_images(images(tmp_path / "images", 1, start=2))
    project.set_done(project.images[1], True)
    project.save()

    again = Project.open(root)
    assert [im.path.name for im in again.images] == ["im0.png", "im1.png", "im2.png"]
    assert [im.done for im in again.images] == [True, True, False]
    assert (again.load_annotation(again.images[0]) == 1).all()
    assert (again.recover(again.images[1]) == 2).all()
    lines = unlocked_lines(capsys.readouterr().err)
    assert len(lines) == 1, lines
    assert lines[0].startswith("qgn: warning: ") and str(root) in lines[0] and "one at a time" in lines[0]
    assert "No locks available" in lines[0]
    said = again.writers_unprotected()  # what the app says when it opens the project
    assert said is not None and "one at a time" in said and str(root) in said


def test_a_project_with_locks_says_nothing(tmp_path, capsys):
    project = Project.create(tmp_path / "p", images(tmp_path / "images", 1), CLASSES)
    project.save_annotation(project.images[0], label(1))
    assert project.no_lock is None and project.writers_unprotected() is None
    assert not unlocked_lines(capsys.readouterr().err)


def test_a_class_edit_without_locks_is_refused_and_changes_nothing(tmp_path, monkeypatch, snapshot):
    """A class edit rewrites every file while another writer, no longer kept out, could write them (or,
    finding its journal, take it for a dead edit's and roll it back under it): refused, naming why and
    what to do, and nothing changes."""
    root = tmp_path / "p"
    project = Project.create(root, images(tmp_path / "images", 2), CLASSES)
    project.save_annotation(project.images[0], label(2))
    before = snapshot(root)
    no_locks_under(monkeypatch, tmp_path)
    with pytest.raises(ValueError, match="class edit was not made.*gives no locks.*copy the project"):
        apply_class_edit(project, rename_class(project.classes, 2, "post"))
    assert snapshot(root) == before
    assert Project.open(root).classes == CLASSES


def another_class_edit_under_way(root: Path, project: Project) -> list[Path]:
    """A class edit of another process, as it stands mid-way: its journal written, its next
    generation's folders made and partly written (``apply_class_edit``). Its folders."""
    journal = {"from_generation": project.generation, "to_generation": project.generation + 1,
               "from_revision": project.revision, "to_revision": project.revision + 1, "description": "rename"}
    (root / JOURNAL_FILE).write_text(json.dumps(journal))
    staged = [root / name for name in generation_dirs(project.generation + 1)]
    for folder in staged:
        folder.mkdir()
    (staged[0] / "im0.qgt").write_bytes(b"the other edit's rewritten annotation")
    return staged


@pytest.mark.parametrize("locks", [True, False], ids=["locks", "no-locks"])
def test_a_write_without_locks_leaves_what_another_writer_has_under_way(tmp_path, monkeypatch, locks):
    """Under the lock, a class edit's journal is proof of a dead edit (a live one holds the lock), and
    the next writer rolls it back (removes its folders). Without locks nothing proves it dead: the
    write leaves the journal and the folders as they are (with locks: rolled back, as before)."""
    root = tmp_path / "p"
    project = Project.create(root, images(tmp_path / "images", 2), CLASSES)
    project.save_annotation(project.images[0], label(2))
    writer = Project.open(root)
    staged = another_class_edit_under_way(root, project)
    if not locks:
        no_locks_under(monkeypatch, tmp_path)
    writer.set_done(writer.images[1], True)
    assert (root / JOURNAL_FILE).exists() is not locks
    assert all(folder.is_dir() is not locks for folder in staged)
    assert json.loads((root / PROJECT_FILE).read_text())["images"][1]["done"] is True


class Killed(BaseException):
    """A SIGKILL where it is raised: nothing after it runs."""


def an_add_killed_before_bringing_back(project: Project, image: Path, monkeypatch) -> None:
    """``project.add_images([image])`` killed after project.json lists the image, before its annotation
    in removed/ is moved back (``Project.bring_back``): its note (.bring-back.json) is left."""
    with monkeypatch.context() as m:
        m.setattr(Project, "bring_back", lambda self, images, moved=None: (_ for _ in ()).throw(Killed()))
        with pytest.raises(Killed):
            project.add_images([image])


def removed_with_their_annotations(tmp_path: Path) -> tuple[Path, list[Path]]:
    """A project (its root) whose two images (``ims``, annotated 1 and 2) were removed, their
    annotations kept in removed/ for an add to bring back."""
    root = tmp_path / "p"
    ims = images(tmp_path / "images", 2)
    project = Project.create(root, ims, CLASSES)
    for value, image in enumerate(project.images, start=1):
        project.save_annotation(image, label(value))
    for image in list(project.images):
        project.remove_image(image)
    return root, ims


def test_an_add_without_locks_keeps_a_killed_adds_note_for_a_writer_with_locks(tmp_path, monkeypatch, capsys):
    """Without locks nothing finishes a killed add (its note may be a live add's), and the next add wrote
    its own note over it: the killed add's image stayed listed without its annotation for good (the
    annotation left in removed/, unsaid), even once the project was written where locks work. Now an
    add there never replaces a note: it goes on without its own and says so (on stderr, and in what the
    app says when it opens the project), and the first writer with locks finishes the killed add."""
    import qgn.project_bring_back

    monkeypatch.setattr(qgn.project_bring_back, "_UNFINISHED_SAID", set())
    root, ims = removed_with_their_annotations(tmp_path)
    with monkeypatch.context() as m:
        no_locks_under(m, tmp_path)
        an_add_killed_before_bringing_back(Project.open(root), ims[0], m)
        note = (root / ".bring-back.json").read_bytes()
        other = Project.open(root)
        other.add_images([ims[1]])  # another add, later: its own image's annotation comes back
        assert (other.load_annotation(other.images[1]) == 2).all()
        assert (root / ".bring-back.json").read_bytes() == note  # the killed add's note, as it left it
        said = [line for line in capsys.readouterr().err.splitlines() if ".bring-back.json" in line]
        assert len(said) == 1 and said[0].startswith("qgn: warning: ") and "cut short" in said[0], said
        opened = Project.open(root).writers_unprotected()
        assert ".bring-back.json" in opened and str(root / "removed") in opened
    again = Project.open(root)  # a writer where locks work
    again.set_done(again.images[1], True)
    again = Project.open(root)
    assert [im.path.name for im in again.images] == ["im0.png", "im1.png"]
    assert [int(again.load_annotation(im).max()) for im in again.images] == [1, 2]
    assert not (root / ".bring-back.json").exists()
    assert not any(name.endswith(".qgt") for name in os.listdir(root / "removed"))


def test_an_add_without_locks_and_no_note_there_notes_and_finishes_its_own(tmp_path, monkeypatch, capsys):
    """Without a note there, an add without locks writes its own (killed, it is kept for a writer with
    locks) and says nothing of notes; not killed, it removes it."""
    root, ims = removed_with_their_annotations(tmp_path)
    with monkeypatch.context() as m:
        no_locks_under(m, tmp_path)
        Project.open(root).add_images([ims[1]])
        assert not (root / ".bring-back.json").exists()
        an_add_killed_before_bringing_back(Project.open(root), ims[0], m)
        assert (root / ".bring-back.json").is_file()
        assert ".bring-back.json" not in capsys.readouterr().err
    again = Project.open(root)
    again.set_done(again.images[0], True)  # where locks work: finished
    assert [int(Project.open(root).load_annotation(im).max()) for im in again.images] == [2, 1]


@pytest.mark.parametrize("same", ["same folder", "same folder through a link", "another project"])
def test_a_second_writer_without_locks_waits_the_lock_timeout_for_its_project_only(tmp_path, monkeypatch, same):
    """Without locks the writers of a process were kept apart by one lock with no timeout, for every
    project: a second writer of the project waited for ever (not ProjectBusyError after
    QGN_PROJECT_LOCK_TIMEOUT, as with locks), and a writer of another project waited too. Now each
    folder (however named) has its lock, waited for as long as the folder lock is."""
    import threading

    from qgn.project import ProjectBusyError

    monkeypatch.setenv("QGN_PROJECT_LOCK_TIMEOUT", "0.2")
    root = tmp_path / "p"
    Project.create(root, images(tmp_path / "images", 1), CLASSES)
    Project.create(tmp_path / "q", images(tmp_path / "images", 1), CLASSES)
    (tmp_path / "link").symlink_to(root)
    no_locks_under(monkeypatch, tmp_path)
    holder = Project.open(root)
    other = Project.open({"same folder": root, "same folder through a link": tmp_path / "link",
                          "another project": tmp_path / "q"}[same])
    held, release, released = threading.Event(), threading.Event(), threading.Event()

    def hold() -> None:
        with holder.writing():
            held.set()
            release.wait(60)
            released.set()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert held.wait(60)
    try:
        if same == "another project":
            other.set_done(other.images[0], True)
            assert not released.is_set()  # written while the first project's writer holds its lock
        else:
            with pytest.raises(ProjectBusyError, match="more than 0 s"):
                other.set_done(other.images[0], True)
            assert not released.is_set()
    finally:
        release.set()
        thread.join(60)


def test_an_add_without_locks_that_found_a_note_and_is_killed_too_is_finished_by_a_writer_with_locks(
        tmp_path, monkeypatch, capsys):
    """Without locks, an add that found another's note (a killed add's) went on without one: killed in turn,
    its image stayed listed without its annotation for good (in removed/ until found by hand). Now it writes
    its note under a name of its own beside it (.bring-back-notes/), and the first writer with locks finishes
    both adds. Fails before."""
    import qgn.project_bring_back

    monkeypatch.setattr(qgn.project_bring_back, "_UNFINISHED_SAID", set())
    root, ims = removed_with_their_annotations(tmp_path)
    with monkeypatch.context() as m:
        no_locks_under(m, tmp_path)
        an_add_killed_before_bringing_back(Project.open(root), ims[0], m)
        an_add_killed_before_bringing_back(Project.open(root), ims[1], m)
        assert len(os.listdir(root / ".bring-back-notes")) == 1
        opened = Project.open(root).writers_unprotected()
        assert ".bring-back.json and 1 more" in opened and "are the notes" in opened, opened
    again = Project.open(root)  # a writer where locks work
    again.set_done(again.images[0], True)
    again = Project.open(root)
    assert [int(again.load_annotation(im).max()) for im in again.images] == [1, 2]
    assert not (root / ".bring-back.json").exists() and not (root / ".bring-back-notes").exists()
    assert not any(name.endswith(".qgt") for name in os.listdir(root / "removed"))


def test_a_link_at_the_notes_name_is_not_taken_for_another_adds_note_without_locks(tmp_path, monkeypatch, capsys):
    """Without locks, a symbolic link at .bring-back.json (a sync tool's, a script's) was taken for another
    add's note: the add went on without one and said a note of an add cut short was there. Now the link is
    nobody's note (nothing said of it); the add notes beside it, and killed, is finished by a writer with
    locks. Fails before."""
    import qgn.project_bring_back

    monkeypatch.setattr(qgn.project_bring_back, "_UNFINISHED_SAID", set())
    root, ims = removed_with_their_annotations(tmp_path)
    (tmp_path / "elsewhere.json").write_text("{}")
    (root / ".bring-back.json").symlink_to(tmp_path / "elsewhere.json")
    with monkeypatch.context() as m:
        no_locks_under(m, tmp_path)
        an_add_killed_before_bringing_back(Project.open(root), ims[0], m)
        assert "cut short" not in capsys.readouterr().err
        opened = Project.open(root).writers_unprotected()
        assert str(root / ".bring-back.json") not in opened and ".bring-back-notes" in opened, opened
    again = Project.open(root)  # a writer where locks work
    again.set_done(again.images[0], True)
    assert int(Project.open(root).load_annotation(Project.open(root).images[0]).max()) == 1
    assert (tmp_path / "elsewhere.json").read_text() == "{}"


@pytest.mark.parametrize("what", ["file", "link"])
def test_something_not_a_folder_at_the_notes_folders_name_is_said_and_the_add_says_it_goes_on_without_a_note(
        tmp_path, monkeypatch, capsys, what):
    """A plain file (a sync tool's) or a link at .bring-back-notes: without locks, an add that finds another's
    note cannot note beside it. Fails before: nothing said it (blocked_folders empty, though the code said
    it did; the add went on in silence), and what the app says at open claimed such an add writes its own note
    there. Now blocked_folders names it, the add says it goes on without a note, and the open's text says so."""
    import qgn.project_bring_back

    monkeypatch.setattr(qgn.project_bring_back, "_UNFINISHED_SAID", set())
    root, ims = removed_with_their_annotations(tmp_path)
    if what == "file":
        (root / ".bring-back-notes").write_text("a sync tool's file")
    else:
        os.mkdir(tmp_path / "elsewhere")
        (root / ".bring-back-notes").symlink_to(tmp_path / "elsewhere")
    with monkeypatch.context() as m:
        no_locks_under(m, tmp_path)
        an_add_killed_before_bringing_back(Project.open(root), ims[0], m)
        capsys.readouterr()
        Project.open(root).add_images([ims[1]])  # finds the killed add's note: none of its own
        err = capsys.readouterr().err
        assert "goes on without its note" in err and str(root / ".bring-back-notes") in err, err
        opened = Project.open(root)
        blocked = opened.blocked_folders()
        assert len(blocked) == 1 and str(root / ".bring-back-notes") in blocked[0], blocked
        text = opened.writers_unprotected()
        assert "goes on without a note of its own" in text and "writes its own note beside it" not in text, text
    if what == "link":  # left as it was, nothing written where it points
        assert (root / ".bring-back-notes").is_symlink() and os.listdir(tmp_path / "elsewhere") == []
    else:
        assert (root / ".bring-back-notes").read_text() == "a sync tool's file"


@pytest.mark.parametrize("what", ["a file there", "a folder holding only a .DS_Store"])
def test_a_writer_with_locks_runs_no_clean_up_at_each_write_for_a_notes_folder_without_notes(
        tmp_path, monkeypatch, what):
    """With locks, a write looks for an add's notes left without locks (a lstat): .bring-back-notes that
    cannot be removed and holds no note (a file at its name, or a folder a Finder left a .DS_Store in) made
    every write run the whole clean-up of notes. Fails before. Now only a note there (or the empty folder,
    removed then) runs it."""
    import qgn.project_bring_back

    root = tmp_path / "p"
    project = Project.create(root, images(tmp_path / "images", 2), CLASSES)
    if what == "a file there":
        (root / ".bring-back-notes").write_text("a sync tool's file")
    else:
        os.mkdir(root / ".bring-back-notes")
        (root / ".bring-back-notes" / ".DS_Store").write_bytes(b"\0")
    calls = []
    real = qgn.project_bring_back.finish_bring_back
    monkeypatch.setattr(qgn.project_bring_back, "finish_bring_back", lambda *a: (calls.append(1), real(*a))[1])
    project.set_done(project.images[0], True)  # the first write of this object: its clean-up, once
    first = len(calls)
    for image in project.images:
        project.save_annotation(image, label(1))
    assert len(calls) == first, (first, len(calls))
    assert os.path.lexists(root / ".bring-back-notes")  # (nothing of another's removed)


def test_a_writer_with_locks_still_finishes_a_note_left_in_the_notes_folder_at_a_later_write(tmp_path, monkeypatch):
    """(Holds the above's other side.) A note in .bring-back-notes beside a .DS_Store, left there after this
    writer's first write, is finished at its next write."""
    root, ims = removed_with_their_annotations(tmp_path)
    os.mkdir(root / ".bring-back-notes")
    (root / ".bring-back-notes" / ".DS_Store").write_bytes(b"\0")
    writer = Project.open(root)
    writer.add_images([ims[1]])  # its first write (its clean-up then): im1's annotation comes back
    with monkeypatch.context() as m:
        no_locks_under(m, tmp_path)
        (root / ".bring-back.json").write_text('{"images": []}')  # another add's note: this one notes beside it
        an_add_killed_before_bringing_back(Project.open(root), ims[0], m)
    (root / ".bring-back.json").unlink()  # that other add finished
    assert len([n for n in os.listdir(root / ".bring-back-notes") if n.endswith(".json")]) == 1
    writer.save_annotation(writer.images[0], label(2))  # a later write of the same writer
    again = Project.open(root)
    assert {im.path.name: int(again.load_annotation(im).max()) for im in again.images} == {"im0.png": 1, "im1.png": 2}
    assert os.listdir(root / ".bring-back-notes") == [".DS_Store"]


class _RemovedAfterMaking:
    """``os`` for qgn.project_bring_back: .bring-back-notes, once made, is removed again (empty) before the
    add's note is opened in it - a writer with locks finishing every note in between - ``times`` times."""

    def __init__(self, times: int):
        self.times = times

    def __getattr__(self, name):
        return getattr(os, name)

    def mkdir(self, path, *args, **kwargs):
        os.mkdir(path, *args, **kwargs)
        if Path(path).name == ".bring-back-notes" and self.times > 0:
            self.times -= 1
            os.rmdir(path)


def test_an_add_without_locks_whose_notes_folder_a_writer_with_locks_removes_meanwhile_makes_it_again(
        tmp_path, monkeypatch, capsys):
    """Without locks, a writer with locks removed the empty .bring-back-notes between the add's making it and
    its note's opening there: the add went on without a note (ENOENT), and killed, its image stayed listed
    without its annotation even after a writer with locks. Fails before. Now it makes the folder again and
    notes there; killed, a writer with locks finishes it."""
    import qgn.project_bring_back

    monkeypatch.setattr(qgn.project_bring_back, "_UNFINISHED_SAID", set())
    root, ims = removed_with_their_annotations(tmp_path)
    (root / ".bring-back.json").write_text('{"images": []}')  # another add's note (live, say)
    with monkeypatch.context() as m:
        no_locks_under(m, tmp_path)
        m.setattr(qgn.project_bring_back, "os", _RemovedAfterMaking(1))
        an_add_killed_before_bringing_back(Project.open(root), ims[0], m)
    assert "without its note" not in capsys.readouterr().err
    assert len([n for n in os.listdir(root / ".bring-back-notes") if n.endswith(".json")]) == 1
    (root / ".bring-back.json").unlink()  # that other add finished
    again = Project.open(root)
    again.set_done(again.images[0], True)  # where locks work: finished
    again = Project.open(root)
    assert int(again.load_annotation(again.images[0]).max()) == 1
    assert not any(name.startswith("im0") for name in os.listdir(root / "removed"))


def test_an_add_without_locks_whose_notes_folder_is_removed_at_every_try_goes_on_and_says_so(
        tmp_path, monkeypatch, capsys):
    """(Holds the bound.) The folder removed again each time it is made: the add tries so many times, then
    goes on without a note and says so; the image is added."""
    import qgn.project_bring_back

    monkeypatch.setattr(qgn.project_bring_back, "_UNFINISHED_SAID", set())
    root, ims = removed_with_their_annotations(tmp_path)
    (root / ".bring-back.json").write_text('{"images": []}')
    with monkeypatch.context() as m:
        no_locks_under(m, tmp_path)
        m.setattr(qgn.project_bring_back, "os", _RemovedAfterMaking(10 ** 6))
        project = Project.open(root)
        project.add_images([ims[0]])
    err = capsys.readouterr().err
    assert "goes on without its note" in err and "removed each time it was made" in err, err
    assert int(Project.open(root).load_annotation(Project.open(root).images[0]).max()) == 1


def test_an_add_refused_before_writing_leaves_no_note_said_as_an_add_cut_short(tmp_path, monkeypatch):
    """An add whose project.json would pass the bound is refused before anything is written; its note of
    the images to bring back stayed, and without locks every open then said an add had been cut short
    (nothing was listed), each further refused add leaving one more note (the integration review).
    The note goes with the refusal now."""
    import qgn.project_file
    from qgn.project import ProjectError
    from qgn.project_bring_back import NOTES_DIR

    root, ims = removed_with_their_annotations(tmp_path)
    with monkeypatch.context() as m:
        no_locks_under(m, tmp_path)
        m.setattr(qgn.project_file, "MAX_PROJECT_FILE_BYTES", (root / PROJECT_FILE).stat().st_size + 10)
        for image in ims:
            with pytest.raises(ProjectError, match="adding 1 image was refused"):
                Project.open(root).add_images([image])
        assert not (root / ".bring-back.json").exists()
        assert not list((root / NOTES_DIR).glob("*.json")) if (root / NOTES_DIR).is_dir() else True
        assert not any("cut short" in text for text in Project.open(root).writers_unprotected())


def test_an_add_whose_commit_fails_on_a_full_disk_leaves_no_note_said_as_an_add_cut_short(tmp_path, monkeypatch):
    """An add whose project.json write fails (a full disk: project.json as before, nothing listed). Fails
    before: its note stayed (only a refusal before any write removed it), and without locks every open then
    said an add had been cut short. Now the note goes with the failure - but stays where the failure came
    after project.json was replaced (its folder's fsync failing): the next writer finishes that add."""
    import qgn.fileio
    from qgn.project_bring_back import NOTES_DIR

    root, ims = removed_with_their_annotations(tmp_path)
    real_staged = qgn.fileio._staged

    def staged(path, data, progress=None):
        if Path(path).name == PROJECT_FILE:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real_staged(path, data, progress)

    def notes() -> list:
        beside = list((root / NOTES_DIR).glob("*.json")) if (root / NOTES_DIR).is_dir() else []
        return [*beside, *([root / ".bring-back.json"] if (root / ".bring-back.json").exists() else [])]

    with monkeypatch.context() as m:
        no_locks_under(m, tmp_path)
        m.setattr(qgn.fileio, "_staged", staged)
        with pytest.raises(OSError, match="No space left"):
            Project.open(root).add_images([ims[0]])
        assert Project.open(root).images == []
        assert notes() == []
        assert not any("cut short" in text for text in Project.open(root).writers_unprotected())

    real_sync = qgn.fileio.sync_folder

    def sync_fails(folder):  # once project.json was replaced by one listing the image (not at the note's)
        if ims[0].name in (root / PROJECT_FILE).read_text():
            raise OSError(errno.EIO, os.strerror(errno.EIO), str(folder))
        return real_sync(folder)

    with monkeypatch.context() as m:
        m.setattr(qgn.fileio, "sync_folder", sync_fails)
        with pytest.raises(OSError, match="Input/output error"):
            Project.open(root).add_images([ims[0]])
    assert len(notes()) == 1, "listed by the replaced project.json: its note stays for the next writer"
    writer = Project.open(root)
    writer.set_done_many([])  # the next writer finishes the add: the annotation comes back
    assert int(Project.open(root).load_annotation(Project.open(root).images[0]).max()) == 1
