"""`qgn import DIR --format ids` (and auto) on the README's ``folder`` dataset — ``images/``,
``labels/``, ``classes.txt``, the layout ``qgn train`` reads — imports every label with its image,
and a photo is never taken for a label map."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from qgn.cli.main import main
from qgn.data.synthetic import SYNTHETIC_CLASSES
from qgn.project import Project
from qgn.quadtree.label_io import read_label
from qgn_studio.testing import write_samples


@pytest.fixture
def folder_dataset(tmp_path):
    root = tmp_path / "ds"
    paths = write_samples(root, 4, (64, 96))  # images/NAME.png (RGB photos) + labels/NAME.png (ids)
    (root / "classes.txt").write_text("\n".join(SYNTHETIC_CLASSES.names) + "\n")
    return root, paths


@pytest.mark.parametrize("fmt", ["ids", "auto"])
def test_folder_layout_imports_as_it_is(folder_dataset, tmp_path, capsys, fmt):
    root, paths = folder_dataset
    code = main(["import", str(root), "--format", fmt, "--project", str(tmp_path / "p")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "imported 4 of 4" in out
    project = Project.open(tmp_path / "p")
    assert sorted(im.path for im in project.images) == sorted(p.resolve() for p in paths)
    for im in project.images:
        np.testing.assert_array_equal(project.load_annotation(im), read_label(root / "labels" / im.path.name))


def test_a_photo_is_never_a_label_map(folder_dataset, tmp_path, capsys):
    root, paths = folder_dataset
    photo = tmp_path / "loose" / "photo.png"  # a folder of PNGs where one is an RGB photo
    photo.parent.mkdir()
    Image.fromarray(np.asarray(Image.open(paths[0]))).save(photo)
    Image.fromarray(read_label(root / "labels" / paths[1].name).astype(np.uint8)).save(photo.parent / "ok.png")
    (tmp_path / "images").mkdir(exist_ok=True)
    Image.open(paths[1]).save(tmp_path / "images" / "ok.png")
    Image.open(paths[0]).save(tmp_path / "images" / "photo.png")
    code = main(["import", str(photo.parent), "--format", "ids", "--project", str(tmp_path / "p"),
                 "--classes", str(root / "classes.txt")])
    out = capsys.readouterr().out
    assert code == 2 and "imported 1 of 2" in out
    assert "photo" in out and "not a label map" in out
