"""COCO files of other tools, read as COCO's own API reads them (pycocotools ``COCO.annToMask``:
polygons through maskApi.c ``rleFrPoly``, merged per annotation; RLE compressed or not), and our
COCO export read by pycocotools and Datumaro and back: category ids that do not start at 1 or have
gaps, ``iscrowd`` 1 with uncompressed RLE beside polygons, images no annotation covers, 1×1 and odd
sizes. The semantic label of a file is each annotation painted in file order over void."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from qgn.classes import ClassSet
from qgn.formats import scan_dataset
from qgn.project import Project
from qgn.project_export import export_project

from coco_reference import pycocotools_labels

CLASSES = ClassSet(("road", "car", "sky"), ((128, 64, 128), (0, 0, 142), (70, 130, 180)), 255)
VOID = CLASSES.ignore_index


def qgn_labels(src: Path, classes: ClassSet) -> dict[str, np.ndarray]:
    dataset = scan_dataset(src)
    assert dataset.format == "coco"
    return {item.name: item.read(classes).astype(np.int64) for item in dataset.items}


def blobs(seed: int, height: int, width: int) -> np.ndarray:
    """A label map of round regions of every class over void (polygon outlines with slopes)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    label = np.full((height, width), VOID, np.int64)
    for c in rng.integers(0, CLASSES.num_classes, 6):
        cy, cx, r = rng.random() * height, rng.random() * width, 2 + rng.random() * min(height, width) / 3
        label[(yy - cy) ** 2 + ((xx - cx) * 0.7) ** 2 < r * r] = c
    return label


def test_datumaros_polygon_coco_export_reads_as_pycocotools_reads_it(tmp_path):
    """Datumaro's ``coco_instances`` export with ``segmentation_mode="polygons"`` (masks as polygons,
    as CVAT's COCO 1.0 export holds the polygons drawn in CVAT). Our
    reader drew them with PIL (labelme's rasteriser), which paints the outline too: 5 % of the
    pixels of such a file came out other than pycocotools (COCO's reader, Datumaro's and
    FiftyOne's) reads them."""
    pytest.importorskip("datumaro")
    from datumaro.components.annotation import AnnotationType, LabelCategories, Mask
    from datumaro.components.dataset import Dataset
    from datumaro.components.dataset_base import DatasetItem
    from datumaro.components.media import Image as DmImage

    items = []
    for i, (height, width) in enumerate([(48, 64), (37, 53), (61, 29)]):
        label = blobs(i, height, width)
        masks = [Mask(image=label == c, label=c) for c in range(CLASSES.num_classes) if (label == c).any()]
        items.append(DatasetItem(id=f"frame_{i}", subset="default", annotations=masks,
                                 media=DmImage.from_numpy(np.zeros((height, width, 3), np.uint8))))
    categories = {AnnotationType.label: LabelCategories.from_iterable(CLASSES.names)}
    logging.getLogger().setLevel(logging.ERROR)
    Dataset.from_iterable(items, categories=categories).export(str(tmp_path / "coco"), "coco_instances",
                                                                save_media=True, segmentation_mode="polygons")
    path = tmp_path / "coco" / "annotations" / "instances_default.json"
    doc = json.loads(path.read_text())
    assert doc["annotations"] and all(isinstance(a["segmentation"], list) for a in doc["annotations"])
    expected = pycocotools_labels(path, CLASSES)
    got = qgn_labels(tmp_path / "coco", CLASSES)
    assert sorted(got) == sorted(expected)
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


def test_a_hand_written_coco_file_reads_as_pycocotools_reads_it(tmp_path):
    """Category ids 7, 3, 12 (not from 1, with gaps, not in order), polygons of several parts,
    vertices outside the image, a repeated closing vertex, ``iscrowd`` 1 with uncompressed RLE, a
    compressed RLE, an image no annotation covers and a 1×1 image."""
    pytest.importorskip("pycocotools")
    from pycocotools import mask as mask_api

    crowd = np.zeros((20, 31), np.uint8)
    crowd[3:9, 4:30] = 1
    counts = mask_api.encode(np.asfortranarray(crowd))
    uncompressed = {"size": [20, 31], "counts": [int(n) for n in np.diff(np.flatnonzero(np.diff(np.concatenate(
        ([-1], crowd.ravel(order="F"), [-1])))))]}
    assert mask_api.decode(mask_api.frPyObjects(uncompressed, 20, 31)).sum() == crowd.sum()
    doc = {"images": [{"id": 5, "file_name": "a.jpg", "width": 31, "height": 20},
                      {"id": 9, "file_name": "empty.jpg", "width": 13, "height": 7},
                      {"id": 2, "file_name": "dot.png", "width": 1, "height": 1}],
           "categories": [{"id": 7, "name": "sky"}, {"id": 3, "name": "road"}, {"id": 12, "name": "car"}],
           "annotations": [
               {"id": 1, "image_id": 5, "category_id": 3, "iscrowd": 0,
                "segmentation": [[0.5, 19.5, 10.2, 2.7, 18.9, 19.1], [20, 0, 33.7, -2, 30.5, 15.25, 20, 0]]},
               {"id": 2, "image_id": 5, "category_id": 12, "iscrowd": 1, "segmentation": uncompressed},
               {"id": 3, "image_id": 5, "category_id": 7, "iscrowd": 0,
                "segmentation": {"size": [20, 31], "counts": counts["counts"].decode()}},
               {"id": 4, "image_id": 2, "category_id": 12, "iscrowd": 0,
                "segmentation": [[0, 0, 1, 0, 1, 1, 0, 1]]}]}
    doc["annotations"][2]["segmentation"]["counts"] = mask_api.encode(np.asfortranarray(
        np.pad(np.ones((4, 5), np.uint8), ((14, 2), (1, 25)))))["counts"].decode()
    (tmp_path / "annotations").mkdir()
    path = tmp_path / "annotations" / "instances_default.json"
    path.write_text(json.dumps(doc))
    expected = pycocotools_labels(path, CLASSES)
    assert (expected["empty"] == VOID).all() and expected["dot"].tolist() == [[1]]
    got = qgn_labels(tmp_path, CLASSES)
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


def test_a_polygon_whose_outline_no_image_needs_is_refused_before_drawing(tmp_path):
    """pycocotools' rasteriser walks every outline at 5 points a pixel, inside the image or not: a
    flat polygon 10 million pixels long (one pixel row: nothing for the row-crossing bound) would be
    100 million points. Refused in one line naming the image, nothing drawn."""
    doc = {"images": [{"id": 1, "file_name": "a.jpg", "width": 2, "height": 2}],
           "categories": [{"id": 1, "name": "road"}],
           "annotations": [{"id": 7, "image_id": 1, "category_id": 1, "segmentation": [[0, 1, 1e7, 1, 1e7, 1.5]]}]}
    (tmp_path / "instances.json").write_text(json.dumps(doc))
    (item,) = scan_dataset(tmp_path / "instances.json").items
    with pytest.raises(ValueError, match="image a.jpg: its polygons. outlines are 20000001 pixels long"):
        item.read(CLASSES)
    # the bound is the image's: 40 annotations of outlines each under it, together over it
    flat = [0, 1, 2e5, 1, 2e5, 1.5]
    doc["annotations"] = [{"id": n, "image_id": 1, "category_id": 1, "segmentation": [flat]} for n in range(40)]
    (tmp_path / "instances.json").write_text(json.dumps(doc))
    (item,) = scan_dataset(tmp_path / "instances.json").items
    with pytest.raises(ValueError, match=r"image a.jpg: its polygons' outlines are \d+ pixels long"):
        item.read(CLASSES)


@pytest.mark.parametrize("shape", ["a vertex far outside", "many edges across"])
def test_drawing_a_polygon_holds_memory_of_its_image_not_of_its_coordinates(tmp_path, shape):
    """Every fine-grid point of an outline was drawn as some ten numbers (~87 bytes), inside the image
    or not: a triangle with one vertex 250 000 pixels out took 220 MB to draw a 400×300 image (2.2 GB at
    2 500 000, a file of 227 bytes). Only the steps inside the image's columns are visited now, a bounded
    number at a time (a zigzag of edges across the image, within the outline bound)."""
    import tracemalloc

    width, height = 400, 300
    if shape == "a vertex far outside":
        polygon = [0, 0, 250000, 0, 0, 300]
    else:
        polygon = [v for i in range(400) for v in (-1 if i % 2 == 0 else width + 1, height * i / 400)]
    doc = {"images": [{"id": 1, "file_name": "a.jpg", "width": width, "height": height}],
           "categories": [{"id": 1, "name": "road"}],
           "annotations": [{"id": 7, "image_id": 1, "category_id": 1, "segmentation": [polygon]}]}
    (tmp_path / "instances.json").write_text(json.dumps(doc))
    (item,) = scan_dataset(tmp_path / "instances.json").items
    tracemalloc.start()
    try:
        label = item.read(CLASSES)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (label == 0).any() and peak < 16 * width * height + (4 << 20), peak


def test_polygons_reaching_far_out_of_their_image_are_drawn_as_pycocotools_draws_them(monkeypatch):
    """The steps of an outline outside the image's columns are skipped, those of edges steeper than
    45° visited one column at a time, and the outline drawn a few steps at a time: against pycocotools
    on polygons reaching 150 times the image's size out, edges steep and flat, chunks of 7 steps."""
    mask_api = pytest.importorskip("pycocotools.mask")
    from qgn.formats import coco

    monkeypatch.setattr(coco, "POLYGON_CHUNK", 7)
    rng = np.random.default_rng(2)
    for t in range(300):
        height, width = (int(v) for v in rng.integers(1, 30, 2))
        parts = []
        for _ in range(int(rng.integers(1, 4))):
            k = int(rng.integers(3, 8))
            spread = (1.6, 5, 40, 300)[t % 4]
            xy = rng.random(2 * k) * np.tile([width * spread, height * spread], k)
            xy -= np.tile([width * (spread - 1) / 2, height * (spread - 1) / 2], k)
            xy = np.round(xy) if t % 3 == 0 else xy
            if t % 5 == 1:
                xy[0::2] = np.clip(xy[0::2], -3, width + 3)  # steep edges: columns inside, rows far out
            elif t % 5 == 2:
                xy[1::2] = np.clip(xy[1::2], -3, height + 3)
            parts.append(xy.tolist())
        expected = mask_api.decode(mask_api.merge(mask_api.frPyObjects(parts, height, width))).astype(bool)
        np.testing.assert_array_equal(coco.polygon_mask(parts, height, width, "test"), expected, err_msg=str(t))


def test_our_export_reads_in_pycocotools_and_comes_back_through_datumaros_coco(tmp_path):
    """A project with odd sizes, a 1×1 image and an image all void (no annotation: COCO lists it
    with none) → our ``coco`` → pycocotools reads every label; Datumaro imports it and exports its own
    ``coco_instances`` (its ids, its RLE or polygons per annotation) → ``qgn import`` reads that back
    as pycocotools reads it, and its masks (``segmentation_mode="mask"``) pixel-identical to the
    project. (Datumaro's polygons lose the 1×1 image's pixel: ``"segmentation": []``, its box kept.)"""
    pytest.importorskip("datumaro")
    from datumaro.components.dataset import Dataset

    sizes = [(37, 53), (1, 1), (9, 4), (20, 31)]
    paths, labels = [], {}
    for i, (height, width) in enumerate(sizes):
        paths.append(tmp_path / "images" / f"im{i}.png")
        paths[-1].parent.mkdir(exist_ok=True)
        Image.new("RGB", (width, height), (i, 9, 9)).save(paths[-1])
        labels[f"im{i}"] = blobs(10 + i, height, width) if i != 2 else np.full((height, width), VOID, np.int64)
    labels["im1"][0, 0] = 2
    project = Project.create(tmp_path / "project", paths, CLASSES)
    for image in project.images:
        project.save_annotation(image, labels[image.path.stem])
    export_project(project, tmp_path / "out", ["coco"], images="copy")
    ours = tmp_path / "out" / "coco" / "annotations" / "instances_default.json"
    read = pycocotools_labels(ours, CLASSES)
    assert sorted(read) == sorted(labels)
    for name, label in labels.items():
        np.testing.assert_array_equal(read[name], label, err_msg=name)
    logging.getLogger().setLevel(logging.ERROR)
    for mode in ("mask", "guess"):
        Dataset.import_from(str(tmp_path / "out" / "coco"), "coco_instances").export(
            str(tmp_path / mode), "coco_instances", save_media=True, segmentation_mode=mode)
        theirs = tmp_path / mode / "annotations" / "instances_default.json"
        expected = pycocotools_labels(theirs, CLASSES)
        got = qgn_labels(tmp_path / mode, CLASSES)
        assert sorted(got) == sorted(labels)
        for name in labels:
            np.testing.assert_array_equal(got[name], expected[name], err_msg=f"{mode} {name}")
            if mode == "mask":
                np.testing.assert_array_equal(got[name], labels[name], err_msg=name)


def test_fiftyones_coco_layout_finds_its_images_and_a_file_of_no_labels_is_coco(tmp_path):
    """FiftyOne's COCODetectionDataset (fiftyone/utils/coco.py: ``labels.json`` beside ``data/``,
    where its importer and exporter keep the images): ``qgn import`` finds the images there (it
    looked in images/ and beside the JSON only: "no image found"). When no sample has a label,
    FiftyOne writes no ``annotations`` and no ``categories``: that file was not taken for COCO at
    all — the folder was read as one of id PNGs, its photo as a label map."""
    from qgn.project_import import import_into_project

    (tmp_path / "fo" / "data").mkdir(parents=True)
    Image.new("RGB", (4, 3)).save(tmp_path / "fo" / "data" / "a.png")
    doc = {"categories": [{"id": 1, "name": "sky"}], "images": [{"id": 1, "file_name": "a.png", "width": 4,
                                                                   "height": 3}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 1,
                            "segmentation": {"size": [3, 4], "counts": [3, 9]}}]}
    (tmp_path / "fo" / "labels.json").write_text(json.dumps(doc))
    report = import_into_project(tmp_path / "fo", tmp_path / "p", classes=CLASSES)
    assert sorted(report.imported) == ["a"] and not report.skipped
    (image,) = report.project.images
    assert image.path == tmp_path / "fo" / "data" / "a.png"
    expected = np.full((3, 4), 2)
    expected.T.flat[:3] = VOID  # column-major: the first 3 pixels (column 0) are in no mask
    np.testing.assert_array_equal(report.project.load_annotation(image), expected)
    del doc["annotations"]
    doc["categories"] = []
    (tmp_path / "fo" / "labels.json").write_text(json.dumps(doc))
    assert scan_dataset(tmp_path / "fo").format == "coco"
    report = import_into_project(tmp_path / "fo", tmp_path / "blank", classes=CLASSES)
    (image,) = report.project.images
    np.testing.assert_array_equal(report.project.load_annotation(image), np.full((3, 4), VOID))


def test_label_studios_coco_names_and_boxes(tmp_path):
    """Label Studio's COCO export (label_studio_sdk converter.py ``convert_to_coco``) names each image
    as it read it — relative to its own scratch folder (``../../…/images/a.png``) or the task's URL
    (``/data/local-files/?d=…``) — and writes a rectangle as ``"segmentation": []`` with its
    ``bbox``. With ``--images`` the images are found by their base name there (they were not: the
    names lead outside the file's folder), and a box is its rectangle as pycocotools draws a box
    (it was no pixel at all)."""
    pytest.importorskip("pycocotools")
    from pycocotools import mask as mask_api

    (tmp_path / "photos").mkdir()
    for name in ("a.png", "b.png"):
        Image.new("RGB", (31, 20)).save(tmp_path / "photos" / name)
    box = [4.4, 2.5, 17.2, 9.9]
    doc = {"images": [{"id": 0, "file_name": "../../ls/media/images/a.png", "width": 31, "height": 20},
                      {"id": 1, "file_name": "/data/local-files/?d=photos/b.png", "width": 31, "height": 20}],
           "categories": [{"id": 0, "name": "car"}, {"id": 1, "name": "sky"}],
           "annotations": [{"id": 0, "image_id": 0, "category_id": 0, "segmentation": [], "bbox": box,
                            "iscrowd": 0},
                           {"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[1, 1, 9, 1, 5, 8]],
                            "bbox": [1, 1, 8, 7], "iscrowd": 0}]}
    (tmp_path / "coco").mkdir()
    (tmp_path / "coco" / "result.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="--images"):
        scan_dataset(tmp_path / "coco" / "result.json").items[0].read(CLASSES)
    items = {item.name: item for item in scan_dataset(tmp_path / "coco" / "result.json",
                                                      images=tmp_path / "photos").items}
    assert {name: item.image for name, item in items.items()} == {"a": tmp_path / "photos" / "a.png",
                                                                  "b": tmp_path / "photos" / "b.png"}
    drawn = mask_api.decode(mask_api.frPyObjects(np.array([box]), 20, 31))[:, :, 0].astype(bool)  # COCO's box
    np.testing.assert_array_equal(items["a"].read(CLASSES), np.where(drawn, 1, VOID))
    np.testing.assert_array_equal(items["b"].read(CLASSES), pycocotools_labels(tmp_path / "coco" / "result.json",
                                                                               CLASSES)["b"])


def test_polygons_are_drawn_as_pycocotools_draws_them_part_for_part():
    """``polygon_mask`` against pycocotools (``frPyObjects`` of the parts, ``merge``d) on random
    polygons of 1–6 overlapping parts: vertices outside the image, on whole and half pixels, a
    repeated closing vertex, a zero-length edge, images down to 1×1."""
    mask_api = pytest.importorskip("pycocotools.mask")
    from qgn.formats.coco import polygon_mask

    rng = np.random.default_rng(1)
    for t in range(400):
        height, width = (int(v) for v in rng.integers(1, 40, 2))
        parts = []
        for _ in range(int(rng.integers(1, 7))):
            k = int(rng.integers(3, 10))
            xy = rng.random(2 * k) * np.tile([width * 1.6, height * 1.6], k) - np.tile([width * .3, height * .3], k)
            xy = np.round(xy) if t % 3 == 0 else np.round(xy * 2) / 2 if t % 5 == 0 else xy
            if t % 7 == 0:
                xy = np.concatenate([xy, xy[:2]])  # the first vertex again at the end
            if t % 11 == 0:
                xy = np.concatenate([xy[:2], xy])  # a zero-length edge
            parts.append(xy.tolist())
        expected = mask_api.decode(mask_api.merge(mask_api.frPyObjects(parts, height, width))).astype(bool)
        np.testing.assert_array_equal(polygon_mask(parts, height, width, "test"), expected, err_msg=str(t))
