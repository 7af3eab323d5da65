"""Review repro: a save of a map this writer never autosaved (autosave=None, the default: saved within the
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
