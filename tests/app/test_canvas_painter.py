"""Big overlay pictures are made off the UI thread (qgn_studio.canvas.painter): the canvas shows
the same pictures as when every layer draws at once, only the latest picture of a layer is shown,
an image never wears another image's overlay while its own is made, and a screenshot waits for
them. The annotation's overlays too: a big one is coloured there, and an edit made meanwhile is in
the picture that arrives."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from qgn.classes import ClassSet
from qgn.quadtree.quadtree import image_leaves
from qgn_studio.canvas import layers as layers_module
from qgn_studio.canvas.layers import HEAVY_PIXELS, make_layers
from qgn_studio.canvas.painter import PicturePainter
from qgn_studio.document import LEVELS, ImageDocument, LevelView, RenderResult, SchemeChoice
from qgn_studio.workers import attach_paths

CLASSES = ClassSet(("road", "sky", "tree", "car"))
BIG = (1030, 1040)  # over HEAVY_PIXELS
SMALL = (60, 70)


def blocky_label(size: tuple[int, int], seed: int) -> np.ndarray:
    """(H, W) int64 class ids 0..3 in 48-px blocks: uniform regions with boundaries."""
    rng = np.random.default_rng(seed)
    h, w = size
    blocks = rng.integers(0, CLASSES.num_classes, (-(-h // 48), -(-w // 48)))
    return blocks.repeat(48, 0).repeat(48, 1)[:h, :w].astype(np.int64)


def make_result(size: tuple[int, int], seed: int, path: Path) -> RenderResult:
    """A RenderResult as the worker gives one: every level's codes (composite where a cell's block
    is mixed), probabilities and entropy, the leaves, and the worker's paths."""
    label = blocky_label(size, seed)
    rng = np.random.default_rng(seed + 1)
    levels = {}
    for level in LEVELS:
        step = 1 << level
        h, w = -(-size[0] // step), -(-size[1] // step)
        padded = np.pad(label, ((0, h * step - size[0]), (0, w * step - size[1])), mode="edge")
        cells = padded.reshape(h, step, w, step)
        low, high = cells.min(axis=(1, 3)), cells.max(axis=(1, 3))
        codes = np.where(low == high, low + 1, 0).astype(np.int16)
        probabilities = rng.random((CLASSES.num_classes + 1, h, w)).astype(np.float32)
        levels[level] = LevelView(level, codes, probabilities, rng.random((h, w)).astype(np.float32), h * w)
    result = RenderResult(path, SchemeChoice("pc", depth=0), label, levels, image_leaves(label, 4)[:3],
                          cost=None, metrics=None, activation_bytes=None, device="cpu")
    attach_paths(result)
    return result


def make_doc(size: tuple[int, int], seed: int, tmp_path: Path) -> ImageDocument:
    path = tmp_path / f"image_{seed}.png"
    doc = ImageDocument(path)
    doc.image = np.zeros(size + (3,), np.uint8)
    doc.ground_truth = blocky_label(size, seed + 7).astype(np.uint8)
    doc.result = make_result(size, seed, path)
    return doc


def pictures(layers) -> dict[str, list]:
    """Every image a layer's items show (None where an item shows nothing)."""
    import pyqtgraph as pg

    shown = {}
    for key, layer in layers.items():
        items = [item for item in [layer.root, *layer.root.childItems()] if isinstance(item, pg.ImageItem)]
        items += [child for item in layer.root.childItems() for child in item.childItems()
                  if isinstance(child, pg.ImageItem)]
        shown[key] = [None if item.image is None else np.array(item.image) for item in items]
    return shown


def assert_same_pictures(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert len(a[key]) == len(b[key]), key
        for x, y in zip(a[key], b[key]):
            assert (x is None) == (y is None), key
            if x is not None:
                np.testing.assert_array_equal(x, y, err_msg=key)


def slow_colouring(monkeypatch, wait) -> None:
    """Make the picture thread's ``colour_labels`` call ``wait()`` first (the UI thread's not)."""
    colour = layers_module.colour_labels

    def slow_colour(label, classes):
        if threading.current_thread() is not threading.main_thread():
            wait()
        return colour(label, classes)

    monkeypatch.setattr(layers_module, "colour_labels", slow_colour)


@pytest.fixture
def scene(qapp):
    """(root item, its layers with a painter, a second set drawn at once, the painter)."""
    from PySide6 import QtWidgets

    painter = PicturePainter()
    roots = [QtWidgets.QGraphicsRectItem(), QtWidgets.QGraphicsRectItem()]
    background, at_once = make_layers(roots[0]), make_layers(roots[1])
    for layer in list(background.values()) + list(at_once.values()):
        layer.set_visible(True)
    for layer in background.values():
        layer.painter = painter
    yield background, at_once, painter
    painter.stop()


def show(layers, doc) -> None:
    for layer in layers.values():
        layer.set_content(doc, doc.result, CLASSES)


def settle(qtbot, painter) -> None:
    qtbot.waitUntil(lambda: not painter.pending(), timeout=30_000)


def test_big_pictures_are_made_off_the_ui_thread_and_equal_those_made_at_once(scene, qtbot, tmp_path):
    background, at_once, painter = scene
    doc = make_doc(BIG, 1, tmp_path)
    assert BIG[0] * BIG[1] >= HEAVY_PIXELS
    threads = set()
    for layer in background.values():
        if layer.background:
            make = layer.paint_job

            def recording(make=make):
                job = make()
                return lambda: (threads.add(threading.current_thread()), job())[1]

            layer.paint_job = recording
    show(background, doc)
    assert painter.pending()
    show(at_once, doc)
    settle(qtbot, painter)
    assert threads and threading.main_thread() not in threads
    assert_same_pictures(pictures(background), pictures(at_once))
    shown = pictures(background)
    assert shown["prediction"][0] is not None and shown["truth"][0] is not None
    assert all(shown[f"q{level}"][0] is not None for level in LEVELS)
    assert shown["uncertainty"][0] is not None and shown["sites"][0] is not None
    # a setting of a layer (the uncertainty measure) is made off the thread as well, and equally
    background["uncertainty"].set_measure("composite")
    at_once["uncertainty"].set_measure("composite")
    settle(qtbot, painter)
    assert_same_pictures(pictures(background), pictures(at_once))


def test_small_pictures_are_made_at_once(scene, tmp_path):
    background, at_once, painter = scene
    doc = make_doc(SMALL, 2, tmp_path)
    show(background, doc)
    assert not painter.pending()  # no event loop turn needed
    show(at_once, doc)
    assert_same_pictures(pictures(background), pictures(at_once))


def test_a_new_image_never_wears_the_last_image_overlay(scene, qtbot, tmp_path, monkeypatch):
    """While the new image's prediction is coloured, its layer shows nothing (not the last image's
    labels); a new result of the same image keeps the last picture until its own arrives."""
    background, _, painter = scene
    first, second = make_doc(BIG, 3, tmp_path), make_doc(BIG, 4, tmp_path)
    show(background, first)
    settle(qtbot, painter)
    prediction = background["prediction"]
    assert prediction.item.image is not None
    release = threading.Event()
    colour = layers_module.colour_labels
    slow_colouring(monkeypatch, lambda: release.wait(30))
    show(background, second)
    assert prediction.item.image is None and painter.pending()
    release.set()
    settle(qtbot, painter)
    np.testing.assert_array_equal(prediction.item.image, colour(second.result.label, CLASSES))
    # the same image, a new result (another depth): the last picture stays until the new one is made
    release.clear()
    again = make_result(BIG, 5, second.path)
    for layer in background.values():
        layer.set_content(second, again, CLASSES)
    np.testing.assert_array_equal(prediction.item.image, colour(second.result.label, CLASSES))
    release.set()
    settle(qtbot, painter)
    np.testing.assert_array_equal(prediction.item.image, colour(again.label, CLASSES))


def test_only_the_latest_job_of_an_owner_is_shown_and_a_run_of_jobs_together(qapp, qtbot):
    painter = PicturePainter()
    started, release = threading.Event(), threading.Event()
    ran, shown, turns = [], [], []
    painter.shown.connect(lambda: turns.append(list(shown)))

    def job(name, block=False):
        def run():
            ran.append(name)
            if block:
                started.set()
                release.wait(30)
            return name
        return run

    try:
        painter.submit("a", job("a1", block=True), shown.append)
        assert started.wait(30)
        painter.submit("a", job("a2"), shown.append)  # queued behind a1 ...
        painter.submit("a", job("a3"), shown.append)  # ... and replaced before it started
        painter.submit("b", job("b1"), shown.append)
        release.set()
        qtbot.waitUntil(lambda: not painter.pending(), timeout=30_000)
        assert ran == ["a1", "a3", "b1"]  # a2 never ran
        assert shown == ["a3", "b1"]  # a1 finished after a newer job came: dropped
        assert turns == [["a3", "b1"]]  # made back to back: shown together, one paint
        started.clear()
        release.clear()
        painter.submit("c", job("c1", block=True), shown.append)
        assert started.wait(30)
        painter.forget("c")
        assert not painter.pending()
        release.set()
        assert painter.wait_idle(30)
        qtbot.wait(50)
        assert shown == ["a3", "b1"]
    finally:
        release.set()
        painter.stop()


def test_an_error_in_a_job_is_raised_on_the_ui_thread(qapp, qtbot):
    painter = PicturePainter()

    def broken():
        raise ZeroDivisionError("no picture")

    try:
        with qtbot.capture_exceptions() as raised:
            painter.submit("a", broken, lambda picture: None)
            qtbot.waitUntil(lambda: not painter.pending(), timeout=30_000)
        assert len(raised) == 1 and raised[0][0] is ZeroDivisionError
        assert raised[0][2] is not None
    finally:
        painter.stop()


def test_a_screenshot_waits_for_the_big_pictures(tmp_path, model_path, qapp, monkeypatch):
    """``--screenshot`` of a big black image: the prediction is on it although colouring it takes
    longer than the screenshot's own settling delay."""
    from qgn_studio.app import main

    image = tmp_path / "big.png"
    Image.fromarray(np.zeros(BIG + (3,), np.uint8)).save(image)
    slow_colouring(monkeypatch, lambda: time.sleep(1.5))
    shots = {}
    for layers in ("image", "image,prediction"):
        out = tmp_path / f"{layers.replace(',', '_')}.png"
        code = main([str(image), "--model", str(model_path), "--depth", "3", "--size", "900x600",
                     "--layers", layers, "--screenshot", str(out)])
        assert code == 0
        with Image.open(out) as shot:
            shots[layers] = np.asarray(shot.convert("RGB")).astype(int)
    differ = np.any(shots["image"] != shots["image,prediction"], axis=2)
    assert differ.sum() > 15_000  # the prediction covers the image (~190x190 screen pixels at this size)


def test_a_big_annotation_is_coloured_off_the_ui_thread_with_the_edits_made_meanwhile(qapp, qtbot, tmp_path,
                                                                                     monkeypatch):
    """Starting to annotate a 24-megapixel photo coloured its whole map on the UI thread (1.2 s
    without an answer); now the painter thread does, and a stroke made while it works still shows."""
    from PySide6 import QtWidgets

    from qgn.annotation import Annotation
    from qgn_studio.annotation_doc import AnnotationSession, PixelRect
    from qgn_studio.canvas import annotation_layers
    from qgn_studio.canvas.annotation_layers import AnnotationCellsLayer, AnnotationLayer, ChangedLayer

    label = blocky_label(BIG, 5).astype(np.uint8)
    doc = make_doc(BIG, 5, tmp_path)
    doc.annotation = AnnotationSession(doc.path, Annotation.from_prediction(label, CLASSES), reference=label.copy())
    session = doc.annotation
    colour = annotation_layers.annotation_rgba
    threads, started, release = [], threading.Event(), threading.Event()

    def held_colouring(label, classes):  # the map read, then held: a stroke made now is not in the picture
        threads.append(threading.current_thread())
        picture = colour(label, classes)
        if threading.current_thread() is not threading.main_thread():
            started.set()
            release.wait(30)
        return picture

    monkeypatch.setattr(annotation_layers, "annotation_rgba", held_colouring)
    painter = PicturePainter()
    root = QtWidgets.QGraphicsRectItem()
    layers = [AnnotationLayer(root), ChangedLayer(root), AnnotationCellsLayer(root)]
    for layer in layers:
        layer.painter = painter
        layer.set_visible(True)
        layer.set_content(doc, doc.result, CLASSES)
    try:
        assert started.wait(5), "the whole map was coloured on the UI thread"
        stroke = PixelRect(100, 140, 200, 260)
        session.label[100:140, 200:260] = (label[100:140, 200:260] + 1) % CLASSES.num_classes
        session.changed.emit(stroke)  # as an edit does, after the picture's map was read: drawn when it arrives
        release.set()
        qtbot.waitUntil(lambda: not painter.pending(), timeout=30_000)
        assert threads[0] is not threading.main_thread()
        annotation, changed, cells = layers
        np.testing.assert_array_equal(annotation.item.rgba, colour(session.label, CLASSES))
        expected_changed = annotation_layers.mask_rgba(session.label != label, annotation_layers.CHANGED_RGBA)
        np.testing.assert_array_equal(changed.item.rgba, expected_changed)
        for lv, item in cells.tints.items():
            expected = annotation_layers.mask_rgba(session.pyramid.leaves[lv], annotation_layers.FINE_TINT_RGBA)
            np.testing.assert_array_equal(item.rgba, expected, err_msg=f"cell tints, level {lv}")
    finally:
        release.set()
        painter.stop()
