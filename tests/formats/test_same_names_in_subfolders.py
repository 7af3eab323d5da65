"""Two images of one name in different sub-folders of a dataset (``a/x.png``, ``b/x.png``): neither
is dropped, overwritten or paired with the other's labels on import, their keys differ, and an
export writes each under its own name. The ``ids`` folder import looked the images up by file stem
alone (``images/x.*``): nested images were never found and both items skipped; it now looks up
``images/a/x.*`` first, as the CVAT reader does."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from qgn.project import Project

LABELMAP = "# label:color_rgb:parts:actions\nbackground:0,0,0::\nroad:128,64,128::\nsky:70,130,180::\n"
COLOURS = [(128, 64, 128), (70, 130, 180)]


def nested_dataset(root, fmt: str):
    """``fmt``'s layout with images a/x.png and b/x.png; class 0 (road) everywhere in a's labels,
    class 1 (sky) in b's, the two photos of different greys."""
    images, labels = {"ids": ("images", "labels"), "cvat": ("JPEGImages", "SegmentationClass"),
                      "fiftyone": ("data", "labels")}[fmt]
    for i, sub in enumerate(("a", "b")):
        for folder in (images, labels):
            (root / folder / sub).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((8, 12, 3), 40 * (i + 1), np.uint8)).save(root / images / sub / "x.png")
        value = {"ids": np.full((8, 12), i, np.uint8), "fiftyone": np.full((8, 12), i + 1, np.uint8),
                 "cvat": np.tile(np.array(COLOURS[i], np.uint8), (8, 12, 1))}[fmt]
        Image.fromarray(value).save(root / labels / sub / "x.png")
    if fmt == "ids":
        (root / "classes.txt").write_text("road\nsky\n")
    elif fmt == "cvat":
        (root / "labelmap.txt").write_text(LABELMAP)
    else:
        (root / "mask_targets.json").write_text(json.dumps({"1": "road", "2": "sky"}))
    return root / images


@pytest.mark.parametrize("fmt", ["ids", "cvat", "fiftyone"])
def test_same_names_in_two_subfolders_import_and_export_apart(tmp_path, run_cli, fmt):
    images = nested_dataset(tmp_path / "ds", fmt)
    code, out, err = run_cli("import", tmp_path / "ds", "--project", tmp_path / "p")
    assert code == 0 and "imported 2 of 2" in out, out + err
    project = Project.open(tmp_path / "p")
    by_file = {im.path: im for im in project.images}
    assert set(by_file) == {images / "a" / "x.png", images / "b" / "x.png"}
    assert len({im.key for im in project.images}) == 2
    for value, sub in enumerate(("a", "b")):  # each image with its own labels
        label = project.load_annotation(by_file[images / sub / "x.png"])
        assert label is not None and (label == value).all(), (sub, np.unique(label))
    code, out, err = run_cli("export", "--project", tmp_path / "p", "--formats", "png,labelme", "--out", tmp_path / "o",
                             "--include-images", "copy")
    assert code == 0, err
    pngs = sorted((tmp_path / "o" / "png").glob("*.png"))
    assert len(pngs) == 2 and sorted(np.asarray(Image.open(p)).max() for p in pngs) == [0, 1]
    copied = sorted(p for p in (tmp_path / "o" / "labelme").glob("*.png"))
    assert sorted(np.asarray(Image.open(p))[0, 0, 0] for p in copied) == [40, 80]  # both photos, neither over the other


def test_ids_progress_lines_name_each_item_by_its_sub_folder(tmp_path, run_cli):
    nested_dataset(tmp_path / "ds", "ids")
    code, out, err = run_cli("import", tmp_path / "ds", "--project", tmp_path / "p")
    assert code == 0, err
    named = sorted(line.split("] ", 1)[1].split(":")[0] for line in out.splitlines() if line.startswith("["))
    assert named == ["a/x", "b/x"], out  # (both said "x: …")


@pytest.mark.parametrize("update", [False, True])
def test_two_labels_of_one_image_in_one_run_are_refused_naming_both(tmp_path, run_cli, update):
    ds = tmp_path / "ds"
    for i, sub in enumerate(("a", "b")):
        (ds / "labels" / sub).mkdir(parents=True)
        Image.fromarray(np.full((8, 12), i, np.uint8)).save(ds / "labels" / sub / "x.png")
    (ds / "images").mkdir()
    Image.fromarray(np.full((8, 12, 3), 40, np.uint8)).save(ds / "images" / "x.png")  # one flat image for both
    Image.fromarray(np.full((8, 12, 3), 90, np.uint8)).save(ds / "images" / "y.png")
    Image.fromarray(np.full((8, 12), 1, np.uint8)).save(ds / "labels" / "y.png")
    (ds / "classes.txt").write_text("road\nsky\n")
    args = ["import", ds, "--project", tmp_path / "p"] + (["--update"] if update else [])
    code, out, err = run_cli(*args)
    assert code == 2, out + err
    said = out + err
    assert str(ds / "labels" / "a" / "x.png") in said and str(ds / "labels" / "b" / "x.png") in said, said
    assert "are all label maps of" in said
    project = Project.open(tmp_path / "p")  # the rest went on
    assert [im.path.name for im in project.images if project.load_annotation(im) is not None] == ["y.png"]
    assert not (tmp_path / "p" / "replaced").exists() or not any((tmp_path / "p" / "replaced").rglob("*"))
