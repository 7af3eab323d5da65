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


def test_an_image_whose_file_is_a_link_loop_is_removed_and_brought_back(tmp_path):
    image, other = tmp_path / "img.png", tmp_path / "other.png"
    for path in (image, other):
        Image.new("RGB", (12, 8)).save(path)
    project = Project.create(tmp_path / "p", [image, other], ClassSet(("car", "sky"), (), 255))
    label = np.zeros((8, 12), np.uint8)
    label[2:5, 3:9] = 1
    project.save_annotation(project.images[0], label)
    image.unlink()
    os.symlink("img.png.b", image)
    os.symlink("img.png", tmp_path / "img.png.b")
    project = Project.open(tmp_path / "p")
    project.remove_image(project.images[0])
    assert [im.path.name for im in Project.open(tmp_path / "p").images] == ["other.png"]
    image.unlink()
    (tmp_path / "img.png.b").unlink()
    Image.new("RGB", (12, 8)).save(image)
    added = project.add_images([image])
    np.testing.assert_array_equal(project.load_annotation(added[0]), label)


def test_an_image_reached_through_a_folder_link_whose_file_is_a_loop_is_brought_back(tmp_path):
    """As above, the image's folder reached through a link (photos -> real/): the record was keyed
    by the unresolved path (/T/photos/img.png), the re-added image matched by its resolved one
    (/T/real/img.png), and its annotation stayed in removed/. Both are keyed the same way."""
    (tmp_path / "real").mkdir()
    os.symlink("real", tmp_path / "photos")
    image, other = tmp_path / "photos" / "img.png", tmp_path / "photos" / "other.png"
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
    image.unlink()
    image.with_name("img.png.b").unlink()
    Image.new("RGB", (12, 8)).save(image)
    added = project.add_images([image])
    np.testing.assert_array_equal(project.load_annotation(added[0]), label)
    assert not [p for p in (tmp_path / "p" / "removed").rglob("*") if p.is_file()]
