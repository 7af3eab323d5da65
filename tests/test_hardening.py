"""Issue #16 (hardening): hostile project files, outputs that would overwrite inputs, memory bombs,
big images and one-line errors instead of tracebacks. Each test reproduces a finding of the issue."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from qgn.classes import ClassSet
from qgn.fileio import OutsideRootError, path_inside
from qgn.project import PROJECT_FILE, Project, ProjectError, export_project

CLASSES = ClassSet(("sky", "road", "car"), ((70, 130, 180), (128, 64, 128), (0, 0, 142)), 255)
LABEL = np.array([[0, 1, 2, 1], [255, 255, 1, 0]])


def run_cli(capsys, *argv):
    from qgn.cli.main import main

    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def make_project(tmp_path: Path, names=("a.png", "b.png")) -> Project:
    images = []
    for name in names:
        path = tmp_path / "imgs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (4, 2)).save(path)
        images.append(path)
    project = Project.create(tmp_path / "p", images, CLASSES)
    project.save_annotation(project.images[0], LABEL)
    return project


def edit_keys(project: Project, *keys) -> None:
    path = project.root / PROJECT_FILE
    doc = json.loads(path.read_text())
    for entry, key in zip(doc["images"], keys):
        entry["key"] = key
    path.write_text(json.dumps(doc))


def all_files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


# ------------------------------------------------------------------ 1. path traversal
@pytest.mark.parametrize("key", ["../../../../elsewhere/planted", "/tmp/absolute", "", ".", "..", "a\nb",
                                 "sub/a", ".hidden", "a b", 7])
def test_hostile_key_refuses_the_project(tmp_path, key):
    project = make_project(tmp_path)
    edit_keys(project, "a", key)
    with pytest.raises(ProjectError, match="key"):
        Project.open(project.root)


def test_keys_unique_ignoring_case(tmp_path):
    project = make_project(tmp_path)
    edit_keys(project, "Street", "street")
    with pytest.raises(ProjectError, match="same files"):
        Project.open(project.root)


def test_done_must_be_a_boolean(tmp_path):
    project = make_project(tmp_path)
    doc = json.loads((project.root / PROJECT_FILE).read_text())
    doc["images"][0]["done"] = "no"
    (project.root / PROJECT_FILE).write_text(json.dumps(doc))
    with pytest.raises(ProjectError, match="true or false"):
        Project.open(project.root)


def test_traversal_key_cannot_write_outside_out(tmp_path, capsys):
    project = make_project(tmp_path)
    edit_keys(project, "../../../../elsewhere/planted")
    before = all_files(tmp_path)
    code, _, err = run_cli(capsys, "export", "--project", project.root, "--out", tmp_path / "out")
    assert code == 2 and "key" in err and "Traceback" not in err
    assert all_files(tmp_path) == before


def test_in_memory_keys_cannot_escape_either(tmp_path):
    """Even a key set in code (not read from a file) never makes a writer leave its folder."""
    project = make_project(tmp_path)
    victim = tmp_path / "victim.qgt"
    victim.write_bytes(b"keep me")
    project.images[1].key = str(victim.with_suffix(""))  # an absolute path
    with pytest.raises(OutsideRootError):
        project.save_annotation(project.images[1], LABEL)
    with pytest.raises(OutsideRootError):
        project.discard_autosave(project.images[1])
    project.images[1].key = "../../victim"
    with pytest.raises(OutsideRootError):
        export_project(project, tmp_path / "out" / "x", ["png"])
    assert victim.read_bytes() == b"keep me"


def test_path_inside(tmp_path):
    assert path_inside(tmp_path, "a.png") == tmp_path / "a.png"
    assert path_inside(tmp_path, "sub", "a.png") == tmp_path / "sub" / "a.png"
    for bad in ("../a.png", "/etc/passwd", ".", "sub/../../a"):
        with pytest.raises(OutsideRootError):
            path_inside(tmp_path, bad)
    (tmp_path / "link").symlink_to(tmp_path.parent)
    with pytest.raises(OutsideRootError):
        path_inside(tmp_path, "link", "a.png")
