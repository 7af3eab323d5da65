"""``x.PNG`` among a CVAT / Pascal-VOC export's ``SegmentationClass/`` masks or a FiftyOne
directory's ``labels/``: the readers listed ``*.png`` through ``rglob``, which ignores case only on
Windows, so elsewhere the mask was skipped without a word (its image imported unlabelled or not at
all). They read ``.png`` in any case, as the folder import does (``qgn.formats.source.is_png_name``),
and refuse ``x.png`` beside ``x.PNG`` naming both, as it does (``check_png_clash``)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from qgn.classes import ClassSet
from qgn.formats import ExportItem, export_dataset, scan_dataset
from qgn.project import Project
from sample_files import blocky_label

CLASSES = ClassSet(("road", "sky"), ((128, 64, 128), (70, 130, 180)), 255)
MASKS = {"cvat": "SegmentationClass", "fiftyone": "labels"}


def exported(tmp_path, fmt: str):
    """(the export's folder, {item name: its label}) of two items exported as ``fmt`` with their photos."""
    rng = np.random.default_rng(3)
    items = []
    for name in ("a", "b"):
        photo = tmp_path / "photos" / f"{name}.jpg"
        photo.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (24, 32, 3), np.uint8)).save(photo)
        items.append(ExportItem(name, blocky_label(rng, 24, 32, 2, 255, cell=4, void_cells=True), photo))
    export_dataset(items, CLASSES, tmp_path / "out", [fmt], images="copy")
    return tmp_path / "out" / fmt, {item.name: item.label for item in items}


@pytest.mark.parametrize("fmt", ["cvat", "fiftyone"])
def test_an_upper_case_mask_is_read(tmp_path, fmt, run_cli):
    root, labels = exported(tmp_path, fmt)
    masks = root / MASKS[fmt]
    (masks / "b.png").rename(masks / "b.PNG")
    dataset = scan_dataset(root)
    assert sorted(item.name for item in dataset.items) == ["a", "b"]
    for item in dataset.items:
        np.testing.assert_array_equal(item.read(dataset.file_classes), labels[item.name])
    code, out, err = run_cli("import", root, "--project", tmp_path / "p")
    assert code == 0 and "imported 2 of 2" in out, out + err
    project = Project.open(tmp_path / "p")
    assert {im.path.stem: project.load_annotation(im) is not None for im in project.images} == {"a": True, "b": True}


@pytest.mark.parametrize("fmt", ["cvat", "fiftyone"])
def test_x_png_beside_x_upper_png_is_refused_naming_both(tmp_path, fmt, run_cli):
    root, _ = exported(tmp_path, fmt)
    lower = root / MASKS[fmt] / "a.png"
    upper = lower.with_suffix(".PNG")
    upper.write_bytes(lower.read_bytes())
    before = sorted((p, p.read_bytes()) for p in root.rglob("*") if p.is_file())
    code, out, err = run_cli("import", root, "--project", tmp_path / "p")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("qgn import: error: "), err
    assert str(lower) in lines[0] and str(upper) in lines[0] and "rename one" in lines[0], err
    assert not (tmp_path / "p").exists()
    assert sorted((p, p.read_bytes()) for p in root.rglob("*") if p.is_file()) == before
