"""A project exported as a Cityscapes tree imports back as it was, class by class and pixel by pixel.

Cityscapes' own ids (no ``label_colors.txt``) are written only for Cityscapes train classes in their
official colours: read as Cityscapes data, a label without a train id is void and ids are proven by
the official colours, so Cityscapes names without a train id (``parking`` …) or in other colours go
through ``label_colors.txt`` with the project's own classes. A class named like void (``unlabeled``,
Cityscapes' label id 0) is refused, as its pixels would read back as void. Real Cityscapes data still
reads into the train classes, and the import says how many pixels lost a label that way.
"""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from qgn.classes import ClassSet
from qgn.data.cityscapes import CITYSCAPES_CLASSES, CITYSCAPES_TRAIN_CLASSES
from qgn.project import Project
from qgn.project_export import export_project
from qgn.project_import import import_into_project
from sample_files import blocky_label

OFFICIAL = {"road": (128, 64, 128), "car": (0, 0, 142), "sky": (70, 130, 180), "person": (220, 20, 60),
            "parking": (250, 170, 160), "ground": (81, 0, 81), "dynamic": (111, 74, 0)}
NON_TRAIN = ("road", "parking", "ground", "car", "dynamic")
CASES = {
    "no-train-id": ClassSet(NON_TRAIN, tuple(OFFICIAL[n] for n in NON_TRAIN), 255),
    "own-colours": ClassSet(("road", "car", "sky", "person"), ignore_index=255),  # the default palette
    "train-classes": CITYSCAPES_CLASSES,
}


def make_project(tmp_path, classes: ClassSet, seed: int = 3) -> tuple[Project, np.ndarray]:
    """One annotated 64×48 PNG (blocks of every class and void blocks) in a project."""
    label = blocky_label(seed, 48, 64, classes.num_classes, classes.ignore_index, cell=8, void_cells=True)
    label[1:4, 1:5] = classes.ignore_index
    path = tmp_path / "images" / "cs.png"
    path.parent.mkdir(parents=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (48, 64, 3), np.uint8)).save(path)
    project = Project.create(tmp_path / "project", [path], classes)
    project.save_annotation(project.images[0], label.astype(np.uint8))
    return project, label


def class_names(label: np.ndarray, classes: ClassSet) -> np.ndarray:
    """Each pixel's class name ('<void>' for the ignore value)."""
    names = np.array([*classes.names, "<void>"], object)
    return names[np.where(label == classes.ignore_index, classes.num_classes, label)]


@pytest.mark.parametrize("case", list(CASES))
def test_a_project_exported_as_cityscapes_imports_back_exactly(tmp_path, case):
    classes = CASES[case]
    project, label = make_project(tmp_path, classes)
    export_project(project, tmp_path / "out", ["cityscapes"], images="copy")
    root = tmp_path / "out" / "cityscapes"
    official = case == "train-classes"
    assert (root / "label_colors.txt").is_file() != official
    assert bool(list(root.rglob("*_gtFine_labelTrainIds.png"))) == official

    notes = []
    report = import_into_project(root, tmp_path / "new", progress=lambda i, n, text: notes.append(text))
    assert not report.skipped, report.skipped
    assert report.project.classes.names == classes.names
    assert [tuple(c) for c in report.project.classes.palette] == [tuple(c) for c in classes.palette]
    (image,) = report.project.images
    got = class_names(report.project.load_annotation(image), report.project.classes)
    assert (got == class_names(label, classes)).all(), f"{int((got != class_names(label, classes)).sum())} px"
    assert set(report.voided) <= {"background", "unlabeled"}, report.voided  # the format's void only


@pytest.mark.parametrize("case", ["no-train-id", "own-colours"])
def test_an_unchanged_export_updates_nothing(tmp_path, case):
    """``--update`` with the export as it was (the corrections flow) changes no pixel."""
    project, label = make_project(tmp_path, CASES[case])
    export_project(project, tmp_path / "out", ["cityscapes"], images="copy")
    report = import_into_project(tmp_path / "out" / "cityscapes", project.root, images=tmp_path / "images",
                                 update=True)
    assert not report.skipped and report.unchanged == ["cs"], (report.skipped, report.replaced)
    np.testing.assert_array_equal(Project.open(project.root).load_annotation(project.images[0]), label)


@pytest.mark.parametrize("name", ["unlabeled", "Unlabelled", "void"])
def test_a_class_named_like_void_in_its_own_colour_round_trips(tmp_path, name):
    """Outside Cityscapes' ids the void is label_colors.txt's black ``background``: a class named
    like void, in a colour of its own, is a class of the file (the QA case: 'unlabeled' exported as
    id 0 came back as void, and --update turned void pixels into it)."""
    classes = ClassSet((name, "road", "car"), ((10, 20, 30), OFFICIAL["road"], OFFICIAL["car"]), 255)
    project, label = make_project(tmp_path, classes)
    export_project(project, tmp_path / "out", ["cityscapes"], images="copy")
    root = tmp_path / "out" / "cityscapes"
    report = import_into_project(root, tmp_path / "new")
    assert report.project.classes.names == classes.names
    got = class_names(report.project.load_annotation(report.project.images[0]), report.project.classes)
    assert (got == class_names(label, classes)).all()
    report = import_into_project(root, project.root, images=tmp_path / "images", update=True)
    assert report.unchanged and not report.replaced, (report.replaced, report.skipped)


def test_a_class_named_background_is_refused_naming_it(tmp_path):
    classes = ClassSet(("Background", "road", "car"), ((10, 20, 30), OFFICIAL["road"], OFFICIAL["car"]), 255)
    project, _ = make_project(tmp_path, classes)
    with pytest.raises(ValueError, match="'Background'.*rename"):
        export_project(project, tmp_path / "out", ["cityscapes"], images="copy")


def test_a_black_class_is_refused_naming_it_and_renamed_unlabeled_round_trips(tmp_path):
    """Outside Cityscapes' ids black is label_colors.txt's background: the error names the class.
    The QA case: 'unlabeled' in black, renamed and recoloured as the refusal says, exports and
    imports back exactly."""
    classes = ClassSet(("unlabeled_area", "road", "car"), ((0, 0, 0), OFFICIAL["road"], OFFICIAL["car"]), 255)
    project, label = make_project(tmp_path, classes)
    with pytest.raises(ValueError, match="class 'unlabeled_area' is black"):
        export_project(project, tmp_path / "out", ["cityscapes"])
    classes = ClassSet(classes.names, ((90, 90, 90), *classes.palette[1:]), 255)
    project, label = make_project(tmp_path / "fixed", classes)
    export_project(project, tmp_path / "fixed" / "out", ["cityscapes"], images="copy")
    report = import_into_project(tmp_path / "fixed" / "out" / "cityscapes", tmp_path / "fixed" / "new")
    assert report.project.classes.names == classes.names
    got = class_names(report.project.load_annotation(report.project.images[0]), report.project.classes)
    assert (got == class_names(label, classes)).all()


def test_real_cityscapes_data_says_how_many_pixels_became_void(tmp_path):
    """A Cityscapes tree of labelIds (no label_colors.txt) is read into the 19 train classes as before;
    labels without a train id are void, and the import's line for the item counts them."""
    from qgn.formats.cityscapes import LABEL_COLOURS
    from qgn.quadtree.label_io import encode_label_png

    ids = np.kron(np.array([[7, 9, 6, 26], [0, 5, 9, 23]], np.uint8), np.ones((8, 8), np.uint8))  # 16×32
    gt = tmp_path / "cs" / "gtFine" / "train" / "frankfurt"
    gt.mkdir(parents=True)
    stem = "frankfurt_000000_000294"
    (gt / f"{stem}_gtFine_labelIds.png").write_bytes(encode_label_png(ids, indexed=False))
    Image.fromarray(np.asarray(LABEL_COLOURS, np.uint8)[ids]).save(gt / f"{stem}_gtFine_color.png")
    images = tmp_path / "cs" / "leftImg8bit" / "train" / "frankfurt"
    images.mkdir(parents=True)
    Image.new("RGB", (32, 16)).save(images / f"{stem}_leftImg8bit.png")

    lines = []
    report = import_into_project(tmp_path / "cs", tmp_path / "p", progress=lambda i, n, text: lines.append(text))
    assert report.project.classes == CITYSCAPES_CLASSES and not report.skipped
    train = {label_id: train_id for label_id, train_id, _, _ in CITYSCAPES_TRAIN_CLASSES}
    expected = np.vectorize(lambda v: train.get(int(v), 255))(ids)
    np.testing.assert_array_equal(report.project.load_annotation(report.project.images[0]), expected)
    for said in ("128 px of 'parking'", "64 px of 'dynamic'", "64 px of 'ground'"):
        assert f"; {said} read as void" in lines[0], lines
    assert report.voided["parking"] == (128, 1), report.voided


@pytest.mark.parametrize("case", ["no-train-id", "own-colours"])
def test_datumaro_reads_those_exports_with_the_projects_classes(tmp_path, case):
    """Datumaro (what CVAT imports Cityscapes with; a judge) reads them pixel for pixel by class name."""
    pytest.importorskip("datumaro")
    import logging

    from datumaro.components.annotation import AnnotationType
    from datumaro.components.dataset import Dataset

    classes = CASES[case]
    project, label = make_project(tmp_path, classes)
    export_project(project, tmp_path / "out", ["cityscapes"], images="copy")
    logging.getLogger().setLevel(logging.ERROR)
    dataset = Dataset.import_from(str(tmp_path / "out" / "cityscapes"), "cityscapes")
    names = [c.name for c in dataset.categories()[AnnotationType.label].items]
    (item,) = dataset
    read = np.full(label.shape, "<void>", object)
    for ann in item.annotations:
        if ann.type == AnnotationType.mask and names[ann.label] != "background":
            read[np.asarray(ann.image, bool)] = names[ann.label]
    assert (read == class_names(label, classes)).all()
