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
