"""Fine-tuning on corrections through the app (offscreen): the dock's button runs a few SGD steps in
a background thread with a live loss curve, compares before and after, and keeps (a new file, the
inference worker switches to it) or reverts; a long run can be cancelled.
"""
from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import shiboken6

from qgn_studio.finetuner import default_model_path
from qgn_studio.testing import Answers, make_dev_model, write_samples

from sample_files import digest

WAIT_MS = 60_000
SIZE = (64, 96)


@pytest.fixture
def demo_copy(tmp_path):
    """A copy of the bundled demo model (an untrained tiny one when it is missing), in tmp_path."""
    from qgn.resources import demo_model_path

    folder = tmp_path / "models"
    demo = demo_model_path()
    if not demo.is_file():
        return make_dev_model(folder / "demo.safetensors", composite_bias=0.6)
    folder.mkdir()
    for suffix in (".safetensors", ".json"):
        shutil.copy(demo.with_suffix(suffix), folder / f"demo{suffix}")
    return folder / "demo.safetensors"



@contextlib.contextmanager
def finetune_under_way(qtbot, window, panel):
    """A fine-tune of 100,000 iterations started from ``panel`` and two steps done when the block
    begins; yields (the blocker of ``finetuner.finished``, the iterations done so far) and waits for
    the run to end when the block ends (the block stops it)."""
    panel.iterations.setValue(100_000)
    steps = []
    with qtbot.waitSignal(window.finetuner.finished, timeout=WAIT_MS) as ended:
        panel.start.click()
        qtbot.waitUntil(lambda: window.finetuner.job is not None, timeout=WAIT_MS)
        window.finetuner.job.progress.connect(lambda i, _loss: steps.append(i))
        qtbot.waitUntil(lambda: len(steps) >= 2, timeout=WAIT_MS)
        yield ended, steps


def corrected_window(qtbot, win, tmp_path, demo_copy):
    """One image whose annotation corrects the prediction towards the ground truth."""
    images = write_samples(tmp_path / "data", 1, SIZE)
    win.start(images, str(demo_copy))
    qtbot.waitUntil(lambda: win.current is not None and win.current.result is not None, timeout=WAIT_MS)
    win.annotator.set_mode(True)
    qtbot.waitUntil(lambda: win.current.annotation is not None, timeout=WAIT_MS)
    win.annotator.start_from("truth")
    qtbot.waitUntil(lambda: np.array_equal(win.current.annotation.label, win.current.ground_truth), timeout=WAIT_MS)
    win.show_finetune()  # the list is gathered on the job thread
    qtbot.waitUntil(lambda: "1</b> corrected image" in win.finetuner.panel.corrections.text(), timeout=WAIT_MS)
    return win.finetuner.panel


def test_the_fine_tune_tab_counts_the_corrections_when_it_is_shown(qtbot, window, tmp_path, demo_copy):
    """Clicking the Fine-tune tab showed "↻ counts the corrected images" over an image just corrected
    (only Model ▸ Fine-tune… and ↻ counted): the tab counts them when it comes into view."""
    images = write_samples(tmp_path / "data", 1, SIZE)
    window.start(images, str(demo_copy))
    qtbot.waitUntil(lambda: window.current is not None and window.current.result is not None, timeout=WAIT_MS)
    window.annotator.set_mode(True)
    qtbot.waitUntil(lambda: window.current.annotation is not None, timeout=WAIT_MS)
    window.annotator.start_from("truth")
    qtbot.waitUntil(lambda: np.array_equal(window.current.annotation.label, window.current.ground_truth),
                    timeout=WAIT_MS)
    panel = window.finetuner.panel
    window.finetune_dock.raise_()  # what clicking its tab does
    qtbot.waitUntil(lambda: "1</b> corrected image" in panel.corrections.text(), timeout=WAIT_MS)
    assert panel.start.isEnabled()


def test_showing_the_fine_tune_tab_again_and_again_queues_one_count_not_one_each(qtbot, window, tmp_path, demo_copy):
    """Each time the tab came into view another look for corrections was queued on the job thread that
    saves use (1.6 s each on a 20,000-image project, each holding copies of the open corrected maps), and
    Model ▸ Fine-tune… queued two (its own and the tab's): while one is out, one more follows it."""
    import threading

    images = write_samples(tmp_path / "data", 1, SIZE)
    window.start(images, str(demo_copy))
    qtbot.waitUntil(lambda: window.current is not None and window.current.result is not None, timeout=WAIT_MS)
    window.jobs.wait_idle()
    queued = lambda: [job.label for job in window.jobs._queue].count("Looking for corrections")  # noqa: E731
    gate = threading.Event()
    window.jobs.submit(lambda: gate.wait(30))  # the job thread busy (a save on a slow disk)
    qtbot.waitUntil(lambda: window.jobs._running, timeout=WAIT_MS)
    try:
        for _ in range(20):  # the user flips between Explore and Fine-tune
            window.explore_dock.raise_()
            window.finetune_dock.raise_()
        window.explore_dock.raise_()
        window.show_finetune()  # Model ▸ Fine-tune… on a hidden tab
        assert queued() == 1
    finally:
        gate.set()
    # the one out, then the one asked for meanwhile, and nothing after
    qtbot.waitUntil(lambda: not window.finetuner._gathers_out, timeout=WAIT_MS)
    window.jobs.wait_idle()
    assert queued() == 0 and not window.finetuner._refresh_again
    assert "corrected image" in window.finetuner.panel.corrections.text()


def test_finetune_runs_compares_and_keeps_under_a_new_name(qtbot, window, tmp_path, demo_copy):
    panel = corrected_window(qtbot, window, tmp_path, demo_copy)
    assert "1</b> corrected image" in panel.corrections.text()
    original = digest(demo_copy)
    panel.iterations.setValue(6)
    with qtbot.waitSignal(window.finetuner.finished, timeout=WAIT_MS) as ended:
        panel.start.click()
        qtbot.waitUntil(lambda: window.finetuner.running, timeout=WAIT_MS)  # after the corrections are gathered
        assert panel.cancel.isEnabled()
    assert ended.args == ["compared"]
    panel.plot.redraw()
    xs, ys = panel.plot.curve.getData()
    assert list(xs) == [1, 2, 3, 4, 5, 6] and np.isfinite(ys).all()
    comparison = window.finetuner.comparison
    assert comparison.per_image and 0 <= comparison.before["miou"] <= 1 and 0 <= comparison.after["miou"] <= 1
    assert panel.table.item(1, 0).text().endswith("%") and panel.per_image.rowCount() == 1
    assert panel.keep.isEnabled() and panel.revert.isEnabled()

    blocker = default_model_path(demo_copy, demo_copy.parent)  # dev-ft1 exists: the default moves on
    blocker.write_bytes(b"someone else's file")
    offered = []

    def ask(default: Path):
        offered.append(default)
        return default, False

    window.finetuner.ask_save_path = ask
    with qtbot.waitSignal(window.worker.model_loaded, timeout=WAIT_MS) as loaded:
        panel.keep.click()
    assert offered == [demo_copy.parent / "demo-ft2.safetensors"]
    assert loaded.args[0].path == offered[0].resolve() and window.worker.engine.model is not None
    assert offered[0].is_file() and offered[0].with_suffix(".json").is_file()
    assert blocker.read_bytes() == b"someone else's file" and digest(demo_copy) == original
    assert not panel.keep.isEnabled()


def test_keep_never_overwrites_silently_and_revert_keeps_the_model(qtbot, window, tmp_path, demo_copy):
    panel = corrected_window(qtbot, window, tmp_path, demo_copy)
    panel.iterations.setValue(2)
    with qtbot.waitSignal(window.finetuner.finished, timeout=WAIT_MS):
        panel.start.click()
    taken = tmp_path / "taken.safetensors"
    taken.write_bytes(b"keep me")
    window.finetuner.ask_save_path = lambda default: (taken, False)  # not confirmed: must refuse
    panel.keep.click()
    qtbot.waitUntil(lambda: "Not saved" in panel.status.text(), timeout=WAIT_MS)
    assert taken.read_bytes() == b"keep me"
    window.finetuner.ask_save_path = lambda default: (demo_copy, True)  # the original: refused whatever
    panel.keep.click()
    qtbot.waitUntil(lambda: "original model" in panel.status.text(), timeout=WAIT_MS)
    model_before = window.worker.engine.model
    panel.revert.click()
    assert window.finetuner.result is None and not panel.keep.isEnabled()
    assert window.worker.engine.model is model_before and "Reverted" in panel.status.text()


def test_finetune_can_be_cancelled(qtbot, window, tmp_path, demo_copy):
    panel = corrected_window(qtbot, window, tmp_path, demo_copy)
    panel.iterations.setValue(100_000)
    steps = []
    with qtbot.waitSignal(window.finetuner.finished, timeout=WAIT_MS) as ended:
        panel.start.click()
        qtbot.waitUntil(lambda: window.finetuner.job is not None, timeout=WAIT_MS)
        job = window.finetuner.job
        job.progress.connect(lambda i, _loss: steps.append(i))
        qtbot.waitUntil(lambda: len(steps) >= 2, timeout=WAIT_MS)
        panel.cancel.click()
        # until it stops (its end reaches this thread through the event loop): it says it cancels,
        # in the dock and the status bar, its Cancel disabled, not gone; it said nothing in the status
        # bar and left the Cancel enabled
        assert window.progress.label.text() == "Cancelling the fine-tune…"
        assert window.progress.cancel_button.isVisibleTo(window.progress)
        assert not window.progress.cancel_button.isEnabled() and not panel.cancel.isEnabled()
        assert not panel.start.isEnabled()
    assert ended.args == ["cancelled"]
    assert window.progress.isHidden()
    assert "Cancelled after" in panel.status.text()
    assert window.finetuner.result is None and not panel.keep.isEnabled() and panel.start.isEnabled()
    assert panel.progress.value() < 100_000


def test_esc_stops_a_running_finetune_and_the_model_in_use_stays(qtbot, window, tmp_path, demo_copy):
    """Esc (the window's Cancel computation) stopped predictions but not a fine-tune, which went on
    for minutes with only the dock's Cancel to stop it: Esc now cancels it at its next step, with
    no comparison and nothing to keep; the model in use is the one before."""
    from PySide6 import QtCore
    from PySide6.QtTest import QTest

    panel = corrected_window(qtbot, window, tmp_path, demo_copy)
    model_before = window.worker.engine.model
    with finetune_under_way(qtbot, window, panel) as (ended, steps):
        qtbot.waitUntil(lambda: not window._busy, timeout=WAIT_MS)
        window.activateWindow()
        QTest.keyClick(window, QtCore.Qt.Key.Key_Escape)
    assert ended.args == ["cancelled"] and max(steps) < 100_000
    assert "Cancelled after" in panel.status.text() and "unchanged" in panel.status.text()
    assert window.finetuner.result is None and window.finetuner.comparison is None
    assert not panel.keep.isEnabled() and panel.start.isEnabled() and not panel.cancel.isEnabled()
    assert window.worker.engine.model is model_before
    assert not window.finetuner.cancel()  # nothing left to stop


def test_a_cancel_while_the_corrections_are_gathered_starts_nothing(qtbot, window, tmp_path, demo_copy):
    """Start, then Cancel before the corrections were found: no run starts when they arrive."""
    panel = corrected_window(qtbot, window, tmp_path, demo_copy)
    window.finetuner.start(5, 0.001)
    assert window.finetuner._starting and window.finetuner.cancel()
    window.jobs.wait_idle()
    qtbot.wait(200)  # the gathered list is delivered on the UI thread
    assert window.finetuner.job is None and not window.finetuner.running
    assert "Cancelled before it started" in panel.status.text()


def test_finetune_transfers_the_model_to_added_classes_and_says_so(qtbot, window, tmp_path, demo_copy):
    panel = corrected_window(qtbot, window, tmp_path, demo_copy)
    original = digest(demo_copy)
    window.annotator.add_class("water")
    assert window.annotator.classes.names[-1] == "water"
    panel.iterations.setValue(2)
    with qtbot.waitSignal(window.finetuner.finished, timeout=WAIT_MS) as ended:
        panel.start.click()
    assert ended.args == ["compared"]
    status = panel.status.text()
    assert "Transferred to the annotations' classes first" in status and "new 1 (water)" in status
    assert window.finetuner.result.model.config.classes.names[-1] == "water"
    assert digest(demo_copy) == original


# ----------------------------------------------------------------------------------------- the panel
def test_finetune_panel_progress_and_a_worse_result_is_flagged(qtbot):
    from types import SimpleNamespace

    from qgn_studio.panels.finetune import FinetunePanel

    panel = FinetunePanel()
    qtbot.addWidget(panel)
    assert panel.progress.maximum() == panel.iterations.value() == 300  # not "0 / 100"
    panel.iterations.setValue(120)
    assert panel.progress.maximum() == 120
    assert "No corrected" not in panel.corrections.text()  # nothing was counted yet
    metrics = {"acc": 0.9, "miou": 0.6, "agreement": 0.874}
    worse = SimpleNamespace(before=metrics, after={**metrics, "agreement": 0.855}, per_image=[], scheme="pc",
                            changed_cells=3, changed_pixels=12, pixels=100)
    panel.show_comparison(worse)
    assert "Worse after fine-tuning: cells right" in panel.changed.text()
    assert panel.table.item(2, 2).text().endswith("▼")


def test_finetune_panel_says_the_time_left_as_every_progress_line_does(qtbot, monkeypatch):
    """The fine-tune status's time left is ``qgn.progress.TimeLeft``'s: nothing in the run's first
    second nor once every iteration is done, then the mean time per iteration since the first report
    × those left."""
    import qgn.progress
    from qgn_studio.panels.finetune import FinetunePanel

    clock = [10.0]
    monkeypatch.setattr(qgn.progress.time, "monotonic", lambda: clock[0])
    panel = FinetunePanel()
    qtbot.addWidget(panel)
    panel.set_running(True, 100)
    clock[0] = 10.5
    panel.add_loss(5, 0.5)
    assert panel.status.text() == "iteration 5 · loss 0.5000"  # half a second: no estimate yet
    clock[0] = 14.0
    panel.add_loss(20, 0.25)  # 15 iterations in 3.5 s since the first report
    assert panel.status.text() == "iteration 20 · loss 0.2500 · about 19 s left"
    panel.add_loss(100, 0.125)
    assert panel.status.text() == "iteration 100 · loss 0.1250"


# ------------------------------------------------------------------------- the list of corrections
def test_the_corrections_are_looked_for_on_the_job_thread_and_only_the_newest_list_shows(qtbot, tmp_path,
                                                                                        monkeypatch):
    """Opening or refreshing the dock looks for every image's saved annotation: on the job thread
    (20,000 images take seconds), never on the UI thread; the panel then counts them, and of two
    refreshes only the later one's list is shown (the earlier one's is stale)."""
    import threading
    from types import SimpleNamespace

    from qgn.classes import ClassSet
    from qgn.project import Project, ProjectImage
    from qgn_studio.finetuner import Finetuner
    from qgn_studio.jobs import JobRunner
    from qgn_studio.project_controller import ProjectController

    project = Project.create(tmp_path / "project", [], ClassSet.generic(3))
    project.images.extend(ProjectImage((tmp_path / f"img_{i}.png").resolve(), f"img_{i}") for i in range(6))
    project.save()
    for image in project.images[:2]:
        project.save_annotation(image, np.zeros((6, 8), np.uint8))
    projects = SimpleNamespace(project=project)
    projects.saved_annotations = lambda: ProjectController.saved_annotations(projects)
    jobs = JobRunner()
    finetuner = Finetuner(SimpleNamespace(docs=[]), None, projects, jobs, Answers())
    shown = []
    finetuner.panel.set_corrections = shown.append
    looked = []
    is_file = Path.is_file
    monkeypatch.setattr(Path, "is_file", lambda self: looked.append(threading.current_thread()) or is_file(self))
    try:
        finetuner.refresh()
        qtbot.waitUntil(lambda: len(shown) == 1, timeout=WAIT_MS)
        assert shown == [["img_0.png", "img_1.png"]]
        assert looked and threading.main_thread() not in looked
        project.save_annotation(project.images[4], np.zeros((6, 8), np.uint8))  # another writer, say
        looked.clear()
        finetuner.refresh()
        finetuner.refresh()
        jobs.wait_idle()
        qtbot.waitUntil(lambda: len(shown) == 2, timeout=WAIT_MS)
        qtbot.wait(50)  # the first refresh's list, delivered too, is not shown
    finally:
        jobs.stop()
    assert shown[1:] == [["img_0.png", "img_1.png", "img_4.png"]]
    assert looked and threading.main_thread() not in looked


def test_an_open_correction_whose_image_was_unloaded_is_still_one(qtbot, tmp_path):
    # an image left behind drops its decoded pixels (window_images.RECENT_RESULTS) but keeps its map:
    # a "done" map not saved anywhere is a correction all the same, its image read again to train
    from types import SimpleNamespace

    from PIL import Image

    from qgn_studio.document import ImageDocument
    from qgn_studio.finetuner import Finetuner

    path = tmp_path / "a.png"
    Image.fromarray(np.full((6, 8, 3), 90, np.uint8)).save(path)
    doc = ImageDocument(path)
    label = np.ones((6, 8), np.uint8)
    doc.annotation = SimpleNamespace(label=label, reference=label.copy(), is_annotation=False, dirty=False)
    doc.done = True  # marked done on the prediction as it was
    finetuner = Finetuner(SimpleNamespace(docs=[doc]), None, SimpleNamespace(project=None), None,
                          Answers())
    found = finetuner._open_corrections()
    assert list(found) == [path]
    image, got = found[path].materialise()
    assert image.shape == (6, 8, 3) and (image == 90).all()
    np.testing.assert_array_equal(got, label)


def test_nothing_to_fine_tune_on_is_taken_back_once_corrections_are_counted(qtbot, window, tmp_path, demo_copy):
    """Fine-tune pressed before any correction says there is nothing to train on; after correcting an
    image, ↻ counts it and the note under the curve must not still say there is nothing (it did)."""
    images = write_samples(tmp_path / "data", 1, SIZE)
    window.start(images, str(demo_copy))
    qtbot.waitUntil(lambda: window.current is not None and window.current.result is not None, timeout=WAIT_MS)
    panel = window.finetuner.panel
    window.finetuner.start(6, 0.001)  # the button, before the first count
    qtbot.waitUntil(lambda: "Nothing to fine-tune on" in panel.status.text(), timeout=WAIT_MS)
    window.annotator.set_mode(True)
    qtbot.waitUntil(lambda: window.current.annotation is not None, timeout=WAIT_MS)
    window.annotator.start_from("truth")
    qtbot.waitUntil(lambda: np.array_equal(window.current.annotation.label, window.current.ground_truth),
                    timeout=WAIT_MS)
    window.finetuner.refresh()  # ↻
    qtbot.waitUntil(lambda: "1</b> corrected image" in panel.corrections.text(), timeout=WAIT_MS)
    assert "Nothing to fine-tune on" not in panel.status.text()


# ------------------------------------------------------------------------------- closing the window
def finetuned_window(qtbot, window, tmp_path, demo_copy, iterations: int = 2):
    """A window with a fine-tuned model neither kept nor reverted (its one annotation discarded
    unasked when the window closes)."""
    panel = corrected_window(qtbot, window, tmp_path, demo_copy)
    panel.iterations.setValue(iterations)
    with qtbot.waitSignal(window.finetuner.finished, timeout=WAIT_MS) as ended:
        panel.start.click()
    assert ended.args == ["compared"] and window.finetuner.result is not None
    return panel


def answering(asked: list, *answers: str):
    """An ``ask_unkept`` that lists what it was asked and answers ``answers`` in turn."""
    queue = list(answers)

    def ask(running, detail, path):
        asked.append((running, detail, path))
        return queue.pop(0)

    return ask


def test_closing_asks_before_dropping_a_fine_tuned_model_and_keep_saves_it(qtbot, window, tmp_path, demo_copy):
    """A fine-tuned model is minutes of compute and the user's corrections: closing the window with
    one neither kept nor reverted asks (it was dropped unasked). Cancel keeps the window and the
    model; Keep writes it where the panel's Keep would by default, and the next start uses it."""
    from qgn.model.checkpoint import load_model

    finetuned_window(qtbot, window, tmp_path, demo_copy)
    original = digest(demo_copy)
    tuned = {k: v.clone() for k, v in window.finetuner.result.model.state_dict().items()}
    expected = default_model_path(demo_copy, demo_copy.parent)
    asked = []
    window.finetuner.ask_unkept = answering(asked, "cancel", "keep")
    window.close()
    assert [(running, path) for running, _detail, path in asked] == [(False, expected)]
    assert "mIoU" in asked[0][1]
    assert window.isVisible() and window.finetuner.result is not None and not expected.exists()

    window.close()
    assert len(asked) == 2 and not window.isVisible()
    saved = load_model(expected)
    assert saved.state_dict().keys() == tuned.keys()
    assert all(saved.state_dict()[k].cpu().equal(v.cpu()) for k, v in tuned.items())
    assert digest(demo_copy) == original
    assert window.settings.value("model/path") == str(expected)  # the next start predicts with it


def test_a_keep_that_fails_on_closing_keeps_the_window_open_and_says_why(qtbot, window, tmp_path, demo_copy,
                                                                        monkeypatch):
    import qgn.train.finetune

    finetuned_window(qtbot, window, tmp_path, demo_copy)
    warnings = []
    window.workspace.status.connect(lambda text, _ms: warnings.append(text))

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(qgn.train.finetune, "save_new_model", disk_full)
    asked = []
    window.finetuner.ask_unkept = answering(asked, "keep", "discard")
    window.close()
    assert len(asked) == 1 and window.isVisible() and window.finetuner.result is not None
    assert any("not saved" in w and "No space left on device" in w for w in warnings), warnings
    assert "Not saved" in window.finetuner.panel.status.text()

    window.close()  # discarding it this time: the window closes and writes nothing
    assert len(asked) == 2 and not window.isVisible() and window.finetuner.result is None
    assert sorted(p.name for p in demo_copy.parent.iterdir()) == ["demo.json", "demo.safetensors"]


def test_closing_during_a_fine_tune_offers_to_stop_it_or_stay(qtbot, window, tmp_path, demo_copy):
    panel = corrected_window(qtbot, window, tmp_path, demo_copy)
    panel.iterations.setValue(100_000)
    steps = []
    panel.start.click()
    qtbot.waitUntil(lambda: window.finetuner.job is not None, timeout=WAIT_MS)
    job = window.finetuner.job
    job.progress.connect(lambda i, _loss: steps.append(i))
    qtbot.waitUntil(lambda: len(steps) >= 2, timeout=WAIT_MS)
    asked = []
    window.finetuner.ask_unkept = answering(asked, "cancel", "discard")
    window.close()
    assert [(running, path) for running, _detail, path in asked] == [(True, None)]
    assert "of 100,000" in asked[0][1]
    assert window.isVisible() and window.finetuner.running and not job.cancelled  # it goes on

    window.close()
    assert len(asked) == 2 and not window.isVisible()
    # ended: finished, or already deleted by its end (_job_ended's deleteLater, run by the close's
    # processEvents once the close delivers its threads' last callbacks)
    assert job.cancelled and window.finetuner.job is None and window.finetuner.result is None
    assert not shiboken6.isValid(job) or job.isFinished()
    assert sorted(p.name for p in demo_copy.parent.iterdir()) == ["demo.json", "demo.safetensors"]


def test_the_fine_tuned_model_is_asked_first_and_a_cancel_of_the_annotations_loses_neither(
        qtbot, window, tmp_path, demo_copy):
    """Two questions in a row: the model's, then the unsaved annotations'. "Discard" to the model
    and then "cancel" to the annotations keeps the window open with the model still there."""
    finetuned_window(qtbot, window, tmp_path, demo_copy)
    assert window.projects.unsaved()  # the corrected annotation
    asked = []
    window.finetuner.ask_unkept = lambda running, detail, path: asked.append("model") or "discard"
    window.projects.ask_unsaved = lambda count, what: asked.append("annotations") or "cancel"
    window.close()
    assert asked == ["model", "annotations"]
    assert window.isVisible() and window.finetuner.result is not None and window.finetuner.panel.keep.isEnabled()


@pytest.mark.parametrize("running, press, answer", [
    (False, "Keep it", "keep"), (False, "Discard it", "discard"), (False, "Esc", "cancel"),
    (True, "Stop and discard", "discard"), (True, "Esc", "cancel")])
def test_the_unkept_model_question_says_what_each_answer_does(qtbot, tmp_path, running, press, answer):
    """The real dialog (``AskUser.unkept_model``): Keep names the file it writes, a run in progress
    is offered no Keep, and Esc cancels the close."""
    from PySide6 import QtCore, QtWidgets

    from qgn_studio.ask import AskUser

    path = tmp_path / "models" / "demo-ft1.safetensors"
    seen = {}

    def press_button() -> None:
        box = QtWidgets.QApplication.activeModalWidget()
        seen["title"], seen["text"] = box.windowTitle(), box.text() + "\n" + box.informativeText()
        seen["buttons"] = sorted(b.text().replace("&", "") for b in box.buttons())
        if press == "Esc":
            qtbot.keyClick(box, QtCore.Qt.Key.Key_Escape)
        else:
            next(b for b in box.buttons() if b.text().replace("&", "") == press).click()

    QtCore.QTimer.singleShot(0, press_button)
    detail = "iteration 40 of 300" if running else "mIoU 41.0 → 47.5 % on corrected images it did not train on"
    assert AskUser(None).unkept_model(running, detail, None if running else path) == answer
    assert detail in seen["text"]
    if running:
        assert seen["buttons"] == ["Cancel", "Stop and discard"] and "still running" in seen["text"]
    else:
        assert seen["buttons"] == ["Cancel", "Discard it", "Keep it"]
        assert str(path) in seen["text"]


def test_a_start_after_a_cancel_while_gathering_runs_the_new_start(qtbot, window, tmp_path, demo_copy, monkeypatch):
    """Start, Cancel while the corrections are gathered, Start again with other settings: the run
    is the second start's (it ran the cancelled start's iterations and learning rate)."""
    import threading

    import qgn_studio.finetuner as finetuner_module

    corrected_window(qtbot, window, tmp_path, demo_copy)
    ft = window.finetuner
    runs = []
    real_job = finetuner_module.FinetuneJob
    monkeypatch.setattr(finetuner_module, "FinetuneJob",
                        lambda *args, **kwargs: runs.append(real_job(*args, **kwargs)) or runs[-1])
    release = threading.Event()
    window.jobs.submit(lambda: release.wait(30))  # the job thread busy (say, an autosave of a big map)
    ft.start(5, 0.001)
    assert ft._starting and ft.cancel()
    ft.start(7, 0.002)
    release.set()
    qtbot.waitUntil(lambda: len(runs) == 1, timeout=WAIT_MS)
    assert (runs[0].config.iterations, runs[0].config.lr) == (7, 0.002)
    window.jobs.wait_idle()
    qtbot.wait(200)  # (the 7 iterations may be over by now: what counts is that no second run began)
    assert len(runs) == 1
    ft.cancel()
    qtbot.waitUntil(lambda: ft.job is None, timeout=WAIT_MS)


@pytest.mark.parametrize("trained_arrives", ["before the cancel", "after the cancel"])
def test_a_cancel_while_it_compares_drops_the_result_as_it_says(qtbot, window, tmp_path, demo_copy, monkeypatch,
                                                                 trained_arrives):
    """Esc after the last iteration, while before and after are compared: the status says the
    fine-tuned model is dropped, and it is (it compared anyway and offered Keep). The run's
    "trained" signal may reach the UI thread before or after the cancel (a loaded machine): after
    it, it said "Cancelled after 2 iterations", as if training had been cut short."""
    import threading

    import qgn.train.finetune as finetune_module

    entered, release = threading.Event(), threading.Event()
    compare = finetune_module.compare_models

    def held(*args, **kwargs):
        entered.set()
        release.wait(30)
        return compare(*args, **kwargs)

    monkeypatch.setattr(finetune_module, "compare_models", held)
    panel = corrected_window(qtbot, window, tmp_path, demo_copy)
    model_before = window.worker.engine.model
    panel.iterations.setValue(2)
    with qtbot.waitSignal(window.finetuner.finished, timeout=WAIT_MS) as ended:
        panel.start.click()
        if trained_arrives == "after the cancel":
            qtbot.waitUntil(lambda: window.finetuner.running, timeout=WAIT_MS)  # its corrections gathered, the job begun
            assert entered.wait(WAIT_MS / 1000)  # no event is handled meanwhile: "trained" waits in the queue
        else:
            qtbot.waitUntil(entered.is_set, timeout=WAIT_MS)
            qtbot.waitUntil(lambda: "comparing" in panel.status.text(), timeout=WAIT_MS)
            qtbot.waitUntil(lambda: not window._busy, timeout=WAIT_MS)
        window.finetuner.cancel()  # the dock's Cancel or Esc
        assert "dropped" in panel.status.text()
        release.set()
    assert ended.args == ["cancelled"]
    assert window.finetuner.result is None and window.finetuner.comparison is None and not panel.keep.isEnabled()
    assert "dropped" in panel.status.text() and "unchanged" in panel.status.text()
    assert window.worker.engine.model is model_before


def test_esc_asks_before_stopping_a_fine_tune_that_has_run_a_while(qtbot, window, tmp_path, demo_copy):
    """Esc meant for a prediction that just ended (or pressed twice) silently threw away a fine-tune
    that may have run for minutes: past ``ask_stop_after_s`` Esc asks; "Keep training" keeps it
    running, "Stop" stops it. The dock's own Cancel button does not ask."""
    from PySide6 import QtCore
    from PySide6.QtTest import QTest

    panel = corrected_window(qtbot, window, tmp_path, demo_copy)
    ft = window.finetuner
    ft.ask_stop_after_s = 0.0  # every run has run "a while"
    answers, asked = [False, True], []
    ft.ask_stop = lambda steps, seconds: asked.append((steps, seconds)) or answers.pop(0)
    panel.iterations.setValue(100_000)
    steps = []
    with qtbot.waitSignal(ft.finished, timeout=WAIT_MS) as ended:
        panel.start.click()
        qtbot.waitUntil(lambda: ft.job is not None, timeout=WAIT_MS)
        ft.job.progress.connect(lambda i, _loss: steps.append(i))
        qtbot.waitUntil(lambda: len(steps) >= 2 and not window._busy, timeout=WAIT_MS)
        window.activateWindow()
        QTest.keyClick(window, QtCore.Qt.Key.Key_Escape)  # answered "Keep training"
        assert len(asked) == 1 and asked[0][0] >= 1 and asked[0][1] >= 0
        assert ft.running and not ft.job.cancelled
        seen = len(steps)
        qtbot.waitUntil(lambda: len(steps) > seen, timeout=WAIT_MS)  # it trains on
        QTest.keyClick(window, QtCore.Qt.Key.Key_Escape)  # answered "Stop"
        assert len(asked) == 2
    assert ended.args == ["cancelled"] and "Cancelled after" in panel.status.text()


@pytest.mark.parametrize("press, stops", [("Stop", True), ("Keep training", False), ("Esc", False),
                                          ("Return", False)])
def test_the_stop_question_says_what_is_lost_and_esc_keeps_training(qtbot, press, stops):
    """The real dialog (``AskUser.stop_finetune``): it names the steps and seconds run; only Stop
    stops — Esc and Return (the default button) keep training."""
    from PySide6 import QtCore, QtWidgets

    from qgn_studio.ask import AskUser

    seen = {}

    def press_button() -> None:
        box = QtWidgets.QApplication.activeModalWidget()
        seen["text"] = box.text()
        seen["buttons"] = sorted(b.text().replace("&", "") for b in box.buttons())
        if press in ("Esc", "Return"):
            qtbot.keyClick(box, getattr(QtCore.Qt.Key, f"Key_{'Escape' if press == 'Esc' else 'Return'}"))
        else:
            next(b for b in box.buttons() if b.text().replace("&", "") == press).click()

    QtCore.QTimer.singleShot(0, press_button)
    assert AskUser(None).stop_finetune(212, 95.3) is stops
    assert seen["text"] == "Stop the fine-tune? It has run 212 steps (95\N{NO-BREAK SPACE}s); its result is lost."
    assert seen["buttons"] == ["Keep training", "Stop"]


@pytest.mark.parametrize("answer", ["later", "discard"])
def test_a_model_set_aside_at_sigterm_is_kept_for_later_or_moved_to_discarded(qtbot, window, tmp_path, demo_copy,
                                                                             answer):
    """A fine-tuned model a SIGTERM set aside (``unkept_models``; the SIGTERM itself and Keep:
    tests/app/test_app_exit.py): Later leaves it to be asked about at the next start, Discard moves
    it to ``finetuned/discarded/`` — nothing is deleted — and the model in use stays."""
    import os

    from qgn.model.checkpoint import load_model
    from qgn_studio import unkept_models

    scratch = Path(os.environ["QGN_STUDIO_SCRATCH"])
    path = unkept_models.set_aside(scratch, load_model(demo_copy), {}, "demo", "mIoU 1 → 2 %",
                                   demo_copy.parent / "demo-ft1.safetensors")
    before = digest(path)
    asked = []
    window.finetuner.ask_set_aside = lambda detail, where: asked.append((detail, where)) or answer
    window.start([], str(demo_copy))
    assert asked == [("mIoU 1 → 2 %", demo_copy.parent / "demo-ft1.safetensors")]
    waiting = unkept_models.waiting(scratch)
    if answer == "later":
        assert [m.path for m in waiting] == [path] and digest(path) == before
    else:
        moved = scratch / unkept_models.FOLDER / unkept_models.DISCARDED / path.name
        assert waiting == [] and digest(moved) == before and moved.with_suffix(".json").is_file()
    assert not (demo_copy.parent / "demo-ft1.safetensors").exists()


def test_a_sigterm_while_a_keep_that_fails_is_queued_sets_the_model_aside(qtbot, window, tmp_path, demo_copy):
    """Keep was pressed and its save queued; a SIGTERM came before it ran, and the save then failed
    (a file where its folder belongs): the SIGTERM had set nothing aside (the save was to keep it),
    so the fine-tuned model was lost. It now waits for the save and sets the model aside when the
    save did not keep it."""
    import os

    from qgn_studio import unkept_models

    finetuned_window(qtbot, window, tmp_path, demo_copy)
    blocker = tmp_path / "blocker"
    blocker.write_bytes(b"a file where a folder belongs")
    window.finetuner.ask_save_path = lambda default: (blocker / "mine.safetensors", False)
    window.finetuner.keep()  # queued; the SIGTERM comes before it is written
    window.terminate()
    waiting = unkept_models.waiting(Path(os.environ["QGN_STUDIO_SCRATCH"]))
    assert len(waiting) == 1 and "mIoU" in waiting[0].detail


def test_a_sigterm_after_a_keep_that_saved_sets_nothing_aside(qtbot, window, tmp_path, demo_copy):
    """The other side of the above: a Keep whose save succeeds is not set aside as well."""
    import os

    from qgn_studio import unkept_models

    finetuned_window(qtbot, window, tmp_path, demo_copy)
    mine = tmp_path / "mine.safetensors"
    window.finetuner.ask_save_path = lambda default: (mine, False)
    window.finetuner.keep()
    window.terminate()
    assert mine.is_file() and unkept_models.waiting(Path(os.environ["QGN_STUDIO_SCRATCH"])) == []


def test_two_models_set_aside_for_the_same_file_are_both_kept_with_their_domain_reference(qtbot, window, tmp_path,
                                                                                        demo_copy):
    """Two models set aside with the same ``keep_at``: both Keeps were given the same new name before
    either copy ran, so the second failed ("exists"). Each Keep now takes a free name when it copies;
    and the original's domain reference comes along, as with the panel's Keep
    (``qgn.train.finetune.save_new_model``)."""
    import os

    from qgn.domain import reference_path
    from qgn.model.checkpoint import load_model
    from qgn.resources import demo_model_path
    from qgn_studio import unkept_models

    reference = reference_path(demo_model_path())
    if not reference.is_file():
        pytest.skip("the bundled demo model (and its domain reference) is missing")
    shutil.copy(reference, reference_path(demo_copy))
    scratch = Path(os.environ["QGN_STUDIO_SCRATCH"])
    keep_at = demo_copy.parent / "demo-ft1.safetensors"
    extra = {"finetune": {"from": str(demo_copy)}}
    for detail in ("first", "second"):
        unkept_models.set_aside(scratch, load_model(demo_copy), extra, "demo", detail, keep_at)
    warnings, kept = [], []
    window.workspace.status.connect(lambda text, _ms: warnings.append(text))
    window.finetuner.kept.connect(kept.append)
    window.finetuner.ask_set_aside = lambda detail, where: "keep"
    window.start([], str(demo_copy))
    window.jobs.wait_idle()
    qtbot.waitUntil(lambda: len(kept) == 2, timeout=WAIT_MS)
    assert sorted(p.name for p in kept) == ["demo-ft1.safetensors", "demo-ft2.safetensors"]
    assert unkept_models.waiting(scratch) == [] and not any("not kept" in w for w in warnings)
    assert all(reference_path(path).is_file() for path in kept)


def test_a_kept_model_that_cannot_be_loaded_is_not_said_to_stay_set_aside(qtbot, window, tmp_path, demo_copy,
                                                                          monkeypatch):
    """Keep copied the set-aside model and moved it to ``finetuned/kept/``; when loading the copy then
    failed, the message said it "stays there, offered at the next start" — it was neither."""
    import os

    import qgn.model.checkpoint
    from qgn.model.checkpoint import load_model
    from qgn_studio import unkept_models

    scratch = Path(os.environ["QGN_STUDIO_SCRATCH"])
    keep_at = demo_copy.parent / "demo-ft1.safetensors"
    unkept_models.set_aside(scratch, load_model(demo_copy), {}, "demo", "first", keep_at)
    warnings = []
    window.workspace.status.connect(lambda text, _ms: warnings.append(text))
    window.finetuner.ask_set_aside = lambda detail, where: "keep"

    def unloadable(path, *args, **kwargs):
        if Path(path) == keep_at:
            raise ValueError("a damaged file")
        return load_model(path, *args, **kwargs)

    monkeypatch.setattr(qgn.model.checkpoint, "load_model", unloadable)
    window.start([], str(demo_copy))
    window.jobs.wait_idle()
    qtbot.waitUntil(lambda: any("damaged" in w for w in warnings), timeout=WAIT_MS)
    said, = [w for w in warnings if "damaged" in w]
    assert "stays there" not in said and str(keep_at) in said and unkept_models.KEPT in said


@pytest.mark.parametrize("damage", [{"when": "soon"}, {"keep_at": 5}, {"detail": {"a": 1}, "when": [1]}])
def test_a_damaged_set_aside_json_is_named_and_left_not_a_crash_at_every_start(qtbot, window, tmp_path, demo_copy,
                                                                               damage):
    """A set-aside model's JSON with a value of the wrong type (``"when": "soon"``, ``keep_at: 5``)
    raised out of ``unkept_models.waiting``, so every start crashed; it is now left out (and left
    as it is), named once, and a good one beside it is still offered."""
    import json
    import os

    from qgn.model.checkpoint import load_model
    from qgn_studio import unkept_models

    scratch = Path(os.environ["QGN_STUDIO_SCRATCH"])
    keep_at = demo_copy.parent / "demo-ft1.safetensors"
    bad = unkept_models.set_aside(scratch, load_model(demo_copy), {}, "bad", "bad one", keep_at)
    good = unkept_models.set_aside(scratch, load_model(demo_copy), {}, "good", "good one", keep_at)
    info = json.loads(bad.with_suffix(".json").read_text())
    info["config"]["extra"]["set_aside"].update(damage)
    bad.with_suffix(".json").write_text(json.dumps(info))
    before = bad.with_suffix(".json").read_text()
    assert [m.path for m in unkept_models.waiting(scratch)] == [good]
    warnings, asked = [], []
    window.workspace.status.connect(lambda text, _ms: warnings.append(text))
    window.finetuner.ask_set_aside = lambda detail, where: asked.append(detail) or "later"
    window.start([], str(demo_copy))
    assert asked == ["good one"] and any(str(bad.with_suffix(".json")) in w for w in warnings)
    assert bad.with_suffix(".json").read_text() == before


def test_a_sigterm_during_a_step_too_long_to_wait_for_says_what_is_lost(qtbot, window, tmp_path, demo_copy,
                                                                        monkeypatch, capsys):
    """SIGTERM while a fine-tune step takes longer than the wait it is given (a step of a big image
    takes seconds): the steps done cannot be set aside (the model is mid-step), and nothing said
    so. Now stderr says once that the model being fine-tuned is lost and the annotations it learned
    from are not (they are the project's data: saved or autosaved, not the job's)."""
    import os
    import threading

    import qgn.train.finetune as finetune_module

    from qgn_studio import unkept_models

    stepping, release = threading.Event(), threading.Event()
    real = finetune_module.finetune

    def long_step(*args, progress=None, **kwargs):
        progress(1, 0.5)  # one step done, the next one outlasts the wait
        stepping.set()
        release.wait(30)
        return real(*args, progress=progress, **kwargs)

    monkeypatch.setattr(finetune_module, "finetune", long_step)
    panel = corrected_window(qtbot, window, tmp_path, demo_copy)
    panel.iterations.setValue(5)
    panel.start.click()
    qtbot.waitUntil(stepping.is_set, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: panel.progress.value() >= 1, timeout=WAIT_MS)
    scratch = Path(os.environ["QGN_STUDIO_SCRATCH"])
    try:
        window.finetuner.set_aside(scratch, wait_s=0.2)
        err = capsys.readouterr().err
    finally:
        release.set()
    qtbot.waitUntil(lambda: not window.finetuner.running, timeout=WAIT_MS)
    lines = [line for line in err.splitlines() if "fine-tun" in line]
    assert len(lines) == 1 and "lost" in lines[0] and "1 of 5 iterations" in lines[0], err
    assert "annotations" in lines[0] and "not lost" in lines[0]
    assert unkept_models.waiting(scratch) == []


# ------------------------------------------------------------------- the passes over the images
def direct_job(count: int):
    """A FinetuneJob (run on this thread) of ``count`` synthetic corrections, a tiny model, 1 step."""
    import torch

    from qgn.data.synthetic import SYNTHETIC_CLASSES, make_scene
    from qgn.model.qgn import QGN, QGNConfig
    from qgn.train.finetune import FinetuneConfig
    from qgn_studio.finetuner import Correction, FinetuneJob

    torch.manual_seed(0)
    model = QGN(QGNConfig.from_preset("tiny", SYNTHETIC_CLASSES)).eval()
    corrections = []
    for i in range(count):
        image, label = make_scene(70 + i, 64, 64)
        corrections.append(Correction(f"c{i}", Path(f"c{i}.png"), image, label.astype(np.int64)))
    config = FinetuneConfig(iterations=1, batch_size=2, scale_min=1.0, scale_max=1.0)
    return FinetuneJob(model, corrections, config)


def test_the_fine_tune_says_how_far_it_read_encoded_and_compared_the_images(qtbot):
    # 300 corrected photos: ~20 s of reading and minutes of features before the first step, and
    # minutes of comparison after the last, with "Fine-tuning on 300 images…" all along
    from qgn_studio.finetuner import COMPARING, ENCODING, READING
    from qgn_studio.panels.finetune import FinetunePanel

    job = direct_job(3)
    passes, compared = [], []
    job.passing.connect(lambda *a: passes.append(a))
    job.compared.connect(lambda *a: compared.append(a))
    job.run()
    assert compared, "ran to the end"
    assert [a for a in passes if a[0] == READING] == [(READING, 0, 3), (READING, 1, 3), (READING, 2, 3)]
    encoded = [a[1:] for a in passes if a[0] == ENCODING]
    n = encoded[0][1]
    assert encoded == [(i, n) for i in range(n + 1)] and n >= 1
    shown = compared[0][1].per_image
    assert [a[1:] for a in passes if a[0] == COMPARING] == [(i, len(shown)) for i in range(len(shown) + 1)]
    assert [a[0] for a in passes] == sorted((a[0] for a in passes), key=[READING, ENCODING, COMPARING].index)

    panel = FinetunePanel()
    qtbot.addWidget(panel)
    panel.set_running(True, 5)
    panel.show_pass(READING, 1, 3)
    assert panel.status.text() == f"{READING} 1/3"
    assert panel.progress.maximum() == 5, "the bar still counts the iterations"


def test_a_cancel_while_the_images_are_read_stops_before_the_next_one(qtbot, monkeypatch):
    from qgn_studio.finetuner import Correction

    job = direct_job(3)
    read = []
    real = Correction.materialise

    def materialise(self):
        read.append(self.name)
        job.cancel()  # pressed while the first image is read
        return real(self)

    monkeypatch.setattr(Correction, "materialise", materialise)
    trained = []
    job.trained.connect(trained.append)
    job.run()
    assert read == ["c0"]
    assert len(trained) == 1 and trained[0].cancelled and trained[0].iterations_done == 0


def spy_on_show_pass(monkeypatch, calls: list):
    """FinetunePanel.show_pass records (text, done, on the UI thread) for each call, as connected
    by the app (patched on the class before the run connects it)."""
    from PySide6 import QtCore, QtWidgets

    from qgn_studio.panels.finetune import FinetunePanel

    real = FinetunePanel.show_pass

    def show_pass(self, text, done, total):
        ui = QtCore.QThread.currentThread() is QtWidgets.QApplication.instance().thread()
        calls.append((text, done, ui))
        return real(self, text, done, total)

    monkeypatch.setattr(FinetunePanel, "show_pass", show_pass)


def test_the_panel_shows_the_passes_of_a_run_started_from_the_window(qtbot, window, tmp_path, demo_copy,
                                                                      monkeypatch):
    calls = []
    spy_on_show_pass(monkeypatch, calls)
    panel = corrected_window(qtbot, window, tmp_path, demo_copy)
    panel.iterations.setValue(2)
    with qtbot.waitSignal(window.finetuner.finished, timeout=WAIT_MS):
        panel.start.click()
    from qgn_studio import finetuner

    assert {finetuner.READING, finetuner.ENCODING, finetuner.COMPARING} <= {text for text, _, _ in calls}
    assert all(ui for _, _, ui in calls), "the passes are shown on the UI thread"


def test_a_cancel_during_the_comparison_stops_it_and_its_text_stays(qtbot, window, tmp_path, demo_copy, monkeypatch):
    """A Cancel while it compared said 'Cancelling the comparison…', and the comparison, which went
    on to its last image, wrote its count over that text until the run ended."""
    import threading

    import qgn.train.finetune as ft

    calls, compared, go_on = [], [], threading.Event()
    spy_on_show_pass(monkeypatch, calls)
    real = ft.compare_models

    def four_images(before, after, images, labels, scheme, names, progress=None, **kwargs):
        def counted(done, total):
            compared.append(done)
            progress(done, total)
            if done == 1:
                go_on.wait(WAIT_MS / 1000)  # the Cancel comes here, with three images to go
        return real(before, after, list(images) * 4, list(labels) * 4, scheme, list(names) * 4, progress=counted,
                    **kwargs)

    monkeypatch.setattr(ft, "compare_models", four_images)
    panel = corrected_window(qtbot, window, tmp_path, demo_copy)
    panel.iterations.setValue(2)
    panel.start.click()
    qtbot.waitUntil(lambda: compared[-1:] == [1], timeout=WAIT_MS)
    shown = len(calls)
    assert window.finetuner.cancel()
    assert panel.status.text().startswith("Cancelling the comparison")
    with qtbot.waitSignal(window.finetuner.finished, timeout=WAIT_MS):
        go_on.set()
    assert compared == [0, 1], "the comparison stops before its next image"
    assert all(ui for _, _, ui in calls)
    assert len(calls) == shown, f"no pass shown after the Cancel: {calls[shown:]}"
    assert panel.status.text().startswith("Cancelled while comparing")
