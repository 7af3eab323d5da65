"""``qgn import --update``: corrections made in another tool, on an export of a project, come back
into the project's own images (the same files, else the one image of the same bytes, else the one of
the same name and size), and
every annotation they replace is kept in ``replaced/``; unsaved edits are never replaced."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from qgn.classes import ClassSet
from qgn.project import REPLACED_DIR, Project
from qgn.project_export import export_project
from qgn.quadtree.label_io import read_label_file
from sample_files import blocky_label

CLASSES = ClassSet(("sky", "road", "car"), ((70, 130, 180), (128, 64, 128), (0, 0, 142)), 255)
SIZE = (40, 24)  # W, H


def make_project(tmp_path, names=("a", "b", "c"), folder="images"):
    """A project of photos in ``tmp_path/folder`` with a saved annotation each: (project, labels by key)."""
    rng = np.random.default_rng(0)
    paths = []
    for i, name in enumerate(names):
        path = tmp_path / folder / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", SIZE, (10 * i, 90, 20)).save(path)
        paths.append(path)
    project = Project.create(tmp_path / "p", paths, CLASSES)
    labels = {}
    for image in project.images:
        labels[image.key] = blocky_label(rng, SIZE[1], SIZE[0], 3, 255, cell=4)
        project.save_annotation(image, labels[image.key])
    return project, labels


def corrected_fiftyone_export(project, tmp_path, key: str, fix) -> np.ndarray:
    """Export to FiftyOne with the images copied (as a tool's export holds them), then edit the mask
    of ``key`` there with ``fix(label) -> label``: the corrected label."""
    export_project(project, tmp_path / "out", ["fiftyone"], images="copy")
    mask_path = tmp_path / "out" / "fiftyone" / "labels" / f"{key}.png"
    mask = np.asarray(Image.open(mask_path)).astype(np.int64)
    label = np.where(mask == 0, 255, mask - 1)
    corrected = fix(label.copy())
    Image.fromarray(np.where(corrected == 255, 0, corrected + 1).astype(np.uint8)).save(mask_path)
    return corrected


def paint_road(label):
    label[2:10, 3:30] = 1
    return label


def test_corrections_from_a_tool_replace_the_annotations_and_keep_the_old(tmp_path, run_cli):
    project, labels = make_project(tmp_path)
    corrected = corrected_fiftyone_export(project, tmp_path, "b", paint_road)
    assert not np.array_equal(corrected, labels["b"])
    code, out, err = run_cli("import", tmp_path / "out" / "fiftyone", "--project", tmp_path / "p", "--update")
    assert code == 0, err
    assert "b: replaced the annotation of b.png" in out and "a: unchanged (a.png)" in out, out
    assert "imported 3 of 3 item(s) (1 replaced, 2 unchanged)" in out
    back = Project.open(tmp_path / "p")
    assert [im.path for im in back.images] == [im.path for im in project.images]  # no copies added
    for image in back.images:
        expected = corrected if image.key == "b" else labels[image.key]
        np.testing.assert_array_equal(back.load_annotation(image), expected)
    kept = list((tmp_path / "p" / REPLACED_DIR).glob("*.qgt"))
    assert [k.name.split(".")[0] for k in kept] == ["b"]  # the unchanged ones wrote nothing
    assert back.image_for(tmp_path / "images" / "b.png").file is not None, "the replaced one's file is noted"
    np.testing.assert_array_equal(read_label_file(kept[0], CLASSES), labels["b"])
    # again: everything is unchanged now, nothing more kept
    code, out, err = run_cli("import", tmp_path / "out" / "fiftyone", "--project", tmp_path / "p", "--update")
    assert code == 0 and out.count(": unchanged (") == 3, out
    assert len(list((tmp_path / "p" / REPLACED_DIR).glob("*.qgt"))) == 1


def test_without_update_an_annotation_is_never_replaced(tmp_path, run_cli):
    project, labels = make_project(tmp_path)
    export_project(project, tmp_path / "out", ["cvat"])  # masks named after the images, which stay where they are
    code, out, err = run_cli("import", tmp_path / "out" / "cvat", "--project", tmp_path / "p",
                             "--images", tmp_path / "images")
    assert code == 2 and out.count("already has an annotation in the project; not overwritten") == 3, out
    assert not (tmp_path / "p" / REPLACED_DIR).exists()
    code, out, err = run_cli("import", tmp_path / "out" / "cvat", "--project", tmp_path / "p",
                             "--images", tmp_path / "images", "--update")  # the same files: matched by path
    assert code == 0 and out.count(": unchanged (") == 3, out


def test_unsaved_edits_are_never_replaced(tmp_path, run_cli):
    project, labels = make_project(tmp_path)
    corrected = corrected_fiftyone_export(project, tmp_path, "a", paint_road)
    unsaved = labels["a"].copy()
    unsaved[:, :5] = 2
    project.autosave(project.images[0], unsaved)
    code, out, err = run_cli("import", tmp_path / "out" / "fiftyone", "--project", tmp_path / "p", "--update")
    assert code == 2 and "a: skipped" in out and "unsaved edits in the app (an autosave)" in out, out
    back = Project.open(tmp_path / "p")
    np.testing.assert_array_equal(back.load_annotation(back.images[0]), labels["a"])
    np.testing.assert_array_equal(back.recover(back.images[0]), unsaved)
    assert not np.array_equal(corrected, labels["a"])


def test_a_name_two_project_images_share_or_another_size_is_not_guessed(tmp_path, run_cli):
    project, labels = make_project(tmp_path)
    other = tmp_path / "elsewhere" / "a.png"
    other.parent.mkdir()
    Image.new("RGB", SIZE, (1, 2, 3)).save(other)
    project.add_images([other])
    corrected_fiftyone_export(project, tmp_path, "b", paint_road)
    copy = tmp_path / "out" / "fiftyone" / "data" / "a.png"
    Image.open(copy).save(copy, compress_level=1)  # re-encoded by the tool: a's bytes no longer tell
    big = tmp_path / "out" / "fiftyone" / "data" / "c.png"
    Image.new("RGB", (SIZE[0] * 2, SIZE[1] * 2)).save(big)  # another picture under c's name
    mask = tmp_path / "out" / "fiftyone" / "labels" / "c.png"
    Image.fromarray(np.ones((SIZE[1] * 2, SIZE[0] * 2), np.uint8)).save(mask)
    code, out, err = run_cli("import", tmp_path / "out" / "fiftyone", "--project", tmp_path / "p", "--update")
    assert code == 2, out
    assert "a: skipped (its image a.png is named like 2 project images" in out, out
    assert "c: skipped (the project image" in out and "is 40×24, this one 80×48" in out, out
    assert "b: replaced the annotation of b.png" in out
    back = Project.open(tmp_path / "p")
    assert len(back.images) == 4
    np.testing.assert_array_equal(back.load_annotation(back.image_for(tmp_path / "images" / "c.png")), labels["c"])


def test_an_image_the_project_lacks_is_added(tmp_path, run_cli):
    project, labels = make_project(tmp_path, names=("a",))
    export_project(project, tmp_path / "out", ["fiftyone"], images="copy")
    data, masks = tmp_path / "out" / "fiftyone" / "data", tmp_path / "out" / "fiftyone" / "labels"
    Image.new("RGB", SIZE).save(data / "new.png")
    Image.fromarray(np.full((SIZE[1], SIZE[0]), 3, np.uint8)).save(masks / "new.png")
    code, out, err = run_cli("import", tmp_path / "out" / "fiftyone", "--project", tmp_path / "p", "--update")
    assert code == 0, out
    back = Project.open(tmp_path / "p")
    assert [im.path.name for im in back.images] == ["a.png", "new.png"]
    assert (back.load_annotation(back.images[1]) == 2).all()


@pytest.mark.parametrize("fmt", ["cvat", "labelstudio"])
def test_corrections_come_back_from_other_formats(tmp_path, run_cli, fmt):
    project, labels = make_project(tmp_path)
    export_project(project, tmp_path / "out", [fmt], images="copy")
    code, out, err = run_cli("import", tmp_path / "out" / fmt, "--project", tmp_path / "p", "--update",
                             *(["--images", tmp_path / "images"] if fmt == "cvat" else []))
    assert code == 0 and out.count(": unchanged (") == 3, out
    assert len(Project.open(tmp_path / "p").images) == 3


@pytest.mark.parametrize("fmt", ["labelme", "coco", "labelstudio", "camvid"])
def test_copies_the_export_renamed_come_back_to_their_images(tmp_path, run_cli, fmt):
    """Two images of one name from two folders are exported as same.png and same-2.png; their
    corrections came back as a duplicate image same-2.png, added to the project. The copies are
    the images byte for byte, whatever their names."""
    project, labels = make_project(tmp_path, names=("same",), folder="one")
    other = tmp_path / "two" / "same.png"
    other.parent.mkdir()
    Image.new("RGB", SIZE, (200, 1, 1)).save(other)
    (image,) = project.add_images([other])
    project.save_annotation(image, np.ones((SIZE[1], SIZE[0]), np.uint8))
    export_project(project, tmp_path / "out", [fmt], images="copy")
    code, out, err = run_cli("import", tmp_path / "out" / fmt, "--project", tmp_path / "p", "--update")
    assert code == 0 and out.count(": unchanged (") == 2, out
    assert len(Project.open(tmp_path / "p").images) == 2


def test_images_of_one_file_size_are_read_once_each(tmp_path, monkeypatch):
    """Uncompressed images of one resolution (BMP, PPM) all have one file size: comparing each copy
    with every image of its size read N² files; each image is now read once per import."""
    import qgn.project_import as project_import
    from qgn.project_import import import_into_project

    rng = np.random.default_rng(1)
    paths = []
    for i in range(6):
        path = tmp_path / "bmp" / f"f{i}.bmp"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (SIZE[1], SIZE[0], 3), np.uint8)).save(path)
        paths.append(path)
    project = Project.create(tmp_path / "p", paths, CLASSES)
    for image in project.images:
        project.save_annotation(image, blocky_label(rng, SIZE[1], SIZE[0], 3, 255, cell=4))
    export_project(project, tmp_path / "out", ["labelme"], images="copy")
    reads = []
    real = project_import.file_sha256
    monkeypatch.setattr(project_import, "file_sha256", lambda path: reads.append(path) or real(path))
    report = import_into_project(tmp_path / "out" / "labelme", project.root, "labelme", update=True)
    assert len(report.unchanged) == 6 and len(reads) == 12


def test_importing_an_image_removed_before_keeps_its_brought_back_annotation(tmp_path, run_cli):
    project, labels = make_project(tmp_path, names=("a",))
    before = project.annotation_path(project.images[0]).read_bytes()
    export_project(project, tmp_path / "out", ["cvat"])
    project.remove_image(project.images[0])
    code, out, err = run_cli("import", tmp_path / "out" / "cvat", "--project", tmp_path / "p",
                             "--images", tmp_path / "images")
    assert code == 2 and "was brought back from removed/ and is not overwritten" in out and "--update" in out, out
    back = Project.open(tmp_path / "p")
    assert back.annotation_path(back.images[0]).read_bytes() == before
    code, out, err = run_cli("import", tmp_path / "out" / "cvat", "--project", tmp_path / "p",
                             "--images", tmp_path / "images", "--update")
    assert code == 0 and ": unchanged (" in out, out


def test_an_import_into_a_project_whose_project_json_links_to_nothing_names_the_link(tmp_path, run_cli):
    # it took the folder for one without a project and refused to create one there ("not an empty
    # folder"), never saying that the project's own file was a link to a file moved away
    project, labels = make_project(tmp_path, names=("a",))
    export_project(project, tmp_path / "out", ["fiftyone"], images="copy")
    pj = tmp_path / "p" / "project.json"
    pj.rename(tmp_path / "moved.json")
    pj.symlink_to(tmp_path / "gone.json")
    code, out, err = run_cli("import", tmp_path / "out" / "fiftyone", "--project", tmp_path / "p")
    assert code == 2
    assert "project.json: is a link to" in err and "gone.json, which does not exist" in err, err
    assert pj.is_symlink() and (tmp_path / "moved.json").is_file()


def test_a_replacement_whose_image_note_a_full_disk_refuses_is_reported_as_replaced(tmp_path, run_cli, monkeypatch):
    # the annotation was replaced (the old one kept in replaced/), then project.json could not take the
    # image file's note: the item was reported "skipped: No space left on device", its new annotation
    # in place - a rerun then said "unchanged" for an item the user was told had failed
    import errno

    project, labels = make_project(tmp_path)
    corrected_fiftyone_export(project, tmp_path, "b", paint_road)

    def full(self, image):
        raise OSError(errno.ENOSPC, "No space left on device", str(self.root / "project.json"))

    monkeypatch.setattr(Project, "note_image_file", full)
    code, out, err = run_cli("import", tmp_path / "out" / "fiftyone", "--project", tmp_path / "p", "--update")
    assert code == 0, err
    assert "b: replaced the annotation of b.png" in out and "imported 3 of 3 item(s) (1 replaced, 2 unchanged)" in out
    assert "its file's note was not written" in out and "No space left on device" in out, out
