"""``--classes FILE`` given a JSON file (``qgn convert``, ``stats``, ``import``, ``finetune``): every
command read it as a classes.txt, one class a line, so ``["road", "sky", "car"]`` became one class
of that name, a JSON list over several lines the classes '[', '"road",' …, and
``{"num_classes": 1000000000}`` a class named so - written into a .qgt or a new project, exit 0.
A JSON list of names and the classes.json a qgn export writes are now read as class lists; any
other JSON (malformed, nested too deeply, an object of another kind, a number) is one line."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from qgn.classes import ClassSet
from qgn.quadtree.qgt import read_qgt

HOSTILE = {
    "malformed": '["road", "sky",\n',
    "claims 10^9 classes": '{"num_classes": 1000000000}',
    "an object of names to ids": '{"road": 0, "sky": 1}',
    "a number": "1000000000",
    "nested 100000 deep": "[" * 100_000,
    "a name that is no text": '["road", 3]',
    "an empty list": "[]",
    "an ignore value past any label": '{"names": ["road", "sky"], "ignore_index": 1000000000}',
}


@pytest.fixture
def mask(tmp_path):
    path = tmp_path / "m.png"
    Image.fromarray(np.array([[0, 1], [1, 255]], np.uint8)).save(path)
    return path


def one_line(code: int, err: str, command: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f"qgn {command}: error: "), err
    assert "Traceback" not in err and "unexpected" not in err, err
    return lines[0]


@pytest.mark.parametrize("case", HOSTILE)
@pytest.mark.parametrize("command", ["convert", "stats", "import"])
def test_a_json_that_is_no_class_list_is_one_line(tmp_path, mask, run_cli, command, case):
    classes = tmp_path / "classes.json"
    classes.write_text(HOSTILE[case])
    args = {"convert": ["convert", mask, tmp_path / "o.qgt"], "stats": ["stats", mask],
            "import": ["import", tmp_path, "--format", "ids", "--images", tmp_path, "--project", tmp_path / "p"]}
    code, out, err = run_cli(*args[command], "--classes", classes)
    line = one_line(code, err, command)
    assert str(classes) in line and "--classes" in line, line
    assert not (tmp_path / "o.qgt").exists() and not (tmp_path / "p").exists()


def test_finetune_says_it_in_one_line_too(tmp_path, mask, run_cli):
    classes = tmp_path / "classes.json"
    classes.write_text(HOSTILE["claims 10^9 classes"])
    code, out, err = run_cli("finetune", "--model", "demo", "--images", tmp_path, "--labels", tmp_path,
                             "--classes", classes, "--out", tmp_path / "n.safetensors", "--iters", "1")
    line = one_line(code, err, "finetune")
    assert str(classes) in line and "not a class list" in line, line
    assert not (tmp_path / "n.safetensors").exists()


@pytest.mark.parametrize("text, names, palette", [
    ('["road", "sky", "car"]', ("road", "sky", "car"), None),
    ('[\n  "road",\n  "sky"\n]\n', ("road", "sky"), None),
    (json.dumps(ClassSet(("road", "sky"), ((1, 2, 3), (4, 5, 6)), 255).to_json()), ("road", "sky"), ((1, 2, 3), (4, 5, 6))),
])
def test_a_json_class_list_is_read_as_one(tmp_path, mask, run_cli, text, names, palette):
    classes = tmp_path / "classes.json"
    classes.write_text(text)
    code, out, err = run_cli("convert", mask, tmp_path / "o.qgt", "--classes", classes)
    assert code == 0, err
    _, read = read_qgt(tmp_path / "o.qgt")
    assert read.names == names and read.ignore_index == 255
    assert palette is None or read.palette == palette


def test_a_classes_txt_whose_first_class_is_bracketed_stays_a_classes_txt(tmp_path, mask, run_cli):
    classes = tmp_path / "classes.txt"
    classes.write_text("[road]\nsky\ncar\n")
    code, out, err = run_cli("convert", mask, tmp_path / "o.qgt", "--classes", classes)
    assert code == 0, err
    assert read_qgt(tmp_path / "o.qgt")[1].names == ("[road]", "sky", "car")


def test_a_byte_order_mark_before_the_json_is_read_past(tmp_path, mask, run_cli):
    classes = tmp_path / "c.json"
    classes.write_bytes(b'\xef\xbb\xbf["road","sky"]')  # (as Windows' Notepad saves UTF-8)
    code, out, err = run_cli("convert", mask, tmp_path / "o.qgt", "--classes", classes)
    assert code == 0, err
    assert read_qgt(tmp_path / "o.qgt")[1].names == ("road", "sky")


@pytest.mark.parametrize("text", ["[1]", "[]", '["road"]'])
def test_a_txt_is_a_classes_txt_whatever_its_text(tmp_path, mask, run_cli, text):
    classes = tmp_path / "classes.txt"
    classes.write_text(text + "\nsky\n")
    code, out, err = run_cli("convert", mask, tmp_path / "o.qgt", "--classes", classes)
    assert code == 0, err
    assert read_qgt(tmp_path / "o.qgt")[1].names == (text, "sky")
    classes.write_text(text)  # (its one line, the whole text JSON: as a classes.txt still)
    from qgn.quadtree.label_io import read_classes_file

    assert read_classes_file(classes).names == (text,)


def test_one_reader_one_default_ignore(tmp_path):
    from qgn.classes import classes_from_json
    from qgn.formats.cityscapes import read_classes_json
    from qgn.quadtree.label_io import read_classes_file

    listed = classes_from_json(["road", "sky"], "x")
    assert listed.ignore_index == 255  # as a classes.txt without an 'ignore:' line
    assert classes_from_json({"names": ["road", "sky"]}, "x") == listed
    path = tmp_path / "classes.json"
    path.write_text(json.dumps({"names": ["road", "sky"], "palette": [[1, 2, 3], [4, 5, 6]]}))
    assert read_classes_json(path) == read_classes_file(path) == ClassSet(("road", "sky"), ((1, 2, 3), (4, 5, 6)), 255)
    path.write_text(json.dumps({"names": ["road", " sky"], "palette": [[1, 2, 3], [4, 5, 6]]}))
    for read in (read_classes_json, read_classes_file):  # one rule for the names too
        with pytest.raises(ValueError, match="spaces"):
            read(path)
    path.write_text('["road", "sky"]')  # a Cityscapes tree's classes are matched by their colours
    with pytest.raises(ValueError, match="palette"):
        read_classes_json(path)


def test_past_255_names_a_list_asks_for_its_ignore_value(tmp_path, mask, run_cli):
    classes = tmp_path / "c.json"
    names = [f"c{i}" for i in range(256)]
    classes.write_text(json.dumps(names))
    code, out, err = run_cli("stats", mask, "--classes", classes)
    line = one_line(code, err, "stats")
    assert '"ignore_index": 65535' in line and "256 classes" in line, line
    classes.write_text(json.dumps({"names": names, "ignore_index": 65535}))
    from qgn.quadtree.label_io import read_classes_file

    assert read_classes_file(classes).ignore_index == 65535


def test_more_than_65535_classes_says_the_most(tmp_path, mask, run_cli):
    classes = tmp_path / "c.json"
    classes.write_text(json.dumps({"names": [f"c{i}" for i in range(65536)], "ignore_index": None}))
    code, out, err = run_cli("stats", mask, "--classes", classes)
    line = one_line(code, err, "stats")
    assert "65536 classes" in line and "at most 65535 classes" in line, line


@pytest.mark.parametrize("saved, ignore", [
    ({"names": ["road", "sky"]}, None),  # no "ignore_index": none, as every earlier version read it
    ({"names": [f"c{i}" for i in range(300)]}, None),  # uint16 maps, no ignore value: opened before
    ({"names": []}, None),  # Project.create with no classes writes this itself
    ({"names": ["road", "sky"], "ignore_index": None}, None),
    ({"names": ["road", "sky"], "ignore_index": 255}, 255),
])
def test_saved_class_lists_read_as_every_earlier_version_read_them(saved, ignore):
    """A class list a user gives in JSON enters through classes_from_json (255 by default, refused past
    255 names without one); saved data - project.json, a checkpoint, a class-edit journal - must open
    as it did: a first version of the one reader sent ClassSet.from_json through it, and projects and
    checkpoints without "ignore_index" opened with 255, or not at all (300 names, no names)."""
    classes = ClassSet.from_json(saved)
    assert classes.names == tuple(saved["names"]) and classes.ignore_index == ignore
    assert ClassSet.from_json(classes.to_json()) == classes
