"""Removing an image whose file has become a loop of symbolic links (a moved folder, a sync tool's
leftovers): its annotation is kept in removed/ as any other's, and the image added back once a file
stands at its path again brings it back. ``Path.resolve`` raised RuntimeError ('Symlink loop') for
the record's path, and the removal failed."""
from __future__ import annotations

import os

import numpy as np
from PIL import Image

from qgn.classes import ClassSet
from qgn.project import Project


def _removed_as_a_loop_and_added_back(tmp_path, folder):
    """img.png and other.png in ``folder``, img.png annotated, its file turned into a loop of links,
    the image removed, a file put back at its path and added again: (project, names of the images left
    after the removal, the label saved, the image added back)."""
    image, other = folder / "img.png", folder / "other.png"
    for path in (image, other):
        Image.new("RGB", (12, 8)).save(path)
    project = Project.create(tmp_path / "p", [image, other], ClassSet(("car", "sky"), (), 255))
    label = np.zeros((8, 12), np.uint8)
    label[2:5, 3:9] = 1
    project.save_annotation(project.images[0], label)
    image.unlink()
    os.symlink("img.png.b", image)
    os.symlink("img.png", image.with_name("img.png.b"))
    project = Project.open(tmp_path / "p")
    project.remove_image(project.images[0])
    left = [im.path.name for im in Project.open(tmp_path / "p").images]
    image.unlink()
    image.with_name("img.png.b").unlink()
    Image.new("RGB", (12, 8)).save(image)
    (added,) = project.add_images([image])
    return project, left, label, added


def test_an_image_whose_file_is_a_link_loop_is_removed_and_brought_back(tmp_path):
    project, left, label, added = _removed_as_a_loop_and_added_back(tmp_path, tmp_path)
    assert left == ["other.png"]
    np.testing.assert_array_equal(project.load_annotation(added), label)


def test_an_image_reached_through_a_folder_link_whose_file_is_a_loop_is_brought_back(tmp_path):
    """As above, the image's folder reached through a link (photos -> real/): the record was keyed
    by the unresolved path (/T/photos/img.png), the re-added image matched by its resolved one
    (/T/real/img.png), and its annotation stayed in removed/. Both are keyed the same way."""
    (tmp_path / "real").mkdir()
    os.symlink("real", tmp_path / "photos")
    project, left, label, added = _removed_as_a_loop_and_added_back(tmp_path, tmp_path / "photos")
    assert left == ["other.png"]
    np.testing.assert_array_equal(project.load_annotation(added), label)
    assert not [p for p in (tmp_path / "p" / "removed").rglob("*") if p.is_file()]


def test_a_path_that_loops_is_stored_as_typed(tmp_path):
    """``Project._stored`` (how project.json spells a path) resolved it with ``Path.resolve``, which
    raises RuntimeError ('Symlink loop from …') for a loop of links: a write of project.json naming
    such a file (an image that became one, not yet spelled this session) failed with a Python
    message. A path that cannot be resolved is spelled as typed (relative inside the project's
    folder, absolute outside), and the write goes on; the image reads as missing where it is shown."""
    image = tmp_path / "img.png"
    Image.new("RGB", (12, 8)).save(image)
    project = Project.create(tmp_path / "p", [image], ClassSet(("car", "sky"), (), 255))
    inside, outside = project.root / "loop.png", tmp_path / "loop.png"
    for loop in (inside, outside):
        os.symlink(loop.name, loop)
    assert project._stored(inside) == "loop.png"
    assert project._stored(outside) == str(outside)
    assert project._stored(outside / "x.png") == str(outside / "x.png")  # a loop on the way to it
