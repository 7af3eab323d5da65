"""The ``fiftyone`` format (FiftyOne's ImageSegmentationDirectory) without FiftyOne: what the files
hold, read back by hand; the round trip through ``scan_dataset``; what import does with a dataset
FiftyOne made (no mask targets, gaps in them), with paths that lead outside, and with bad class files.
FiftyOne itself reads the exports in ``test_fiftyone_live.py``."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from qgn.classes import ClassSet
from qgn.formats import ExportItem, detect_dataset, export_dataset, scan_dataset
from qgn.project import Project
from qgn.quadtree.label_io import write_classes_file
from sample_files import blocky_label

CLASSES = ClassSet(("road", "traffic sign", "sky"), ((128, 64, 128), (220, 220, 0), (70, 130, 180)), 255)


def photo(path, size=(32, 24)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(len(str(path))).integers(0, 255, (size[1], size[0], 3), np.uint8)).save(path)
    return path


def items_of(tmp_path, classes=CLASSES, n=2, seed=0):
    rng = np.random.default_rng(seed)
    return [ExportItem(f"frame {i}", blocky_label(rng, 24, 32, classes.num_classes, classes.ignore_index, cell=4,
                                                    void_cells=classes.ignore_index is not None),
                       photo(tmp_path / "photos" / f"frame {i}.jpg")) for i in range(n)]


def test_export_holds_class_id_plus_one_and_fiftyones_class_files(tmp_path):
    items = items_of(tmp_path)
    export_dataset(items, CLASSES, tmp_path / "out", ["fiftyone"])
    root = tmp_path / "out" / "fiftyone"
    for item in items:
        mask = Image.open(root / "labels" / f"{item.name}.png")
        assert mask.mode == "L"
        expected = np.where(item.label == 255, 0, item.label + 1)  # FiftyOne's 0 is background
        np.testing.assert_array_equal(np.asarray(mask), expected)
    assert json.loads((root / "mask_targets.json").read_text()) == {"1": "road", "2": "traffic sign", "3": "sky"}
    scheme = json.loads((root / "color_scheme.json").read_text())
    assert scheme == {"default_mask_targets_colors": [{"intTarget": 1, "color": "#804080"},
                                                      {"intTarget": 2, "color": "#dcdc00"},
                                                      {"intTarget": 3, "color": "#4682b4"}]}
    manifest = json.loads((root / "data.json").read_text())
    # FiftyOne joins each entry to the manifest's folder; the key's stem matches the mask's.
    assert {k: os.path.normpath(root / v) for k, v in manifest.items()} == \
        {f"{i.name}.jpg": os.path.normpath(i.image) for i in items}
    assert not (root / "data").exists()


@pytest.mark.parametrize("images", [None, "copy"])
def test_round_trip_through_import(tmp_path, images):
    items = items_of(tmp_path, n=3)
    export_dataset(items, CLASSES, tmp_path / "out", ["fiftyone"], images=images)
    root = tmp_path / "out" / "fiftyone"
    assert detect_dataset(root) == "fiftyone"
    dataset = scan_dataset(root, images=tmp_path / "photos" if images is None else None)
    assert dataset.file_classes == CLASSES and not dataset.warnings
    assert [i.name for i in dataset.items] == [i.name for i in items]
    for got, item in zip(dataset.items, items):
        np.testing.assert_array_equal(got.read(dataset.file_classes), item.label)
        assert got.image.read_bytes() == item.image.read_bytes()
        if images == "copy":
            assert got.image.parent == root / "data"


def test_many_classes_take_a_16_bit_mask(tmp_path):
    classes = ClassSet.generic(300, 300)
    label = np.arange(24 * 32).reshape(24, 32) % 301
    export_dataset([ExportItem("a", label)], classes, tmp_path, ["fiftyone"])
    raw = np.asarray(Image.open(tmp_path / "fiftyone" / "labels" / "a.png"))
    assert raw.dtype == np.uint16 and raw.max() == 300 and (raw[label == 300] == 0).all()
    dataset = scan_dataset(tmp_path / "fiftyone")
    np.testing.assert_array_equal(dataset.items[0].read(classes), label)


def test_a_dataset_fiftyone_wrote_without_mask_targets_imports_with_classes(tmp_path, run_cli):
    """FiftyOne's exporter writes data/ and labels/ only: the classes come from --classes, value = id + 1."""
    root = tmp_path / "fo"
    photo(root / "data" / "a.png", (2, 2)), photo(root / "data" / "b.jpg", (2, 2))
    (root / "labels").mkdir()
    Image.fromarray(np.array([[0, 1], [2, 3]], np.uint8)).save(root / "labels" / "a.png")
    Image.fromarray(np.array([[4, 1], [1, 1]], np.uint8)).save(root / "labels" / "b.png")
    assert detect_dataset(root) == "fiftyone"
    code, out, err = run_cli("import", root, "--project", tmp_path / "p")
    assert code == 2 and "bare class ids" in err and "--classes" in err and len(err.splitlines()) == 1
    write_classes_file(tmp_path / "classes.txt", CLASSES)
    code, out, err = run_cli("import", root, "--project", tmp_path / "p", "--classes", tmp_path / "classes.txt")
    assert code == 2 and out.startswith("found fiftyone: ")  # b's 4 is no class: reported, the rest goes on
    assert "value 4 is beyond the 3 classes" in out and "imported 1 of 2" in out
    project = Project.open(tmp_path / "p")
    (image,) = project.images
    assert image.path.name == "a.png"
    np.testing.assert_array_equal(project.load_annotation(image), [[255, 0], [1, 2]])
    # Into an existing project, the values are its class ids + 1: no --classes needed.
    Image.fromarray(np.array([[3, 3], [0, 1]], np.uint8)).save(root / "labels" / "b.png")
    code, out, err = run_cli("import", root, "--project", tmp_path / "p")
    assert code == 2 and "values are class id + 1" in out and "imported 1 of 2" in out  # a: already annotated
    project = Project.open(tmp_path / "p")
    b = next(im for im in project.images if im.path.name == "b.jpg")
    np.testing.assert_array_equal(project.load_annotation(b), [[2, 2], [255, 0]])


def test_mask_targets_with_gaps_and_a_named_zero(tmp_path):
    root = tmp_path / "fo"
    photo(root / "data" / "a.png", (2, 2)), photo(root / "data" / "b.png", (2, 2))
    (root / "labels").mkdir()
    Image.fromarray(np.array([[0, 2], [5, 5]], np.uint8)).save(root / "labels" / "a.png")
    Image.fromarray(np.array([[0, 3], [2, 0]], np.uint8)).save(root / "labels" / "b.png")
    (root / "mask_targets.json").write_text(json.dumps({"0": "road", "2": "Sky", "5": "traffic_sign"}))
    dataset = scan_dataset(root)
    assert dataset.file_classes.names == ("road", "Sky", "traffic_sign")
    np.testing.assert_array_equal(dataset.items[0].read(CLASSES), [[0, 2], [1, 1]])  # matched by name
    with pytest.raises(ValueError, match=r"mask value 3: not in mask_targets.json"):
        dataset.items[1].read(CLASSES)


@pytest.mark.parametrize("doc, message", [
    ({"x": "road"}, "mask value 'x' is not a whole number"),
    ({"-1": "road"}, "mask value '-1' is not a whole number"),
    ({"70000": "road"}, "mask value '70000' is not a whole number"),
    ({"#ff0000": "road"}, "RGB masks are not read"),
    ({"\u00b2": "road"}, "is not a whole number"),
    ({"9" * 5000: "road"}, "is not a whole number"),
    ({"1": "road", "2": "Road"}, "Road"),
    ({"1": ""}, "names ''; expected a class name"),
    ({"1": 7}, "names 7; expected a class name"),
    ([1, 2], "expected FiftyOne mask targets"),
    ({}, "expected FiftyOne mask targets"),
])
def test_bad_mask_targets_are_one_line_naming_the_file(tmp_path, run_cli, doc, message):
    items = items_of(tmp_path, n=1)
    export_dataset(items, CLASSES, tmp_path / "out", ["fiftyone"], images="copy")
    root = tmp_path / "out" / "fiftyone"
    (root / "mask_targets.json").write_text(json.dumps(doc))
    code, out, err = run_cli("import", root, "--project", tmp_path / "p")
    assert code == 2 and err.startswith("qgn import: error:") and len(err.splitlines()) == 1, err
    assert "mask_targets.json" in err and message in err
    assert not (tmp_path / "p").exists()


def test_manifest_entries_never_lead_out_of_the_dataset(tmp_path):
    items = items_of(tmp_path, n=2)
    export_dataset(items, CLASSES, tmp_path / "out", ["fiftyone"])  # entries point at ../../photos
    root = tmp_path / "out" / "fiftyone"
    manifest = json.loads((root / "data.json").read_text())
    manifest["frame 1.jpg"] = str(items[1].image)  # an absolute path
    (root / "data.json").write_text(json.dumps(manifest))
    dataset = scan_dataset(root)
    assert [i.image for i in dataset.items] == [None, None]
    assert len(dataset.warnings) == 1 and "2 image(s) lie outside the dataset folder" in dataset.warnings[0]
    assert "--images" in dataset.warnings[0]
    # Named by file name in --images instead.
    dataset = scan_dataset(root, images=tmp_path / "photos")
    assert [i.image for i in dataset.items] == [i.image for i in items] and not dataset.warnings
    # A manifest that is no JSON object: said once, the images looked for in data/ and --images.
    (root / "data.json").write_text("[1, 2]")
    dataset = scan_dataset(root, images=tmp_path / "photos")
    assert "expected FiftyOne's data manifest" in dataset.warnings[0]
    assert [i.image for i in dataset.items] == [i.image for i in items]


def test_the_training_folder_layout_is_not_taken_for_fiftyone(tmp_path):
    """``images/`` + ``labels/`` + ``classes.txt`` (``qgn train``'s folder) stays an ids dataset:
    read as FiftyOne's, every class would shift by one."""
    photo(tmp_path / "images" / "a.png")
    (tmp_path / "labels").mkdir()
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(tmp_path / "labels" / "a.png")
    write_classes_file(tmp_path / "classes.txt", CLASSES)
    assert detect_dataset(tmp_path) == "ids"
    # Nor with its photos in data/: a classes.txt says the masks hold bare ids (0 is a class).
    (tmp_path / "images").rename(tmp_path / "data")
    assert detect_dataset(tmp_path) == "ids"
    (tmp_path / "classes.txt").unlink()
    assert detect_dataset(tmp_path) == "fiftyone"


def test_project_export_and_reimport_through_the_cli(tmp_path, run_cli):
    items = items_of(tmp_path, n=2)
    project = Project.create(tmp_path / "p", [i.image for i in items], CLASSES)
    for image, item in zip(project.images, items):
        project.save_annotation(image, item.label)
    code, out, err = run_cli("export", "--project", tmp_path / "p", "--formats", "fiftyone", "--include-images", "copy",
                             "--out", tmp_path / "out")
    assert code == 0, err
    code, out, err = run_cli("import", tmp_path / "out" / "fiftyone", "--project", tmp_path / "p2")
    assert code == 0, err
    assert "found fiftyone: an ImageSegmentationDirectory of 2 masks, classes from mask_targets.json" in out
    again = Project.open(tmp_path / "p2")
    assert again.classes == CLASSES
    for image, item in zip(again.images, items):
        assert image.path.read_bytes() == item.image.read_bytes()
        np.testing.assert_array_equal(again.load_annotation(image), item.label)


def test_oversized_manifest_and_colours_are_warnings_read_within_their_bounds(tmp_path):
    """data.json and color_scheme.json of any size cost a stat: the import names them and goes on
    (images in data/, default colours); mask_targets.json's bound is a claimed-size case
    (tests/formats/hostile_cases.py)."""
    import tracemalloc

    items = items_of(tmp_path, n=2)
    export_dataset(items, CLASSES, tmp_path / "out", ["fiftyone"], images="copy")
    root = tmp_path / "out" / "fiftyone"
    os.truncate(root / "data.json", 3 << 30)
    os.truncate(root / "color_scheme.json", 2 << 30)
    tracemalloc.start()
    try:
        dataset = scan_dataset(root)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20
    assert len(dataset.warnings) == 2
    assert "data.json is 3221.2 MB; a file of its kind holds at most 67 MB" in dataset.warnings[0]
    assert "color_scheme.json is 2147.5 MB" in dataset.warnings[1] and "default colours" in dataset.warnings[1]
    assert [i.image for i in dataset.items] == [root / "data" / f"{i.name}.jpg" for i in items]
    assert dataset.file_classes.names == CLASSES.names
    np.testing.assert_array_equal(dataset.items[1].read(dataset.file_classes), items[1].label)


def test_a_second_export_into_the_folder_keeps_every_mask_in_the_manifest(tmp_path):
    """FiftyOne's importer fails on a mask its data.json lacks: masks an earlier export left in
    labels/ (never deleted) keep their entries; entries without a mask go."""
    items = items_of(tmp_path, n=3)
    export_dataset(items, CLASSES, tmp_path / "out", ["fiftyone"])
    root = tmp_path / "out" / "fiftyone"
    first = json.loads((root / "data.json").read_text())
    (root / "labels" / "frame 2.png").unlink()
    export_dataset(items[1:2], CLASSES, tmp_path / "out", ["fiftyone"], images="copy")
    manifest = json.loads((root / "data.json").read_text())
    assert manifest == {"frame 0.jpg": first["frame 0.jpg"], "frame 1.jpg": "data/frame 1.jpg"}
    dataset = scan_dataset(root, images=tmp_path / "photos")
    assert [i.name for i in dataset.items] == ["frame 0", "frame 1"] and all(i.image for i in dataset.items)
