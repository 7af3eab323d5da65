"""The controllers against a Workspace, without a MainWindow and without loading a model.

Each test builds the parts the window would (``Parts``: workspace, canvas, job thread, annotator,
project controller) with a fake shell and fake dialogs (``qgn_studio.testing``), and checks what
the user relies on: opening a project folder, switching images, autosave and restore after a
crash, a class edit reaching the project's files, and a kept fine-tune handed to the engine.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PySide6 import QtCore

from qgn.data.synthetic import SYNTHETIC_CLASSES
from qgn.project import Project
from qgn_studio.testing import Answers, FakeShell, write_samples


class Parts:
    """What MainWindow builds, minus the window."""

    def __init__(self, tmp_path: Path, ask: Answers):
        from qgn_studio.annotator import Annotator
        from qgn_studio.canvas import Canvas
        from qgn_studio.jobs import JobRunner
        from qgn_studio.project_controller import ProjectController
        from qgn_studio.workspace import Workspace

        settings = QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.Format.IniFormat)
        self.workspace = Workspace(settings)
        self.canvas = Canvas()
        self.jobs = JobRunner()
        self.ask = ask
        self.annotator = Annotator(self.workspace, self.canvas, self.jobs, ask)
        self.shell = FakeShell(self.workspace, self.annotator)
        self.projects = ProjectController(self.workspace, self.annotator, self.jobs, self.jobs, ask, self.shell,
                                          tmp_path / "scratch")

    def settle(self, qtbot) -> None:
        """Every job ran and its callback was delivered."""
        assert self.jobs.wait_idle(30)
        qtbot.wait(1)
        QtCore.QCoreApplication.processEvents()

    def close(self) -> None:
        self.projects.watch.stop()
        self.projects.timer.stop()
        self.jobs.stop()
        self.annotator.image_tools.shutdown()
        self.canvas.deleteLater()


@pytest.fixture
def make_parts(qtbot, tmp_path):
    from qgn_studio.app import make_application

    make_application()
    made = []

    def make(ask: Answers | None = None, name: str = "app") -> Parts:
        parts = Parts(tmp_path / name, ask or Answers())
        made.append(parts)
        return parts

    yield make
    for parts in made:
        parts.close()


@pytest.fixture
def scenes_project(tmp_path) -> Project:
    """A project of three synthetic scenes (96×128) with the synthetic classes; the second is done."""
    images = write_samples(tmp_path / "data", 3)
    project = Project.create(tmp_path / "project", images, SYNTHETIC_CLASSES)
    project.image_for(images[1]).done = True
    project.save()
    return project


def heard(signal) -> list:
    calls = []
    signal.connect(lambda *args: calls.append(args))
    return calls


def painted(session, value: int, rows: slice, cols: slice) -> np.ndarray:
    """Paint ``value`` into ``session`` as one undoable edit (as the brush does); the new map."""
    from qgn_studio.annotation_doc import edit_between
    from qgn_studio.tools import EditCommand

    target = session.label.copy()
    target[rows, cols] = value
    session.undo.push(EditCommand(session, edit_between(session.label, target), "Paint"))
    return target


def test_opening_a_project_folder_fills_the_workspace(make_parts, scenes_project):
    parts = make_parts()
    ws = parts.workspace
    projects_heard, lists_heard = heard(ws.project_changed), heard(ws.documents_changed)
    assert parts.projects.open_project(scenes_project.root)
    assert [d.path for d in ws.docs] == [Path(im.path) for im in scenes_project.images]
    assert ws.project.root == scenes_project.root and projects_heard[-1] == (ws.project,) and lists_heard
    assert ws.classes == SYNTHETIC_CLASSES and ws.current is ws.docs[0]
    assert [d.done for d in ws.docs] == [False, True, False]
    assert parts.ask.asked == []  # no autosaves: nothing to ask


def test_switching_images_reads_each_saved_annotation_once_shown(make_parts, scenes_project, qtbot):
    second = scenes_project.images[1]
    saved = np.full((96, 128), 2, np.uint8)
    saved[:8] = 0
    scenes_project.save_annotation(second, saved)
    parts = make_parts()
    ws = parts.workspace
    parts.projects.open_project(scenes_project.root)
    first, doc = ws.docs[0], ws.docs[1]
    ws.set_current(doc)
    parts.projects.document_shown(doc)
    qtbot.waitUntil(lambda: doc.annotation is not None, timeout=10_000)
    np.testing.assert_array_equal(doc.annotation.label, saved)
    assert not doc.annotation.dirty and first.annotation is None  # the first image has no saved map


class OnWhichThread:
    """Records, for each making of an opened map's parts (its check and copy as an ``Annotation``,
    its live pyramid, the reference's copy in the label dtype, a count of changed cells), whether
    it ran on the UI thread; ``references``: the copies made."""

    def __init__(self, monkeypatch):
        import threading

        import qgn.annotation.annotation as annotation_module
        import qgn.annotation.changes as changes_module
        from qgn_studio.annotation_doc import AnnotationSession, LivePyramid

        self.made, self.references = [], []

        def on_ui() -> bool:
            return threading.current_thread() is threading.main_thread()

        check_label, cells_of_size = annotation_module.check_label, changes_module.changed_cells_of_size
        pyramid_init, reference_for = LivePyramid.__init__, AnnotationSession.reference_for

        def checking(*args, **kwargs):
            self.made.append(("annotation", on_ui()))
            return check_label(*args, **kwargs)

        def building(pyramid, *args, **kwargs):
            self.made.append(("pyramid", on_ui()))
            return pyramid_init(pyramid, *args, **kwargs)

        def copying(reference, label):
            self.made.append(("reference", on_ui()))
            self.references.append(reference_for(reference, label))
            return self.references[-1]

        def counting(*args):
            self.made.append(("count", on_ui()))
            return cells_of_size(*args)

        monkeypatch.setattr(annotation_module, "check_label", checking)
        monkeypatch.setattr(LivePyramid, "__init__", building)
        monkeypatch.setattr(AnnotationSession, "reference_for", staticmethod(copying))
        monkeypatch.setattr(changes_module, "changed_cells_of_size", counting)


def test_a_saved_annotation_opened_is_made_ready_on_the_job_thread(make_parts, scenes_project, qtbot, monkeypatch):
    """Opening a project image's saved annotation (also on every return to an image whose map was
    closed to keep within the memory budget): its check and copy, its live pyramid, the prediction's
    copy in the label dtype and the first "changed vs prediction" count held the UI thread 60-100 ms
    for a 24-megapixel map (review of uistall). They are made on the job thread that read the file;
    the session is as before: the saved map, compared with the prediction, not dirty, no undo steps."""
    image = scenes_project.images[0]
    saved = np.full((96, 128), 2, np.uint8)
    saved[:8] = 0
    scenes_project.save_annotation(image, saved)
    prediction = np.ones((96, 128), np.int64)
    prediction[40:] = 2
    parts = make_parts()
    parts.projects.open_project(scenes_project.root)
    doc = parts.workspace.docs[0]
    doc.result = SimpleNamespace(label=prediction)  # (no model: its classes are the annotations')
    threads = OnWhichThread(monkeypatch)
    for visit in range(2):  # the first visit, then a return after the map was closed
        threads.made.clear()
        parts.projects.document_shown(doc)
        qtbot.waitUntil(lambda: doc.annotation is not None, timeout=10_000)
        session = doc.annotation
        kinds = {kind for kind, _ in threads.made}
        assert kinds == {"annotation", "pyramid", "reference", "count"}, threads.made
        assert not any(ui for _, ui in threads.made), threads.made
        np.testing.assert_array_equal(session.label, saved)
        assert session.reference is threads.references[-1]  # kept, not copied again here
        assert session.reference.dtype == session.label.dtype
        np.testing.assert_array_equal(session.reference, prediction)
        assert session.origin == "saved" and not session.dirty and session.undo.count() == 0
        level = parts.annotator.tools.level
        assert session.changes.counted(session.label, session.reference, level, session.version)
        assert session.changes.pixels(session.label, session.reference, session.version) == \
            int((saved != prediction).sum())
        parts.annotator.forget([doc])


def test_an_autosave_restored_is_made_ready_on_the_job_thread(make_parts, scenes_project, qtbot, monkeypatch):
    """Restoring an autosave after a crash: the map's check and copy and its live pyramid are made
    on the job thread that read it (they held the UI thread at every image restored); the
    session is as before: the autosaved map, unsaved, no undo steps."""
    parts = make_parts()
    parts.projects.open_project(scenes_project.root)
    session = parts.annotator.adopt(parts.workspace.docs[0], np.zeros((96, 128), np.uint8), "saved")
    target = painted(session, 3, slice(10, 30), slice(20, 60))
    parts.projects.autosave_now()
    parts.settle(qtbot)
    threads = OnWhichThread(monkeypatch)
    again = make_parts(Answers(recover="restore"), "again")
    again.projects.open_project(scenes_project.root)
    restored = again.workspace.docs[0]
    qtbot.waitUntil(lambda: restored.annotation is not None, timeout=10_000)
    made = [(kind, ui) for kind, ui in threads.made if kind in ("annotation", "pyramid")]
    assert made == [("annotation", False), ("pyramid", False)], threads.made
    np.testing.assert_array_equal(restored.annotation.label, target)
    assert restored.annotation.dirty and restored.annotation.origin == "recovered"
    assert restored.annotation.undo.count() == 0


def test_an_autosave_restored_over_the_saved_map_just_read_is_made_ready_on_the_job_thread(make_parts, scenes_project,
                                                                                            qtbot, monkeypatch):
    """An autosave restored over the saved map already open (``replace_label``): the diff between
    the two maps, its apply and the new live pyramid were made on the UI thread (60-330 ms for a
    24-megapixel map). They are made on the job thread that read the autosave; the session is as
    before: the autosaved map, unsaved, "recovered", no undo steps, its starting map the saved one."""
    import threading

    import qgn_studio.annotation_doc as annotation_doc
    from qgn_studio.annotation_doc import AnnotationSession

    image = scenes_project.images[0]
    saved = np.full((96, 128), 2, np.uint8)
    scenes_project.save_annotation(image, saved)
    parts = make_parts()
    parts.projects.open_project(scenes_project.root)
    doc = parts.workspace.docs[0]
    parts.projects.document_shown(doc)
    qtbot.waitUntil(lambda: doc.annotation is not None, timeout=10_000)
    target = painted(doc.annotation, 3, slice(10, 30), slice(20, 60))
    parts.projects.autosave_now()
    parts.settle(qtbot)
    threads = OnWhichThread(monkeypatch)
    replaced, diffs = [], []
    replace_label, edit_between = AnnotationSession.replace_label, annotation_doc.edit_between

    def replacing(session, *args, **kwargs):
        replaced.append(session)
        return replace_label(session, *args, **kwargs)

    def diffing(*args, **kwargs):
        diffs.append(threading.current_thread() is threading.main_thread())
        return edit_between(*args, **kwargs)

    monkeypatch.setattr(AnnotationSession, "replace_label", replacing)
    monkeypatch.setattr(annotation_doc, "edit_between", diffing)
    answers = Answers(recover="later")  # at the open: the saved map is read and shown first
    again = make_parts(answers, "again")
    again.projects.open_project(scenes_project.root)
    restored = again.workspace.docs[0]
    again.projects.document_shown(restored)
    qtbot.waitUntil(lambda: restored.annotation is not None, timeout=10_000)
    np.testing.assert_array_equal(restored.annotation.label, saved)
    threads.made.clear()
    answers.answers["recover"] = "restore"
    again.projects.offer_recovery(again.projects.project)
    qtbot.waitUntil(lambda: restored.annotation.dirty, timeout=10_000)
    session = restored.annotation
    assert replaced == [session]  # over the saved map, which was open first
    assert not any(diffs), diffs
    made = [(kind, ui) for kind, ui in threads.made if kind in ("annotation", "pyramid")]
    assert made and not any(ui for _, ui in made), threads.made
    np.testing.assert_array_equal(session.label, target)
    assert session.pyramid.label is session.label
    assert session.origin == "recovered" and session.undo.count() == 0
    np.testing.assert_array_equal(session.annotation.reference, saved)  # it started from the saved map


def test_autosave_survives_a_crash_and_is_restored_then_saved(make_parts, scenes_project, qtbot):
    parts = make_parts()
    ws = parts.workspace
    parts.projects.open_project(scenes_project.root)
    doc = ws.docs[0]
    session = parts.annotator.adopt(doc, np.zeros((96, 128), np.uint8), "saved")
    target = painted(session, 3, slice(10, 30), slice(20, 60))
    assert session.dirty and session.needs_autosave
    parts.projects.autosave_now()
    parts.settle(qtbot)
    assert not session.needs_autosave
    assert [im.path.name for im in Project.open(scenes_project.root).recoverable()] == [doc.name]

    # the app "crashed" (nothing saved); a new one opens the project and restores the autosave
    again = make_parts(Answers(recover="restore"), "again")
    again.projects.open_project(scenes_project.root)
    assert again.ask.asked == ["recover"]
    restored = again.workspace.docs[0]
    qtbot.waitUntil(lambda: restored.annotation is not None, timeout=10_000)
    np.testing.assert_array_equal(restored.annotation.label, target)
    assert restored.annotation.dirty  # restored edits are unsaved until Ctrl+S

    assert again.projects.save()
    again.settle(qtbot)
    fresh = Project.open(scenes_project.root)
    np.testing.assert_array_equal(fresh.load_annotation(fresh.image_for(restored.path)), target)
    assert not fresh.recoverable() and not restored.annotation.dirty


def autosave_peak_with_the_job_thread_held(parts):
    """``autosave_now()`` while a waiting job holds the job thread (so only the UI thread allocates):
    the peak of the bytes traced meanwhile, and the event that lets the job thread go on."""
    import threading
    import tracemalloc

    held, release = threading.Event(), threading.Event()
    parts.jobs.submit(lambda: held.set() or release.wait(30))
    assert held.wait(30)
    tracemalloc.start()
    try:
        parts.projects.autosave_now()
        return tracemalloc.get_traced_memory()[1], release
    finally:
        tracemalloc.stop()


def test_an_autosave_copies_into_the_last_ones_map_and_each_writes_its_own(make_parts, scenes_project, qtbot):
    """An autosave copies the map for its write on the UI thread: a fresh copy of a 24 MP map held it
    77-89 ms (its pages faulted in). Once the previous autosave's write is done, the next copies
    into that one's map (no map-sized allocation on the UI thread); each autosave still writes the
    map as it was at its own version, and a copy still in a write is never reused."""

    parts = make_parts()
    parts.projects.open_project(scenes_project.root)
    doc = parts.workspace.docs[0]
    project = Project.open(scenes_project.root)
    session = parts.annotator.adopt(doc, np.zeros((96, 128), np.uint8), "saved")

    def autosaved():
        from qgn.quadtree.label_io import read_label_file

        return read_label_file(project.autosave_path(project.image_for(doc.path)), project.classes)

    first = painted(session, 3, slice(10, 30), slice(20, 60))
    parts.projects.autosave_now()
    parts.settle(qtbot)
    np.testing.assert_array_equal(autosaved(), first)

    second = painted(session, 1, slice(50, 90), slice(0, 128))
    peak, release = autosave_peak_with_the_job_thread_held(parts)
    third = painted(session, 2, slice(0, 5), slice(0, 5))  # an edit while that write waits
    parts.projects.autosave_now()  # its copy cannot be the one in the waiting write
    release.set()
    parts.settle(qtbot)
    assert peak < session.label.size // 2, peak  # no copy of the 12 KB map
    np.testing.assert_array_equal(autosaved(), third)
    assert not np.array_equal(second, third)


def test_the_first_autosave_copies_into_memory_made_on_the_job_thread(make_parts, scenes_project, qtbot):
    """The first autosave of a map had no earlier copy to reuse: a fresh copy of a 24 MP map held
    the UI thread 60-85 ms. The first edit has the job thread make (and fault in) the memory it
    copies into; the autosave writes the map as it is then, and a map of another size gets its own."""
    import threading

    parts = make_parts()
    parts.projects.open_project(scenes_project.root)
    doc = parts.workspace.docs[0]
    project = Project.open(scenes_project.root)
    session = parts.annotator.adopt(doc, np.zeros((96, 128), np.uint8), "saved")
    made_on = []
    submit = parts.jobs.submit

    def recording(run, done=None, failed=None, label="", *rest):
        def watched():
            made_on.append(threading.current_thread() is threading.main_thread())
            return run()
        return submit(watched if label == "Preparing the autosave" else run, done, failed, label, *rest)

    parts.jobs.submit = recording
    painted(session, 3, slice(10, 30), slice(20, 60))
    parts.jobs.submit = submit
    parts.settle(qtbot)
    assert made_on == [False]
    spare = parts.projects._spare_copy
    assert spare is not None and spare.shape == session.label.shape and spare.dtype == session.label.dtype
    edits = painted(session, 1, slice(50, 90), slice(0, 128))
    peak, release = autosave_peak_with_the_job_thread_held(parts)
    release.set()
    parts.settle(qtbot)
    assert peak < session.label.size // 2, peak  # no copy of the 12 KB map on the UI thread
    from qgn.quadtree.label_io import read_label_file

    np.testing.assert_array_equal(read_label_file(project.autosave_path(project.image_for(doc.path)), project.classes),
                                  edits)
    assert parts.projects._spare_copy is spare  # written: kept for the next one


def test_an_autosave_retried_after_a_failed_write_copies_into_that_writes_copy(make_parts, scenes_project, qtbot,
                                                                               monkeypatch):
    """A failed autosave write (a full disk, a busy project) kept its copy of the map: each retry
    (every 10 s, no edit between, so no spare made on the job thread) copied a 24 MP map afresh on
    the UI thread (60-85 ms). The failed write gives its copy back as the spare, as a written one
    does; the retry then writes the map as it is (review of uistall, its repro)."""

    parts = make_parts()
    parts.projects.open_project(scenes_project.root)
    doc = parts.workspace.docs[0]
    project = Project.open(scenes_project.root)
    session = parts.annotator.adopt(doc, np.zeros((96, 128), np.uint8), "saved")
    painted(session, 3, slice(10, 30), slice(20, 60))
    parts.settle(qtbot)
    real_autosave = Project.autosave
    refused = []

    def refuse(self, image, label, over=None, undone=False):
        refused.append(1)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Project, "autosave", refuse)
    parts.projects.autosave_now()
    parts.settle(qtbot)
    assert refused and not session.autosaved_version  # failed: to be tried again
    edits = session.label.copy()
    peaks = []
    for attempt in range(2):  # two retries, as the retry timer runs them; the second is written
        if attempt == 1:
            monkeypatch.setattr(Project, "autosave", real_autosave)
        peak, release = autosave_peak_with_the_job_thread_held(parts)
        peaks.append(peak)
        release.set()
        parts.settle(qtbot)
    assert all(peak < session.label.size // 2 for peak in peaks), peaks  # no copy of the 12 KB map on the UI thread
    assert session.autosaved_version == session.version
    from qgn.quadtree.label_io import read_label_file

    np.testing.assert_array_equal(read_label_file(project.autosave_path(project.image_for(doc.path)), project.classes),
                                  edits)


def test_a_class_edit_reaches_the_workspace_and_the_project_and_undoes(make_parts, scenes_project, qtbot):
    parts = make_parts()
    ws = parts.workspace
    parts.projects.open_project(scenes_project.root)
    classes_heard = heard(ws.classes_changed)
    parts.annotator.rename_class(0, "heaven")
    assert ws.classes.names[0] == "heaven" and classes_heard[-1] == (ws.classes,)
    parts.settle(qtbot)
    qtbot.waitUntil(lambda: Project.open(scenes_project.root).classes.names[0] == "heaven", timeout=10_000)
    parts.annotator.undo_class_edit()
    parts.settle(qtbot)
    assert ws.classes.names[0] == "sky"
    qtbot.waitUntil(lambda: Project.open(scenes_project.root).classes.names[0] == "sky", timeout=10_000)


def test_a_project_without_a_model_adopts_the_model_that_loads(make_parts, scenes_project, qtbot, tmp_path):
    parts = make_parts()
    parts.projects.open_project(scenes_project.root)
    assert not parts.shell.models  # it names none: the model in use stays
    model = tmp_path / "m.safetensors"
    model.write_bytes(b"")
    parts.workspace.set_model(SimpleNamespace(name="m", path=model, classes=SYNTHETIC_CLASSES, device="cpu"))
    parts.settle(qtbot)
    assert Project.open(scenes_project.root).model == str(model)


def test_a_start_on_the_samples_reopens_the_last_project(make_parts, scenes_project):
    from qgn.resources import samples_dir

    parts = make_parts()
    asked = [str(samples_dir() / "images")]
    assert parts.projects.paths_at_start(asked) == asked  # no last project yet
    parts.projects.open_project(scenes_project.root)
    assert parts.projects.paths_at_start(asked) == [str(scenes_project.root)]
    assert parts.projects.paths_at_start(["photo.png"]) == ["photo.png"]  # what the user asked for opens


def test_a_kept_fine_tune_is_handed_to_the_engine_and_the_project(make_parts, scenes_project, qtbot, tmp_path):
    from qgn.model.qgn import QGN, QGNConfig
    from qgn.train.finetune import FinetuneResult
    from qgn_studio.finetuner import Finetuner

    class Engine:  # the InferenceWorker's side the finetuner uses
        def __init__(self):
            self.engine, self.used = SimpleNamespace(model=None), []

        def use_model(self, model, path):
            self.used.append((model, Path(path)))

    out = tmp_path / "models" / "tuned.safetensors"
    parts = make_parts()
    parts.projects.open_project(scenes_project.root)
    engine = Engine()
    finetuner = Finetuner(parts.workspace, engine, parts.projects, parts.jobs, Answers(model_path=(out, False)))
    kept = heard(finetuner.kept)
    model = QGN(QGNConfig.from_preset("tiny", SYNTHETIC_CLASSES)).eval()
    finetuner.result = FinetuneResult(model, [0.5], 1, False)
    finetuner.comparison = SimpleNamespace(per_image=[{"name": "scene_00.png"}])
    finetuner.keep()
    qtbot.waitUntil(lambda: bool(engine.used), timeout=20_000)
    assert engine.used == [(model, out)] and out.is_file() and kept == [(out,)]
    assert finetuner.result is None  # handed over: nothing left to keep or revert
    parts.settle(qtbot)
    assert Project.open(scenes_project.root).model == str(out)  # the project remembers its model
    assert parts.workspace.settings.value("model/path") == str(out)  # and the next start uses it


def test_a_job_reports_its_progress_on_the_ui_thread_before_its_end(qtbot):
    """``JobRunner.submit(progress=)``: the job's ``report(*args)`` on the job thread calls
    ``progress(*args)`` on the UI thread, in order, before the job's done."""
    import threading

    from qgn_studio.jobs import JobRunner

    jobs = JobRunner()
    seen = []

    def run(report):
        for i in range(3):
            report(i, 3)
        return "result"

    jobs.submit(run, lambda result: seen.append(result), None, "Counting",
                progress=lambda done, total: seen.append((done, total, threading.current_thread() is
                                                          threading.main_thread())))
    assert jobs.wait_idle(30)
    qtbot.waitUntil(lambda: "result" in seen, timeout=5000)
    jobs.stop()
    assert seen == [(0, 3, True), (1, 3, True), (2, 3, True), "result"]


def test_the_answers_double_answers_every_question_the_app_asks():
    """``Answers`` stands in for ``AskUser`` in the controller tests: a question the app gained (Kept
    copy…) without an answer there failed 13 of them at once, at the first image shown."""
    from qgn_studio.ask import AskUser

    questions = {name for name, value in vars(AskUser).items() if callable(value) and not name.startswith("_")}
    assert questions - set(dir(Answers)) == set()
