"""No lost work, fourth round: a removal that cannot finish (a full disk, a killed process) leaves
the image with its annotation and autosave; autosaves are offered whatever replaced the annotations
folder; commands that write files never write into a project's own folders."""
from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from qgn.classes import ClassSet
from qgn.project import PROJECT_FILE, REMOVED_DIR, Project
from qgn.quadtree.label_io import read_label_file

REPO = Path(__file__).resolve().parents[2]
CLASSES = ClassSet(("sky", "road", "car"), ((70, 130, 180), (128, 64, 128), (0, 0, 142)), 255)
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def label_for(i: int) -> np.ndarray:
    rng = np.random.default_rng(i)
    return np.kron(rng.integers(0, 3, (5, 6)), np.ones((8, 8), np.int64))


def project_with_work(root: Path, n: int = 3) -> Project:
    """``n`` images, each with a saved annotation (label_for(i)); the first also autosaved (label_for(100))."""
    paths = []
    for i in range(n):
        path = root.parent / "images" / f"frame_{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (48, 40), (i, i, i)).save(path)
        paths.append(path)
    project = Project.create(root, paths, CLASSES)
    for i, image in enumerate(project.images):
        project.save_annotation(image, label_for(i))
    project.autosave(project.images[0], label_for(100))
    return project


def assert_work_intact(root: Path, n: int = 3) -> None:
    project = Project.open(root)
    assert [im.key for im in project.images] == [f"frame_{i}" for i in range(n)]
    for i, image in enumerate(project.images):
        np.testing.assert_array_equal(project.load_annotation(image), label_for(i))
    np.testing.assert_array_equal(project.recover(project.images[0]), label_for(100))
    assert project.recoverable() == [project.images[0]]


# --------------------------------------------------------------------------- removing an image
def test_a_removal_whose_project_json_write_fails_keeps_the_annotation_in_place(tmp_path, monkeypatch):
    """The files moved to removed/ first, then project.json could not be written (a full disk): the
    image stayed in the project without its annotation and autosave (hidden in removed/, and adding
    the image back could not bring them: it was never out), and this object forgot the image, so
    its next write took it out of project.json after all."""
    import qgn.project

    project = project_with_work(tmp_path / "p")
    image = project.images[0]
    real = qgn.project.atomic_write_bytes

    def full(path, data):
        if Path(path).name == PROJECT_FILE:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, data)

    monkeypatch.setattr(qgn.project, "atomic_write_bytes", full)
    with pytest.raises(OSError, match="No space"):
        project.remove_image(image)
    monkeypatch.undo()
    assert_work_intact(project.root)
    assert [im.key for im in project.images] == ["frame_0", "frame_1", "frame_2"], "this object still has it"
    project.set_done(project.images[1], True)  # its next write keeps the image
    assert_work_intact(project.root)
    removed = project.root / REMOVED_DIR
    assert not removed.exists() or not list(removed.iterdir()), "nothing was removed"



def test_a_removal_from_a_read_only_annotations_folder_changes_nothing(tmp_path, read_only):
    """Linking into removed/ works from a folder that cannot be written, letting go of the original
    afterwards does not: the image left project.json while its annotation stayed in annotations/, for
    the next image of its stem (the same key) to inherit. Refused first now, nothing changed."""
    project = project_with_work(tmp_path / "p")
    read_only(project.root / "annotations")
    with pytest.raises(PermissionError, match="cannot be removed from the project"):
        project.remove_image(project.images[1])
    assert [im.key for im in Project.open(project.root).images] == ["frame_0", "frame_1", "frame_2"]
    assert not (project.root / REMOVED_DIR).exists() or not list((project.root / REMOVED_DIR).iterdir())

REMOVER = textwrap.dedent('''
    import sys, time
    from qgn.project import Project

    project = Project.open(sys.argv[1])
    real = Project._commit

    def stalled(self, *args, **kwargs):
        print("before project.json", flush=True)
        time.sleep(60)
        real(self, *args, **kwargs)

    Project._commit = stalled
    project.remove_image(project.images[0])
''')


@pytest.mark.slow
def test_a_removal_killed_before_project_json_is_written_keeps_the_annotation_in_place(tmp_path):
    """SIGKILL between moving the files to removed/ and writing project.json left the image in the
    project with neither its annotation nor its autosave (found killing a random mix of writes)."""
    project = project_with_work(tmp_path / "p")
    script = tmp_path / "remover.py"
    script.write_text(REMOVER)
    proc = subprocess.Popen([sys.executable, str(script), str(project.root)], stdout=subprocess.PIPE, text=True,
                            env=ENV, cwd=str(REPO))
    try:
        assert proc.stdout.readline().strip() == "before project.json"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
    assert_work_intact(project.root)
    # the image is removed later after all: its annotation is brought back when it is added again
    again = Project.open(project.root)
    path = again.images[0].path
    again.remove_image(again.images[0])
    (back,) = again.add_images([path])
    np.testing.assert_array_equal(again.load_annotation(back), label_for(0))



def test_an_image_added_back_gets_the_unsaved_edits_removed_with_it(tmp_path):
    """A window killed with unsaved edits of an image (its autosave on disk), then the image removed
    elsewhere and added back: its annotation came back, the autosave stayed in removed/ and was never
    offered again (the app discards its own unsaved edits before removing: one found there is
    another session's)."""
    project = project_with_work(tmp_path / "p")  # frame_0's autosave: the killed window's edits
    path = project.images[0].path
    elsewhere = Project.open(project.root)
    elsewhere.remove_image(elsewhere.images[0])
    assert elsewhere.recoverable() == []
    (back,) = elsewhere.add_images([path])
    assert elsewhere.recoverable() == [back]
    np.testing.assert_array_equal(elsewhere.recover(back), label_for(100))
    np.testing.assert_array_equal(elsewhere.load_annotation(back), label_for(0))
    assert not list((project.root / REMOVED_DIR).iterdir()), "both moved back, their records gone"


def test_a_new_image_never_takes_the_key_of_files_no_image_owns(tmp_path):
    """project.json edited or restored by hand without an image's entry (or a removal killed between
    writing project.json and letting go of the files): a new image of the same stem got the freed key,
    showed that annotation as its own, and its first save replaced it - the other image's work gone,
    no copy kept."""
    import json

    project = project_with_work(tmp_path / "p", n=2)
    doc = json.loads((project.root / PROJECT_FILE).read_text())
    doc["images"] = doc["images"][1:]  # frame_0's entry taken out by hand
    (project.root / PROJECT_FILE).write_text(json.dumps(doc))
    other = tmp_path / "elsewhere" / "frame_0.png"  # another image of the same stem
    other.parent.mkdir()
    Image.new("RGB", (48, 40), (9, 9, 9)).save(other)
    again = Project.open(project.root)
    (image,) = again.add_images([other])
    assert image.key != "frame_0" and again.load_annotation(image) is None and again.recoverable() == []
    again.save_annotation(image, label_for(5), over=again.annotation_version(image))
    again.autosave(image, label_for(6), over=None)
    np.testing.assert_array_equal(read_label_file(project.root / "annotations" / "frame_0.qgt", CLASSES), label_for(0))
    np.testing.assert_array_equal(read_label_file(project.root / ".autosave" / "frame_0.qgt", CLASSES), label_for(100))

# --------------------------------------------------------------------------- offering autosaves
def test_autosaves_are_offered_when_a_plain_file_replaced_the_annotations_folder(tmp_path):
    """recoverable() raised NotADirectoryError comparing each autosave with its saved annotation,
    and the app, taking that for "nothing to offer", never offered the autosaves: a window's next
    autosave of the image then moved the unsaved edits it did not know of to conflicts/."""
    project = project_with_work(tmp_path / "p")
    folder = project.root / project.annotation_dir
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()
    folder.write_text("a note someone saved under that name")
    again = Project.open(project.root)
    assert again.recoverable() == [again.images[0]]
    assert not again.autosave_is_older(again.images[0])
    np.testing.assert_array_equal(again.recover(again.images[0]), label_for(100))


# --------------------------------------------------------------------------- commands writing into a project
@pytest.mark.parametrize("where", ["annotations", "link", "conflicts", "file", "note", "image"])
def test_commands_that_write_files_never_write_a_projects_own_files(tmp_path, run_cli, snapshot, model_path, where):
    """`qgn convert masks/ P/annotations` (or `qgn predict … --out P/annotations`, to pre-annotate)
    replaced the user's saved annotations with the converted masks or the predictions — no copy
    kept, not even the class names of the project."""
    from qgn.classes_edit import rename_class
    from qgn.project_class_edit import apply_class_edit

    project = project_with_work(tmp_path / "p")
    if where == "link":  # after a class edit annotations/ is a link to annotations.g1/
        apply_class_edit(project, rename_class(project.classes, 2, "truck"))
    masks = tmp_path / "masks"
    masks.mkdir()
    for i in range(3):
        Image.fromarray(label_for(50 + i).astype(np.uint8)).save(masks / f"frame_{i}.png")
    inside = project.root / "images" / "frame_1.png"  # an image kept in the project's folder
    inside.parent.mkdir()
    Image.new("RGB", (48, 40)).save(inside)
    project.add_images([inside])
    out = {"annotations": project.root / "annotations", "link": project.root / "annotations",
           "conflicts": project.root / "conflicts", "file": project.root / "project.json",
           "note": project.root / ".bring-back.json", "image": inside}[where]
    before = snapshot(tmp_path)
    target = out if where in ("file", "note", "image") else out / "frame_1.qgt"
    code, _, err = run_cli("convert", masks / "frame_1.png", target)
    assert code == 2 and err.startswith("qgn convert: error: ") and str(project.root) in err, err
    assert "qgn import" in err and len(err.strip().splitlines()) == 1
    if where not in ("file", "note", "image"):
        code, _, err = run_cli("convert", masks, target.parent)
        assert code == 2 and "of the QGN project" in err, err
    if where not in ("file", "note"):  # a prediction named frame_1.png, or frame_1.qgt
        code, _, err = run_cli("predict", project.images[1].path, "--model", model_path, "--out", target.parent)
        assert code == 2 and err.startswith("qgn predict: error: ") and "of the QGN project" in err, err
    assert snapshot(tmp_path) == before
    # beside the project's own folders (an exports/ folder inside it) is fine
    code, _, err = run_cli("convert", masks, project.root / "exports")
    assert code == 0, err


@pytest.mark.parametrize("how", ["folder to removed/", "folder to the root", "project to removed/"])
def test_whole_dataset_exports_never_write_into_a_projects_own_folders(tmp_path, run_cli, snapshot, how):
    """`qgn export P/annotations --format coco --out P/removed` returned through the whole-dataset
    path before the planned outputs were checked, and `--project` exports never checked them: the
    COCO file went into removed/ (or, with --out P, into P/annotations/, the saved annotations)."""
    project = project_with_work(tmp_path / "p")
    root = project.root
    before = snapshot(tmp_path)
    if how == "project to removed/":
        code, _, err = run_cli("export", "--project", root, "--formats", "coco", "--out", root / REMOVED_DIR)
    else:
        out = root / REMOVED_DIR if how == "folder to removed/" else root
        code, _, err = run_cli("export", root / "annotations", "--format", "coco", "--out", out)
    assert code == 2 and err.startswith("qgn export: error: ") and "of the QGN project" in err, err
    assert len(err.strip().splitlines()) == 1
    assert snapshot(tmp_path) == before
    code, _, err = run_cli("export", "--project", root, "--formats", "coco", "--out", root / "exports")
    assert code == 0 and (root / "exports" / "coco" / "annotations").is_dir(), err


@pytest.mark.parametrize("found", ["another tool's", "a project's of another version", "a damaged one"])
def test_only_a_qgn_projects_project_json_makes_its_folders_the_projects(tmp_path, run_cli, found):
    """Nx, Angular and other tools write a project.json too: below one, `qgn convert … web/annotations`
    was refused as writing into "the QGN project" web/. A QGN project.json this QGN cannot read (a
    newer version, a damaged one) still keeps its folders the project's."""
    web = tmp_path / "web"
    web.mkdir()
    text = {"another tool's": '{"name": "web-app", "targets": {}}',
            "a project's of another version": '{"format": "qgn-project", "version": 99}',
            "a damaged one": '{"format": "qgn-project", "vers'}[found]
    (web / "project.json").write_text(text)
    masks = tmp_path / "masks"
    masks.mkdir()
    Image.fromarray(label_for(5).astype(np.uint8)).save(masks / "frame_0.png")
    code, _, err = run_cli("convert", masks, web / "annotations")
    if found == "another tool's":
        assert code == 0 and (web / "annotations" / "frame_0.qgt").is_file(), err
    else:
        assert code == 2 and "of the QGN project" in err and not (web / "annotations").exists(), err


# --------------------------------------------------------------------------- long image names
def test_an_image_with_a_long_file_name_can_be_saved_autosaved_removed_and_added_back(tmp_path):
    """An image named with 250 characters (legal: 255 bytes a name) got its stem as key, and
    ``.<key>.qgt.<random>.tmp`` is longer than any name may be: its annotation could never be saved
    nor autosaved ("File name too long"), so every edit of it was lost with the window."""
    stem = "street_" + "0123456789" * 24 + "_a"
    paths = []
    for i, name in enumerate((stem, stem[:-1] + "b")):  # the same first 249 characters
        path = tmp_path / "images" / f"{name}.png"
        path.parent.mkdir(exist_ok=True)
        Image.new("RGB", (48, 40), (i, i, i)).save(path)
        paths.append(path)
    project = Project.create(tmp_path / "p", paths, CLASSES)
    other = Project.open(project.root)
    assert len({im.key for im in project.images}) == 2
    for i, image in enumerate(project.images):
        project.save_annotation(image, label_for(i), over=None)
        mine = project.autosave(image, label_for(10 + i), over=None)
        theirs = other.autosave(other.images[i], label_for(20 + i), over=None)  # another window's: parks mine
        assert theirs.parked is not None and mine.parked is None
    project.keep_conflict(paths[0].stem, label_for(30), CLASSES)  # the app names them after the image
    kept = project.keep_conflict("\u732b" * 80, label_for(31), CLASSES)  # 240 bytes of UTF-8
    np.testing.assert_array_equal(read_label_file(kept, CLASSES), label_for(31))
    (first,) = project.remove_image(project.images[0])[:1]
    assert first.is_file()
    (back,) = project.add_images([paths[0]])
    again = Project.open(project.root)
    np.testing.assert_array_equal(again.load_annotation(again.image_for(paths[0])), label_for(0))
    np.testing.assert_array_equal(again.load_annotation(again.image_for(paths[1])), label_for(1))
    np.testing.assert_array_equal(again.recover(again.image_for(paths[1])), label_for(21))


# --------------------------------------------------------------------------- leftovers
def test_a_users_own_dot_tmp_files_are_never_taken_for_a_killed_writers_temporaries(tmp_path, run_cli):
    """Any ``.*.tmp`` older than a minute was deleted as a killed writer's leftover: in the project's
    folder at its first write, and in every folder a command writes into (``qgn convert … ~/notes``).
    Only the names our writers make (``.<name>.<8 random characters>.tmp``) are."""
    import time

    project = project_with_work(tmp_path / "p")
    out = tmp_path / "out"
    out.mkdir()
    old = time.time() - 3600
    users = [project.root / ".notes.tmp", project.root / "annotations" / ".draft.tmp", out / ".todo.tmp"]
    ours = [project.root / ".project.json.k3j_9a0q.tmp", out / ".frame_0.qgt.0abc_xyz.tmp"]
    for path in users + ours:
        path.write_text("text")
        os.utime(path, (old, old))
    Project.open(project.root).set_done(project.images[0], True)  # a first write cleans up
    masks = tmp_path / "masks"
    masks.mkdir()
    Image.fromarray(label_for(1).astype(np.uint8)).save(masks / "m.png")
    code, _, err = run_cli("convert", masks, out)
    assert code == 0, err
    assert all(path.read_text() == "text" for path in users)
    assert not any(path.exists() for path in ours)


@pytest.mark.parametrize("folder", [".autosave", "discarded"])
def test_a_plain_file_where_a_project_folder_belongs_stops_only_what_needs_that_folder(tmp_path, folder):
    """With a plain file named .autosave, saving an image failed after writing its annotation (dropping
    the autosave raised NotADirectoryError), so the app kept the edits unsaved and saved them again and
    again, each time parking its own previous save in conflicts/; what could not be written said only
    "File exists". Saving works now; an autosave or a discard says which file is in the way."""
    project = project_with_work(tmp_path / "p", n=2)
    blocker = project.root / folder
    if blocker.is_dir():
        for path in blocker.iterdir():
            path.unlink()
        blocker.rmdir()
    blocker.write_text("someone's file")
    image = project.images[1]
    version = project.annotation_version(image)
    saved = project.save_annotation(image, label_for(7), over=version)
    assert saved.parked is None
    np.testing.assert_array_equal(Project.open(project.root).load_annotation(image), label_for(7))
    with pytest.raises(NotADirectoryError, match="is a file where a folder belongs; move it away") as caught:
        if folder == ".autosave":
            project.autosave(image, label_for(8), over=None)
        else:
            project.save_annotation(project.images[0], label_for(9), over=project.annotation_version(project.images[0]))
            project.autosave(project.images[0], label_for(10), over=None)
            project.discard_autosave(project.images[0])
    assert caught.value.filename == str(blocker)
    assert blocker.read_text() == "someone's file"


KEEPER = textwrap.dedent('''
    import sys, time
    import numpy as np
    import qgn.project
    import qgn.project_kept
    from qgn.classes import ClassSet
    from qgn.project import Project

    classes = ClassSet(("sky", "road", "car"), ((70, 130, 180), (128, 64, 128), (0, 0, 142)), 255)
    qgn.project_kept.time.strftime = lambda fmt, *a: "20261206-050000"  # one second for both writers
    real = qgn.project_kept.kept_path

    def slow(*args, **kwargs):
        path = real(*args, **kwargs)
        print("named", path.name, flush=True)
        time.sleep(1.5)  # the name is chosen, the file not yet written
        return path

    qgn.project_kept.kept_path = slow  # where Project.keep_conflict's name_aside looks it up
    Project.open(sys.argv[1]).keep_conflict("frame_0", np.full((40, 48), 1), classes)
''')


@pytest.mark.slow
def test_two_windows_keeping_a_map_of_one_image_in_one_second_keep_both(tmp_path, monkeypatch):
    """keep_conflict (an unsaved map a class edit elsewhere left without a class) took no lock: two
    windows keeping a map of one image in one second both chose the free name, and the second
    write replaced the first."""
    import qgn.project_kept

    project = project_with_work(tmp_path / "p")
    script = tmp_path / "keeper.py"
    script.write_text(KEEPER)
    proc = subprocess.Popen([sys.executable, str(script), str(project.root)], stdout=subprocess.PIPE, text=True,
                            env=ENV, cwd=str(REPO))
    assert proc.stdout.readline().startswith("named frame_0.20261206-050000.qgt")
    monkeypatch.setattr(qgn.project_kept.time, "strftime", lambda fmt, *a: "20261206-050000")
    mine = Project.open(project.root).keep_conflict("frame_0", np.full((40, 48), 2), CLASSES)
    assert proc.wait(timeout=60) == 0
    kept = sorted((project.root / "conflicts").glob("*.qgt"))
    assert len(kept) == 2 and mine in kept
    assert sorted(int(read_label_file(path, CLASSES)[0, 0]) for path in kept) == [1, 2]


def autosaves_moved_out(project: Project, outside: Path) -> Path:
    """``project``'s .autosave moved to ``outside`` and linked back in its place; returns ``outside``."""
    (project.root / ".autosave").rename(outside)
    (project.root / ".autosave").symlink_to(outside, target_is_directory=True)
    return outside


def files_in(folder: Path) -> list:
    """(name, bytes) of every file in ``folder``, sorted."""
    return sorted((p.name, p.read_bytes()) for p in folder.iterdir())


def test_an_autosave_folder_linked_out_of_the_project_stops_only_autosaves(tmp_path):
    """.autosave a symbolic link to another folder (moved to another disk, unpacked from an archive):
    listing the autosaves to offer raised OutsideRootError, and a save wrote the annotation and then
    failed dropping the autosave, so the app kept the edits unsaved and each new save parked its own
    previous one in conflicts/. The linked folder is never written into."""
    from qgn.fileio import OutsideRootError

    project = project_with_work(tmp_path / "p", n=2)
    outside = autosaves_moved_out(project, tmp_path / "elsewhere")
    before = files_in(outside)
    again = Project.open(project.root)
    assert again.recoverable() == []
    image = again.images[1]
    saved = again.save_annotation(image, label_for(7), over=again.annotation_version(image))
    assert saved.parked is None
    np.testing.assert_array_equal(Project.open(project.root).load_annotation(image), label_for(7))
    with pytest.raises(OutsideRootError):
        again.autosave(image, label_for(8), over=None)
    assert files_in(outside) == before


def test_an_image_is_removed_from_a_project_whose_autosave_folder_is_linked_out_of_it(tmp_path):
    """Removing an image computed the autosave path to move aside eagerly, and the link out of the
    project raised OutsideRootError: the removal was refused although it writes nothing there. The
    annotation still moves to removed/; the linked folder is left as it is."""
    project = project_with_work(tmp_path / "p", n=2)
    outside = autosaves_moved_out(project, tmp_path / "elsewhere")
    before = files_in(outside)
    again = Project.open(project.root)
    image = again.images[0]
    saved = again.annotation_path(image).read_bytes()
    moved = again.remove_image(image)
    assert [path.read_bytes() for path in moved] == [saved]
    assert image.key not in [im.key for im in Project.open(project.root).images]
    assert files_in(outside) == before


def no_move_aside(monkeypatch) -> None:
    """A class edit's leftover folder cannot be moved aside into removed/ either (EIO)."""
    replace = os.replace

    def no_move(src, dst, *args, **kwargs):
        if "left-by-class-edit" in os.fsdecode(dst):
            raise OSError(errno.EIO, os.strerror(errno.EIO), str(src))
        return replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", no_move)


def unremovable(monkeypatch, name: str = "frame_1.qgt") -> None:
    """The file ``name`` cannot be removed (a bad sector: an I/O error, at every try)."""
    unlink = os.unlink

    def failing_disk(path, *args, **kwargs):  # (shutil.rmtree unlinks by name in its folder: dir_fd)
        if Path(os.fsdecode(path)).name == name:
            raise OSError(errno.EIO, os.strerror(errno.EIO), str(path))
        return unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", failing_disk)


def test_a_class_edit_whose_old_folder_cannot_all_be_removed_moves_it_aside(tmp_path, monkeypatch):
    """After a class edit's commit its old generation's folder is removed; one file of it that could
    not be removed (an I/O error) left a real ``annotations`` folder beside ``annotations.g1`` and the
    journal gone, so the project no longer opened ("copied with a tool that follows links") - for
    every window and command, the edit reported done. What is left of the folder now goes to
    ``removed/`` whole (a rename: nothing deleted), so the project opens as any other."""
    from qgn.classes_edit import rename_class
    from qgn.project_generations import JOURNAL_FILE
    from qgn.project_class_edit import apply_class_edit

    project = project_with_work(tmp_path / "p")
    old_folder = project.root / "annotations"
    unremovable(monkeypatch)
    apply_class_edit(project, rename_class(CLASSES, 1, "street"))
    assert old_folder.is_symlink() and os.readlink(old_folder) == "annotations.g1"
    assert not (project.root / JOURNAL_FILE).exists()
    kept = list((project.root / REMOVED_DIR).glob("annotations-left-by-class-edit*/frame_1.qgt"))
    assert len(kept) == 1  # the file that could not go, kept
    opened = Project.open(project.root)
    assert opened.classes.names == ("sky", "street", "car")
    for i, image in enumerate(opened.images):
        np.testing.assert_array_equal(opened.load_annotation(image), label_for(i))
    assert_work_intact(project.root)


@pytest.mark.parametrize("edit", ["rename", "merge"])
def test_a_class_edit_whose_old_folder_can_neither_go_nor_move_leaves_a_project_that_opens(tmp_path, monkeypatch,
                                                                                          edit):
    """Nor can the folder be moved aside: its journal stays, and the project opens - after the
    writes that follow too (the journal of a later revision was taken as proving nothing, and the
    project was unopenable again after the next done mark) - each writer trying again."""
    from qgn.classes_edit import merge_classes, rename_class
    from qgn.project_generations import JOURNAL_FILE
    from qgn.project_class_edit import apply_class_edit

    project = project_with_work(tmp_path / "p")
    old_folder = project.root / "annotations"
    unremovable(monkeypatch)
    no_move_aside(monkeypatch)
    change = rename_class(CLASSES, 1, "street") if edit == "rename" else merge_classes(CLASSES, 2, 1)
    apply_class_edit(project, change)
    assert old_folder.is_dir() and not old_folder.is_symlink() and (project.root / JOURNAL_FILE).exists()
    second = Project.open(project.root)
    second.set_done(second.images[2], True)  # the next writer: cannot finish either
    third = Project.open(project.root)  # refused before
    assert third.images[2].done and third.classes == change.after
    third.set_done(third.images[0], True)
    assert Project.open(project.root).images[0].done
    monkeypatch.undo()  # the disk is replaced: the next writer finishes
    fourth = Project.open(project.root)
    fourth.set_done(fourth.images[1], True)
    assert old_folder.is_symlink() and not (project.root / JOURNAL_FILE).exists()


def test_a_second_class_edit_over_a_kept_journal_is_refused_naming_the_folder(tmp_path, monkeypatch):
    """A class edit's old folder could neither go nor move aside: its journal stays (the project
    opens). A second class edit then overwrote that journal: the first edit's folder, explained by
    nothing, left the project unopenable. The second edit is now refused, naming the folder to move
    out, and nothing changes; once it is moved, the edit goes ahead."""
    import shutil

    from qgn.classes_edit import merge_classes
    from qgn.project_generations import JOURNAL_FILE
    from qgn.project_class_edit import apply_class_edit

    project = project_with_work(tmp_path / "p")
    unremovable(monkeypatch)
    no_move_aside(monkeypatch)
    first = merge_classes(CLASSES, 2, 1)
    apply_class_edit(project, first)
    assert (project.root / JOURNAL_FILE).exists()
    again = Project.open(project.root)
    with pytest.raises(ValueError, match=re.escape(str(project.root / "annotations"))):
        apply_class_edit(again, merge_classes(first.after, 1, 0))
    assert Project.open(project.root).classes == first.after  # nothing changed; it opens
    monkeypatch.undo()  # still there (the disk is not replaced): the user moves it out, as told
    shutil.move(str(project.root / "annotations"), tmp_path / "kept-annotations")
    opened = Project.open(project.root)
    apply_class_edit(opened, merge_classes(first.after, 1, 0))
    after = Project.open(project.root)
    assert after.classes.names == ("sky",)
    after.set_done(after.images[0], True)
    assert Project.open(project.root).images[0].done


# --------------------------------------------------------------------------- an import's corrections
@pytest.mark.parametrize("fails", ["the copy", "the write"])
def test_a_replacement_that_a_full_disk_refuses_leaves_no_copy_in_replaced(tmp_path, monkeypatch, fails):
    """replace_annotation (qgn import --update) copies the saved annotation to replaced/ before
    writing the new one. When the disk was full, the copy (cut short by the full disk too: a damaged
    file) stayed in replaced/, named as an annotation the import had replaced - it replaced none.
    The saved annotation stays as it was, and replaced/ as it was."""
    import qgn.project
    import qgn.project_kept

    project = project_with_work(tmp_path / "p")
    real_copy, real_write = os.write, qgn.project.Project._write

    def full_copy(fd, data):  # the copy into replaced/ (os.write: project_kept's copy into a new file)
        real_copy(fd, bytes(data)[:5])  # as far as it got
        raise OSError(errno.ENOSPC, "No space left on device")

    def full_write(self, folder, image, label):
        raise OSError(errno.ENOSPC, "No space left on device", str(self.root / folder))

    if fails == "the copy":
        monkeypatch.setattr(qgn.project_kept.os, "write", full_copy)
    else:
        monkeypatch.setattr(qgn.project.Project, "_write", full_write)
    with pytest.raises(OSError, match="No space"):
        project.replace_annotation(project.images[1], label_for(7))
    monkeypatch.undo()
    assert real_copy is os.write and real_write is qgn.project.Project._write
    assert_work_intact(project.root)
    assert not (project.root / "replaced").exists() or list((project.root / "replaced").iterdir()) == []
    assert project.replace_annotation(project.images[1], label_for(7)) is not None  # the disk has room again
    (kept,) = (project.root / "replaced").iterdir()
    np.testing.assert_array_equal(read_label_file(kept, CLASSES), label_for(1))


def with_another_writers_autosave(root: Path):
    """(project, its first image, that image's autosave path, a file beside the project holding another
    writer's autosave of it - label_for(7) - ready to land on the path); the project's own autosave is
    label_for(100)."""
    project = project_with_work(root)
    image = project.images[0]
    path = project.autosave_path(image)
    other = project.root / "other.tmp"
    project.autosave(image, label_for(7))  # the other writer's edits, as its autosave's bytes
    other.write_bytes(path.read_bytes())
    project.autosave(image, label_for(100))
    return project, image, path, other

# --------------------------------------------------------------------------- undone autosaves kept by content
def test_an_undone_autosave_never_replaces_other_bytes_under_its_content_name(tmp_path):
    """A file under the name an undone autosave's bytes give (a 48-bit clash, a file changed by hand)
    is left as it is: the autosave is kept under a timestamped undone name beside it. Fails before: the
    one ``<key>.undone.qgt`` was replaced by each undone autosave."""
    from qgn.fileio import file_sha256

    project = project_with_work(tmp_path / "p")
    image = project.images[0]
    folder = project.root / "discarded"
    folder.mkdir()
    taken = folder / f"frame_0.undone-{file_sha256(project.autosave_path(image))[:12]}.qgt"
    taken.write_bytes(b"someone else's bytes")
    kept = project.discard_autosave(image, undone=True)
    assert taken.read_bytes() == b"someone else's bytes"
    assert kept.parent == folder and kept != taken and ".undone-" in kept.name
    np.testing.assert_array_equal(read_label_file(kept, CLASSES), label_for(100))
    assert not project.autosave_path(image).exists()


@pytest.mark.parametrize("cut_short, refusal", [(False, errno.EPERM), (True, errno.EPERM), (False, errno.EINVAL),
                                               (False, errno.ENOSYS)])
def test_an_undone_autosave_without_hard_links_is_copied_never_over_a_file(tmp_path, monkeypatch, cut_short, refusal):
    """Where the file system takes no hard links (FAT, some network shares) the undone autosave is
    copied into a new file (O_EXCL) and fsynced, and only then removed. A copy cut short (a full disk)
    is removed and the autosave stays where it was, offered: nothing half-written is left in discarded/.
    The refusal as each system says it: Linux vfat EPERM, Windows exFAT/FAT and SMB shares EINVAL
    ("[WinError 1] Incorrect function"), FUSE ENOSYS - the last two failed every such undo before."""
    import qgn.project_kept

    project = project_with_work(tmp_path / "p")
    image = project.images[0]

    def no_link(*args, **kwargs):
        raise OSError(refusal, os.strerror(refusal))

    monkeypatch.setattr(qgn.project_kept.os, "link", no_link)
    if cut_short:
        real_write = os.write

        def full_write(fd, data):
            real_write(fd, bytes(data)[:5])
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(qgn.project_kept.os, "write", full_write)
        with pytest.raises(OSError, match="No space"):
            project.discard_autosave(image, undone=True)
        monkeypatch.undo()
        assert list((project.root / "discarded").iterdir()) == []
        assert_work_intact(project.root)
        return
    kept = project.discard_autosave(image, undone=True)
    np.testing.assert_array_equal(read_label_file(kept, CLASSES), label_for(100))
    assert not project.autosave_path(image).exists()
    project.autosave(image, label_for(100))  # the same state again: already kept, nothing added
    assert project.discard_autosave(image, undone=True) == kept
    assert list((project.root / "discarded").iterdir()) == [kept]


def test_another_writers_autosave_landing_as_an_undone_one_is_removed_is_kept_not_deleted(tmp_path, monkeypatch):
    """Where the project lock keeps no two processes apart (Windows, NFS without its lock manager),
    another writer's autosave may land at the path just as an undone autosave's is removed: it is
    kept in discarded/ under a timestamped name, never deleted. Fails before: a check of the path
    and then an unlink of it removed whatever stood there by then."""
    import qgn.project_kept

    project, image, path, other = with_another_writers_autosave(tmp_path / "p")
    real_same, real_rename, landed = qgn.project_kept._same_file, os.rename, []

    def land():  # the other writer's os.replace of its autosave onto the path
        if not landed:
            landed.append(os.replace(other, path))

    def same_then_land(what, was):  # after the path is judged the file read, before it is removed
        same = real_same(what, was)
        if same and Path(what) == path:
            land()
        return same

    def land_then_rename(src, dst, *args, **kwargs):  # or before the path is taken away
        if Path(src) == path:
            land()
        return real_rename(src, dst, *args, **kwargs)

    monkeypatch.setattr(qgn.project_kept, "_same_file", same_then_land)
    monkeypatch.setattr(qgn.project_kept.os, "rename", land_then_rename)
    kept = project.discard_autosave(image, undone=True)
    monkeypatch.undo()
    np.testing.assert_array_equal(read_label_file(kept, CLASSES), label_for(100))
    maps = [read_label_file(f, CLASSES) for f in (project.root / "discarded").iterdir()]
    if path.exists():
        maps.append(read_label_file(path, CLASSES))
    assert landed and any(np.array_equal(m, label_for(7)) for m in maps), "the other writer's edits were deleted"
    assert not [f for f in path.parent.iterdir() if f.name.endswith(".taking")]


def test_an_undone_autosave_is_read_and_copied_in_binary_mode(tmp_path, monkeypatch):
    """Windows opens os.open's files in text mode without O_BINARY (CRLF turned, reads stop at 0x1A):
    the hash and the copy of an undone autosave would not be its bytes. Every open asks for it."""
    import qgn.project_kept

    project = project_with_work(tmp_path / "p")
    image = project.images[0]
    monkeypatch.setattr(qgn.project_kept, "_BINARY", 0x10000000)  # a bit no open here means
    real_open, flags = os.open, []

    def recording_open(path, how, *args, **kwargs):  # os itself: every caller's opens come here
        if str(path).endswith(".qgt"):
            flags.append(how)
        return real_open(path, how & ~0x10000000, *args, **kwargs)

    monkeypatch.setattr(qgn.project_kept.os, "open", recording_open)
    monkeypatch.setattr(qgn.project_kept.os, "link", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.EPERM, "no")))
    kept = project.discard_autosave(image, undone=True)
    monkeypatch.undo()
    assert len(flags) == 2 and all(f & 0x10000000 for f in flags)  # the autosave read, the copy written
    np.testing.assert_array_equal(read_label_file(kept, CLASSES), label_for(100))


def test_another_writers_autosave_taken_goes_back_where_it_was_if_it_cannot_be_kept(tmp_path, monkeypatch):
    """The file taken from the autosave path is another writer's, and keeping it in discarded/ fails
    (a full disk): it was left under the private ``.taking`` name, which no open offers, while the
    app said the autosave stays where it was (the integration review). It goes back to the path."""
    import qgn.project_kept

    project, image, path, other = with_another_writers_autosave(tmp_path / "p")
    real_rename, real_link, real_replace, landed = os.rename, os.link, os.replace, []

    def land_then_rename(src, dst, *args, **kwargs):
        if Path(src) == path and not landed:
            landed.append(real_replace(other, path))  # the other writer's autosave lands
        return real_rename(src, dst, *args, **kwargs)

    def full(real):
        def call(src, dst, *args, **kwargs):
            if Path(dst).parent.name == "discarded" and ".taking" in str(src):
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(src, dst, *args, **kwargs)
        return call

    monkeypatch.setattr(qgn.project_kept.os, "rename", land_then_rename)
    monkeypatch.setattr(qgn.project_kept.os, "link", full(real_link))
    monkeypatch.setattr(qgn.project_kept.os, "replace", full(real_replace))
    with pytest.raises(OSError, match="No space"):
        project.discard_autosave(image, undone=True)
    monkeypatch.undo()
    np.testing.assert_array_equal(read_label_file(path, CLASSES), label_for(7))
    assert [im.key for im in project.recoverable()] == [image.key]
    assert not [f for f in path.parent.iterdir() if f.name.endswith(".taking")]


def test_a_taken_autosave_put_back_without_hard_links_never_replaces_a_newer_one(tmp_path, monkeypatch):
    """Putting another writer's taken autosave back where there are no hard links checked that the
    path was free and then renamed onto it: a newer autosave landing in between was replaced by the
    older (the review of 3fd1c40). The put-back creates the name only where none is."""
    import qgn.project_kept as kept

    path, private = tmp_path / "a.qgt", tmp_path / ".a.qgt.1-2.taking"
    private.write_bytes(b"taken (older)")
    real_lexists, real_open = os.path.lexists, os.open

    def land():
        if not path.exists():
            path.write_bytes(b"NEWER autosave")  # another writer's autosave lands now

    def lexists_then_land(name):
        there = real_lexists(name)
        if Path(name) == path:
            land()
        return there

    def land_then_create(name, flags, *args, **kwargs):
        if Path(name) == path and flags & os.O_CREAT:
            land()
        return real_open(name, flags, *args, **kwargs)

    monkeypatch.setattr(kept.os, "link", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.EPERM, "no")))
    monkeypatch.setattr(kept.os.path, "lexists", lexists_then_land)
    monkeypatch.setattr(kept.os, "open", land_then_create)
    kept._put_back(private, path)
    monkeypatch.undo()
    assert path.read_bytes() == b"NEWER autosave"
    assert private.read_bytes() == b"taken (older)"  # kept where it was, its bytes on disk


def test_a_copy_cut_short_removes_only_itself_never_a_file_another_writer_put_at_its_name(tmp_path, monkeypatch):
    """A put-back without hard links copies into the autosave's own path; when that copy is cut short
    (a full disk) after another writer renamed a newer autosave onto the path, the clean-up removed
    the newer autosave (the review of 4eab006). Only the copy's own file is removed."""
    import qgn.project_kept as kept

    path, private = tmp_path / "a.qgt", tmp_path / ".a.qgt.1-2.taking"
    private.write_bytes(b"taken (older)")
    newer = tmp_path / "newer.tmp"
    newer.write_bytes(b"NEWER autosave")
    real_write = os.write

    def land_then_full(fd, data):
        real_write(fd, bytes(data)[:3])
        os.replace(newer, path)  # another writer's autosave lands on the name being copied into
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(kept.os, "link", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.EPERM, "no")))
    monkeypatch.setattr(kept.os, "write", land_then_full)
    kept._put_back(private, path)
    monkeypatch.undo()
    assert path.read_bytes() == b"NEWER autosave"
    assert private.read_bytes() == b"taken (older)"


# --------------------------------------------------------------------------- files kept aside never replace another
@pytest.mark.parametrize("what", ["discard", "park", "remove", "replace", "conflict"])
def test_a_file_kept_aside_never_replaces_one_another_writer_named_meanwhile(tmp_path, monkeypatch, what):
    """Where the project lock keeps no two processes apart, another writer keeping a file of the same
    key aside in the same second takes the same ``kept_path`` name between its check and the move:
    the move (``os.replace``), the copy (``shutil.copy2``) or the write replaced that writer's file, and a
    removal's clean-up deleted it. Each keeps its file under the next name instead. Fails before."""
    import qgn.project_kept

    project = project_with_work(tmp_path / "p")
    image = project.images[0]
    real, taken = qgn.project_kept.kept_path, []

    def racing(folder, stem, suffix=".qgt"):  # the other writer names its file just after the check
        path = real(folder, stem, suffix)
        if not taken:
            path.write_bytes(b"another writer's kept file")
            taken.append(path)
        return path

    monkeypatch.setattr(qgn.project_kept, "kept_path", racing)
    expected = label_for(100)
    if what == "discard":
        kept = project.discard_autosave(image)
    elif what == "park":
        kept = project.autosave(image, label_for(5), over=None).parked
    elif what == "remove":
        kept = project.remove_image(image)[0]
        expected = label_for(0)
    elif what == "replace":
        kept = project.replace_annotation(image, label_for(5))
        expected = label_for(0)
    else:
        kept = project.keep_conflict("frame_0", label_for(100), CLASSES)
    monkeypatch.undo()
    assert taken and taken[0].read_bytes() == b"another writer's kept file", "the other writer's file was replaced"
    assert kept is not None and kept != taken[0] and kept.parent == taken[0].parent
    np.testing.assert_array_equal(read_label_file(kept, CLASSES), expected)


def test_an_autosave_left_under_its_private_taking_name_by_a_crash_is_offered_again(tmp_path, monkeypatch):
    """A writer killed between taking an autosave under its private ``.taking`` name (to remove an undone
    one, or keep another writer's that landed) and removing or keeping it left that name in .autosave/,
    which no open offered: another writer's edits stranded there. Fails before: not recoverable. An open
    puts it back where autosaves are offered (never over one there, never deleted)."""
    import qgn.project_kept

    monkeypatch.setattr(qgn.project_kept, "TAKEN_STALE_SECONDS", -1.0, raising=False)  # the crash was long ago
    project = project_with_work(tmp_path / "p")
    image = project.images[0]
    path = project.autosave_path(image)
    taken = path.with_name(f".{path.name}.4242-123456789.taking")
    os.rename(path, taken)
    assert Project.open(project.root).recoverable() == [image]  # what an open offers
    assert_work_intact(project.root)
    assert not taken.exists()

    # the name taken by a newer autosave meanwhile: both kept - the leftover in conflicts/ (never over a
    # file), where Kept copy… lists it (lostfix6: it stayed hidden under its private name, offered by nothing)
    os.rename(path, taken)
    project.autosave(image, label_for(50), over=None)
    assert project.recoverable() == [image]
    np.testing.assert_array_equal(project.recover(image), label_for(50))
    assert not taken.exists()
    (kept,) = project.kept_copies(image)
    assert kept.folder == "conflicts" and kept.why == "another window's unsaved edits"
    np.testing.assert_array_equal(read_label_file(kept.path, CLASSES), label_for(100))


@pytest.mark.parametrize("how", ["save", "stand-in taken"])
def test_another_writers_autosave_landing_as_a_save_drops_this_ones_is_kept(tmp_path, monkeypatch, how):
    """A save removes this writer's autosave (``_drop_autosave``; a stand-in's once the project took its
    edits, ``discard_autosave(keep=False)``) after checking it is its own; where the lock keeps no two
    processes apart, another writer's autosave landing between the check and the unlink was deleted.
    Fails before: the other writer's edits were gone. Now it stays where it landed, offered."""
    import qgn.project_kept

    project, image, path, other = with_another_writers_autosave(tmp_path / "p")
    ours = project.autosave_version(image)
    real_rename, real_unlink, landed = os.rename, Path.unlink, []

    def land():
        if not landed:
            landed.append(os.replace(other, path))

    def land_then_unlink(self, *args, **kwargs):
        if Path(self) == path:
            land()
        return real_unlink(self, *args, **kwargs)

    def land_then_rename(src, dst, *args, **kwargs):
        if Path(src) == path:
            land()
        return real_rename(src, dst, *args, **kwargs)

    monkeypatch.setattr(Path, "unlink", land_then_unlink)
    monkeypatch.setattr(qgn.project_kept.os, "rename", land_then_rename)
    if how == "save":
        project.save_annotation(image, label_for(1), over=project.annotation_version(image), autosave=ours)
    else:
        project.discard_autosave(image, ours=ours, keep=False)
    monkeypatch.undo()
    assert landed
    np.testing.assert_array_equal(project.recover(image), label_for(7))
    assert project.recoverable() == [image]
    assert not [f for f in path.parent.iterdir() if f.name.endswith(".taking")]


@pytest.mark.parametrize("which", ["annotation", "autosave"])
def test_an_added_back_image_never_moves_its_removed_file_over_one_landing_meanwhile(tmp_path, monkeypatch, which):
    """Adding a removed image back moves its annotation and autosave back from removed/ after checking
    the image has none: where the lock keeps no two processes apart, another writer's file landing at
    that path between the check and the move (``os.replace``) was replaced - its edits lost. Fails
    before. Now the move never replaces a file: the one that landed stays, the removed one in removed/."""
    import qgn.project_bring_back

    project = project_with_work(tmp_path / "p")
    image = project.images[0]
    path = image.path
    project.remove_image(image)
    other = project.root / "other.tmp"
    other.write_bytes(b"another writer's file")
    target = project.root / ("annotations" if which == "annotation" else ".autosave") / "frame_0.qgt"
    real_mkdir, real_make, landed = Path.mkdir, qgn.project_bring_back.make_folder, []

    def land():
        if not landed:
            real_mkdir(target.parent, parents=True, exist_ok=True)
            landed.append(os.replace(other, target))

    def mkdir_then_land(self, *args, **kwargs):
        result = real_mkdir(self, *args, **kwargs)
        if Path(self) == target.parent:
            land()
        return result

    def make_then_land(folder, *args, **kwargs):
        result = real_make(folder, *args, **kwargs)
        if Path(folder) == target.parent:
            land()
        return result

    monkeypatch.setattr(Path, "mkdir", mkdir_then_land)
    monkeypatch.setattr(qgn.project_bring_back, "make_folder", make_then_land)
    project.add_images([path])
    monkeypatch.undo()
    assert landed and target.read_bytes() == b"another writer's file", "the other writer's file was replaced"
    kind = "annotation" if which == "annotation" else "autosave"
    (kept,) = (project.root / REMOVED_DIR).glob(f"frame_0.{kind}.*.qgt")
    np.testing.assert_array_equal(read_label_file(kept, CLASSES), label_for(0 if which == "annotation" else 100))


def test_a_removal_without_hard_links_keeps_the_files_times(tmp_path, monkeypatch):
    """Where the file system takes no hard links (FAT, some shares) a removal copies the files into
    removed/: the copy kept their times (shutil.copy2) until they were named with an O_EXCL copy, whose
    time was now - an autosave brought back then looked newer than the annotation saved after it. Fails
    before (this round's name_aside). The times are the file's, as a link keeps them."""
    import qgn.project_kept

    project = project_with_work(tmp_path / "p")
    image = project.images[0]
    old = 1_600_000_000_000_000_000
    for path in (project.annotation_path(image), project.autosave_path(image)):
        os.utime(path, ns=(old, old))
    monkeypatch.setattr(qgn.project_kept.os, "link", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.EPERM, "no")))
    kept = project.remove_image(image)
    monkeypatch.undo()
    assert len(kept) == 2 and all(os.stat(path).st_mtime_ns == old for path in kept)
