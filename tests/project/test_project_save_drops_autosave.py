"""(A review found it.) a save of a map this writer never autosaved (autosave=None, the default: saved within the
2 s before the first autosave) still checks the autosave path (None) and then UNLINKS it: another
writer's autosave landing between the check and the unlink is deleted - the very race b297f19 says is
gone ("a check then an unlink")."""
from __future__ import annotations

import numpy as np

import qgn.project
from test_project_lost_work import label_for, with_another_writers_autosave


def test_save_without_own_autosave_never_deletes_one_landing(tmp_path, monkeypatch):
    project, image, path, other = with_another_writers_autosave(tmp_path / "p")
    path.unlink()  # no autosave of the image now: this writer saves a map it never autosaved
    real, landed = qgn.project.file_version, []

    def check_then_land(p):
        v = real(p)
        if p == path and not landed:
            landed.append(other.replace(path))  # the other window's autosave lands just after the check
        return v

    monkeypatch.setattr(qgn.project, "file_version", check_then_land)
    project.save_annotation(image, label_for(1), over=project.annotation_version(image))  # autosave=None
    monkeypatch.undo()
    assert landed
    print("autosave there after the save:", path.exists(), "recoverable:", project.recoverable())
    assert path.exists(), "the other writer's autosave (its unsaved edits) was deleted"
    np.testing.assert_array_equal(project.recover(image), label_for(7))


def test_a_save_keeps_its_own_autosave_holding_undone_edits(tmp_path):
    """``save_annotation(undone=True)``: this writer's autosave holds edits the saved map lacks (undone
    before the save): moved to discarded/ by its bytes, not removed; another writer's stays in place; a
    discarded/ linked out of the project: kept in conflicts/ by its bytes instead (as an autosave's is,
    ``test_project_keep_undone_fails``), nothing written out of the project, and the save still
    succeeds. Fails before: no ``undone`` (the autosave was removed)."""
    from qgn.project import DISCARDED_DIR
    from qgn.quadtree.label_io import read_label_file
    from test_project_lost_work import CLASSES, project_with_work

    project = project_with_work(tmp_path / "p")
    image = project.images[0]
    path = project.autosave_path(image)
    autosaved = read_label_file(path, CLASSES)
    ours = project.autosave_version(image)
    project.save_annotation(image, label_for(2), over=project.annotation_version(image), autosave=ours, undone=True)
    assert not path.exists()
    kept, = (project.root / DISCARDED_DIR).glob("*.undone-*.qgt")
    np.testing.assert_array_equal(read_label_file(kept, CLASSES), autosaved)

    other = project.images[1]
    project.autosave(other, label_for(101), over=None)
    path = project.autosave_path(other)
    (project.root / DISCARDED_DIR).rename(tmp_path / "elsewhere")
    (project.root / DISCARDED_DIR).symlink_to(tmp_path / "elsewhere")
    project.save_annotation(other, label_for(3), over=project.annotation_version(other),
                            autosave=project.autosave_version(other), undone=True)
    assert not path.exists() and len(list((tmp_path / "elsewhere").iterdir())) == 1  # nothing written out
    kept, = (project.root / "conflicts").glob("*.undone-*.qgt")
    np.testing.assert_array_equal(read_label_file(kept, CLASSES), label_for(101))
