"""Keeping an autosave of undone edits fails (``discarded/`` a plain file, or a link out of the project):
the autosave about to be written over (or removed by a save) is kept in ``conflicts/`` by its bytes
instead, the result names it, and the write goes on - one rule for ``autosave(undone=)`` and
``save_annotation(undone=)`` (``Project._keep_undone``)."""
from __future__ import annotations

import numpy as np
import pytest

from qgn.project import CONFLICTS_DIR, DISCARDED_DIR
from qgn.quadtree.label_io import read_label_file
from test_project_lost_work import CLASSES, label_for, project_with_work


def _discarded_in_the_way(project, tmp_path, how: str) -> None:
    if how == "file":
        (project.root / DISCARDED_DIR).write_text("in the way")
    else:
        (tmp_path / "elsewhere").mkdir()
        (project.root / DISCARDED_DIR).symlink_to(tmp_path / "elsewhere")


@pytest.mark.parametrize("how", ["file", "link out"])
def test_an_autosave_over_undone_edits_is_written_keeping_them_in_conflicts(tmp_path, how):
    """Fails before: the OSError / OutsideRootError of discarded/ aborted the autosave - every round
    failed and the edits after the undo lived in memory only."""
    project = project_with_work(tmp_path / "p")
    image = project.images[0]
    path = project.autosave_path(image)
    ours = project.autosave_version(image)
    _discarded_in_the_way(project, tmp_path, how)
    saved = project.autosave(image, label_for(101), over=ours, undone=True)
    np.testing.assert_array_equal(read_label_file(path, CLASSES), label_for(101))  # written
    (kept,) = (project.root / CONFLICTS_DIR).glob("*.undone-*.qgt")
    assert saved.undone_aside == kept and saved.undone_error is not None
    np.testing.assert_array_equal(read_label_file(kept, CLASSES), label_for(100))
    if how == "link out":
        assert not any((tmp_path / "elsewhere").iterdir())  # nothing written out of the project
    # nothing undone: nothing kept, nothing said
    again = project.autosave(image, label_for(102), over=saved.version)
    assert again.undone_aside is None and len(list((project.root / CONFLICTS_DIR).iterdir())) == 1


def test_an_autosave_over_undone_edits_neither_folder_takes_writes_nothing(tmp_path):
    """discarded/ and conflicts/ both in the way: the error, the autosave holding the undone edits
    left as it is (never written over)."""
    project = project_with_work(tmp_path / "p")
    image = project.images[0]
    path = project.autosave_path(image)
    ours = project.autosave_version(image)
    (project.root / DISCARDED_DIR).write_text("in the way")
    (project.root / CONFLICTS_DIR).write_text("in the way")
    with pytest.raises(NotADirectoryError):
        project.autosave(image, label_for(101), over=ours, undone=True)
    assert project.autosave_version(image) == ours
    np.testing.assert_array_equal(read_label_file(path, CLASSES), label_for(100))


@pytest.mark.parametrize("how", ["file", "link out"])
def test_a_save_over_undone_edits_keeps_them_in_conflicts_as_an_autosave_does(tmp_path, how):
    """The same rule as the autosave's: fails before (the autosave was left in .autosave/ with a link
    out, and not named in the result)."""
    project = project_with_work(tmp_path / "p")
    image = project.images[0]
    path = project.autosave_path(image)
    _discarded_in_the_way(project, tmp_path, how)
    saved = project.save_annotation(image, label_for(2), over=project.annotation_version(image),
                                    autosave=project.autosave_version(image), undone=True)
    assert not path.exists()
    (kept,) = (project.root / CONFLICTS_DIR).glob("*.undone-*.qgt")
    assert saved.undone_aside == kept and saved.undone_error is not None
    np.testing.assert_array_equal(read_label_file(kept, CLASSES), label_for(100))
    np.testing.assert_array_equal(read_label_file(project.annotation_path(image), CLASSES), label_for(2))


def _taken_then_put_back(monkeypatch, path):
    """os.lstat that, once a ``.taking`` name was looked at, moves that file back to ``path`` - another
    process's ``bring_back_taken`` (another host of a shared folder, its clock ahead) just between."""
    import os

    real, done = os.lstat, []

    def lstat(p, *a, **k):
        result = real(p, *a, **k)
        if str(p).endswith(".taking") and not done:
            done.append(p)
            os.link(p, path)
            os.unlink(p)
        return result

    monkeypatch.setattr(os, "lstat", lstat)


def test_remove_if_version_a_take_put_back_meanwhile_is_a_plain_error(tmp_path, monkeypatch):
    """The review's repro: fails before (a raw ``[Errno 2] No such file or directory: '….taking'``)."""
    import os

    from qgn.project_kept import remove_if_version

    path = tmp_path / "a.qgt"
    path.write_bytes(b"x" * 10)
    st = os.stat(path)
    _taken_then_put_back(monkeypatch, path)
    with pytest.raises(OSError) as raised:
        remove_if_version(path, (st.st_ino, st.st_mtime_ns, st.st_size))
    monkeypatch.undo()
    assert type(raised.value) is OSError and "moved by another process" in str(raised.value)
    assert "[Errno" not in str(raised.value) and str(path) in str(raised.value)
    assert [p.name for p in tmp_path.iterdir()] == ["a.qgt"]  # nothing removed


def test_a_save_whose_autosave_take_is_put_back_meanwhile_is_saved(tmp_path, monkeypatch):
    """The map was written: the save is not reported as failed, the autosave stays, offered (a guard:
    ``_drop_autosave`` took the raw OSError before too)."""
    project = project_with_work(tmp_path / "p")
    image = project.images[0]
    path = project.autosave_path(image)
    _taken_then_put_back(monkeypatch, path)
    project.save_annotation(image, label_for(2), over=project.annotation_version(image),
                            autosave=project.autosave_version(image))
    monkeypatch.undo()
    np.testing.assert_array_equal(read_label_file(project.annotation_path(image), CLASSES), label_for(2))
    np.testing.assert_array_equal(read_label_file(path, CLASSES), label_for(100))


def test_a_save_over_undone_edits_neither_folder_takes_says_so_and_leaves_the_autosave(tmp_path):
    """discarded/ and conflicts/ both in the way at a save: the map is saved, the autosave stays in place
    (offered at the next open) and the result says why. Fails before: the error was swallowed, the
    result said nothing (the app could not warn)."""
    from qgn.project import Project

    project = project_with_work(tmp_path / "p")
    image = project.images[0]
    path = project.autosave_path(image)
    (project.root / DISCARDED_DIR).write_text("in the way")
    (project.root / CONFLICTS_DIR).write_text("in the way")
    saved = project.save_annotation(image, label_for(2), over=project.annotation_version(image),
                                    autosave=project.autosave_version(image), undone=True)
    assert saved.undone_aside is None and isinstance(saved.undone_error, NotADirectoryError)
    assert saved.undone_left is None
    np.testing.assert_array_equal(read_label_file(project.annotation_path(image), CLASSES), label_for(2))
    np.testing.assert_array_equal(read_label_file(path, CLASSES), label_for(100))
    assert [im.key for im in Project.open(project.root).recoverable()] == [image.key]


@pytest.mark.parametrize("how", ["file", "link out"])
def test_discard_autosave_undone_keeps_in_conflicts_as_a_save_does(tmp_path, how):
    """Undo back to the saved map (and a stand-in's ``_drop_spare``): ``discard_autosave(undone=True)``
    follows the rule of a save and an autosave. Fails before: discarded/'s error, the autosave left in
    place."""
    project = project_with_work(tmp_path / "p")
    image = project.images[0]
    path = project.autosave_path(image)
    _discarded_in_the_way(project, tmp_path, how)
    aside: list = []
    kept = project.discard_autosave(image, ours=project.autosave_version(image), undone=True, aside=aside)
    assert kept is not None and kept.parent == project.root / CONFLICTS_DIR and ".undone-" in kept.name
    assert aside[0] == kept and isinstance(aside[1], Exception)  # for the window to say where, and why
    assert not path.exists()
    np.testing.assert_array_equal(read_label_file(kept, CLASSES), label_for(100))
    if how == "link out":
        assert not any((tmp_path / "elsewhere").iterdir())


def _taking_put_back_at_unlink(monkeypatch, path):
    """Path.unlink that, at the first unlink of a ``.taking`` name, first moves that file back to ``path``
    - another process's ``bring_back_taken`` (another host of a shared folder) just between the take and
    its removal (``_remove_if_same``)."""
    import os
    from pathlib import Path

    real, done = Path.unlink, []

    def unlink(self, *a, **k):
        if self.name.endswith(".taking") and not done:
            done.append(self)
            os.link(self, path)
            real(self)
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "unlink", unlink)


def test_a_save_whose_undone_autosave_is_put_back_after_kept_keeps_it_once(tmp_path, monkeypatch):
    """The review's R4: discarded/ took the bytes, then the removal of the autosave met another process's
    put-back. Fails before: the removal's error sent the bytes to conflicts/ too, and the result said
    discarded/ could not take them. Now: kept once in discarded/, the removal's error reported as such
    (``undone_left``), the autosave back in place."""
    project = project_with_work(tmp_path / "p")
    image = project.images[0]
    path = project.autosave_path(image)
    _taking_put_back_at_unlink(monkeypatch, path)
    saved = project.save_annotation(image, label_for(2), over=project.annotation_version(image),
                                    autosave=project.autosave_version(image), undone=True)
    monkeypatch.undo()
    (kept,) = (project.root / DISCARDED_DIR).glob("*.undone-*.qgt")
    assert not (project.root / CONFLICTS_DIR).exists()
    assert saved.undone_aside == kept and saved.undone_error is None
    assert "moved by another process" in str(saved.undone_left) and "[Errno" not in str(saved.undone_left)
    np.testing.assert_array_equal(read_label_file(kept, CLASSES), label_for(100))
    np.testing.assert_array_equal(read_label_file(path, CLASSES), label_for(100))
    np.testing.assert_array_equal(read_label_file(project.annotation_path(image), CLASSES), label_for(2))


def test_move_aside_whose_take_is_put_back_before_its_unlink_is_a_plain_error(tmp_path, monkeypatch):
    """``_remove_if_same``'s unlink guard: the file taken under its private name was put back by another
    process before the unlink - a plain 'moved by another process ... nothing was deleted' OSError, not a
    raw [Errno 2] of the private name; the file is back, its bytes kept too (reverting the guard fails
    this)."""
    from qgn.project_kept import move_aside

    path = tmp_path / "a.qgt"
    path.write_bytes(b"x" * 10)
    (tmp_path / "kept").mkdir()
    _taking_put_back_at_unlink(monkeypatch, path)
    with pytest.raises(OSError) as raised:
        move_aside(path, tmp_path / "kept", "a")
    monkeypatch.undo()
    assert type(raised.value) is OSError and "moved by another process" in str(raised.value)
    assert "[Errno" not in str(raised.value) and str(path) in str(raised.value)
    assert path.read_bytes() == b"x" * 10
    assert [p.read_bytes() for p in (tmp_path / "kept").iterdir()] == [b"x" * 10]
    assert not list(tmp_path.glob(".*.taking"))


def test_discard_autosave_undone_into_discarded_leaves_aside_empty(tmp_path):
    """``aside`` is filled only where conflicts/ took the file (something to say): discarded/ taking it as
    usual says nothing."""
    project = project_with_work(tmp_path / "p")
    image = project.images[0]
    aside: list = []
    kept = project.discard_autosave(image, ours=project.autosave_version(image), undone=True, aside=aside)
    assert kept is not None and kept.parent == project.root / DISCARDED_DIR and aside == []
