"""`qgn relink PROJECT FOLDER [--dry-run]`: what it says, what it writes, and its errors."""
from __future__ import annotations

import json

import numpy as np
from PIL import Image

from qgn.classes import ClassSet
from qgn.project import Project

CLASSES = ClassSet(("sky", "road"), ((70, 130, 180), (128, 64, 128)), 255)


def moved_project(tmp_path):
    paths = []
    for i, name in enumerate(("a.png", "b.png")):
        path = tmp_path / "old" / name
        path.parent.mkdir(exist_ok=True)
        Image.new("RGB", (16, 8), (i, i, i)).save(path)
        paths.append(path)
    project = Project.create(tmp_path / "P", paths, CLASSES)
    entry = project.image_for(paths[0])
    project.save_annotation(entry, np.ones((8, 16), np.uint8))
    project.note_image_file(entry)
    (tmp_path / "old").rename(tmp_path / "new")
    return project.root


def test_dry_run_says_what_it_would_do_and_writes_nothing(tmp_path, run_cli):
    root = moved_project(tmp_path)
    before = (root / "project.json").read_bytes()
    code, out, err = run_cli("relink", root, tmp_path / "new", "--dry-run")
    assert code == 0, err
    assert "found 2 of 2 missing image(s)" in out
    assert f"would relink {tmp_path / 'old' / 'a.png'} -> {tmp_path / 'new' / 'a.png'} (bytes)" in out
    assert (root / "project.json").read_bytes() == before


def test_relink_points_the_project_at_the_files_and_keeps_the_annotation(tmp_path, run_cli):
    root = moved_project(tmp_path)
    code, out, err = run_cli("relink", root, tmp_path / "new")
    assert code == 0 and err == "", err
    assert out.count("relinked ") == 2
    project = Project.open(root)
    assert [im.path for im in project.images] == [tmp_path / "new" / "a.png", tmp_path / "new" / "b.png"]
    assert np.array_equal(project.load_annotation(project.images[0]), np.ones((8, 16), np.uint8))
    code, out, _ = run_cli("relink", root, tmp_path / "new")
    assert code == 0 and "no image of the project is missing" in out


def test_images_left_missing_are_named_and_the_status_is_2(tmp_path, run_cli):
    root = moved_project(tmp_path)
    (tmp_path / "new" / "b.png").unlink()
    code, out, err = run_cli("relink", root, tmp_path / "new")
    assert code == 2
    assert f"{tmp_path / 'old' / 'b.png'}: not found in {tmp_path / 'new'}" in err
    assert err.strip().splitlines()[-1].startswith("qgn relink: error: 1 of 2 missing image(s) are still missing")
    assert json.loads((root / "project.json").read_text())["images"][0]["path"] == str(tmp_path / "new" / "a.png")


def test_bad_arguments_are_one_line_errors(tmp_path, run_cli):
    root = moved_project(tmp_path)
    for argv, named in (((root, tmp_path / "nowhere"), "FOLDER"), ((tmp_path / "new", tmp_path / "new"), "project.json"),
                        ((root, tmp_path / "new" / "a.png"), "FOLDER")):
        code, out, err = run_cli("relink", *argv)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith("qgn relink: error: ") and named in lines[0], err
        assert "Traceback" not in err


def test_on_a_terminal_a_line_says_how_far_the_search_is_and_is_blanked_at_its_end(tmp_path, run_cli, monkeypatch):
    # a FOLDER of many files (a home folder, a photo library) was walked and hashed with nothing said
    import sys

    import qgn.project_relink

    root = moved_project(tmp_path)
    for i in range(3):
        (tmp_path / "new" / f"other{i}.txt").write_text("x")
    monkeypatch.setattr(qgn.project_relink, "REPORT_EVERY", 2)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # capsys's stderr
    code, out, err = run_cli("relink", root, tmp_path / "new", "--dry-run")
    assert code == 0 and out.count("would relink") == 2
    assert err == "".join(f"\rqgn relink: looked at {n} files in FOLDER".ljust(64) for n in (2, 4)) + \
        "\r" + " " * 64 + "\r"
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    code, out, err = run_cli("relink", root, tmp_path / "new", "--dry-run")
    assert code == 0 and err == ""


def test_on_a_terminal_the_bytes_checked_are_counted(tmp_path, run_cli, monkeypatch):
    import sys

    import qgn.progress

    paths = []
    for i in range(3):
        path = tmp_path / "old" / f"{i}.png"
        path.parent.mkdir(exist_ok=True)
        Image.new("RGB", (16, 8), (i, i, i)).save(path)
        paths.append(path)
    project = Project.create(tmp_path / "P", paths, CLASSES)
    for path in paths:
        entry = project.image_for(path)
        project.save_annotation(entry, np.ones((8, 16), np.uint8))
        project.note_image_file(entry)
    (tmp_path / "old").rename(tmp_path / "new")
    monkeypatch.setattr(qgn.progress, "SHOW_AFTER_S", 1e9)  # no time estimate
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # capsys's stderr
    code, out, err = run_cli("relink", project.root, tmp_path / "new", "--dry-run")
    assert code == 0 and out.count("would relink") == 3
    assert err == "".join(f"\rqgn relink: checking the bytes of {i}/3 files".ljust(64) for i in (1, 2)) + \
        "\r" + " " * 64 + "\r"
