"""Exports of big label maps fit in a few bytes per pixel (issue 22 item 12) and write exactly the
bytes the whole-picture writers wrote (``export_reference``: today's code paths before the change,
kept as the reference): CVAT class and object masks, the Cityscapes gtFine files, COCO's RLE
annotations, labelme's polygons. Peak memory is ``tracemalloc``'s over the export, the label map
itself (1 byte per pixel, made before) not counted; the benchmark for 64 MP is
benchmarks/bench_export_memory.py."""
from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from qgn.classes import ClassSet
from qgn.formats import FORMATS, ExportItem

import export_reference as reference
from sample_files import blobby_label, blocky_label

TEN = ClassSet.generic(10, 255)


def _cases():
    """(name, label, classes): regions with curved borders, single-pixel detail full of diagonal
    touches, no void value, 16-bit labels, one-pixel-thin maps."""
    many = ClassSet.generic(300, 300)
    sixteen = blocky_label(5, 40, 52, 30, 300, cell=(1, 2, 4), noise=0.1, dtype=np.uint16) * 9
    sixteen[sixteen == 2700] = 300
    return [
        ("blobby", blobby_label(1, 240, 320, 10, 255, cell=24), TEN),
        ("pixels", blocky_label(2, 61, 77, 6, 255, cell=(1, 2, 3), noise=0.3, dtype=np.uint8), TEN),
        ("no-void", blobby_label(3, 90, 70, 8, cell=12), ClassSet.generic(8)),
        ("uint16", sixteen, many),
        ("row", blocky_label(4, 1, 50, 3, 255, cell=1, dtype=np.uint8), TEN),
        ("column", blocky_label(6, 50, 1, 3, 255, cell=1, dtype=np.uint8), TEN),
    ]


CASES = _cases()


def _written(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _export(name: str, label, classes, out: Path, stem: str = "a") -> dict[str, bytes]:
    FORMATS[name].export_items([ExportItem(stem, label)], classes, out)
    return _written(out)


def _peak(name: str, label, classes, out: Path) -> int:
    """The traced peak of one export, the least of two runs: tracemalloc counts every thread's
    allocations, and once in the full suite (not alone) the Cityscapes export peaked at 14.4 MB
    against 6.8-7.3 MB in every run of its own; a peak the export itself needs shows in both runs."""
    peaks = []
    for attempt in range(2):
        tracemalloc.start()
        try:
            FORMATS[name].export_items([ExportItem("big", label)], classes, Path(out) / str(attempt))
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    return min(peaks)


@pytest.fixture(scope="module")
def big_label() -> np.ndarray:
    """2048 × 2048, ten classes and void in regions about 64 px across (the benchmark's kind): big
    enough that the few megabytes a streaming writer needs for its bands are well under a byte per
    pixel, as they are at 64 MP."""
    return blobby_label(11, 2048, 2048, 10, 255, cell=64)


# ------------------------------------------------------------------------------------------ CVAT
@pytest.mark.parametrize("case", [c for c in CASES if c[0] != "uint16"], ids=lambda c: c[0])
def test_cvat_export_is_byte_identical_to_the_whole_picture_writer(tmp_path, case):
    _, label, classes = case
    assert _export("cvat", label, classes, tmp_path) == reference.cvat(label, classes, "a")


def test_cvat_export_of_a_sixteen_bit_map(tmp_path):
    classes = ClassSet.generic(300, 300)
    label = blocky_label(8, 30, 40, 20, 300, cell=2, dtype=np.uint16) * 13
    label[label == 13 * 300] = 300
    assert _export("cvat", label, classes, tmp_path) == reference.cvat(label, classes, "a")


def test_cvat_export_memory_is_a_few_bytes_per_pixel(tmp_path, big_label):
    assert _peak("cvat", big_label, TEN, tmp_path) < 2.0 * big_label.size  # was 8


# ------------------------------------------------------------------------------------ Cityscapes
def _cityscapes_classes():
    from qgn.data.cityscapes import CITYSCAPES_TRAIN_CLASSES

    return ClassSet(tuple(name for _, _, name, _ in CITYSCAPES_TRAIN_CLASSES[:10]),
                    tuple(rgb for _, _, _, rgb in CITYSCAPES_TRAIN_CLASSES[:10]), 255)  # their official colours


@pytest.mark.parametrize("case, official", [(c, False) for c in CASES] + [(c, True) for c in CASES
                                                                          if c[2].num_classes <= 10],
                         ids=lambda v: v[0] if isinstance(v, tuple) else ("cityscapes-ids" if v else "label_colors"))
def test_cityscapes_export_is_byte_identical_to_the_whole_picture_writer(tmp_path, case, official):
    """Custom classes (label_colors.txt, ids = class + 1) and Cityscapes' own (official ids, train ids)."""
    from qgn.formats.cityscapes import CityscapesWriter

    _, label, classes = case
    if official:
        cs = _cityscapes_classes()
        classes = ClassSet(cs.names[:classes.num_classes], cs.palette[:classes.num_classes], classes.ignore_index)
    files = _export("cityscapes", label, classes, tmp_path / "new")
    chosen = CityscapesWriter(classes, tmp_path / "settings")
    expected = reference.cityscapes(label, classes, chosen.ids, chosen.trains, chosen.colours, "gtFine/train/qgn",
                                    "qgn_000000_000000")
    assert {k: v for k, v in files.items() if k.startswith("gtFine/")} == expected
    assert ("gtFine/train/qgn/qgn_000000_000000_gtFine_labelTrainIds.png" in expected) == official


def test_cityscapes_export_memory_is_a_few_bytes_per_pixel(tmp_path, big_label):
    assert _peak("cityscapes", big_label, TEN, tmp_path / "custom") < 2.5 * big_label.size  # was 16
    assert _peak("cityscapes", big_label, _cityscapes_classes(), tmp_path / "official") < 2.5 * big_label.size


# ------------------------------------------------------------------------------------------ COCO
@pytest.mark.parametrize("case", CASES, ids=lambda c: c[0])
def test_coco_export_is_byte_identical_to_one_mask_per_class(tmp_path, case):
    import json

    _, label, classes = case
    path = tmp_path / "annotations" / "instances_default.json"
    _export("coco", label, classes, tmp_path)
    doc = json.loads(path.read_bytes())
    assert doc["annotations"] == reference.coco_annotations(label, classes)
    doc["annotations"] = reference.coco_annotations(label, classes)
    assert json.dumps(doc, separators=(",", ":")).encode("utf-8") == path.read_bytes()


def test_coco_export_memory_is_a_few_bytes_per_pixel(tmp_path, big_label):
    assert _peak("coco", big_label, TEN, tmp_path) < 1.5 * big_label.size  # was 4.8


# --------------------------------------------------------------------------------------- labelme
@pytest.mark.parametrize("case", CASES, ids=lambda c: c[0])
def test_labelme_export_is_byte_identical_to_the_edge_dictionary_writer(tmp_path, case):
    _, label, classes = case
    assert _export("labelme", label, classes, tmp_path) == reference.labelme(label, classes, "a")


def test_labelme_export_without_any_region_of_a_class(tmp_path):
    from qgn.formats.labelme import labelme_json

    label = np.zeros((3, 4), np.uint8)
    classes = ClassSet.generic(2)
    assert _export("labelme", label, classes, tmp_path) == reference.labelme(label, classes, "a")
    assert b'"shapes": [\n  {' in b"".join(labelme_json(label, classes, "a.png"))


@pytest.mark.parametrize("seed", range(40))
def test_labelme_outlines_equal_the_edge_dictionary_on_diagonal_touches(seed):
    """Single pixels and blocks of 1–3 px in up to four classes and void: every kind of vertex
    where regions touch diagonally, holes in holes, regions inside holes."""
    from qgn.formats.polygons import region_polygons

    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(1, 40, 2))
    label = blocky_label(rng, h, w, int(rng.integers(1, 5)), 255, cell=(1, 1, 2, 3), noise=float(rng.random() / 2),
                         dtype=np.uint8)
    values = [0, 1, 2, 3, 255]
    assert region_polygons(label, values) == reference.region_polygons(label, values)


def test_labelme_export_memory_is_a_few_bytes_per_pixel(tmp_path):
    """1024 × 1024 (tracing runs in Python, slow under tracemalloc): the padded mask of one class
    (1 B/px), the corners, and about a megabyte of counting."""
    label = blobby_label(12, 1024, 1024, 10, 255, cell=64)
    assert _peak("labelme", label, TEN, tmp_path) < 3.0 * label.size  # was 23


# ---------------------------------------------------------------------------------------- CamVid
@pytest.mark.parametrize("case", [c for c in CASES if c[0] != "uint16"], ids=lambda c: c[0])
def test_camvid_mask_is_byte_identical_to_the_whole_picture_writer(tmp_path, case):
    from qgn.formats.camvid import CamvidWriter

    _, label, classes = case
    files = _export("camvid", label, classes, tmp_path / "new")
    colours = CamvidWriter(classes, tmp_path / "settings").colours
    assert files["defaultannot/a.png"] == reference.camvid_mask(label, classes, colours)


def test_camvid_export_memory_is_a_few_bytes_per_pixel(tmp_path, big_label):
    assert _peak("camvid", big_label, TEN, tmp_path) < 1.5 * big_label.size  # was 11


# ---------------------------------------------------------------------------------------- levels
@pytest.mark.parametrize("case", [c for c in CASES if c[0] != "uint16"], ids=lambda c: c[0])
def test_levels_pictures_are_byte_identical_to_the_whole_picture_writer(tmp_path, case):
    _, label, classes = case
    assert _export("levels", label, classes, tmp_path) == reference.levels(label, classes, "a")


def test_levels_export_memory_is_a_few_bytes_per_pixel(tmp_path, big_label):
    assert _peak("levels", big_label, TEN, tmp_path) < 3.0 * big_label.size  # was 14.7


def test_a_bad_value_is_named_from_the_whole_map_though_codes_are_made_in_bands():
    from qgn.quadtree import build_tpyramid

    label = np.zeros((300, 600), np.uint8)
    label[5, 5], label[290, 7] = 9, 7
    with pytest.raises(ValueError, match=r"label values \[7, 9\] are outside the classes 0..3"):
        build_tpyramid(label, 4, 255)


# ---------------------------------------------------------------------------------------- shared
@pytest.mark.parametrize("name", ["cvat", "cityscapes", "camvid", "coco", "labelme"])
def test_a_view_into_a_padded_grid_exports_as_its_copy(tmp_path, name):
    """``qgn export X.qgt`` hands the writers the label map as a view into the quadtree's padded
    level-0 grid (``take_label``): rows not contiguous."""
    label = blobby_label(9, 70, 90, 10, 255, cell=16)
    padded = np.zeros((128, 128), np.uint8)
    padded[:70, :90] = label
    assert _export(name, padded[:70, :90], TEN, tmp_path / "view") == _export(name, label, TEN, tmp_path / "copy")
