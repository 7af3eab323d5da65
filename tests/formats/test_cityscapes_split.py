"""The split of a Cityscapes export (#22): ``gtFine/<split>/`` and ``leftImg8bit/<split>/`` are
``train`` unless the user names another (``qgn export --split``, ``export_project(split=)``, the
app's export dialog), so the readers that know train/val/test open the export as it is; a name that
is not one plain folder name is refused before anything is written.
"""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from qgn.data.synthetic import SYNTHETIC_CLASSES as CLASSES
from qgn.formats import FORMATS, check_split, scan_dataset
from qgn.project import Project
from qgn.project_export import export_project

BAD_SPLITS = ["../x", "..", "a/b", "a\\b", "/tmp/x", "", " val", "val ", "tr.ain", "x" * 65]


@pytest.fixture
def annotated_project(tmp_path):
    """Two annotated synthetic scenes (PNG) in a project."""
    from qgn.data.synthetic import make_scene

    folder = tmp_path / "images"
    folder.mkdir()
    paths, labels = [], {}
    for i in range(2):
        image, label = make_scene(300 + i, 40, 56)
        Image.fromarray(image).save(folder / f"s{i}.png")
        paths.append(folder / f"s{i}.png")
        labels[f"s{i}"] = label.astype(np.uint8)
    project = Project.create(tmp_path / "project", paths, CLASSES)
    for image in project.images:
        project.save_annotation(image, labels[image.path.stem])
    return project, labels


@pytest.fixture
def qgt(tmp_path):
    """``m.qgt`` (12×8, three classes) with ``m.png`` beside it."""
    label = np.repeat(np.arange(3), 4)[None].repeat(8, axis=0)
    FORMATS["qgt"].write(label, CLASSES, tmp_path, "m")
    Image.new("RGB", (12, 8), (40, 80, 120)).save(tmp_path / "m.png")
    return tmp_path / "m.qgt"


def split_folders(root) -> set[tuple[str, str]]:
    """(tree, split) of every file under ``root``: ("gtFine", "val") …"""
    return {(p.relative_to(root).parts[0], p.relative_to(root).parts[1])
            for p in root.rglob("*.png")}


def test_the_default_split_is_train_and_qgn_reads_it(annotated_project, tmp_path):
    from qgn.data.cityscapes import CityscapesDataset

    project, _ = annotated_project
    export_project(project, tmp_path / "out", ["cityscapes"])
    root = tmp_path / "out" / "cityscapes"
    assert split_folders(root) == {("gtFine", "train"), ("leftImg8bit", "train")}
    assert len(CityscapesDataset(root)) == 2  # its default split, as torchvision's Cityscapes


@pytest.mark.parametrize("split", ["val", "test", "train_extra"])
def test_a_named_split_is_where_everything_goes_and_reads_back(annotated_project, tmp_path, split):
    from qgn.data.cityscapes import CityscapesDataset

    project, labels = annotated_project
    export_project(project, tmp_path / "out", ["cityscapes", "png"], split=split)
    root = tmp_path / "out" / "cityscapes"
    assert split_folders(root) == {("gtFine", split), ("leftImg8bit", split)}
    assert len(CityscapesDataset(root, split=split)) == 2
    found = scan_dataset(root)  # images from the tree itself: leftImg8bit/<split>/<city>/
    assert sorted(item.name for item in found.items) == ["s0", "s1"]
    for item in found.items:
        assert item.image is not None and item.image.parent.parent.name == split
        np.testing.assert_array_equal(item.read(CLASSES), labels[item.name])
    assert (tmp_path / "out" / "png").is_dir()  # formats without splits are untouched by it


@pytest.mark.parametrize("name", BAD_SPLITS)
def test_a_split_that_is_not_one_folder_name_is_refused_before_writing(annotated_project, tmp_path, name):
    project, _ = annotated_project
    with pytest.raises(ValueError, match="split"):
        check_split(name)
    with pytest.raises(ValueError, match="split"):
        export_project(project, tmp_path / "out", ["cityscapes"], split=name)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.*"))
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("name", ["train", "val", "test", "train_extra", "fold-2"])
def test_plain_names_are_splits(name):
    assert check_split(name) == name


def test_cli_split_for_a_file_a_folder_and_a_project(qgt, annotated_project, tmp_path, run_cli):
    code, out, err = run_cli("export", qgt, "--format", "cityscapes", "--split", "val", "--out", tmp_path / "cs")
    assert code == 0, err
    assert split_folders(tmp_path / "cs") == {("gtFine", "val"), ("leftImg8bit", "val")}
    folder = tmp_path / "many"
    folder.mkdir()
    for stem in ("a", "b"):
        (folder / f"{stem}.qgt").write_bytes(qgt.read_bytes())
    code, out, err = run_cli("export", folder, "--format", "cityscapes,coco", "--split", "test", "--out", tmp_path / "ds")
    assert code == 0, err
    assert split_folders(tmp_path / "ds" / "cityscapes") == {("gtFine", "test")}  # no images beside these
    assert len(list((tmp_path / "ds" / "cityscapes" / "gtFine" / "test").rglob("*_gtFine_labelIds.png"))) == 2
    project, _ = annotated_project
    code, out, err = run_cli("export", "--project", project.root, "--formats", "qgt,cityscapes", "--split", "val",
                             "--out", tmp_path / "p")
    assert code == 0, err
    assert split_folders(tmp_path / "p" / "cityscapes") == {("gtFine", "val"), ("leftImg8bit", "val")}


@pytest.mark.parametrize("name", ["../escape", "a/b", ".."])
def test_cli_refuses_a_bad_split_in_one_line(qgt, annotated_project, tmp_path, run_cli, snapshot, name):
    before = snapshot(tmp_path)
    for argv in (["export", qgt, "--format", "cityscapes", "--out", tmp_path / "cs"],
                 ["export", "--project", annotated_project[0].root, "--formats", "cityscapes", "--out", tmp_path / "p"]):
        code, out, err = run_cli(*argv, "--split", name)
        assert code == 2
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("qgn export: error: --split") and repr(name) in lines[0], err
        assert "train, val, test" in lines[0]
    assert snapshot(tmp_path) == before  # nothing written, inside the output folder or out of it


def test_cli_split_without_cityscapes_says_where_it_goes(qgt, tmp_path, run_cli):
    for argv in (["--format", "coco", "--out", tmp_path / "o"], ["--png", tmp_path / "m2.png"]):
        code, out, err = run_cli("export", qgt, *argv, "--split", "val")
        assert code == 2 and err.startswith("qgn export: error: --split") and "cityscapes" in err
    assert not (tmp_path / "o").exists() and not (tmp_path / "m2.png").exists()


def test_datumaro_reads_the_split_as_the_subset(annotated_project, tmp_path):
    """Datumaro (a judge: it takes gtFine/<subset>/ as the subset) finds every item in the split."""
    datumaro = pytest.importorskip("datumaro")
    project, _ = annotated_project
    export_project(project, tmp_path / "out", ["cityscapes"], split="val")
    dataset = datumaro.Dataset.import_from(str(tmp_path / "out" / "cityscapes"), "cityscapes")
    assert sorted(item.subset for item in dataset) == ["val", "val"]
