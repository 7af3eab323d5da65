"""A class name no exporter can write as it is (a line break, a tab, a control character, spaces
around it, only spaces, more than 4096 bytes) or the same name as another in another Unicode
spelling is refused where it enters, in every importer and class edit, in one line naming the file
— COCO took "sk\\ny", and CVAT's export then refused the project's every file."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from hostile_cases import VALID_TEXT, coco_doc, image, labelme_doc, labelstudio_doc, write_json_dataset, write_text_dataset

BAD = {"line break": "sk\ny", "tab": "sk\ty", "NUL": "sk\x00y", "line separator": "sk\u2028y",
       "bidi override": "sk\u202ey", "leading space": " sky", "long": "x" * 4097}
SAID = {"line break": "holds a line break ('\\n')", "tab": "holds a tab ('\\t')",
        "NUL": "holds a control character ('\\x00')", "line separator": "holds a line break ('\\u2028')",
        "bidi override": "holds a control character ('\\u202e')", "leading space": "' sky' has spaces around it",
        "long": "is longer than 4096 bytes"}
RULE = "a class name is one line of text without control characters or surrounding spaces"


def refused(run_cli, src, project, said: str, where: str) -> None:
    code, out, err = run_cli("import", src, "--project", project)
    assert code == 2 and err.count("\n") == 1 and err.startswith(f"qgn import: error: {where}") \
        and said in err and RULE in err, out + err
    assert not project.exists()


@pytest.mark.parametrize("kind", BAD)
def test_a_coco_category_no_exporter_can_write_is_refused_at_the_door(tmp_path, run_cli, kind):
    doc = coco_doc()
    doc["categories"][0]["name"] = BAD[kind]
    root = write_json_dataset(tmp_path / "coco", "coco", doc)
    refused(run_cli, root, tmp_path / "p", SAID[kind], f"{root / 'annotations' / 'instances_default.json'} categories")


def test_a_coco_category_spelt_as_another_in_other_unicode_is_the_same_name(tmp_path, run_cli):
    """"é" (one code point) and "e" + a combining accent look alike and were two classes."""
    doc = coco_doc()
    doc["categories"][0]["name"], doc["categories"][1]["name"] = "\u00e9", "E\u0301"
    root = write_json_dataset(tmp_path / "coco", "coco", doc)
    code, out, err = run_cli("import", root, "--project", tmp_path / "p")
    assert code == 2 and "categories 0 and 1 are both named" in err and "'\\xe9' and 'E\\u0301'" in err, out + err


@pytest.mark.parametrize("kind", ["line break", "tab", "leading space"])
def test_a_labelme_label_no_exporter_can_write_fails_its_file_and_the_others_import(tmp_path, run_cli, kind):
    doc = labelme_doc()
    doc["shapes"][0]["label"] = BAD[kind]
    root = write_json_dataset(tmp_path / "lm", "labelme", doc)
    image(root / "b.png")
    (root / "b.json").write_text(json.dumps(labelme_doc("b")))
    code, out, err = run_cli("import", root, "--project", tmp_path / "p")
    assert code == 2 and "imported 1 of 2" in out, out + err
    assert f"{root / 'a.json'}: shapes[0]: the label " in err and SAID[kind] in err, err


def test_a_label_studio_label_no_exporter_can_write_fails_its_task_and_the_others_import(tmp_path, run_cli):
    doc = labelstudio_doc()
    second = json.loads(json.dumps(doc[0]))
    second["id"], second["data"]["image"] = 2, "b.png"
    doc[0]["annotations"][0]["result"][0]["value"]["brushlabels"] = ["sk\ny"]
    root = write_json_dataset(tmp_path / "ls", "labelstudio", doc + [second])
    image(root / "b.png")
    code, out, err = run_cli("import", root / "tasks.json", "--project", tmp_path / "p")
    assert code == 2 and "imported 1 of 2" in out, out + err
    assert "task 1: the label 'sk\\ny' holds a line break" in err, err


@pytest.mark.parametrize("fmt, text, said", [
    ("cvat", VALID_TEXT["cvat"].replace("sky:", "sk\ty:"), "line 3: the class name 'sk\\ty' holds a tab"),
    ("camvid", VALID_TEXT["camvid"].replace(" sky", " sk\x01y"), "line 2: the class name 'sk\\x01y' holds a control"),
    ("cityscapes", VALID_TEXT["cityscapes"].replace(" sky", " sk\x7fy"), "line 2: the class name 'sk\\x7fy' holds"),
])
def test_a_label_map_file_name_no_exporter_can_write_is_refused(tmp_path, run_cli, fmt, text, said):
    root = write_text_dataset(tmp_path / fmt, fmt, text)
    code, out, err = run_cli("import", root, "--project", tmp_path / "p")
    assert code == 2 and err.count("\n") == 1 and said in err and RULE in err, out + err


def test_fiftyone_mask_targets_naming_a_class_no_exporter_can_write_are_refused(tmp_path, run_cli):
    from qgn.classes import ClassSet
    from qgn.formats import ExportItem, export_dataset

    image(tmp_path / "photo" / "a.png")
    export_dataset([ExportItem("a", np.zeros((8, 12), np.uint8), tmp_path / "photo" / "a.png")],
                   ClassSet.generic(2, 255), tmp_path / "out", ["fiftyone"], images="copy")
    root = tmp_path / "out" / "fiftyone"
    (root / "mask_targets.json").write_text(json.dumps({"1": "sk\ny", "2": "road"}))
    refused(run_cli, root, tmp_path / "p", "mask value 1: the name 'sk\\ny' holds a line break",
            str(root / "mask_targets.json"))


def test_a_classes_file_and_a_class_edit_refuse_the_same_names(tmp_path):
    from qgn.classes import ClassSet, parse_classes_txt
    from qgn.classes_edit import add_class, rename_class

    with pytest.raises(ValueError, match=r"classes.txt line 2: the class name 'sk\\x1by' holds a control"):
        parse_classes_txt("road\nsk\x1by\n")
    classes = ClassSet(("road", "\u00e9t\u00e9"), (), 255)
    with pytest.raises(ValueError, match="holds a line break"):
        rename_class(classes, 0, "ro\nad")
    with pytest.raises(ValueError, match="there is already a class"):
        add_class(classes, "E\u0301te\u0301")  # the same name in decomposed capitals
    assert rename_class(classes, 0, "  lane ").after.names == ("lane", "\u00e9t\u00e9")  # a person's typing, trimmed


def test_a_name_every_exporter_can_write_still_imports(tmp_path, run_cli):
    """Not too strict: a name with inner spaces, punctuation, accents and an emoji with a joiner."""
    doc = coco_doc()
    doc["categories"][0]["name"] = "traffic light (red) \u00e9 \U0001F469\u200d\U0001F692"
    root = write_json_dataset(tmp_path / "coco", "coco", doc)
    code, out, err = run_cli("import", root, "--project", tmp_path / "p")
    assert code == 0 and "imported 2 of 2" in out, out + err
    Image.open(root / "images" / "a.png").close()
