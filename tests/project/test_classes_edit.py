"""Class set edits (issue #14): add / rename / recolour / merge / delete update every saved annotation
and autosave of a project in one atomic step, are undoable, survive a SIGKILL in the middle, and an
annotation file maps its classes by name, not by index."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from qgn.formats import FORMATS
from qgn.classes import ClassSet
from qgn.classes_edit import add_class, delete_class, merge_classes, recolour_class, remap_label, rename_class
from qgn.project import PROJECT_FILE, Project, ProjectError
from qgn.project_generations import generation_dirs
from qgn.project_class_edit import apply_class_edit
from qgn.quadtree.label_io import read_label_file

REPO = Path(__file__).resolve().parents[2]
CLASSES = ClassSet(("sky", "road", "fence", "car"), ((70, 130, 180), (128, 64, 128), (190, 153, 153), (0, 0, 142)), 4)
IGNORE = 4


def labels_for(i: int) -> np.ndarray:
    """A 40×48 map with every class and some ignore pixels (image i)."""
    rng = np.random.default_rng(i)
    label = np.kron(rng.integers(0, 4, (5, 6)), np.ones((8, 8), np.int64))
    label[rng.random(label.shape) < 0.05] = IGNORE
    return label


def make_project(root: Path, n: int = 4) -> Project:
    images = []
    for i in range(n):
        path = root.parent / "images" / f"scene_{i:02d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (48, 40)).save(path)
        images.append(path)
    project = Project.create(root, images, CLASSES)
    for i, image in enumerate(project.images):
        project.save_annotation(image, labels_for(i))
    project.autosave(project.images[-1], labels_for(101))  # unsaved edits of the last image
    return project


def expected(label: np.ndarray, mapping: dict) -> np.ndarray:
    """Independent reference: value by value with np.where."""
    out = np.full(label.shape, -1, np.int64)
    for old, new in mapping.items():
        out = np.where(label == old, new, out)
    assert (out >= 0).all()
    return out


# --------------------------------------------------------------------------- reading by name
def test_annotation_file_maps_classes_by_name(tmp_path):
    label = labels_for(0)
    FORMATS["qgt"].write(label, CLASSES, tmp_path, "a")
    reordered = ClassSet(("car", "sky", "fence", "road", "tree"), (), 255)
    got = read_label_file(tmp_path / "a.qgt", reordered)
    assert np.array_equal(got, expected(label, {0: 1, 1: 3, 2: 2, 3: 0, IGNORE: 255}))
    renamed = ClassSet(("sky", "road", "barrier", "car"), (), 4)
    with pytest.raises(ValueError, match="'fence'"):
        read_label_file(tmp_path / "a.qgt", renamed)


# --------------------------------------------------------------------------- edits on label maps
def test_edits_value_maps():
    label = labels_for(1)
    add = add_class(CLASSES, "tree")
    assert add.after.names[-1] == "tree" and add.after.ignore_index == 255  # 4 would collide with class 4
    assert np.array_equal(remap_label(label, add), expected(label, {0: 0, 1: 1, 2: 2, 3: 3, 4: 255}))
    delete = delete_class(CLASSES, 1)
    assert delete.after.names == ("sky", "fence", "car")
    assert np.array_equal(remap_label(label, delete), expected(label, {0: 0, 1: 4, 2: 1, 3: 2, 4: 4}))
    merge = merge_classes(CLASSES, 2, 3)
    assert merge.after.names == ("sky", "road", "car")
    assert np.array_equal(remap_label(label, merge), expected(label, {0: 0, 1: 1, 2: 2, 3: 2, 4: 4}))
    rename = rename_class(CLASSES, 2, "barrier")
    assert rename.after.names[2] == "barrier" and np.array_equal(remap_label(label, rename), label)
    recolour = recolour_class(CLASSES, 0, (1, 2, 3))
    assert recolour.after.palette[0] == (1, 2, 3) and not recolour.moves_pixels
    with pytest.raises(ValueError, match="already a class"):
        rename_class(CLASSES, 0, "Road")
    with pytest.raises(ValueError, match="into itself"):
        merge_classes(CLASSES, 1, 1)
    with pytest.raises(ValueError, match="no ignore value"):
        delete_class(ClassSet(("a", "b")), 0)


# --------------------------------------------------------------------------- projects
def read_all(project: Project) -> dict:
    out = {}
    for im in project.images:
        out[im.key] = project.load_annotation(im)
        if project.autosave_path(im).is_file():
            out[im.key + "/auto"] = project.recover(im)
    return out


def test_rename_then_reopen_keeps_every_annotation(tmp_path):
    project = make_project(tmp_path / "p")
    before = read_all(project)
    recoverable = [im.key for im in project.recoverable()]
    apply_class_edit(project, rename_class(project.classes, 2, "barrier"))
    reopened = Project.open(tmp_path / "p")
    assert reopened.classes.names == ("sky", "road", "barrier", "car")
    after = read_all(reopened)
    assert after.keys() == before.keys()
    for key in before:
        assert np.array_equal(after[key], before[key]), key
    assert [im.key for im in reopened.recoverable()] == recoverable  # autosave still newer than its save
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == [".autosave.g1", "annotations", "annotations.g1",
                                                                  "class-edits.json", PROJECT_FILE]
    assert os.readlink(tmp_path / "p" / "annotations") == "annotations.g1"  # a stable path for scripts


def copied_following_links(tmp_path) -> tuple[Path, dict]:
    """A project after a class edit, copied as ``cp -rL`` copies it: its ``annotations`` link is a
    real folder of copies of ``annotations.g1``'s files. Returns the copy and what it holds."""
    project = make_project(tmp_path / "p")
    apply_class_edit(project, rename_class(project.classes, 2, "barrier"))
    before = read_all(Project.open(tmp_path / "p"))
    shutil.copytree(tmp_path / "p", tmp_path / "copy", symlinks=False)  # what cp -rL does with the link
    copy = tmp_path / "copy"
    assert (copy / "annotations").is_dir() and not (copy / "annotations").is_symlink()
    return copy, before


def test_a_copy_made_through_the_annotations_link_opens_and_gets_its_link_back(tmp_path, snapshot):
    copy, before = copied_following_links(tmp_path)
    files = snapshot(copy)
    opened = Project.open(copy)  # it reads as the project it is a copy of, and changes nothing
    assert snapshot(copy) == files
    assert opened.generation == 1 and opened.classes.names[2] == "barrier"
    after = read_all(opened)
    assert after.keys() == before.keys() and all(np.array_equal(after[k], before[k]) for k in before)
    opened.save_annotation(opened.images[0], labels_for(7))  # a write puts the link back, keeping the copy
    assert os.readlink(copy / "annotations") == "annotations.g1"
    kept = list((copy / "removed").iterdir())
    assert [p.name.split(".")[0] for p in kept] == ["annotations-copied-link"]
    assert sorted(p.name for p in kept[0].iterdir()) == sorted(p.name for p in (tmp_path / "p" / "annotations").iterdir())
    assert np.array_equal(Project.open(copy).load_annotation(opened.images[0]), labels_for(7))


def test_a_copied_link_with_files_of_its_own_is_named_and_kept(tmp_path, snapshot):
    copy, _before = copied_following_links(tmp_path)
    (copy / "annotations" / "scene_00.qgt").write_bytes(b"changed in the copy")
    files = snapshot(copy)
    with pytest.raises(ProjectError) as caught:
        Project.open(copy)
    message = str(caught.value)
    assert "\n" not in message and f"{copy / 'annotations'} is a real folder" in message
    assert "cp -rL" in message and "annotations.g1" in message and "project.json" not in message
    assert "Nothing was changed or deleted" in message and "move" in message
    assert snapshot(copy) == files


@pytest.mark.parametrize("make_edit", [
    lambda c: delete_class(c, 2), lambda c: merge_classes(c, 2, 0), lambda c: add_class(c, "tree"),
    lambda c: rename_class(c, 3, "vehicle"),
], ids=["delete", "merge", "add", "rename"])
def test_edit_and_undo_on_a_project(tmp_path, make_edit):
    project = make_project(tmp_path / "p")
    before = read_all(project)
    edit = make_edit(project.classes)
    inverse = apply_class_edit(project, edit)
    after = read_all(Project.open(tmp_path / "p"))
    for key, label in before.items():
        assert np.array_equal(after[key], expected(label, edit.value_map)), key
    redo = apply_class_edit(project, inverse)
    assert project.classes == CLASSES
    undone = read_all(Project.open(tmp_path / "p"))
    for key, label in before.items():
        assert np.array_equal(undone[key], label), key
    assert redo.after == edit.after


def test_undo_of_a_merge_keeps_later_edits(tmp_path):
    project = make_project(tmp_path / "p", 1)
    image = project.images[0]
    original = project.load_annotation(image)
    inverse = apply_class_edit(project, merge_classes(project.classes, 2, 0))  # fence → sky
    merged = project.load_annotation(image).copy()
    fence = np.flatnonzero(original.reshape(-1) == 2)
    painted = fence[:5]
    merged.reshape(-1)[painted] = 1  # the user paints five former-fence pixels as road
    project.save_annotation(image, merged)
    apply_class_edit(project, inverse)
    restored = project.load_annotation(image)
    want = original.copy()
    want.reshape(-1)[painted] = 1
    assert np.array_equal(restored, want)


def test_edit_for_another_class_set_is_refused(tmp_path):
    project = make_project(tmp_path / "p", 1)
    with pytest.raises(ValueError, match="another class set"):
        apply_class_edit(project, rename_class(ClassSet(("x", "y"), (), 255), 0, "z"))
    assert Project.open(tmp_path / "p").classes == CLASSES


# --------------------------------------------------------------------------- crash safety
CHILD = '''
import os, signal, sys
import qgn.classes_edit as ce
import qgn.project_class_edit as pce
from qgn.project import Project
project = Project.open(sys.argv[1])
where, count = sys.argv[2], [0]
if where == "staging":
    real = pce._stage_file
    def stage(*args, **kwargs):
        count[0] += 1
        if count[0] == 3:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    pce._stage_file = stage
else:
    def finish(*args):
        os.kill(os.getpid(), signal.SIGKILL)
    pce.finish_class_edit = finish
pce.apply_class_edit(project, ce.delete_class(project.classes, 1))
'''


@pytest.mark.parametrize("where", ["staging", "after-commit"])
def test_sigkill_in_the_middle_of_a_remap(tmp_path, where):
    project = make_project(tmp_path / "p")
    before = read_all(project)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(CHILD), str(tmp_path / "p"), where], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    leftovers = sorted(p.name for p in (tmp_path / "p").iterdir())
    assert len(leftovers) > 3  # the killed edit did leave two generations of folders behind
    reopened = Project.open(tmp_path / "p")
    after = read_all(reopened)
    if where == "staging":
        assert reopened.classes == CLASSES and reopened.generation == 0
        mapping = {v: v for v in range(5)}
    else:
        assert reopened.classes.names == ("sky", "fence", "car") and reopened.generation == 1
        mapping = {0: 0, 1: 4, 2: 1, 3: 2, 4: 4}
    for key, label in before.items():
        assert np.array_equal(after[key], expected(label, mapping)), key
    names = sorted(p.name for p in (tmp_path / "p").iterdir())
    assert len(names) == len(leftovers), "opening never deletes"
    reopened.set_done(reopened.images[0], True)  # the next writer removes what the journal proves a leftover
    live = [PROJECT_FILE, *generation_dirs(reopened.generation)]
    if reopened.generation:
        live.append("annotations")  # the stable link
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == sorted(live)
    after = read_all(Project.open(tmp_path / "p"))
    for key, label in before.items():
        assert np.array_equal(after[key], expected(label, mapping)), key
    doc = json.loads((tmp_path / "p" / PROJECT_FILE).read_text())
    assert doc.get("generation", 0) == reopened.generation


def test_a_writer_open_before_a_class_edit_died_finishes_it(tmp_path):
    """A window that had already written once (its clean-up done) went on writing after another
    process's class edit was killed while staging: its revision moved past the journal's, so the
    staged folder could no longer be told a leftover and the project refused to open. A journal
    found under the lock is now dealt with by whichever writer finds it."""
    project = make_project(tmp_path / "p")
    before = read_all(project)
    window = Project.open(tmp_path / "p")
    window.set_done(window.images[0], False)  # it has written: its once-per-object clean-up ran
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(CHILD), str(tmp_path / "p"), "staging"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    window.set_done(window.images[1], True)
    reopened = Project.open(tmp_path / "p")
    assert reopened.classes == CLASSES and reopened.image_for(window.images[1].path).done
    after = read_all(reopened)
    for key, label in before.items():
        assert np.array_equal(after[key], label), key
    assert not any(name.startswith(("annotations.g", ".autosave.g")) for name in os.listdir(tmp_path / "p"))


def test_relabel_by_name_maps_a_prediction_onto_another_class_set():
    from qgn.classes_edit import relabel_by_name

    model = ClassSet(("sky", "grass", "road", "sidewalk"), (), 255)
    project = ClassSet(("Road", "pavement", "car", "sky"), (), 11)
    label = np.array([[0, 1, 2, 3]])
    assert relabel_by_name(label, model, project).tolist() == [[3, 11, 0, 1]]  # grass: no counterpart → ignore
    with pytest.raises(ValueError, match="grass"):
        relabel_by_name(label, model, ClassSet(("road", "sky", "sidewalk")))


def test_a_class_edit_keeps_files_it_does_not_carry_over(tmp_path):
    """The old generation's folders were removed whole: a .qgt of no project image (a backup, a
    hand-merged project.json) and a user's note in annotations/, an autosave of a removed key,
    all deleted. They go to removed/ now; carried-over annotations are not kept twice."""
    project = make_project(tmp_path / "p")
    annotations = project.root / project.annotation_dir
    backup = annotations / "my_backup.qgt"
    backup.write_bytes(project.annotation_path(project.images[0]).read_bytes())
    (annotations / "NOTES.txt").write_text("my notes")
    autosaves = project.root / project.autosave_dir
    autosaves.mkdir(exist_ok=True)
    (autosaves / "gone.qgt").write_bytes(backup.read_bytes())
    apply_class_edit(project, rename_class(project.classes, 1, "meadow"))
    kept = sorted(p.name for p in (project.root / "removed").iterdir())
    assert [name.split(".")[0] for name in kept] == ["annotations-NOTES", "annotations-my_backup", "autosave-gone"]
    assert (project.root / "removed" / next(n for n in kept if "NOTES" in n)).read_text() == "my notes"
    assert all(n.endswith(".txt") == ("NOTES" in n) for n in kept)
    reopened = Project.open(project.root)
    assert all(reopened.load_annotation(im) is not None for im in reopened.images)
