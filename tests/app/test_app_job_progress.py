"""A long job of the project controller says how far it is and the time left: a class edit that
rewrites every saved annotation and the counting of a project's statistics show `what i/n · about …
left` in the status bar's task progress (hidden when the job ends), and the statistics window says it
while it counts."""
from __future__ import annotations

import re

import pytest

from qgn.cli.main import main
from qgn.project import Project
from qgn_studio.project_class_changes import CLASS_EDIT
from qgn_studio.project_controller import COUNTING

from sample_files import ids_dataset
from studio_steps import WAIT_MS

COUNT = 4


def opened_project(qtbot, win, tmp_path, model_path, monkeypatch):
    """``win`` showing a project of COUNT imported images, each with a saved annotation."""
    import qgn.progress

    monkeypatch.setattr(qgn.progress, "SHOW_AFTER_S", 0.0)  # an estimate from the second item on
    dataset = ids_dataset(tmp_path / "ds", COUNT, size=(12, 8))
    (dataset / "classes.txt").write_text("".join(f"c{i}\n" for i in range(COUNT)))
    folder = tmp_path / "project"
    assert main(["import", str(dataset), "--format", "ids", "--project", str(folder)]) == 0
    win.start([str(folder)], str(model_path))
    qtbot.waitUntil(lambda: len(win.docs) == COUNT and win.projects.project is not None, timeout=WAIT_MS)
    win.jobs.wait_idle()
    return folder


def shown_progress(win) -> list:
    """The status bar's task progress texts, as each step is shown."""
    texts = []
    win.workspace.progress.connect(lambda *_args: texts.append(win.progress.label.text()))
    return texts


def test_a_class_edit_of_a_project_shows_its_progress_and_time_left(qtbot, window, tmp_path, model_path, monkeypatch):
    folder = opened_project(qtbot, window, tmp_path, model_path, monkeypatch)
    texts = shown_progress(window)
    window.annotator.rename_class(0, "renamed")
    window.jobs.wait_idle()
    assert Project.open(folder).classes.names[0] == "renamed"
    qtbot.waitUntil(lambda: any(t.startswith(f"{CLASS_EDIT} {COUNT - 1}/") for t in texts), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.progress.isHidden(), timeout=WAIT_MS)  # the job's end hides it
    mine = [t for t in texts if t.startswith(CLASS_EDIT)]
    assert mine[0] == f"{CLASS_EDIT} 0/{COUNT}", texts
    # (none from the first item; under a second "under a second left", never "about 0 s left")
    assert any(t.startswith(f"{CLASS_EDIT} 2/{COUNT} · ") and t.endswith(" left") for t in mine), mine
    assert all(t.endswith((" s left", " · under a second left")) and " · about 0 s " not in t for t in mine[2:]), mine


def test_the_statistics_window_shows_how_far_the_counting_is(qtbot, window, tmp_path, model_path, monkeypatch):
    opened_project(qtbot, window, tmp_path, model_path, monkeypatch)
    texts = shown_progress(window)
    dialog = window.show_statistics()
    seen = []
    window.workspace.progress.connect(lambda *_args: seen.append(dialog.summary.text()))  # after the dialog's
    qtbot.waitUntil(lambda: dialog.stats is not None, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.progress.isHidden(), timeout=WAIT_MS)
    counted = [t for t in texts if t.startswith(COUNTING)]
    assert counted and counted[-1].startswith(f"{COUNTING} ") and counted[-1].endswith(" left"), texts
    assert any(re.fullmatch(r"Counting the annotations… \d/\d · (about [1-9]\d* s|under a second) left", t)
               for t in seen), seen
    assert dialog.stats.annotated == COUNT
    dialog.close()


def test_closing_the_statistics_window_before_the_counting_ends_is_no_error(qtbot, window, tmp_path, model_path,
                                                                            monkeypatch):
    """The window deletes itself when closed; the counting's steps and answer, which come later,
    reach nothing (they raised `Internal C++ object already deleted`)."""
    opened_project(qtbot, window, tmp_path, model_path, monkeypatch)
    texts = shown_progress(window)
    dialog = window.show_statistics()
    dialog.close()
    window.jobs.wait_idle()
    qtbot.waitUntil(lambda: any(t.startswith(f"{COUNTING} {COUNT - 1}/") for t in texts), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.progress.isHidden(), timeout=WAIT_MS)  # the answer came: nothing raised


def test_the_statistics_look_for_the_saved_annotations_off_the_ui_thread(qtbot, window, tmp_path, model_path,
                                                                         monkeypatch):
    """Project ▸ Statistics looks for every image's saved annotation file (a path resolved and a
    file checked per image: 12 ms on the UI thread for 300 images, 0.8 s for 20,000) on the batch thread."""
    import threading

    opened_project(qtbot, window, tmp_path, model_path, monkeypatch)
    looked = []
    annotation_path = Project.annotation_path

    def recording(project, image):
        looked.append((image.key, threading.current_thread() is threading.main_thread()))
        return annotation_path(project, image)

    monkeypatch.setattr(Project, "annotation_path", recording)
    dialog = window.show_statistics()
    on_ui = [key for key, main_thread in looked if main_thread]
    qtbot.waitUntil(lambda: dialog.stats is not None, timeout=WAIT_MS)
    assert dialog.stats.annotated == COUNT
    assert not on_ui, on_ui
    off_ui = {key for key, main_thread in looked if not main_thread}
    assert len(off_ui) >= COUNT - 1, looked  # every image but the one open (its map is counted as it is)
    dialog.close()


def test_a_predictions_time_left_comes_from_this_sessions_measured_steps(model_path, tmp_path):
    """A prediction said only "Computing Q̂3" (its levels cost very differently, so a count of levels
    would lie): the first says "estimating the time left…", and once each step has been measured
    (seconds per pixel, by encoder stage and by decoder level under the scheme) a prediction of
    another image says the sum of its steps' costs scaled by its size - here every step took the
    fake clock's 1 s on the first image, and the second has twice its padded pixels."""
    import numpy as np

    from qgn_studio.document import ImageDocument, SchemeChoice
    from qgn_studio.engine import Engine
    from qgn_studio.testing import write_samples

    small = write_samples(tmp_path / "small", 1, (64, 64))[0]
    wide = write_samples(tmp_path / "wide", 1, (64, 128))[0]
    engine = Engine()
    engine.load_model(model_path, "cpu")
    engine.resolution = "native"  # (the sizes as given: the padded pixels are known)
    ticks = iter(range(10_000))
    engine.clock = lambda: float(next(ticks))  # one second per reading: each step measures 1 s
    setting = SchemeChoice("pc", depth=0)

    def predicted(path) -> tuple[list[str], tuple]:
        doc = ImageDocument(path)
        doc.load()
        said = []
        engine.predict(doc, setting, progress=said.append)
        return said, engine._entries[doc.path].session.padded_shape

    first, shape = predicted(small)
    steps = len(engine.costs.rates)
    assert steps > 8  # the encoder's stages, six levels and the finishing (level views; leaves, metrics)
    assert any("estimating the time left…" in text for text in first)
    assert not any(" left" in text and "about" in text for text in first)
    second, wide_shape = predicted(wide)
    scale = np.prod(wide_shape) / np.prod(shape)
    assert scale == 2
    assert second[0] == f"computing Q̂5 · step 1 of {steps} · about {int(steps * scale)} s left", second[0]
    level0 = [ImageSession_sites(engine, path, setting) for path in (small, wide)]
    assert second[-2] == (f"computing Q̂0 · step {steps - 2} of {steps} · "  # (the last level and the finishing)
                          f"about {round(level0[1] / level0[0] + 2 * scale)} s left")
    assert second[-1] == f"finishing · step {steps - 1} of {steps} · about {int(2 * scale)} s left"
    all_said = []
    doc = ImageDocument(wide)
    doc.load()
    engine.predict(doc, SchemeChoice("all", depth=0), progress=all_said.append)
    assert "estimating the time left…" in all_said[0]  # the encoder's known, All's levels never measured


def ImageSession_sites(engine, path, setting, level=0) -> int:  # noqa: N802
    """The sites level ``level`` of ``path``'s (cached) prediction computed (the reference)."""
    from qgn.propagation import Scheme

    session = engine._entries[path].session
    outputs = session.run(Scheme(**setting.scheme_arguments())).outputs
    return next((o.num_sites for o in outputs if o.level == level), 0)


def _engine(model_path, ticks_of=1.0):
    from qgn_studio.engine import Engine

    engine = Engine()
    engine.load_model(model_path, "cpu")
    engine.resolution = "native"
    ticks = iter(range(10_000))
    engine.clock = lambda: ticks_of * next(ticks)  # each step measures ``ticks_of`` seconds
    return engine


def _notes(engine, path, setting) -> list[str]:
    from qgn_studio.document import ImageDocument

    doc = ImageDocument(path)
    doc.load()
    said = []
    engine.predict(doc, setting, progress=said.append)
    return said


def test_a_levels_time_left_follows_its_sites_not_the_images_pixels(model_path, tmp_path):
    """A decoder level's cost follows the sites it computes (PC computes the composite cells'
    children), not the image's pixels: two images of one size, the second with other sites at Q̂0,
    were both estimated at the first's cost per pixel (40 % low between two CamVid photos). Just
    before a level its sites are known (its parent's selection): the note before the last level
    says its measured cost per site times its sites - here each step took 100 s of a fake clock."""
    from qgn.progress import left_phrase
    from qgn_studio.document import SchemeChoice
    from qgn_studio.testing import write_samples

    first, second = write_samples(tmp_path / "two", 2, (64, 96))
    engine = _engine(model_path, 100.0)
    setting = SchemeChoice("pc", depth=0)
    _notes(engine, first, setting)
    said = _notes(engine, second, setting)
    sites = [ImageSession_sites(engine, path, setting) for path in (first, second)]
    assert sites[0] and sites[1] and sites[0] != sites[1], sites  # (the case: other sites, same pixels)
    last = said[-2]  # (said[-1]: the finishing after it, its level views and the rest: 100 s each here)
    assert last.startswith("computing Q̂0 · step") and said[-1].left == pytest.approx(200.0), said
    head = last.split(" · about")[0].split(" · under a second")[0]
    expected = 100.0 * sites[1] / sites[0] + 200.0  # (by pixels the level alone was 100 s)
    assert last == f"{head} · {left_phrase(expected)}", (said, sites)
    assert last.left == pytest.approx(expected)
    # the floor of each note's count-down: the steps after its own (the busy note over Q̂0 said "longer
    # than estimated" once Q̂0 overran, the views and the rest still to come: its after was not sent);
    # "finishing" is said once for the views and the finish after them, so nothing follows it (floored
    # at the finish's 100 s, the note stood still there through the whole finish)
    assert last.after == pytest.approx(200.0) and said[-1].after is None, said


def test_a_predictions_time_left_holds_the_work_after_its_last_level(model_path, tmp_path, monkeypatch):
    """After its last decoder level a prediction still builds the level views, the leaves, the
    metrics and the domain verdict (0.16-1.48 s of a 0.98-2.95 s CamVid prediction on CPU), none of
    it in the estimate: the note sat at "a moment left" that long. It is one more step, measured
    per pixel of the image: here it took 50 s of the fake clock on the first image, so on one with
    twice its pixels the last level's note says its own cost plus 100 s, and the note after it
    ("finishing", the last step of the count) says 100 s."""
    import qgn_studio.engine as engine_module
    from qgn.progress import left_phrase
    from qgn_studio.document import SchemeChoice
    from qgn_studio.testing import write_samples

    small = write_samples(tmp_path / "small", 1, (64, 64))[0]
    wide = write_samples(tmp_path / "wide", 1, (64, 128))[0]
    now = [0.0]

    def clock():
        now[0] += 1.0  # one second per reading: each level measures 1 s
        return now[0]

    engine = _engine(model_path)
    engine.clock = clock
    leaves = engine_module.image_leaves

    def slow_leaves(*args, **kwargs):
        now[0] += 50.0  # the work after the last level takes 50 s more on the first image
        return leaves(*args, **kwargs)

    monkeypatch.setattr(engine_module, "image_leaves", slow_leaves)
    setting = SchemeChoice("pc", depth=0)
    _notes(engine, small, setting)
    monkeypatch.setattr(engine_module, "image_leaves", leaves)
    said = _notes(engine, wide, setting)
    level0 = [ImageSession_sites(engine, path, setting) for path in (small, wide)]
    # (the level views' clock second, then the 50 s and the clock's own second, times twice the pixels)
    tail = 2 * 1.0 + 2 * 51.0
    count = int(said[0].split(" of ")[1].split(" ")[0])
    last_level = next(text for text in said if text.startswith(f"computing Q̂0 · step {count - 2} of {count}"))
    assert last_level.left == pytest.approx(level0[1] / level0[0] + tail), said
    assert said[-1] == f"finishing · step {count - 1} of {count} · {left_phrase(tail)}", said
    assert said[0].left > tail, said  # (the first note holds it too)


def test_a_moved_threshold_is_estimated_anew(model_path, tmp_path):
    """The costs were kept per level and scheme name only: after PC τ=0.15 (few sites), the first
    run at τ=0.01 (many more) was estimated at τ=0.15's cost (CamVid: 0.25 s for 0.77 s). Each τ or
    entropy threshold is its own setting: "estimating the time left…" until it was measured."""
    from qgn_studio.document import SchemeChoice
    from qgn_studio.testing import write_samples

    first, second, third = write_samples(tmp_path / "three", 3, (64, 96))
    engine = _engine(model_path)
    few, many = SchemeChoice("pc_tau", tau=0.15, depth=0), SchemeChoice("pc_tau", tau=0.01, depth=0)
    _notes(engine, first, few)
    assert all(ImageSession_sites(engine, first, few, level) for level in range(5)), "every level measured"
    said = _notes(engine, second, many)
    assert "estimating the time left…" in said[0] and not any(" left" in t and "about" in t for t in said), said
    said = _notes(engine, third, many)  # measured now
    assert said[0].endswith(" left") and "about" in said[0], said


def test_the_busy_note_counts_its_time_left_down(qtbot):
    """The note said "about 9 s left" through the whole of the last, longest level: it counts down
    each second from the estimate it was given, down to "under a second left"; past its estimate it
    says "longer than estimated" (it said "a moment left" however long the overrun, then nothing)."""
    from PySide6 import QtWidgets

    from qgn_studio.canvas.view import BusyPill

    parent = QtWidgets.QWidget()
    qtbot.addWidget(parent)
    pill = BusyPill(parent)
    now = [1000.0]
    pill.clock = lambda: now[0]
    head = "Computing Q̂0 · step 11 of 11"
    pill.set_busy(True, f"{head} · about 9 s left")
    pill.count_down(head, 9.0)
    assert pill.label.text() == f"{head} · about 9 s left"
    assert pill._tick.isActive()
    now[0] += 4
    pill._tick.timeout.emit()
    assert pill.label.text() == f"{head} · about 5 s left"
    now[0] += 4.5
    pill._tick.timeout.emit()
    assert pill.label.text() == f"{head} · under a second left"
    now[0] += 30  # past the estimate
    pill._tick.timeout.emit()
    assert pill.label.text() == f"{head} · longer than estimated"
    pill.set_busy(True, "Computing Q̂0")  # a new note: no count-down of the last one
    pill._tick.timeout.emit()
    assert pill.label.text() == "Computing Q̂0" and not pill._tick.isActive()
    pill.count_down(head, 3.0)
    pill.set_busy(False)
    assert not pill._tick.isActive()


def test_the_busy_note_of_a_cancelled_run_shows_no_busy_bar_while_it_winds_down(qtbot):
    """"Cancelling the prediction…" kept the note's busy bar moving, as if the run worked on: the
    bar goes while it winds down, and comes back with the next run's note."""
    from PySide6 import QtWidgets

    from qgn_studio.canvas.view import BusyPill

    parent = QtWidgets.QWidget()
    qtbot.addWidget(parent)
    parent.show()
    pill = BusyPill(parent)
    pill.set_busy(True, "Computing Q̂1 · step 3 of 11")
    qtbot.waitUntil(pill.isVisible)
    assert pill.bar.isVisible()
    pill.set_cancelling("Cancelling the prediction…")
    assert pill.label.text() == "Cancelling the prediction…" and not pill.bar.isVisible()
    assert not pill.button.isEnabled()
    pill.set_busy(True, "Computing Q̂2")  # the next run
    assert pill.bar.isVisible() and pill.button.isEnabled()


def test_the_busy_note_of_a_middle_step_that_overran_keeps_the_time_of_the_steps_after_it(qtbot):
    """A middle level run past the estimate of all the steps left said "longer than estimated",
    then the next level's note a time left again: its count-down stops at the estimate of the steps
    after it (sent with it), and only the last step's says it overran."""
    from PySide6 import QtWidgets

    from qgn_studio.canvas.view import BusyPill

    parent = QtWidgets.QWidget()
    qtbot.addWidget(parent)
    pill = BusyPill(parent)
    now = [1000.0]
    pill.clock = lambda: now[0]
    head = "Computing Q̂3 · step 8 of 11"  # 6 s in all, 5 s of them the three steps after it
    pill.set_busy(True, head)
    pill.count_down(head, 6.0, 5.0)
    assert pill.label.text() == f"{head} · about 6 s left"
    now[0] += 7  # Q̂3 took 7 s
    pill._tick.timeout.emit()
    assert pill.label.text() == f"{head} · about 5 s left"
    head = "Finishing · step 11 of 11"  # the last step: nothing after it
    pill.set_busy(True, head)
    pill.count_down(head, 0.0)  # (an estimate of 0 s: under a second, not overrun)
    assert pill.label.text() == f"{head} · under a second left"
    now[0] += 2
    pill._tick.timeout.emit()
    assert pill.label.text() == f"{head} · longer than estimated"


def test_the_window_says_a_predictions_time_left_once_it_has_a_basis(qtbot, window, model_path, samples):
    """The busy note over the image counts a prediction's steps, and says "estimating the time
    left…" until this session has measured each of its steps, then the time left."""
    from qgn_studio.document import SchemeChoice

    said = []
    window.worker.busy_changed.connect(lambda busy, text: said.append(text) if busy else None)
    counted = []
    window.worker.busy_counting.connect(lambda head, left: counted.append((head, left)))
    window.explore.set_setting(SchemeChoice("pc", depth=0))
    window.start([str(samples[0])], str(model_path))
    qtbot.waitUntil(lambda: window.current is not None and window.current.result is not None, timeout=WAIT_MS)
    assert any(text.startswith("Computing Q̂5 · step 1 of") and "estimating the time left…" in text
               for text in said), said
    said.clear()
    window.open_paths([str(samples[1])], append=True)
    qtbot.waitUntil(lambda: len(window.docs) == 2, timeout=WAIT_MS)
    window.workspace.select(window.docs[1])
    qtbot.waitUntil(lambda: window.current is window.docs[1] and window.current.result is not None, timeout=WAIT_MS)
    assert any(text.startswith("Computing Q̂5 · step 1 of") and text.endswith(" left") and "estimating" not in text
               for text in said), said  # ("about 3 s left", or "under a second left" for the tiny test model)
    assert any(head.startswith("Computing Q̂0 · step ") for head, _ in counted), counted  # the note counts down
    assert counted[-1][0].startswith("Finishing · step "), counted  # (the views and metrics after the last level)


def test_a_save_of_several_annotations_shows_its_progress(qtbot, windows, samples, model_path, tmp_path):
    """Ctrl+S with several images edited wrote them one job each with nothing shown until the
    end: the status bar's task progress says "Saving annotations n/N" (with the time left), and
    is hidden when the round ends."""
    from studio_steps import paint, start_annotating, wait_for_image

    win = windows(folder=tmp_path / "project")
    start_annotating(qtbot, win, samples, model_path)
    for i, path in enumerate(samples):
        if i:
            win.workspace.select(win.docs[i])
            wait_for_image(qtbot, win, path)
            qtbot.waitUntil(lambda: win.current.annotation is not None, timeout=WAIT_MS)
        paint(win, 2, 1, [(10, 10), (50, 30)])
    assert len(win.projects.unsaved()) == len(samples)
    shown = []
    win.workspace.progress.connect(lambda text, done, total, _cancel: shown.append((text, done, total)))
    with qtbot.waitSignal(win.projects.saved, timeout=WAIT_MS):
        assert win.projects.save()
    total = len(samples)
    assert [s[:3] for s in shown] == [(f"Saving annotations {n}/{total}", n, total) for n in range(total)]
    assert not win.progress.isVisible() and not win.projects.unsaved()


def test_a_revisits_cheap_finish_leaves_a_fresh_ones_time_alone(model_path, tmp_path, monkeypatch):
    """A revisit of a setting finds its level views cached and builds none: its finish is cheap and
    was recorded over a fresh one's (here 50 s of the fake clock per view built, 1 s with every
    view cached), so the next fresh image said "about 1 s left" while finishing and took 301 s. A
    finish that built no level view is not recorded: the fresh image's finishing note says the
    fresh images' time."""
    from qgn.progress import left_phrase
    from qgn_studio.document import SchemeChoice
    from qgn_studio.testing import write_samples

    a, b, c = write_samples(tmp_path / "s", 3, (64, 64))
    engine = _engine(model_path)
    _fake_clock_and_level_views(engine, monkeypatch, 1.0, lambda level: 50.0)  # a level view built anew: 50 s
    setting = SchemeChoice("pc", depth=0)
    _notes(engine, a, setting)
    fresh = [s for s in _notes(engine, b, setting) if s.startswith("finishing")][-1]
    _notes(engine, a, setting)  # a revisit: its levels and level views cached
    said = _notes(engine, c, setting)
    finishing = [s for s in said if s.startswith("finishing")][-1]
    assert finishing == fresh, said
    assert not finishing.endswith(left_phrase(1.0)), said


def test_a_finish_that_finds_some_level_views_cached_records_only_the_views_it_built(model_path, tmp_path,
                                                                                     monkeypatch):
    """A level view costs per cell of its grid (here 0.05 s of the fake clock per cell). A prediction
    down to Q̂0 after one down to Q̂1 finds the coarse views cached and builds Q̂0's only (3/4 of
    the cells): its whole finish, per pixel, was recorded as the rate of every finish, so the next
    fresh image down to Q̂1 said about 3 min 25 s while finishing and took 1 min 9 s. The views
    are measured apart, per cell built: the note says the time the finish takes (within 10 %)."""
    from qgn.progress import left_phrase
    from qgn_studio.document import ImageDocument, SchemeChoice
    from qgn_studio.testing import write_samples

    b, c = write_samples(tmp_path / "s", 2, (64, 64))
    engine = _engine(model_path)
    # a level view built anew: 0.05 s per cell of its 64×64 image's grid
    now = _fake_clock_and_level_views(engine, monkeypatch, 0.001, lambda level: 0.05 * (64 >> level) ** 2)
    _notes(engine, b, SchemeChoice("pc", depth=1))  # builds the views down to Q̂1
    _notes(engine, b, SchemeChoice("pc", depth=0))  # finds those cached, builds Q̂0's
    doc = ImageDocument(c)
    doc.load()
    said, at = [], []

    def progress(text):
        said.append(text)
        at.append(now[0])

    engine.predict(doc, SchemeChoice("pc", depth=1), progress=progress)
    finishing = [i for i, s in enumerate(said) if s.startswith("finishing")][-1]
    took = now[0] - at[finishing]
    assert 60 < took < 80, took  # (the reference: 1 364 cells at 0.05 s)
    estimate = float(said[finishing].left)
    assert abs(estimate - took) < 0.1 * took, (said[finishing], left_phrase(took))


def _fake_clock_and_level_views(engine, monkeypatch, tick: float, view_seconds):
    """``engine``'s clock a fake one, ``tick`` seconds on at each reading, and each level view built
    anew (not cached) ``view_seconds(level)`` more: the clock's list, [now]."""
    import qgn_studio.engine as engine_module

    now = [0.0]

    def clock():
        now[0] += tick
        return now[0]

    engine.clock = clock
    real = engine_module.Engine._level_view

    def slow_view(self, entry, scheme, prediction, level):
        if (scheme.key(), level) not in entry.levels:
            now[0] += view_seconds(level)
        return real(self, entry, scheme, prediction, level)

    monkeypatch.setattr(engine_module.Engine, "_level_view", slow_view)
    return now


def test_a_big_photos_reading_and_preparing_say_its_size_and_time_left(model_path, tmp_path):
    """A 24 MP photo took 0.5-0.9 s to read and 2.5 s to prepare (its resize to the working size)
    here, 7 s in the window under load, all under a bare "Reading photo.jpg": the reading names its
    size from the file's header, and both say their time left once a file of the kind (an image at
    this resolution) was measured, per pixel - here each clock reading is 10 s of a fake clock."""
    import numpy as np
    from PIL import Image

    from qgn_studio.document import ImageDocument
    from qgn_studio.workers import InferenceWorker

    small, big = tmp_path / "small.png", tmp_path / "big.png"
    Image.fromarray(np.full((1000, 1200, 3), 90, np.uint8)).save(small)
    Image.fromarray(np.full((1000, 2400, 3), 90, np.uint8)).save(big)
    worker = InferenceWorker()
    engine = worker.engine
    engine.load_model(model_path, "cpu")
    ticks = iter(range(10_000))
    engine.clock = lambda: 10.0 * next(ticks)  # each measure: 10 s
    notes, counting = [], []
    worker.busy_changed.connect(lambda _on, text: notes.append(text))
    worker.busy_counting.connect(lambda head, left: counting.append((head, left)))
    said = []
    docs = [ImageDocument(small), ImageDocument(big)]
    for doc in docs:
        worker._read(doc)
        engine._entry(doc, said.append)
    assert notes == ["Reading small.png (1.2 MP)", "Reading big.png (2.4 MP) · about 20 s left"], notes
    assert counting == [("Reading big.png (2.4 MP)", 20.0)]
    assert said[0] == "preparing small.png (1.2 MP) · estimating the time left…"
    assert said[1] == "preparing big.png (2.4 MP) · about 20 s left" and said[1].left == 20.0, said
    assert all(doc.loaded and doc.error is None for doc in docs)
