"""Annotation in QGN Studio under pytest-qt (offscreen): mouse strokes at several cell levels, fill,
erase, pick, undo/redo, the derived quadtree against a brute-force reference, incremental canvas
updates, the changed-vs-prediction view (its prediction put in the annotation's classes off the UI
thread), starting points, class edits and the mode's shortcuts.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from PySide6 import QtCore, QtWidgets

from qgn_studio.canvas.annotation_layers import annotation_rgba
from qgn_studio.panels.images import annotation_badges
from qgn_studio.testing import write_samples
from qgn_studio.tools.commands import undo_bytes
from studio_steps import WAIT_MS, annotating, drag, paint, wait_for_image

SIZE = (64, 96)  # H, W: two rows of three 32-px root cells
SAMPLE_COUNT, SAMPLE_SIZE = 2, SIZE  # the samples fixture
WINDOW_SIZE = (1200, 800)


def segment_cells(level, start, end, samples=2000):
    """Brute force: the level cells a straight segment passes through, by dense sampling."""
    t = np.linspace(0.0, 1.0, samples)
    xs = start[0] + t * (end[0] - start[0])
    ys = start[1] + t * (end[1] - start[1])
    return {(int(y) >> level, int(x) >> level) for x, y in zip(xs, ys)}


def paint_reference(label, level, cells, value):
    out = label.copy()
    size = 1 << level
    for cy, cx in cells:
        out[cy * size:(cy + 1) * size, cx * size:(cx + 1) * size] = value
    return out


def flood_region(label, x, y):
    """Brute force: the 4-connected region of pixels equal to label[y, x], by breadth-first search."""
    h, w = label.shape
    value, seen, todo = label[y, x], np.zeros(label.shape, bool), [(y, x)]
    seen[y, x] = True
    while todo:
        cy, cx = todo.pop()
        for ny, nx in ((cy - 1, cx), (cy + 1, cx), (cy, cx - 1), (cy, cx + 1)):
            if 0 <= ny < h and 0 <= nx < w and not seen[ny, nx] and label[ny, nx] == value:
                seen[ny, nx] = True
                todo.append((ny, nx))
    return seen


def brute_force_leaves(label, num_classes, ignore, levels=6):
    """Per level, the bool grid of quadtree leaves: a cell is a leaf when its pixels are all equal
    and it is a root cell or its parent is not (for sizes that are multiples of 32, as here; cells
    across the image's edge are test_app_edge_cells.py's)."""
    h, w = label.shape
    root = 1 << (levels - 1)
    ph, pw = -(-h // root) * root, -(-w // root) * root
    padded = np.full((ph, pw), -1, np.int64)
    padded[:h, :w] = np.where(label == ignore, -1, label)
    uniform = []
    for lv in range(levels):
        s = 1 << lv
        grid = np.zeros((ph // s, pw // s), bool)
        for cy in range(ph // s):
            for cx in range(pw // s):
                block = padded[cy * s:(cy + 1) * s, cx * s:(cx + 1) * s]
                grid[cy, cx] = (block == block.flat[0]).all()
        uniform.append(grid)
    leaves = []
    for lv in range(levels):
        if lv == levels - 1:
            leaves.append(uniform[lv].copy())
        else:
            parent_mixed = ~np.repeat(np.repeat(uniform[lv + 1], 2, axis=0), 2, axis=1)
            leaves.append(uniform[lv] & parent_mixed)
    return leaves


def test_strokes_at_several_levels_fill_erase_pick_undo_redo(qtbot, window, model_path, samples):
    session = annotating(qtbot, window, model_path, [samples[0]])
    tools = window.annotator.tools
    start = session.label.copy()
    assert start.shape == SIZE and np.array_equal(start, window.current.result.label)
    expected = start.copy()
    undo = session.undo

    strokes = [  # (level, class, start, end): horizontal and vertical drags, one coarse cell, single pixels
        (5, 3, (5.5, 5.5), (5.5, 5.5)),
        (3, 1, (2.5, 40.5), (90.5, 40.5)),
        (0, 6, (70.5, 3.5), (70.5, 60.5)),
        (2, 7, (30.5, 10.5), (60.5, 10.5)),
    ]
    for i, (level, class_id, a, b) in enumerate(strokes):
        tools.set_level(level)
        tools.set_class(class_id)
        middle = ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)
        drag(window, [a, middle, b])
        expected = paint_reference(expected, level, segment_cells(level, a, b), class_id)
        np.testing.assert_array_equal(session.label, expected, err_msg=f"stroke {i} at level {level}")
        assert undo.count() == i + 1, "a drag must be one undo step"

    tools.set_tool("erase")
    tools.set_level(1)
    drag(window, [(40.5, 50.5), (50.5, 50.5)])
    expected = paint_reference(expected, 1, segment_cells(1, (40.5, 50.5), (50.5, 50.5)), 255)
    np.testing.assert_array_equal(session.label, expected)

    tools.set_tool("fill")
    tools.set_class(4)
    drag(window, [(10.5, 40.5)])
    expected[flood_region(expected, 10, 40)] = 4
    np.testing.assert_array_equal(session.label, expected)
    assert undo.count() == 6

    tools.set_tool("paint")
    drag(window, [(5.5, 5.5)], modifiers=QtCore.Qt.KeyboardModifier.AltModifier)  # Alt-click picks
    assert tools.class_id == int(expected[5, 5]) == 3
    drag(window, [(10.5, 40.5)], modifiers=QtCore.Qt.KeyboardModifier.ControlModifier)  # so does Ctrl-click
    assert tools.class_id == int(expected[40, 10]) == 4 and tools.tool == "paint" and undo.count() == 6
    tools.set_tool("pick")
    drag(window, [(70.5, 30.5)])
    assert tools.class_id == 6 and undo.count() == 6  # picking edits nothing

    # The derived quadtree (kept current block by block) against brute force and the library.
    reference = brute_force_leaves(session.label, 8, 255)
    for lv in range(6):
        np.testing.assert_array_equal(session.pyramid.leaves[lv], reference[lv], err_msg=f"level {lv}")
    tree = session.annotation.quadtree()
    assert len(tree) == session.pyramid.leaf_count()

    # Undo stores changed pixels only; undo/redo walk the whole history.
    changed_total = sum(undo.command(i).edit.pixel_count for i in range(undo.count()))
    assert undo_bytes(undo) <= changed_total * (8 + 2 * session.label.itemsize)
    final = session.label.copy()
    window.annotator.undo_action.trigger()
    assert undo.index() == 5
    while undo.canUndo():
        undo.undo()
    np.testing.assert_array_equal(session.label, start)
    np.testing.assert_array_equal(session.pyramid.leaves[0], brute_force_leaves(start, 8, 255)[0])
    window.annotator.redo_action.trigger()
    while undo.canRedo():
        undo.redo()
    np.testing.assert_array_equal(session.label, final)


def test_canvas_repaints_only_the_stroke_rectangle(qtbot, window, model_path, samples):
    session = annotating(qtbot, window, model_path, [samples[0]])
    layers = window.canvas.layers
    window.set_layer_visible("changed", True)
    full_renders = []
    for key in ("annotation", "changed"):
        item = layers[key].item
        original = item.set_array
        item.set_array = lambda *a, _o=original, _k=key, **k: (full_renders.append(_k), _o(*a, **k))[1]
    writes = []
    item = layers["annotation"].item
    original_write = item.write
    item.write = lambda y0, x0, patch: (writes.append((y0, x0, patch.shape[:2])), original_write(y0, x0, patch))[1]
    tools = window.annotator.tools
    tools.set_level(1)
    tools.set_class(5)
    drag(window, [(10.5, 10.5), (20.5, 10.5), (30.5, 12.5)])
    assert full_renders == [], "a stroke must not re-render whole layers"
    assert writes and all(h * w <= 32 * 32 for _y, _x, (h, w) in writes)
    np.testing.assert_array_equal(layers["annotation"].item.rgba, annotation_rgba(session.label, session.classes))
    changed = layers["changed"].item.rgba[..., 3] > 0
    np.testing.assert_array_equal(changed, session.label != session.reference)
    pixels = int((session.label != session.reference).sum())
    assert pixels > 0
    qtbot.waitUntil(lambda: f"<b>{pixels:,} px</b>" in window.annotator.panel.changed_text.text(), timeout=WAIT_MS)


def test_starting_points_and_start_over_is_undoable(qtbot, window, model_path, samples, tmp_path):
    session = annotating(qtbot, window, model_path, [samples[0]])
    doc = window.current
    prediction = session.label.copy()
    annotator = window.annotator

    def start_over(source, expected):
        annotator.start_from(source)  # prepared on the job thread, then one undoable edit
        qtbot.waitUntil(lambda: np.array_equal(session.label, expected), timeout=WAIT_MS)

    start_over("truth", doc.ground_truth)
    start_over("empty", np.full(SIZE, 255))
    mask = np.random.default_rng(5).integers(0, 8, SIZE).astype(np.uint8)
    path = tmp_path / "mask.png"
    Image.fromarray(mask).save(path)
    annotator.choose_mask_file = lambda: str(path)
    start_over("import", mask)
    wrong = tmp_path / "small.png"
    Image.fromarray(mask[:10, :10]).save(wrong)
    annotator.choose_mask_file = lambda: str(wrong)
    annotator.start_from("import")  # refused with a message, nothing changes
    qtbot.waitUntil(lambda: "image is" in window.canvas.banner.label.text(), timeout=WAIT_MS)
    np.testing.assert_array_equal(session.label, mask)
    assert session.undo.count() == 3
    for _ in range(3):
        session.undo.undo()
    np.testing.assert_array_equal(session.label, prediction)


def test_class_names_and_colours_are_editable(qtbot, window, model_path, samples):
    session = annotating(qtbot, window, model_path, [samples[0]])
    annotator = window.annotator
    table = annotator.panel.classes
    table.item(2, 2).setText("asphalt")  # as if typed in place
    assert annotator.classes.names[2] == "asphalt" and session.classes.names[2] == "asphalt"
    annotator.choose_colour = lambda rgb, name: (1, 2, 3)
    table.recolour_requested.emit(2)
    assert annotator.classes.palette[2] == (1, 2, 3)
    layer = window.canvas.layers["annotation"]
    np.testing.assert_array_equal(layer.item.rgba, annotation_rgba(session.label, annotator.classes))
    if (session.label == 2).any():
        assert tuple(layer.item.rgba[session.label == 2][0, :3]) == (1, 2, 3)


def test_annotation_mode_takes_its_keys_and_gives_them_back(qtbot, window, model_path, samples):
    annotating(qtbot, window, model_path, [samples[0]])
    annotator = window.annotator

    def press(key: str) -> None:
        window.activateWindow()
        window.canvas.graphics.setFocus()
        QtWidgets.QApplication.processEvents()
        qtbot.keyClick(window.canvas.graphics, key)

    press("3")
    assert annotator.tools.class_id == 2
    press("[")
    press("[")
    assert annotator.tools.level == 4
    press("]")
    assert annotator.tools.level == 3
    press("f")
    assert annotator.tools.tool == "fill"
    press("b")
    assert annotator.tools.tool == "paint"
    depth = window.explore.setting().depth
    assert depth == 0, "viewing keys must not act in annotation mode"
    press("a")
    assert not annotator.enabled
    press("3")
    assert window.explore.setting().depth == 3 and annotator.tools.class_id == 2
    press("[")
    assert window.explore.setting().depth == 4 and annotator.tools.level == 3
    rows = " ".join(k for _s, k, _t in window.shortcut_rows)
    for key in ("Ctrl+Z", "Ctrl+Shift+Z", "Ctrl+Y", "Ctrl+S", "B", "E", "A"):
        assert key in rows


def test_painting_with_nothing_to_start_from_does_nothing(qtbot, window, tmp_path, model_path):
    images = write_samples(tmp_path / "plain", 1, SIZE, layout="none")
    window.start(images, str(tmp_path / "missing.safetensors"))  # no model: no prediction
    qtbot.waitUntil(lambda: window.current is not None and window.current.image is not None, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: "Model" in window.canvas.banner.label.text(), timeout=WAIT_MS)
    window.annotator.set_mode(True)
    # the image is read on a worker: wait until the window has shown it (the drawing surface is sized)
    qtbot.waitUntil(lambda: window.annotator.surface.boundingRect().width() == SIZE[1], timeout=WAIT_MS)
    drag(window, [(5.5, 5.5), (20.5, 5.5)])
    assert window.current.annotation is None  # nothing to start from yet: not painted, no crash
    assert "Waiting" in window.statusBar().currentMessage()


def test_a_brush_of_several_cells(qtbot, window, model_path, samples):
    session = annotating(qtbot, window, model_path, [samples[0]])
    tools = window.annotator.tools
    larger = next(a for a in window.annotator.mode_actions if a.text().startswith("Larger brush"))
    larger.trigger()
    larger.trigger()
    assert tools.radius == 2
    smaller = next(a for a in window.annotator.mode_actions if a.text().startswith("Smaller brush"))
    smaller.trigger()
    assert tools.radius == 1
    tools.set_level(2)
    tools.set_class(4)
    expected = session.label.copy()
    drag(window, [(30.5, 30.5), (50.5, 30.5)])
    cells = {(cy + dy, cx + dx) for cy, cx in segment_cells(2, (30.5, 30.5), (50.5, 30.5))
             for dy in (-1, 0, 1) for dx in (-1, 0, 1)}  # radius 1: the 3×3 cells around each cell
    cells = {(cy, cx) for cy, cx in cells if 0 <= cy < 16 and 0 <= cx < 24}
    expected = paint_reference(expected, 2, cells, 4)
    np.testing.assert_array_equal(session.label, expected)
    rect = window.annotator.cursor.inner.rect()
    if window.annotator.cursor.isVisible():
        assert rect.width() == 3 * 4


# ------------------------------------------------------------------------ browsing is not annotating
def test_browsing_in_annotation_mode_annotates_nothing(qtbot, window, model_path, tmp_path):
    samples = write_samples(tmp_path / "data", 3, (64, 96))
    window.start([samples[0].parent], str(model_path))
    wait_for_image(qtbot, window, samples[0])
    window.annotator.set_mode(True)
    for i, path in enumerate(samples):
        if i:
            window.step_image(1)
            wait_for_image(qtbot, window, path)
        qtbot.waitUntil(lambda: window.current.annotation is not None, timeout=WAIT_MS)
    window.jobs.wait_idle()
    assert all(doc.annotation is None or not doc.annotation.is_annotation for doc in window.docs)
    assert all("✎" not in annotation_badges(doc) for doc in window.docs)
    assert window.finetuner.corrections() == []


def test_the_prediction_in_the_annotations_classes_is_made_off_the_ui_thread(qtbot, window, model_path, samples,
                                                                              monkeypatch):
    """Annotating in classes other than the model's (a project's own), the prediction that
    "changed vs prediction" compares with is relabelled by name: for a 24-megapixel photo that held
    the UI thread 1.5 s when it was done while installing the annotation."""
    import threading

    import qgn.classes_edit as classes_edit
    from qgn.classes import ClassSet

    on_ui_thread = []
    relabel = classes_edit.relabel_by_name

    def recording(*args, **kwargs):
        on_ui_thread.append(threading.current_thread() is threading.main_thread())
        return relabel(*args, **kwargs)

    monkeypatch.setattr(classes_edit, "relabel_by_name", recording)
    window.start(samples, str(model_path))
    qtbot.waitUntil(lambda: window.current is not None and window.current.result is not None, timeout=WAIT_MS)
    model = window.model_info.classes
    order = list(reversed(range(model.num_classes)))  # the model's classes in another order, and one more
    window.annotator.set_classes(ClassSet(tuple(model.names[i] for i in order) + ("puddle",),
                                          tuple(model.palette[i] for i in order) + ((0, 90, 200),), model.ignore_index))
    window.annotator.set_mode(True)
    qtbot.waitUntil(lambda: window.current.annotation is not None, timeout=WAIT_MS)
    session = window.current.annotation
    assert on_ui_thread and not any(on_ui_thread), on_ui_thread
    prediction = window.current.result.label
    expected = np.array([order.index(v) if v < model.num_classes else v for v in range(256)])[prediction]
    np.testing.assert_array_equal(session.reference, expected)
    np.testing.assert_array_equal(session.label, expected)  # started from the same prediction


def test_the_reference_and_its_first_count_are_made_on_the_job_thread_and_kept(qtbot, window, model_path, samples, monkeypatch):
    """Pressing A: the prediction "changed vs prediction" compares with is copied into the label
    dtype on the job thread, and the session keeps that copy (a second copy on the UI thread held it
    60-75 ms for a 24-megapixel photo); the first count of changed cells (the whole map) is made there
    too (~50 ms). The reference stays the prediction while the map is painted, and the count follows."""
    import threading

    from qgn_studio.annotation_doc import AnnotationSession

    made = []
    reference_for = getattr(AnnotationSession, "reference_for", None)

    def recording(reference, label):
        made.append((reference_for(reference, label), threading.current_thread() is threading.main_thread()))
        return made[-1][0]

    import qgn.annotation.changes as changes

    counted = []  # (on the UI thread, rows) of each count of changed cells
    cells_of_size = changes.changed_cells_of_size

    def counting(label, reference, size):
        counted.append((threading.current_thread() is threading.main_thread(), label.shape[0]))
        return cells_of_size(label, reference, size)

    monkeypatch.setattr(AnnotationSession, "reference_for", staticmethod(recording), raising=False)  # (new here)
    monkeypatch.setattr(changes, "changed_cells_of_size", counting)
    window.start(samples, str(model_path))
    qtbot.waitUntil(lambda: window.current is not None and window.current.result is not None, timeout=WAIT_MS)
    window.annotator.set_mode(True)
    qtbot.waitUntil(lambda: window.current.annotation is not None, timeout=WAIT_MS)
    session = window.current.annotation
    text = window.annotator.panel.changed_text
    qtbot.waitUntil(lambda: "Changed: " in text.text(), timeout=WAIT_MS)
    assert "<b>0 px</b>" in text.text()
    assert counted == [(False, SIZE[0])], counted  # the whole map once, on the job thread; the summary reuses it
    assert [on_ui for _, on_ui in made] == [False]
    assert session.reference is made[0][0]  # kept, not copied again
    assert session.reference.dtype == session.label.dtype
    prediction = window.current.result.label
    assert not np.shares_memory(session.reference, prediction) and not np.shares_memory(session.reference, session.label)
    from studio_steps import paint

    paint(window, 0, (int(session.label[2, 2]) + 1) % session.classes.num_classes, [(2, 2), (40, 2)])
    assert session.version > 0
    np.testing.assert_array_equal(session.reference, prediction)
    pixels = int((session.label != session.reference).sum())
    assert pixels > 0
    qtbot.waitUntil(lambda: f"<b>{pixels:,} px</b>" in text.text(), timeout=WAIT_MS)


def test_a_new_models_prediction_in_the_annotations_classes_is_made_off_the_ui_thread(qtbot, window, model_path, samples,
                                                                                      monkeypatch, tmp_path):
    """The model changed while annotating in classes other than the model's: the new prediction,
    relabelled by name into the annotation's classes, becomes what "changed vs prediction" compares
    with; that relabelling (0.7-1.5 s for a 24-megapixel photo), its copy and the first count were
    made on the UI thread in ``result_ready``. They are made on the job thread; the reference and the
    summary are the same."""
    import shutil
    import threading

    import qgn.annotation.changes as changes
    import qgn.classes_edit as classes_edit
    from qgn.classes import ClassSet
    from studio_steps import paint

    on_ui_thread = []  # (what, on the UI thread)
    relabel, cells_of_size = classes_edit.relabel_by_name, changes.changed_cells_of_size

    def relabelling(*args, **kwargs):
        on_ui_thread.append(("relabel", threading.current_thread() is threading.main_thread()))
        return relabel(*args, **kwargs)

    def counting(label, reference, size):
        if label.shape[0] == SIZE[0]:  # the whole map
            on_ui_thread.append(("count", threading.current_thread() is threading.main_thread()))
        return cells_of_size(label, reference, size)

    monkeypatch.setattr(classes_edit, "relabel_by_name", relabelling)
    monkeypatch.setattr(changes, "changed_cells_of_size", counting)
    window.start(samples, str(model_path))
    qtbot.waitUntil(lambda: window.current is not None and window.current.result is not None, timeout=WAIT_MS)
    model = window.model_info.classes
    order = list(reversed(range(model.num_classes)))  # the model's classes in another order, and one more
    window.annotator.set_classes(ClassSet(tuple(model.names[i] for i in order) + ("puddle",),
                                          tuple(model.palette[i] for i in order) + ((0, 90, 200),), model.ignore_index))
    window.annotator.set_mode(True)
    qtbot.waitUntil(lambda: window.current.annotation is not None, timeout=WAIT_MS)
    session, doc = window.current.annotation, window.current
    paint(window, 1, len(order), [(4, 4), (60, 30)])  # a puddle
    window.jobs.wait_idle()
    old_key, old_reference = session.reference_model, session.reference
    other = tmp_path / "other" / model_path.name  # the same model, from another file: a new prediction
    other.parent.mkdir()
    shutil.copy(model_path, other)
    shutil.copy(model_path.with_suffix(".json"), other.with_suffix(".json"))
    on_ui_thread.clear()
    window.load_model(other)
    qtbot.waitUntil(lambda: session.reference_model not in (None, old_key), timeout=WAIT_MS)
    assert session.reference_model == window.annotator._model_key()
    assert session.reference is not old_reference
    assert ("relabel", False) in on_ui_thread and ("count", False) in on_ui_thread, on_ui_thread
    assert not any(on_ui for _, on_ui in on_ui_thread), on_ui_thread
    prediction = doc.result.label
    expected = np.array([order.index(v) if v < model.num_classes else v for v in range(256)])[prediction]
    np.testing.assert_array_equal(session.reference, expected)
    assert session.reference.dtype == session.label.dtype
    text = window.annotator.panel.changed_text
    pixels = int((session.label != expected).sum())
    assert pixels > 0
    qtbot.waitUntil(lambda: f"<b>{pixels:,} px</b>" in text.text(), timeout=WAIT_MS)


def another_copy_of(model_path, tmp_path):
    """The same model from another file: loading it makes a new prediction (another model key)."""
    import shutil

    other = tmp_path / "other" / model_path.name
    other.parent.mkdir()
    shutil.copy(model_path, other)
    shutil.copy(model_path.with_suffix(".json"), other.with_suffix(".json"))
    return other


def reordered_classes(window):
    """The model's classes in another order, and one more (a prediction is relabelled by name)."""
    from qgn.classes import ClassSet

    model = window.model_info.classes
    order = list(reversed(range(model.num_classes)))
    window.annotator.set_classes(ClassSet(tuple(model.names[i] for i in order) + ("puddle",),
                                          tuple(model.palette[i] for i in order) + ((0, 90, 200),), model.ignore_index))
    return np.array([order.index(v) if v < model.num_classes else v for v in range(256)])


def test_a_model_changed_while_the_annotation_is_built_is_compared_with_off_the_ui_thread(qtbot, window, model_path,
                                                                                          samples, monkeypatch,
                                                                                          tmp_path):
    """A pressed, then the model changed before the annotation was built: the build's reference is
    of the old model, so ``_install`` made the new prediction in the annotation's classes (a
    relabel by name, about a second at 24 megapixels) on the UI thread. It is made on the job
    thread; the reference is the new prediction relabelled, as before."""
    import threading

    import qgn.classes_edit as classes_edit
    from qgn_studio.annotation_doc import AnnotationSession

    on_ui_thread = []
    relabel, reference_for = classes_edit.relabel_by_name, AnnotationSession.reference_for
    built_once, gate = threading.Event(), threading.Event()

    def relabelling(*args, **kwargs):
        on_ui_thread.append(threading.current_thread() is threading.main_thread())
        return relabel(*args, **kwargs)

    def held(reference, label):  # the build's reference made: it waits until the model changed
        if not built_once.is_set():
            built_once.set()
            assert gate.wait(60)
        return reference_for(reference, label)

    window.start(samples, str(model_path))
    qtbot.waitUntil(lambda: window.current is not None and window.current.result is not None, timeout=WAIT_MS)
    expected_of = reordered_classes(window)
    window.annotator.project_classes = True  # as a project's: kept though no map has them yet
    doc, old_key = window.current, window.annotator._model_key()
    monkeypatch.setattr(classes_edit, "relabel_by_name", relabelling)
    monkeypatch.setattr(AnnotationSession, "reference_for", staticmethod(held))
    window.annotator.set_mode(True)
    qtbot.waitUntil(built_once.is_set, timeout=WAIT_MS)
    old_result = doc.result
    window.load_model(another_copy_of(model_path, tmp_path))
    qtbot.waitUntil(lambda: window.annotator._model_key() != old_key and doc.result is not None
                    and doc.result is not old_result, timeout=WAIT_MS)
    assert doc.annotation is None  # still being built
    on_ui_thread.clear()
    gate.set()
    qtbot.waitUntil(lambda: doc.annotation is not None and doc.annotation.reference is not None, timeout=WAIT_MS)
    session = doc.annotation
    assert session.reference_model == window.annotator._model_key()
    np.testing.assert_array_equal(session.reference, expected_of[doc.result.label])
    assert on_ui_thread and not any(on_ui_thread), on_ui_thread
    pixels = int((session.label != session.reference).sum())
    qtbot.waitUntil(lambda: f"<b>{pixels:,} px</b>" in window.annotator.panel.changed_text.text(), timeout=WAIT_MS)


def test_snap_to_prediction_is_offered_once_a_new_models_reference_arrives(qtbot, window, model_path, samples,
                                                                           monkeypatch, tmp_path):
    """"Snap to: Prediction" chosen, then the model changed while A's annotation was built: the
    annotation is installed without a reference (the button greyed, "image" checked: nothing to
    follow yet) and the reference is made on the job thread. Once it arrives the button is offered
    again and the choice shown - it stayed greyed on "image" until something else updated it."""
    import threading

    from qgn_studio.annotation_doc import AnnotationSession

    reference_for = AnnotationSession.reference_for
    built_once, gate = threading.Event(), threading.Event()

    def held(reference, label):  # the build's reference made: it waits until the model changed
        if not built_once.is_set():
            built_once.set()
            assert gate.wait(60)
        return reference_for(reference, label)

    window.start(samples, str(model_path))
    qtbot.waitUntil(lambda: window.current is not None and window.current.result is not None, timeout=WAIT_MS)
    reordered_classes(window)
    window.annotator.project_classes = True
    doc, old_key = window.current, window.annotator._model_key()
    window.annotator.set_snap_to("prediction")
    monkeypatch.setattr(AnnotationSession, "reference_for", staticmethod(held))
    window.annotator.set_mode(True)
    qtbot.waitUntil(built_once.is_set, timeout=WAIT_MS)
    old_result = doc.result
    window.load_model(another_copy_of(model_path, tmp_path))
    qtbot.waitUntil(lambda: window.annotator._model_key() != old_key and doc.result is not None
                    and doc.result is not old_result, timeout=WAIT_MS)
    gate.set()
    qtbot.waitUntil(lambda: doc.annotation is not None and doc.annotation.reference is not None, timeout=WAIT_MS)
    window.jobs.wait_idle()
    assert doc.annotation.reference_model == window.annotator._model_key()
    panel = window.annotator.panel
    assert panel.snap_buttons["prediction"].isEnabled()
    assert panel.snap_buttons["prediction"].isChecked() and not panel.snap_buttons["image"].isChecked()


def test_the_changed_layer_shows_nothing_while_the_new_models_reference_is_made(qtbot, window, model_path, samples,
                                                                                tmp_path):
    """The model changed while annotating: until the new prediction (in the annotation's classes)
    arrives from the job thread, "changed vs prediction" showed the pixels that differ from the old
    model's prediction while the summary said it was comparing with the new one. The layer shows
    nothing meanwhile, and what differs from the new reference once it arrives."""
    import threading

    from qgn_studio.annotation_doc import PixelRect
    from studio_steps import paint

    window.start(samples, str(model_path))
    qtbot.waitUntil(lambda: window.current is not None and window.current.result is not None, timeout=WAIT_MS)
    expected_of = reordered_classes(window)
    window.annotator.set_mode(True)
    qtbot.waitUntil(lambda: window.current.annotation is not None, timeout=WAIT_MS)
    doc, session = window.current, window.current.annotation
    paint(window, 1, 3, [(4, 4), (60, 30)])
    window.jobs.wait_idle()
    qtbot.waitUntil(lambda: session.reference is not None, timeout=WAIT_MS)
    whole = PixelRect(0, SIZE[0], 0, SIZE[1])
    assert session.changed_mask(whole).any()  # something differs from the old prediction
    layer = window.canvas.layers["changed"]
    gate = threading.Event()
    window.jobs.submit(lambda: gate.wait(60))  # the job thread held: the new reference waits
    old_key = session.reference_model
    window.load_model(another_copy_of(model_path, tmp_path))
    qtbot.waitUntil(lambda: doc.path in window.annotator._references_pending, timeout=WAIT_MS)
    try:
        assert not session.changed_mask(whole).any()
        assert not layer.picture_job(session)()[..., 3].any()
        qtbot.waitUntil(lambda: "Comparing with the new" in window.annotator.panel.changed_text.text(), timeout=WAIT_MS)
        assert not session.changed_mask(whole).any()
    finally:
        gate.set()
    qtbot.waitUntil(lambda: session.reference_model not in (None, old_key), timeout=WAIT_MS)
    expected = session.label != expected_of[doc.result.label]
    np.testing.assert_array_equal(session.changed_mask(whole), expected)
    np.testing.assert_array_equal(layer.picture_job(session)()[..., 3] > 0, expected)


def test_another_images_new_reference_does_not_draw_the_shown_images_changed_layer_again(qtbot, window, model_path,
                                                                                          samples, tmp_path):
    """The model changed on image 0 (its new reference waits on the job thread), then image 1 is
    shown: image 0's reference marked stale and arriving forced the *shown* image's "changed vs
    prediction" layer to be drawn again, though nothing of it changed. Only the shown image's own
    reference changes draw it again."""
    import threading

    window.start(samples, str(model_path))
    qtbot.waitUntil(lambda: window.current is not None and window.current.result is not None, timeout=WAIT_MS)
    window.annotator.set_mode(True)
    first = window.current
    qtbot.waitUntil(lambda: first.annotation is not None and first.annotation.reference is not None, timeout=WAIT_MS)
    window.step_image(1)
    qtbot.waitUntil(lambda: window.current is not first and window.current.annotation is not None
                    and window.current.annotation.reference is not None, timeout=WAIT_MS)
    second = window.current
    window.step_image(-1)
    qtbot.waitUntil(lambda: window.current is first and first.result is not None, timeout=WAIT_MS)
    window.set_layer_visible("changed", True)
    window.jobs.wait_idle()
    layer = window.canvas.layers["changed"]
    assert layer.visible
    drawn = []  # (the session drawn, its reference, whether stale) at each whole redraw
    render = layer.render

    def recorded():
        session = layer.source()[0]
        drawn.append((session, None if session is None else id(session.reference),
                      None if session is None else session.reference_stale))
        render()

    layer.render = recorded
    gate = threading.Event()
    window.jobs.submit(lambda: gate.wait(60))  # the job thread held: the new references wait
    try:
        window.load_model(another_copy_of(model_path, tmp_path))
        qtbot.waitUntil(lambda: first.path in window.annotator._references_pending, timeout=WAIT_MS)
        window.step_image(1)
        qtbot.waitUntil(lambda: second.path in window.annotator._references_pending, timeout=WAIT_MS)
    finally:
        gate.set()
    key = window.annotator._model_key()
    qtbot.waitUntil(lambda: first.annotation.reference_model == key and second.annotation.reference_model == key,
                    timeout=WAIT_MS)
    window.jobs.wait_idle()
    assert window.current is second
    again = [a for a, b in zip(drawn, drawn[1:]) if a == b]
    assert not again, drawn  # each redraw shows something new
    assert drawn[-1] == (second.annotation, id(second.annotation.reference), False)


def test_a_level_not_counted_yet_is_counted_off_the_ui_thread_and_never_shown_wrong(qtbot, window, model_path, samples,
                                                                                     monkeypatch):
    """[ and ] to a level whose cells were not counted yet counted the whole map on the UI thread
    (~50 ms at 24 MP). It is counted on the job thread: until it arrives the summary says it is
    counting, and every summary shown says what a fresh count of the map at the level shown says."""
    import threading

    import qgn.annotation.changes as changes
    from qgn.annotation import changed_cells
    from studio_steps import paint

    session = annotating(qtbot, window, model_path, [samples[0]])
    annotator = window.annotator
    paint(window, 2, (int(session.label[2, 2]) + 1) % session.classes.num_classes, [(2, 2), (70, 40)])
    text = annotator.panel.changed_text
    qtbot.waitUntil(lambda: "cells of 4×4 px" in text.text(), timeout=WAIT_MS)
    counted = []  # on the UI thread, for each count of the whole map
    cells_of_size = changes.changed_cells_of_size

    def counting(label, reference, size):
        if label.shape[0] == SIZE[0]:
            counted.append(threading.current_thread() is threading.main_thread())
        return cells_of_size(label, reference, size)

    shown = []  # (level, text) of every summary shown
    summary = annotator.panel.set_changed_summary
    monkeypatch.setattr(changes, "changed_cells_of_size", counting)
    monkeypatch.setattr(annotator.panel, "set_changed_summary",
                        lambda html, shorter=(): (shown.append((annotator.tools.level, html)), summary(html, shorter)))
    for level in (4, 0, 2, 4):
        annotator.tools.set_level(level)
        size = 1 << level
        qtbot.waitUntil(lambda: f"cells of {size}×{size} px" in text.text(), timeout=WAIT_MS)
    assert counted == [False, False], counted  # levels 4 and 0 once each, on the job thread; 2 was counted at A
    assert any("Counting" in html for _, html in shown)
    pixels = int((session.label != session.reference).sum())
    for level, html in shown:
        if "Changed: " in html:
            cells = int(changed_cells(session.label, session.reference, level).sum())
            assert f"<b>{pixels:,} px</b>" in html and f"<b>{cells:,}</b> cells of {1 << level}×{1 << level} px" in html, \
                (level, html)
        else:
            assert "Counting" in html, html


class PredictionDroppedMeanwhile:
    """``doc`` as a job thread sees it when the UI thread drops its prediction (the window keeps a
    few images' results: ``_keep_recent_results``) right after the job first looked at it."""

    def __init__(self, doc):
        self._doc, self._reads = doc, 0

    def __getattr__(self, name):
        return getattr(self._doc, name)

    @property
    def result(self):
        self._reads += 1
        return self._doc.result if self._reads == 1 else None


def test_a_prediction_dropped_while_a_start_is_built_is_read_once(qtbot, window, model_path, samples):
    """The job that builds an annotation's start read ``doc.result`` twice: dropped in between, an
    AttributeError, and a spurious "Cannot start from the prediction"."""
    window.start(samples, str(model_path))
    qtbot.waitUntil(lambda: window.current is not None and window.current.result is not None, timeout=WAIT_MS)
    doc, annotator = window.current, window.annotator
    shape = doc.result.label.shape
    np.testing.assert_array_equal(annotator.prediction_in_classes(PredictionDroppedMeanwhile(doc), shape),
                                  annotator.prediction_in_classes(doc, shape))
    np.testing.assert_array_equal(annotator.start_label(PredictionDroppedMeanwhile(doc), "prediction"),
                                  annotator.start_label(doc, "prediction"))


def test_the_changed_summary_follows_strokes_undo_and_level_as_a_fresh_count(qtbot, window, model_path, samples):
    """"Changed: N px · M cells" is kept up to date by the rows each edit touched
    (``AnnotationDoc.changes``); after strokes, an undo, a redo and another cell level it says what
    counting the whole map says."""
    from qgn.annotation import changed_cells
    from studio_steps import paint

    session = annotating(qtbot, window, model_path, [samples[0]])
    annotator = window.annotator

    def shown_and_counted(level):
        annotator._update_summary()  # (what the 150-ms timer after an edit runs)
        # a level not counted yet is counted on the job thread ("Counting…" meanwhile)
        qtbot.waitUntil(lambda: "Changed: " in annotator.panel.changed_text.text(), timeout=WAIT_MS)
        text = annotator.panel.changed_text.text()
        diff = session.label != session.reference
        pixels, cells = int(np.count_nonzero(diff)), int(changed_cells(session.label, session.reference, level).sum())
        return text, f"<b>{pixels:,} px</b>", f"<b>{cells:,}</b> cells of {1 << level}×{1 << level} px"

    for level, class_id, points in [(2, 3, [(10, 10), (60, 30)]), (0, 5, [(70, 5), (70, 50)]), (3, 1, [(5, 40), (90, 40)])]:
        paint(window, level, class_id, points)
        text, pixels, cells = shown_and_counted(level)
        assert pixels in text and cells in text, text
    session.undo.undo()
    text, pixels, cells = shown_and_counted(3)
    assert pixels in text and cells in text and "<b>0 px</b>" not in text, text
    session.undo.redo()
    window.annotator.tools.set_level(1)
    text, pixels, cells = shown_and_counted(1)
    assert pixels in text and cells in text, text


def test_with_no_image_the_annotate_panel_says_so(qtbot, window, tmp_path):
    """Opened on an empty folder, the Annotate panel said "No annotation for this image yet" with no
    image open, and offered Start from Prediction / Ground truth / Import mask / Empty / Head / Previous (seen at
    1920×1080 under openbox): it says "No image", and nothing starts an annotation."""
    empty = tmp_path / "empty"
    empty.mkdir()
    window.start([str(empty)], None)
    qtbot.waitUntil(lambda: "no images in this folder" in window.canvas.banner.messages.get("open", ("",))[0],
                    timeout=WAIT_MS)
    panel = window.annotator.panel
    assert window.current is None
    assert panel.status.text() == "No image"
    starts = [a for a in panel.start_button.menu().actions()  # the "Start from…" button's menu
              if a.text().replace("&", "") in ("Prediction", "Ground truth", "Import mask…", "Empty", "Head", "Previous")]
    assert len(starts) == 6 and not any(a.isEnabled() for a in starts), [(a.text(), a.isEnabled()) for a in starts]
    assert not panel.start_button.isEnabled()


def test_pressing_a_leaves_an_unchanged_layer_list_alone(qtbot, window, model_path, samples, monkeypatch):
    """A's mode switch refreshes the Layers list while the annotation is built on the job thread,
    where each Qt call lets that thread hold the interpreter lock: rows that did not change are not
    set again, and the first column is not measured again over every row (before: ~60 setters and a
    measure per refresh, two refreshes on A). Only the rows A makes available (the annotation's) turn
    from grey; the texts and the column's width stay."""
    window.start([samples[0]], str(model_path))
    wait_for_image(qtbot, window, samples[0])
    panel = window.layer_panel
    QtWidgets.QApplication.processEvents()
    looks = [(item.text(0), item.text(1), item.toolTip(1), item.foreground(0).color().name())
             for item in panel.items.values()]
    width = panel.tree.columnWidth(0)
    calls = []
    monkeypatch.setattr(panel.tree, "resizeColumnToContents", lambda column: calls.append(("measure", column)))
    for name in ("setText", "setForeground", "setToolTip"):
        original = getattr(QtWidgets.QTreeWidgetItem, name)
        monkeypatch.setattr(QtWidgets.QTreeWidgetItem, name,
                            lambda item, *args, _name=name, _original=original: (calls.append(_name), _original(item, *args)))
    window.annotator.set_mode(True)
    qtbot.waitUntil(lambda: window.current.annotation is not None, timeout=WAIT_MS)
    QtWidgets.QApplication.processEvents()
    greyed = {key: panel.layers[key].available() for key in panel.items}
    assert calls == ["setForeground"] * sum(
        looks[i][3] != ("#e6e6e6" if greyed[key] else "#777777") for i, key in enumerate(panel.items))
    assert calls, "A makes the annotation's layers available"
    assert [(item.text(0), item.text(1), item.toolTip(1), item.foreground(0).color().name())
            for item in panel.items.values()] == [
        look[:3] + ("#e6e6e6" if greyed[key] else "#777777",) for look, key in zip(looks, panel.items)]
    assert panel.tree.columnWidth(0) == width
    # a change still shows: no result sets the level rows' counts
    panel.refresh(None)
    assert "setText" in calls
    from qgn_studio.canvas.layers import LevelLayer

    levels = [item for key, item in panel.items.items() if isinstance(panel.layers[key], LevelLayer)]
    assert levels and {item.text(1) for item in levels} == {"–"}


def test_the_panels_header_says_what_the_map_started_over_from(qtbot, window, model_path, samples):
    """The header over the tools names the latest start: "from an empty map" once started over
    from Empty (it kept saying "from the prediction"), the prediction again when that step is
    undone, the ground truth after a redo and another start, and still the empty map once the undo
    budget dropped the step that started it over."""
    session = annotating(qtbot, window, model_path, [samples[0]])
    doc, annotator, status = window.current, window.annotator, window.annotator.panel.status

    def start_over(source, expected):
        annotator.start_from(source)
        qtbot.waitUntil(lambda: np.array_equal(session.label, expected), timeout=WAIT_MS)

    assert "· from the prediction ·" in status.text()
    start_over("empty", np.full(SIZE, 255))
    assert "· from an empty map · 1 edit ·" in status.text()
    session.undo.undo()
    assert "· from the prediction · 0 edits ·" in status.text()
    session.undo.redo()
    assert "· from an empty map ·" in status.text()
    paint(window, 1, 2, [(5, 5), (40, 20)])  # a stroke after the start keeps it
    assert "· from an empty map · 2 edits ·" in status.text()
    start_over("truth", doc.ground_truth)
    assert "· from the ground truth · 3 edits ·" in status.text()
    session.undo.undo()
    assert "· from an empty map · 2 edits ·" in status.text()
    assert session.drop_oldest(1) == 1  # the undo budget drops the step that started over from Empty
    assert "· from an empty map · 1 edit ·" in status.text()
    assert session.undo.command(0).origin is None and session.undo.command(1).origin == "truth"  # (redo kept)
    session.undo.redo()
    assert "· from the ground truth ·" in status.text()
