"""One image file named by two entries of project.json (two spellings of its path, e.g. through a
linked folder): no new such entry is made, and one already there is used once — the entry with the
newest annotation is the one shown and exported; the other's annotation is kept, never deleted."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from qgn.classes import ClassSet
from qgn.project import Project
from qgn.project_export import export_project

CLASSES = ClassSet(("sky", "road"), ((70, 130, 180), (128, 64, 128)), 255)


@pytest.fixture
def linked(tmp_path):
    """real/a.png, and link -> real: two spellings of one file."""
    (tmp_path / "real").mkdir()
    Image.new("RGB", (16, 8), (1, 2, 3)).save(tmp_path / "real" / "a.png")
    os.symlink(tmp_path / "real", tmp_path / "link", target_is_directory=True)
    return tmp_path / "real" / "a.png", tmp_path / "link" / "a.png"


def twin_project(tmp_path, linked, annotated=("a-2",)):
    """A project.json with entries a (real spelling) and a-2 (linked spelling) — as older versions
    wrote when a file was added again through the link — and annotations of ``annotated``."""
    real, link = linked
    project = Project.create(tmp_path / "P", [real], CLASSES)
    doc = json.loads((project.root / "project.json").read_text())
    doc["images"].append({"path": str(link), "key": "a-2", "done": False})
    (project.root / "project.json").write_text(json.dumps(doc))
    project = Project.open(project.root)
    for n, key in enumerate(annotated):
        image = next(im for im in project.images if im.key == key)
        path = project.annotation_path(image)
        project.save_annotation(image, np.full((8, 16), n, np.uint8))
        os.utime(path, ns=(10**18 + n * 10**9,) * 2)  # written in this order, a second apart
    return Project.open(project.root)


def test_adding_a_file_again_through_a_linked_folder_adds_no_entry(tmp_path, linked):
    real, link = linked
    project = Project.create(tmp_path / "P", [real], CLASSES)
    (again,) = project.add_images([link])
    assert again.key == "a" and len(project.images) == 1
    assert len(json.loads((project.root / "project.json").read_text())["images"]) == 1
    assert project.image_for(link) is project.image_for(real)


def test_the_annotated_entry_is_the_one_shown_and_exported_once(tmp_path, linked):
    real, link = linked
    project = twin_project(tmp_path, linked)
    before = (project.root / "project.json").read_bytes()
    assert project.image_for(real).key == "a-2" and project.image_for(link).key == "a-2"
    assert np.array_equal(project.load_annotation(project.image_for(real)), np.zeros((8, 16), np.uint8))
    assert [[im.key for im in group] for group in project.twins()] == [["a-2", "a"]]
    texts = []
    written = export_project(project, tmp_path / "out", ["png"], progress=lambda i, n, text: texts.append(text))
    assert sorted(p.name for p in written) == ["a-2.png", "classes.txt"]
    assert texts[0].startswith("a: skipped (project.json names its file a.png again as a-2, which is exported")
    assert (project.root / "project.json").read_bytes() == before, "reading and exporting write nothing"
    assert [im.key for im in project.images] == ["a", "a-2"], "no entry is dropped"


def test_of_two_annotations_the_newer_is_used_and_the_other_kept(tmp_path, linked):
    real, _ = linked
    project = twin_project(tmp_path, linked, annotated=("a-2", "a"))  # a saved last
    assert project.image_for(real).key == "a"
    assert np.array_equal(project.load_annotation(project.image_for(real)), np.ones((8, 16), np.uint8))
    written = export_project(project, tmp_path / "out", ["png"])
    assert sorted(p.name for p in written) == ["a.png", "classes.txt"]
    assert (project.root / "annotations" / "a-2.qgt").is_file(), "the other annotation is kept"


def test_a_write_keeps_each_entry_s_own_spelling_of_a_file_two_entries_share(tmp_path):
    # entries 'imgs/a.png' and './imgs/a.png' (two keys, one file): any write of project.json (a done
    # mark of another image) rewrote the first as './imgs/a.png' - the path text of the entry read
    # last for that file - changing an entry the write was not about
    root = tmp_path / "p"
    project = Project.create(root, [], CLASSES)
    (root / "imgs").mkdir()
    for name, colour in (("a.png", (1, 1, 1)), ("b.png", (2, 2, 2))):
        Image.new("RGB", (4, 2), colour).save(root / "imgs" / name)
    project.add_images([root / "imgs" / "a.png", root / "imgs" / "b.png"])
    doc = json.loads((root / "project.json").read_text())
    doc["images"] += [{"path": "./imgs/a.png", "key": "a2", "done": False},
                      {"path": "imgs/./b.png", "key": "b2", "done": False}]
    (root / "project.json").write_text(json.dumps(doc))
    spelled = [(e["key"], e["path"]) for e in doc["images"]]
    opened = Project.open(root)
    opened.set_done(opened.images[1], True)
    after = json.loads((root / "project.json").read_text())["images"]
    assert [(e["key"], e["path"]) for e in after] == spelled
    assert [e["done"] for e in after] == [False, True, False, False]
