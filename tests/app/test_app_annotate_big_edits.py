"""Edits of a whole big map answer at once (the 50 ms rule): the map changes in the handler, the
live pyramid and the layers catch up one band per turn of the event loop, newest edit first, and end
exactly as a fresh build; an edit the annotation refuses is a message, never an undo step."""
from __future__ import annotations

import numpy as np

from qgn.annotation import Annotation
from qgn.classes import ClassSet
from qgn.quadtree.tpyramid import NUM_LEVELS
from qgn_studio.annotation_doc import AnnotationSession, LivePyramid, PixelRect
from qgn_studio.tools.controller import ToolController

CLASSES = ClassSet.generic(5, ignore_index=255)


def session_of(label: np.ndarray) -> AnnotationSession:
    return AnnotationSession("/tmp/big.png", Annotation.from_prediction(label, CLASSES), reference=label.copy())


def controller_on(session) -> ToolController:
    tools = ToolController()
    tools.set_num_classes(CLASSES.num_classes)
    tools.set_session(session)
    return tools


def assert_pyramid_current(session) -> None:
    fresh = LivePyramid(session.label, CLASSES.num_classes, CLASSES.ignore_index)
    for lv in range(NUM_LEVELS):
        np.testing.assert_array_equal(session.pyramid.codes[lv], fresh.codes[lv], err_msg=f"codes, level {lv}")
        np.testing.assert_array_equal(session.pyramid.leaves[lv], fresh.leaves[lv], err_msg=f"leaves, level {lv}")


def test_a_big_fill_shows_band_by_band_and_ends_exact(qtbot):
    """A fill of 1.3 M px on a 1100×1300 map: the handler changes the map and records the step,
    the display catches up over later turns in bands of at most ``BAND_PIXELS`` (plus a block row),
    a paint stroke meanwhile shows at once, and the pyramid ends as a fresh build — after the
    fill, its undo and its redo."""
    h, w = 1100, 1300
    label = np.zeros((h, w), np.uint8)
    label[50:1050, 20:1290] = 1
    session = session_of(label)
    shown: list[PixelRect] = []
    session.changed.connect(shown.append)
    tools = controller_on(session)
    tools.set_tool("fill")
    tools.set_class(3)
    tools.press(600, 600)
    tools.release()
    assert session.undo.count() == 1 and int((session.label == 3).sum()) == 1000 * 1270
    assert session.display_pending and shown == []  # nothing of the whole-map work in the handler
    tools.set_tool("paint")
    tools.set_level(2)
    tools.press(8, 8)  # a stroke while the fill is still being shown
    tools.release()
    assert len(shown) == 1 and shown[0].y0 <= 8 < shown[0].y1  # the stroke's band came first
    qtbot.waitUntil(lambda: not session.display_pending)
    covered = np.zeros((h, w), bool)
    for rect in shown:
        assert (rect.y1 - rect.y0) * (rect.x1 - rect.x0) <= session.BAND_PIXELS + 32 * w
        covered[rect.y0:rect.y1, rect.x0:rect.x1] = True
    assert covered[50:1050, 20:1290].all()
    assert_pyramid_current(session)
    for step in (session.undo.undo, session.undo.undo, session.undo.redo):
        step()
        session.flush_display()
        assert_pyramid_current(session)
    assert int((session.label == 3).sum()) == 1000 * 1270 and session.label[8, 8] == 0  # the stroke undone


def test_a_fill_the_annotation_refuses_records_no_undo_step(qtbot):
    """A class the class set does not have (only reachable past ``set_class``'s guard, e.g. a stale
    class id) used to be pushed first and refused in the undo command's redo: an undo step that
    changed nothing and marked the map unsaved. Now it is a message and the log is untouched."""
    label = np.zeros((40, 50), np.uint8)
    session = session_of(label)
    tools = controller_on(session)
    messages = []
    tools.message.connect(messages.append)
    tools.set_tool("fill")
    tools.class_id = 9  # past the guard: set_class(9) is refused for five classes
    tools.press(5, 5)
    tools.release()
    assert session.undo.count() == 0 and not session.dirty
    assert np.array_equal(session.label, label)
    assert messages and messages[-1].startswith("Not changed:") and "9" in messages[-1]


def test_a_stroke_flung_far_outside_walks_only_the_cells_near_the_image(qtbot, monkeypatch):
    """A drag to a million pixels beyond the border used to walk every cell of the segment; the
    controller clips it to the image (widened by the brush) and paints the same pixels."""
    import qgn.annotation.edit as edit

    walked = []
    real = edit.cells_along

    def counting(*args, **kwargs):
        cells = real(*args, **kwargs)
        walked.append(len(cells))
        return cells

    monkeypatch.setattr(edit, "cells_along", counting)
    session = session_of(np.zeros((40, 50), np.uint8))
    tools = controller_on(session)
    tools.set_level(0)
    tools.set_class(2)
    tools.press(10.5, 10.5)
    tools.move(1e6, 12.5)
    tools.release()
    assert walked and max(walked) < 200
    expected = np.zeros((40, 50), np.uint8)
    expected[10, 10:] = 2  # the segment rises 2 px over a million: row 10 across the image
    assert np.array_equal(session.label, expected)


def test_the_pyramid_of_a_whole_map_is_built_in_bands_and_equals_the_whole_build(monkeypatch):
    """Built in one call, a 24-megapixel map's pyramid held the interpreter lock 20-55 ms at a time
    on the job thread when A was pressed (the UI thread waited for it). It is built in bands of
    root-block rows, each no bigger than ``BUILD_PIXELS``, and equals ``build_tpyramid`` of the whole
    edge-padded map (codes; leaves from the codes' own definition) for sizes that do and do not fill
    their last band or root block."""
    import qgn_studio.annotation_doc as annotation_doc
    from qgn.quadtree.tpyramid import COMPOSITE, build_tpyramid

    built = []
    whole = annotation_doc.build_tpyramid

    def recording(padded, *args):
        built.append(padded.size)
        return whole(padded, *args)

    monkeypatch.setattr(annotation_doc, "build_tpyramid", recording)
    monkeypatch.setattr(LivePyramid, "BUILD_PIXELS", 96 * 64, raising=False)  # (new here)
    rng = np.random.default_rng(3)
    for h, w in ((200, 130), (64, 64), (31, 33), (1, 1)):
        label = ((np.arange(w)[None] // 11 + np.arange(h)[:, None] // 7) % 4).astype(np.uint8)
        label[rng.random((h, w)) < 0.02] = CLASSES.ignore_index
        built.clear()
        pyramid = LivePyramid(label, CLASSES.num_classes, CLASSES.ignore_index)
        padded_w = -(-w // 32) * 32
        assert max(built) <= max(96 * 64, 32 * padded_w) and sum(built) == -(-h // 32) * 32 * padded_w, built
        padded = np.pad(label, ((0, -h % 32), (0, -w % 32)), mode="edge")
        levels = [np.asarray(level) for level in build_tpyramid(padded, CLASSES.num_classes, CLASSES.ignore_index,
                                                                NUM_LEVELS).levels]
        for lv in range(NUM_LEVELS):
            np.testing.assert_array_equal(pyramid.codes[lv], levels[lv])
            leaf = levels[lv] != COMPOSITE
            if lv < NUM_LEVELS - 1:
                leaf &= np.repeat(np.repeat(levels[lv + 1] == COMPOSITE, 2, axis=0), 2, axis=1)
            np.testing.assert_array_equal(pyramid.leaves[lv], leaf)
