"""A subfolder inside an export's output folder that is a symbolic link to a folder outside it
(``OUT/coco/annotations -> /elsewhere``): every export - the project's (the app's), ``export_dataset``,
``export_annotation``, ``qgn export`` of a folder and of files - refuses it with one line naming the
link and the fix, before anything is read or written (``qgn.formats.check_export_links``). Before,
``out_file(out_dir / "annotations", ...)`` judged names against the subfolder as its own root, and the
export wrote its files into the folder the link led to."""
from __future__ import annotations

import os

import numpy as np
import pytest

from qgn.data.synthetic import SYNTHETIC_CLASSES as CLASSES
from qgn.data.synthetic import make_scene
from qgn.fileio import OutsideRootError
from qgn.project_export import export_project
from sample_files import synthetic_project


@pytest.fixture
def project(tmp_path):
    return synthetic_project(tmp_path / "project", tmp_path / "street")


def snapshot(folder):
    """Every entry under ``folder``, links not followed: (kind, bytes or link target)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            found[path] = ("link", os.readlink(path))
        elif path.is_file():
            found[path] = ("file", path.read_bytes())
        else:
            found[path] = ("dir", None)
    return found


@pytest.fixture
def outside(tmp_path):
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "mine.txt").write_text("my own file\n")
    return folder


def plant(folder, outside):
    """``folder`` (an earlier export's subfolder, or one to come) made a link to ``outside``."""
    if folder.is_dir():
        for path in sorted(folder.rglob("*"), reverse=True):
            path.rmdir() if path.is_dir() and not path.is_symlink() else path.unlink()
        folder.rmdir()
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.symlink_to(outside, target_is_directory=True)


def assert_refused(exc_info, link, outside):
    text = str(exc_info.value)
    assert "\n" not in text
    assert f"{link} is a link to {outside.resolve()}" in text
    assert "remove the link or export elsewhere" in text


# per format family: the subfolder its writer writes into (the format folder itself for png, labelme)
PLANTED = [("coco", "annotations"), ("coco", "images/default"), ("cvat", "SegmentationClass"),
           ("voc", "JPEGImages"), ("cityscapes", "gtFine/train/street"), ("cityscapes", "leftImg8bit"),
           ("camvid", "defaultannot"), ("labelstudio", "images"), ("fiftyone", "labels"), ("png", ""),
           ("labelme", "")]


@pytest.mark.parametrize("fmt, rel", PLANTED)
def test_a_project_export_refuses_a_subfolder_linked_outside(project, tmp_path, outside, fmt, rel):
    out = tmp_path / "out"
    export_project(project, out, [fmt], images="copy")
    link = out / fmt / rel if rel else out / fmt
    plant(link, outside)
    before, outside_before = snapshot(out), snapshot(outside)
    with pytest.raises(OutsideRootError) as exc_info:
        export_project(project, out, [fmt], images="copy", errors=[])
    assert_refused(exc_info, link, outside)
    assert snapshot(outside) == outside_before
    assert snapshot(out) == before  # refused before anything was written


def test_a_first_export_of_several_formats_writes_nothing(project, tmp_path, outside):
    """The link in the second format's folder refuses the first format's export too."""
    out = tmp_path / "out"
    plant(out / "cvat" / "SegmentationClass", outside)
    with pytest.raises(OutsideRootError):
        export_project(project, out, ["coco", "cvat"], images="copy")
    assert not (out / "coco").exists()
    assert snapshot(outside) == {outside / "mine.txt": ("file", b"my own file\n")}


def test_a_link_deeper_down_or_through_a_link_inside_is_found(project, tmp_path, outside):
    """A link inside the export root to another place inside it is followed, and a link there judged."""
    out = tmp_path / "out"
    (out / "shared" / "deep").mkdir(parents=True)
    (out / "shared" / "deep" / "away").symlink_to(outside)
    (out / "coco").mkdir()
    (out / "coco" / "images").symlink_to(out / "shared")
    with pytest.raises(OutsideRootError) as exc_info:
        export_project(project, out, ["coco"], images="copy")
    assert_refused(exc_info, out / "shared" / "deep" / "away", outside)  # named where it stands


def test_links_inside_the_export_root_and_a_linked_root_are_allowed(project, tmp_path):
    out_real = tmp_path / "real"
    (out_real / "kept").mkdir(parents=True)
    (out_real / "coco").mkdir()
    (out_real / "coco" / "annotations").symlink_to(out_real / "kept")
    out = tmp_path / "out"
    out.symlink_to(out_real)  # the folder the user named being a link is theirs to choose
    export_project(project, out, ["coco"], images="copy")
    assert (out_real / "kept" / "instances_default.json").is_file()


@pytest.mark.parametrize("fmt, rel", [("coco", "annotations"), ("cityscapes", "gtFine"), ("png", "")])
def test_export_dataset_refuses_a_subfolder_linked_outside(tmp_path, outside, fmt, rel):
    from qgn.formats import ExportItem, export_dataset

    out = tmp_path / "out"
    link = out / fmt / rel if rel else out / fmt
    plant(link, outside)
    items = [ExportItem("a", make_scene(0, 48, 64)[1].astype(np.uint8))]
    with pytest.raises(OutsideRootError) as exc_info:
        export_dataset(items, CLASSES, out, [fmt])
    assert_refused(exc_info, link, outside)
    assert snapshot(outside) == {outside / "mine.txt": ("file", b"my own file\n")}


@pytest.mark.parametrize("fmt, rel", [("cvat", "SegmentationClass"), ("labelme", "")])
def test_export_annotation_refuses_a_subfolder_linked_outside(tmp_path, outside, fmt, rel):
    from qgn.formats import export_annotation

    out = tmp_path / "out"
    link = out / fmt / rel if rel else out / fmt
    plant(link, outside)
    with pytest.raises(OutsideRootError) as exc_info:
        export_annotation(make_scene(0, 48, 64)[1].astype(np.uint8), CLASSES, out, "a", [fmt])
    assert_refused(exc_info, link, outside)
    assert snapshot(outside) == {outside / "mine.txt": ("file", b"my own file\n")}


def qgt_folder(tmp_path):
    from qgn.quadtree import Quadtree
    from qgn.quadtree.qgt import write_qgt

    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    for i, path in enumerate([src / "a.qgt", src / "sub" / "b.qgt"]):
        label = make_scene(i, 48, 64)[1].astype(np.uint8)
        write_qgt(path, Quadtree.from_label(label, CLASSES.num_classes, ignore_value=CLASSES.ignore_index, levels=4), CLASSES)
    return src


@pytest.mark.parametrize("args, rel", [(["--format", "coco"], "annotations"),
                                       (["--format", "cvat,camvid"], "cvat/SegmentationClass"),
                                       (["--format", "png"], "sub"),
                                       (["--format", "png,labelme"], "sub/labelme")])
def test_qgn_export_of_a_folder_refuses_a_subfolder_linked_outside(tmp_path, outside, run_cli, args, rel):
    src = qgt_folder(tmp_path)
    out = tmp_path / "out"
    plant(out / rel, outside)
    before = snapshot(out)
    code, _, err = run_cli("export", src, *args, "--out", out)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("qgn export: error: ")
    assert f"{out / rel} is a link to {outside.resolve()}" in err and "remove the link or export elsewhere" in err
    assert snapshot(outside) == {outside / "mine.txt": ("file", b"my own file\n")}
    assert snapshot(out) == before  # refused before anything was written


def test_qgn_export_of_a_file_refuses_a_subfolder_linked_outside(tmp_path, outside, run_cli):
    src = qgt_folder(tmp_path)
    out = tmp_path / "out"
    plant(out / "JPEGImages", outside)
    code, _, err = run_cli("export", src / "a.qgt", "--format", "voc", "--out", out)
    assert code == 2 and err.count("\n") == 1
    assert f"{out / 'JPEGImages'} is a link to {outside.resolve()}" in err
    assert snapshot(outside) == {outside / "mine.txt": ("file", b"my own file\n")}


@pytest.mark.parametrize("named", ["file", "folder"])
def test_qgn_export_png_over_a_file_link_leading_outside_writes_nothing_there(tmp_path, outside, run_cli, named):
    """``qgn export a.qgt --png OUT.png`` where OUT.png (or, with ``--png DIR``, DIR/a.png) is a link
    to a file outside the folder: the same rule as ``check_output_links``' - nothing the command
    writes lands outside the folder the user named - holds without a refusal: the file is written
    beside and renamed over the link (``atomic_write_bytes``), never written through it, so the
    file outside stays as it was and the output stands at the named path (decided and checked; a
    folder link is refused because files would be written inside it, a file link carries nothing)."""
    src = qgt_folder(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    link = out / "a.png"
    os.symlink(outside / "mine.txt", link)
    code, _, err = run_cli("export", src / "a.qgt", "--png", link if named == "file" else out)
    assert code == 0, err
    assert snapshot(outside) == {outside / "mine.txt": ("file", b"my own file\n")}
    assert not link.is_symlink() and link.read_bytes().startswith(b"\x89PNG")
