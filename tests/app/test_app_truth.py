"""The app always predicts: ground truth whose values are not the model's classes is named in the
banner, the accuracy panel says why it is empty, and a bundled model that fits is one click away;
a model with a working scale draws its levels over the whole image."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from qgn.classes import ClassSet
from qgn.model.checkpoint import save_model
from qgn.model.qgn import QGN, QGNConfig
from qgn_studio.document import pixel_info
from qgn_studio.testing import make_dev_model
from studio_steps import WAIT_MS

STREET = ClassSet(names=tuple(f"c{i}" for i in range(11)), palette=tuple((20 * i, 0, 0) for i in range(11)),
                  ignore_index=11)


@pytest.fixture(autouse=True)
def street_models(resources):
    """The app's bundled models, as this module needs them: demo (8 synthetic classes) and street."""
    make_dev_model(resources / "models" / "demo.safetensors")
    torch.manual_seed(0)
    street = QGN(QGNConfig.from_preset("tiny", STREET, input_scale=0.5)).eval()
    save_model(resources / "models" / "street.safetensors", street)
    return resources


@pytest.fixture
def photo(tmp_path):
    """A photo whose ground truth beside it holds values 8..11 (a street class set, not demo's)."""
    rng = np.random.default_rng(0)
    (tmp_path / "data" / "images").mkdir(parents=True)
    (tmp_path / "data" / "labels").mkdir()
    path = tmp_path / "data" / "images" / "frame.png"
    Image.fromarray(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)).save(path)
    label = np.zeros((96, 128), np.uint8)
    label[:, 40:] = 8
    label[50:, :] = 10
    label[:8, :8] = 11
    Image.fromarray(label).save(tmp_path / "data" / "labels" / "frame.png")
    return path


def test_ground_truth_that_does_not_fit_never_blocks_the_prediction(qtbot, window, photo):
    window.start([str(photo)])
    qtbot.waitUntil(lambda: window.current is not None and window.current.result is not None, timeout=WAIT_MS)
    result = window.current.result
    assert result.metrics is None and "are not classes of model 'demo'" in result.truth_note
    banner = window.canvas.banner.label.text()
    assert window.canvas.banner.isVisible() and "frame.png" in banner and "8, 10, 11" in banner
    assert 'href="model:street"' in banner
    assert "does not fit this model's classes" in window.explore.metrics.text()
    assert not window.explore.scheme_buttons["gtc"].isEnabled()

    window.canvas.banner.link_activated.emit("model:street")  # the one click the banner offers
    qtbot.waitUntil(lambda: window.model_info is not None and window.model_info.name == "street", timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.current.result is not None and window.current.result.metrics is not None,
                    timeout=WAIT_MS)
    result = window.current.result
    assert result.truth_note is None and "truth" not in window.canvas.banner.messages
    assert window.explore.scheme_buttons["gtc"].isEnabled()
    # the street model works at half scale: its grid is 64×48, drawn over the 128×96 photo
    assert result.size == (96, 128) and result.grid_size == (48, 64) and result.grid_scale == (2.0, 2.0)
    assert window.canvas.layers["q5"].root.transform().m11() == 2.0
    grid = window.canvas.layers["grid"]
    assert grid.root.transform().m22() == 2.0 and grid.grid_factor() == 2.0
    grid.set_scale(1.0)  # one screen pixel per image pixel: the dark under-copy is one screen pixel off
    assert grid.under[5].pos().x() == pytest.approx(0.5)  # in grid (working) pixels, scaled ×2 on screen
    assert window.canvas.layers["prediction"].root.transform().m11() == 1.0  # the dense labels are full size
    info = pixel_info(result, 127.5, 95.5)
    assert info is not None and info.cell_x == 63 >> info.level and info.cell_y == 47 >> info.level
    assert "Model resolution <b>64×48</b>" in window.explore.summary.text()


def test_bundled_models_are_in_the_model_menu(qtbot, window, photo):
    window.start([str(photo)])
    qtbot.waitUntil(lambda: window.model_info is not None, timeout=WAIT_MS)
    window._fill_bundled_menu()
    texts = [a.text() for a in window.bundled_menu.actions()]
    assert texts[0].startswith("demo — 8 classes") and texts[1].startswith("street — 11 classes")
    assert window.bundled_menu.actions()[0].isChecked()


def test_ground_truth_whose_class_list_names_other_classes_is_named_too(qtbot, window, tmp_path):
    """Values 0..2 fit the demo model, but the classes.txt beside the labels calls them c0..c2
    (the street set): the banner says so and offers the street model, whose names fit."""
    from qgn.quadtree.label_io import format_classes_file

    (tmp_path / "set" / "images").mkdir(parents=True)
    (tmp_path / "set" / "labels").mkdir()
    photo = tmp_path / "set" / "images" / "frame.png"
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)).save(photo)
    label = np.zeros((64, 96), np.uint8)
    label[:, 30:] = 1
    label[40:, :] = 2
    Image.fromarray(label).save(tmp_path / "set" / "labels" / "frame.png")
    (tmp_path / "set" / "classes.txt").write_text(format_classes_file(STREET))

    window.start([str(photo)])
    qtbot.waitUntil(lambda: window.current is not None and window.current.result is not None, timeout=WAIT_MS)
    result = window.current.result
    assert result.metrics is None and "names its classes unlike model 'demo'" in result.truth_note
    assert "1 'c1'" in result.truth_note
    banner = window.canvas.banner.label.text()
    assert "classes.txt" in banner and 'href="model:street"' in banner

    window.canvas.banner.link_activated.emit("model:street")
    qtbot.waitUntil(lambda: window.current.result is not None and window.current.result.metrics is not None,
                    timeout=WAIT_MS)
    assert window.current.result.truth_note is None


def test_names_are_compared_for_the_ids_the_ground_truth_holds() -> None:
    from qgn.ground_truth import misnamed_classes

    model = ClassSet(names=("sky", "Road", "car"), palette=((0, 0, 0),) * 3, ignore_index=255)
    truth = ClassSet(names=("sky", " road ", "bus"), palette=((0, 0, 0),) * 3, ignore_index=255)
    label = np.array([[0, 1, 255]], np.uint8)
    assert misnamed_classes(label, truth, model) == []  # case and spacing do not count; 2 is absent
    label[0, 0] = 2
    assert misnamed_classes(label, truth, model) == [(2, "bus", "car")]


def test_the_class_list_is_looked_for_beside_the_labels_and_their_label_folder(tmp_path) -> None:
    from qgn_studio.discovery import find_classes_file

    (tmp_path / "root" / "labels").mkdir(parents=True)
    (tmp_path / "root" / "flat").mkdir()
    assert find_classes_file(tmp_path / "root" / "labels" / "a.png") is None
    (tmp_path / "root" / "classes.txt").write_text("sky\nroad\n")
    assert find_classes_file(tmp_path / "root" / "labels" / "a.png") == tmp_path / "root" / "classes.txt"
    assert find_classes_file(tmp_path / "root" / "flat" / "a_label.png") is None  # not a label folder
    (tmp_path / "root" / "labels" / "classes.txt").write_text("sky\n")
    assert find_classes_file(tmp_path / "root" / "labels" / "a.png") == tmp_path / "root" / "labels" / "classes.txt"
    (tmp_path / "root" / "labels" / "classes.txt").write_text("x" * ((1 << 20) + 1))  # not a class list: skipped
    assert find_classes_file(tmp_path / "root" / "labels" / "a.png") == tmp_path / "root" / "classes.txt"


def test_with_no_image_the_accuracy_panel_says_what_fills_it(qtbot, window, tmp_path):
    """Opened on an empty folder, the accuracy panel said "No ground truth for this image" (no image
    was open) over an empty plot whose axis ran 0.2 … 0.9 under "mIoU (%)" (seen at 1920×1080 under
    openbox): it says what fills it, as it does once the last image is gone."""
    empty = tmp_path / "empty"
    empty.mkdir()
    window.start([str(empty)], None)
    banner = window.canvas.banner
    qtbot.waitUntil(lambda: "no images in this folder" in banner.messages.get("open", ("",))[0], timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.model_info is not None, timeout=WAIT_MS)
    panel = window.explore
    assert window.current is None
    assert "this image" not in panel.metrics.text(), panel.metrics.text()
    assert "Accuracy shows once an image with ground truth has a result" in panel.metrics.text()
    assert not panel.plot.isVisibleTo(window) and not panel.metric_choice.isVisibleTo(window)


@pytest.mark.parametrize("damage", ["another size", "cut short"])
def test_starting_over_from_ground_truth_that_was_ignored_names_the_file_and_why(qtbot, window, photo, damage):
    # the ground truth beside the image was found but not used (another size, a file cut short):
    # "Start over from the ground truth" said "no ground truth was found beside this image", which
    # is untrue and sends the user looking for a file that is there
    label = photo.parent.parent / "labels" / "frame.png"
    if damage == "another size":
        Image.fromarray(np.zeros((20, 30), np.uint8)).save(label)
    else:
        label.write_bytes(label.read_bytes()[:60])
    window.start([str(photo)])
    qtbot.waitUntil(lambda: window.current is not None and window.current.result is not None, timeout=WAIT_MS)
    window.annotator.set_mode(True)
    qtbot.waitUntil(lambda: window.current.annotation is not None, timeout=WAIT_MS)  # from the prediction
    window.annotator.start_from("truth")
    qtbot.waitUntil(lambda: "annotate" in window.canvas.banner.messages, timeout=WAIT_MS)
    said = window.canvas.banner.messages["annotate"][0]
    assert said.startswith("Cannot start over from the ground truth") and "frame.png" in said
    assert "no ground truth was found" not in said
    assert ("30×20" in said) if damage == "another size" else ("truncated" in said)
    assert str(label) in said and said.endswith("(fix or replace that file)")
