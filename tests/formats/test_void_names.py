"""Class names like ``background``, ``void``, ``ignore``, ``unlabeled`` or ``_background_``: a label is
"no class" only where its format designates it as the unannotated area (CVAT/VOC's black
``background``, label_colors.txt's black label, FiftyOne's mask value 0, labelme's ``_background_``
and ``__ignore__``). Anywhere else such a name is a class someone annotated pixels with: it survives
an export and an import into a new project, pixel for pixel, compared by class NAME with the map the
project saved (the reference). An export that cannot write such a class refuses it, naming it."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from qgn.classes import UNMATCHED, VOID, ClassSet, match_class_names, normalize_class_name
from qgn.project import Project
from qgn.project_export import export_project
from qgn.project_import import import_into_project
from sample_files import blocky_label

SIZE = (40, 24)  # W, H
ALL_VOID_NAMES = ("background", "void", "Unlabeled", "ignore", "_background_", "cat")
# what each format can write: CVAT/VOC and label_colors.txt keep 'background' for their unannotated
# area, labelme '_background_' (and '__ignore__')
NAMES = {"coco": ALL_VOID_NAMES, "labelstudio": ALL_VOID_NAMES, "fiftyone": ALL_VOID_NAMES,
         "labelme": ("background", "void", "Unlabeled", "ignore", "cat"),
         "cvat": ("void", "Unlabeled", "ignore", "_background_", "cat"),
         "voc": ("void", "Unlabeled", "ignore", "_background_", "cat"),
         "camvid": ("void", "Unlabeled", "ignore", "_background_", "cat"),
         "cityscapes": ("void", "Unlabeled", "ignore", "_background_", "cat")}


def make_project(tmp_path, names, seed=0, void=True) -> tuple[Project, np.ndarray]:
    """A project of one photo whose saved map uses every class of ``names`` (and the ignore value
    255 in whole blocks when ``void``): (project, the map)."""
    path = tmp_path / "images" / "photo.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (SIZE[1], SIZE[0], 3), dtype=np.uint8)).save(path)
    project = Project.create(tmp_path / "project", [path], ClassSet(tuple(names), ignore_index=255))
    label = blocky_label(rng, SIZE[1], SIZE[0], len(names), 255 if void else None, cell=4, void_cells=void)
    for c in range(len(names)):  # every class holds pixels, whatever the draw
        label[c, :4] = c
    if void:
        label[-1, -4:] = 255
    project.save_annotation(project.images[0], label)
    return project, label


def by_name(label: np.ndarray, classes: ClassSet) -> np.ndarray:
    """The class NAME of each pixel, ``<ignore>`` for the ignore value (any other value fails)."""
    out = np.full(label.shape, "<ignore>", object)
    for i, name in enumerate(classes.names):
        out[label == i] = name
    assert ((label == classes.ignore_index) | (label < classes.num_classes)).all()
    return out


def only_annotation(project: Project) -> np.ndarray:
    (image,) = project.images
    return project.load_annotation(image)


def export_and_import(tmp_path, project, fmt, update=False):
    export_project(project, tmp_path / "out", [fmt], images="copy")
    target = project.root if update else tmp_path / "new"
    return import_into_project(tmp_path / "out" / fmt, target, format=fmt, images=tmp_path / "images", update=update)


@pytest.mark.parametrize("fmt", sorted(NAMES))
def test_a_class_with_a_void_name_survives_an_export_into_a_new_project(tmp_path, fmt):
    project, label = make_project(tmp_path, NAMES[fmt])
    report = export_and_import(tmp_path, project, fmt)
    assert not report.skipped, report.skipped
    new = report.project
    assert sorted(new.classes.names) == sorted(project.classes.names)  # labelme: in order of appearance
    got = only_annotation(new)
    np.testing.assert_array_equal(by_name(got, new.classes), by_name(label, project.classes))
    # the void the format wrote is said, and no more than the map's ignore pixels
    assert sum(pixels for pixels, _ in report.voided.values()) <= int((label == 255).sum())


@pytest.mark.parametrize("fmt", ["coco", "labelstudio", "fiftyone", "labelme"])
def test_corrections_over_a_class_named_background_keep_void_void(tmp_path, fmt):
    """``--update`` with the project's own unchanged export: FiftyOne's mask value 0 (void) is not
    the class ``background`` (value 1), nor is any other format's unannotated area."""
    project, label = make_project(tmp_path, ("background", "cat", "dog"))
    report = export_and_import(tmp_path, project, fmt, update=True)
    assert not report.skipped and report.unchanged == [project.images[0].key], report
    np.testing.assert_array_equal(only_annotation(Project.open(project.root)), label)


@pytest.mark.parametrize("fmt, name", [("cvat", "background"), ("voc", "Background"), ("camvid", "background"),
                                       ("cityscapes", "background"), ("labelme", "_background_"),
                                       ("labelme", "__ignore__")])
@pytest.mark.parametrize("void", [True, False])
def test_an_export_refuses_a_class_it_would_read_back_as_void(tmp_path, fmt, name, void):
    project, _ = make_project(tmp_path, (name, "cat"), void=void)
    with pytest.raises(ValueError, match=f"class '{name}' .*rename the class"):
        export_project(project, tmp_path / "out", [fmt], images="copy")


def test_a_void_name_that_is_no_class_of_an_existing_project_reads_as_void_and_is_said(tmp_path, run_cli):
    """Into an existing project the matching is as before (exact, spelling, then the usual void
    names): a COCO ``background`` the project has no class for is void, and the report counts it."""
    source, label = make_project(tmp_path / "a", ("background", "cat", "dog"))
    export_project(source, tmp_path / "out", ["coco"], images="copy")
    target = Project.create(tmp_path / "b", [], ClassSet(("cat", "dog"), ignore_index=255))
    code, out, err = run_cli("import", tmp_path / "out" / "coco", "--project", target.root, "--format", "coco",
                             "--images", tmp_path / "a" / "images")
    assert code == 0, err
    expected = np.select([label == 1, label == 2], [0, 1], 255)  # background → void
    np.testing.assert_array_equal(only_annotation(Project.open(target.root)), expected)
    pixels = int((label == 0).sum())
    assert f"{pixels} px of 'background' read as void" in out, out
    assert f"read as void (no class): 'background' {pixels} px in 1 item(s)" in out, out


def test_fiftyone_mask_value_0_is_void_named_or_not(tmp_path):
    """A FiftyOne dataset whose mask targets name 0 ``background`` (as FiftyOne's own datasets do):
    0 is the unannotated area; a target named ``background`` at another value is a class."""
    root = tmp_path / "fo"
    (root / "labels").mkdir(parents=True)
    (root / "data").mkdir()
    mask = np.array([[0, 1, 2, 3]] * 4, np.uint8)
    Image.fromarray(mask).save(root / "labels" / "x.png")
    Image.new("RGB", (4, 4)).save(root / "data" / "x.png")
    (root / "mask_targets.json").write_text(json.dumps({"0": "background", "1": "cat", "2": "void", "3": "dog"}))
    report = import_into_project(root, tmp_path / "new", format="fiftyone")
    assert report.project.classes.names == ("cat", "void", "dog")
    np.testing.assert_array_equal(only_annotation(report.project), [[255, 0, 1, 2]] * 4)
    assert report.voided == {"background": (4, 1)}


def test_labelme_reads_its_own_void_names_as_void_and_background_as_a_class(tmp_path):
    def square(name, x0, x1):
        return {"label": name, "points": [[x0, 0], [x1, 0], [x1, 3], [x0, 3]], "shape_type": "polygon"}

    Image.new("RGB", (8, 4)).save(tmp_path / "x.png")
    doc = {"shapes": [square("background", 0, 1), square("_background_", 2, 3), square("cat", 4, 5),
                      square("__ignore__", 6, 7)], "imagePath": "x.png", "imageHeight": 4, "imageWidth": 8}
    (tmp_path / "x.json").write_text(json.dumps(doc))
    report = import_into_project(tmp_path / "x.json", tmp_path / "new", format="labelme")
    assert report.project.classes.names == ("background", "cat")
    np.testing.assert_array_equal(only_annotation(report.project), [[0, 0, 255, 255, 1, 1, 255, 255]] * 4)
    assert report.voided == {"_background_": (8, 1), "__ignore__": (8, 1)}


def test_a_format_void_position_is_void_before_any_class_of_its_name():
    classes = ClassSet(("background", "cat"), ignore_index=255)
    assert match_class_names(["background", "background", "ignore", "zebra"], classes, void=[0]) == \
        [VOID, 0, VOID, UNMATCHED]
    # an explicit --map wins over the format's void
    assert match_class_names(["background", "background"], classes, {"background": "cat"}, void=[0]) == [1, 1]


NFC_CAFE, NFD_CAFE = "caf\u00e9", "cafe\u0301"


def test_a_label_in_nfd_matches_its_nfc_class_and_not_the_plain_letter():
    """'café' written as 'e' and a combining accent (macOS file names, some tools' JSON) matched no
    class 'café' written as one code point, and matched a class 'cafe' instead (the accent dropped)."""
    assert NFC_CAFE != NFD_CAFE
    assert match_class_names([NFD_CAFE, NFC_CAFE, "CAFE\u0301"], ClassSet((NFC_CAFE, "road"))) == [0, 0, 0]
    assert match_class_names([NFC_CAFE, NFD_CAFE], ClassSet((NFD_CAFE, "road"))) == [0, 0]
    assert match_class_names([NFD_CAFE], ClassSet(("cafe", "road"))) == [UNMATCHED]
    assert match_class_names(["cafe"], ClassSet(("road", NFC_CAFE))) == [UNMATCHED]
    assert match_class_names([NFD_CAFE], ClassSet(("road",)), {NFC_CAFE: "road"}) == [0]


def test_a_label_that_could_be_either_of_a_legacy_nfc_nfd_pair_is_matched_to_neither(monkeypatch):
    """A project saved before the door may hold 'café' in both spellings: each spelling still matches
    its own class exactly; a third spelling ('CAFÉ') could be either, and the message tells them apart."""
    from qgn.classes import unmatched_message

    monkeypatch.setattr("qgn.classes.check_unique_names", lambda *a, **k: None)
    monkeypatch.setattr("qgn.classes.check_class_names", lambda *a, **k: None)
    classes = ClassSet((NFC_CAFE, NFD_CAFE, "road"))
    assert match_class_names([NFC_CAFE, NFD_CAFE, "CAF\u00c9"], classes) == [0, 1, UNMATCHED]
    message = unmatched_message("CAF\u00c9", classes, "x.json")
    assert "caf\\xe9" in message and "cafe\\u0301" in message and "--map" in message, message


def test_an_nfd_label_imports_into_a_project_of_the_nfc_class(tmp_path):
    """The labelme export of a project of 'café' (NFC) with its labels rewritten in NFD (as a tool on
    macOS may write them) imports into the project by name: it was refused as "label 'café' is
    none of the classes ('café', …)" - two names that look the same."""
    project, label = make_project(tmp_path, (NFC_CAFE, "road"), void=False)
    export_project(project, tmp_path / "out", ["labelme"], images="copy")
    (path,) = (tmp_path / "out" / "labelme").glob("*.json")
    text = path.read_text(encoding="utf-8")
    assert NFC_CAFE in text or "caf\\u00e9" in text
    doc = json.loads(text)
    for shape in doc["shapes"]:
        shape["label"] = shape["label"].replace(NFC_CAFE, NFD_CAFE)
    assert any(shape["label"] == NFD_CAFE for shape in doc["shapes"])
    path.write_text(json.dumps(doc), encoding="utf-8")
    listed = path.parent / "labels.txt"  # its list of labels, in the same spelling
    listed.write_text(listed.read_text(encoding="utf-8").replace(NFC_CAFE, NFD_CAFE), encoding="utf-8")
    project.save_annotation(project.images[0], np.ones_like(label))
    import_into_project(tmp_path / "out" / "labelme", project.root, format="labelme", images=tmp_path / "images",
                        update=True)
    assert np.array_equal(by_name(only_annotation(Project.open(project.root)), project.classes),
                          by_name(label, project.classes))


@pytest.mark.parametrize("label, other", [
    ("\u0915\u093e\u0930", "\u0915\u0930"),  # Hindi 'car' (vowel sign AA, Mc) / 'tax'
    ("q\u0307", "q"),  # q and a dot above: no precomposed form
    ("\u0e17\u0e35\u0e48", "\u0e17"),  # Thai: a vowel and a tone mark (Mn) on a letter
    ("\u05e9\u05b8\u05c1\u05dc\u05d5\u05b9\u05dd", "\u05e9\u05dc\u05d5\u05dd"),  # Hebrew with points / without
    ("a\u20dd", "a"),  # an enclosing mark (Me)
])
def test_a_label_keeps_the_combining_marks_nfc_leaves_and_matches_no_class_without_them(label, other):
    """NFC composes 'e' and an acute accent into 'é', but most marks have no precomposed form: the key
    dropped them as no letter, and the Hindi label 'कार' matched the class 'कर' (another word).
    Each matches its own spelling still - in another case, with spaces or '_' around, its marks in
    another canonical order - and no class without its marks."""
    assert match_class_names([label], ClassSet((other, "road"))) == [UNMATCHED]
    assert match_class_names([other], ClassSet((label, "road"))) == [UNMATCHED]
    assert match_class_names([f" {label.upper()}_", label], ClassSet(("road", label))) == [1, 1]


def test_marks_in_another_canonical_order_are_one_key_and_the_name_folding_holds():
    """Shin with a qamats and a shin dot in either order is one spelling (NFC orders the marks);
    case, spaces and punctuation are still folded, marks or not."""
    assert normalize_class_name("\u05e9\u05b8\u05c1") == normalize_class_name("\u05e9\u05c1\u05b8")
    assert normalize_class_name("Traffic-Sign") == normalize_class_name("traffic_sign") == "trafficsign"
    assert normalize_class_name("Q\u0307 / q.x") == "q\u0307qx"
    assert normalize_class_name(NFD_CAFE.upper()) == NFC_CAFE
