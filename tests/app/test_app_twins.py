"""A project.json that names one image file twice (two spellings of its path): the app shows the
entry with the annotation, once, and says so; nothing is changed on disk."""
from __future__ import annotations

import html
import json
import os

import numpy as np
from PIL import Image

from qgn.classes import ClassSet
from studio_steps import WAIT_MS

CLASSES = ClassSet(("sky", "road", "car"), ((70, 130, 180), (128, 64, 128), (0, 0, 142)), 255)


def test_the_second_entrys_annotation_is_shown_and_the_banner_says_why(qtbot, window, model_path, tmp_path):
    from qgn.project import Project

    (tmp_path / "real").mkdir()
    real = tmp_path / "real" / "a.png"
    Image.new("RGB", (32, 24), (1, 2, 3)).save(real)
    os.symlink(tmp_path / "real", tmp_path / "link", target_is_directory=True)
    project = Project.create(tmp_path / "P", [real], CLASSES)
    doc = json.loads((project.root / "project.json").read_text())
    doc["images"].append({"path": str(tmp_path / "link" / "a.png"), "key": "a-2", "done": False})
    (project.root / "project.json").write_text(json.dumps(doc))  # as an older version left it
    project = Project.open(project.root)
    label = np.full((24, 32), 2, np.uint8)
    project.save_annotation(next(im for im in project.images if im.key == "a-2"), label)
    window.start([str(project.root)], str(model_path))
    qtbot.waitUntil(lambda: window.projects.project is not None and len(window.docs) == 1, timeout=WAIT_MS)
    text, kind = window.canvas.banner.messages["twins"]
    assert kind == "warning" and "entries a-2 and a" in html.unescape(text)
    window.annotator.set_mode(True)
    qtbot.waitUntil(lambda: window.docs[0].annotation is not None, timeout=WAIT_MS)
    np.testing.assert_array_equal(window.docs[0].annotation.label, label)
    assert [e["key"] for e in json.loads((project.root / "project.json").read_text())["images"]] == ["a", "a-2"]
