"""Class names saved before the importers refused them at the door ("é" in NFC beside "é" in NFD,
a tab, spaces around a name) still open, read, autosave and take class edits: the door's rules
(``qgn.classes.check_class_names``, ``door_name_key``) are for the names that enter — an
importer's, a classes file's, a new or renamed class — never for what a user has saved. Such
projects and .qgt files are made here with the door's checks switched off, as the code before
them wrote them."""
from __future__ import annotations

import contextlib

import numpy as np
import pytest
from PIL import Image

import qgn.classes
from qgn.classes import ClassSet
from qgn.classes_edit import rename_class
from qgn.project import Project
from qgn.project_class_edit import apply_class_edit
from qgn.quadtree import Quadtree, read_qgt, write_qgt

NFC, NFD = "caf\u00e9", "cafe\u0301"
LEGACY = {"nfc-nfd": (NFC, NFD, "road"), "tab": ("a\tb", "road"), "spaces": (" car", "road")}


@contextlib.contextmanager
def as_before(monkeypatch):
    """The code before the door: class names checked only for repeats (trimmed, case ignored)."""
    def old_rule(names, source, lines=None, key=None):
        seen = set()
        for name in names:
            assert name.strip().casefold() not in seen
            seen.add(name.strip().casefold())

    with monkeypatch.context() as patch:
        patch.setattr(qgn.classes, "check_unique_names", old_rule)
        patch.setattr(qgn.classes, "check_class_names", old_rule)
        yield


def legacy_label(k: int) -> np.ndarray:
    """Every class of a k-class set and ignore (255), in bands: the pixels a rename must keep."""
    out = np.full((8, 12), 255, np.uint8)
    for i in range(k):
        out[:, 3 * i:3 * i + 3] = i
    return out


def legacy_project(root, names, monkeypatch) -> Project:
    image = root.parent / "img.png"
    Image.new("RGB", (12, 8)).save(image)
    with as_before(monkeypatch):
        project = Project.create(root, [image], ClassSet(names, (), 255))
        project.save_annotation(project.images[0], legacy_label(len(names)))
        project.autosave(project.images[0], legacy_label(len(names))[::-1].copy())
    return project


@pytest.mark.parametrize("kind", LEGACY)
def test_a_project_saved_with_names_the_door_now_refuses_opens_with_its_annotations(tmp_path, monkeypatch, kind):
    """'café' in NFC and in NFD were two classes of a project: opening it said 'bad "classes"'."""
    names = LEGACY[kind]
    legacy_project(tmp_path / "p", names, monkeypatch)
    project = Project.open(tmp_path / "p")
    assert project.classes.names == names
    np.testing.assert_array_equal(project.load_annotation(project.images[0]), legacy_label(len(names)))


@pytest.mark.parametrize("kind", LEGACY)
def test_a_qgt_saved_with_names_the_door_now_refuses_reads(tmp_path, monkeypatch, kind):
    """A .qgt holding 'café' twice (NFC, NFD) read as 'corrupt: class block'."""
    names = LEGACY[kind]
    lab = legacy_label(len(names)) % 255  # every class, no ignore
    with as_before(monkeypatch):
        write_qgt(tmp_path / "a.qgt", Quadtree.from_label(lab, len(names)), ClassSet(names, (), 255))
    qt, classes = read_qgt(tmp_path / "a.qgt")
    assert classes.names == names
    np.testing.assert_array_equal(qt.to_label(), lab)


def test_one_of_an_nfc_nfd_pair_can_be_renamed_and_not_into_its_twin(tmp_path, monkeypatch):
    legacy_project(tmp_path / "p", LEGACY["nfc-nfd"], monkeypatch)
    project = Project.open(tmp_path / "p")
    with pytest.raises(ValueError, match="there is already a class"):  # the door's rule for a new name
        rename_class(project.classes, 1, "CAF\u00c9")
    apply_class_edit(project, rename_class(project.classes, 1, "cafe (decomposed)"))
    again = Project.open(tmp_path / "p")
    assert again.classes.names == (NFC, "cafe (decomposed)", "road")
    np.testing.assert_array_equal(again.load_annotation(again.images[0]), legacy_label(3))
