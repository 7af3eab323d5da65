"""A project of many images: it is read on the job thread (its documents made there), nothing can
be edited while it opens, another open or Esc cancels it; opening it does no per-image path
resolving on the UI thread, and images moved away are summed up in one short banner that never
grows the window."""
from __future__ import annotations

import html
import io
import shutil
import threading
from pathlib import Path

import pytest
from PIL import Image
from PySide6 import QtCore, QtGui, QtWidgets

from qgn.classes import ClassSet
from studio_steps import WAIT_MS

WINDOW_SIZE = (1280, 800)
CLASSES = ClassSet(("sky", "road", "car"), ((70, 130, 180), (128, 64, 128), (0, 0, 142)), 255)


def many_images(folder: Path, count: int) -> list[Path]:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), (90, 120, 40)).save(buffer, format="PNG")
    folder.mkdir(parents=True)
    paths = [folder / f"img_{i:03d}.png" for i in range(count)]
    for path in paths:
        path.write_bytes(buffer.getvalue())
    return paths



def ui_thread_index_builds(monkeypatch) -> list[int]:
    """The sizes of the path indexes any Project builds on the UI thread from now on (each build reads
    a path per image: ~0.4 s at 100,000 images), recorded as they are built."""
    from qgn.project_images import ProjectImagesMixin

    built, build = [], ProjectImagesMixin._build_index

    def counted(self, images, *args):
        if threading.current_thread() is threading.main_thread():
            built.append(len(images))
        return build(self, images, *args)

    monkeypatch.setattr(ProjectImagesMixin, "_build_index", counted)
    return built

def test_opening_a_big_project_resolves_no_path_per_image_on_the_ui_thread(qtbot, window, model_path, tmp_path,
                                                                              monkeypatch):
    from qgn.project import Project

    root = tmp_path / "proj"
    Project.create(root, many_images(tmp_path / "imgs", 300), CLASSES)
    window.start([], str(model_path))
    calls = []
    real = Path.resolve

    def counted(self, *args, **kw):
        if threading.current_thread() is threading.main_thread():
            calls.append(self)
        return real(self, *args, **kw)

    monkeypatch.setattr(Path, "resolve", counted)
    assert window.projects.open_project(root)
    qtbot.waitUntil(lambda: len(window.docs) == 300, timeout=WAIT_MS)
    monkeypatch.undo()
    assert [d.path for d in window.docs] == [(tmp_path / "imgs" / f"img_{i:03d}.png").resolve() for i in range(300)]
    assert len(calls) < 30, len(calls)  # 2 per image before (autosave and listed paths)


def held_jobs(window):
    """Keep the job thread busy until the returned Event is set (a slow disk, a big project)."""
    gate = threading.Event()
    window.jobs.submit(lambda: gate.wait(WAIT_MS / 1000))
    return gate


def test_a_big_project_is_read_and_its_documents_made_off_the_ui_thread(qtbot, window, model_path, tmp_path,
                                                                         monkeypatch):
    from qgn.project import Project

    from qgn_studio.document import ImageDocument

    Project.create(tmp_path / "proj", many_images(tmp_path / "imgs", 300), CLASSES)
    window.start([], str(model_path))
    threads = {"open": set(), "doc": set()}
    real_open, real_doc = Project.open.__func__, ImageDocument.__init__

    def open_(cls, root, *args):
        threads["open"].add(threading.current_thread() is threading.main_thread())
        return real_open(cls, root, *args)

    def doc(self, path):
        threads["doc"].add(threading.current_thread() is threading.main_thread())
        real_doc(self, path)

    monkeypatch.setattr(Project, "open", classmethod(open_))
    monkeypatch.setattr(ImageDocument, "__init__", doc)
    gate = held_jobs(window)
    assert window.projects.open_project(tmp_path / "proj")
    assert window.workspace.opening and window.progress.isVisible()
    assert "Opening the project proj" in window.progress.label.text()
    assert window.progress.cancel_button.toolTip() == "Stop it (Esc)"  # (Esc stops it; an export's says no Esc)
    gate.set()
    qtbot.waitUntil(lambda: not window.workspace.opening, timeout=WAIT_MS)
    assert window.projects.project.root == (tmp_path / "proj").resolve() and len(window.docs) == 300
    assert threads == {"open": {False}, "doc": {False}}  # read and made on the job thread only
    assert not window.progress.isVisible() and window.canvas.isEnabled()


def test_nothing_is_edited_while_a_project_opens(qtbot, window, model_path, samples, tmp_path):
    """Clicks, keys and menus do nothing while a project is read; what was open stays as it was,
    and the project opens with nothing of the other one in it."""
    from qgn.project import Project

    from studio_steps import send_mouse

    Project.create(tmp_path / "proj", many_images(tmp_path / "imgs", 300), CLASSES)
    window.start([samples[0]], str(model_path))
    qtbot.waitUntil(lambda: window.current is not None and window.current.result is not None, timeout=WAIT_MS)
    window.annotator.set_mode(True)
    qtbot.waitUntil(lambda: window.current.annotation is not None, timeout=WAIT_MS)
    session = window.current.annotation
    before = session.label.copy()
    asked = []
    window.projects.ask_folder = lambda *args: asked.append(args)  # Ctrl+S without a project asks one
    gate = held_jobs(window)
    window.projects.open_project(tmp_path / "proj")
    assert not window.canvas.isEnabled() and not window.menuBar().isEnabled()
    window.activateWindow()
    for kind in (QtCore.QEvent.Type.MouseButtonPress, QtCore.QEvent.Type.MouseButtonRelease):
        send_mouse(window, kind, 10, 10)
    control = QtCore.Qt.KeyboardModifier.ControlModifier
    qtbot.keyClick(window, QtCore.Qt.Key.Key_S, control)
    qtbot.keyClick(window, QtCore.Qt.Key.Key_D, control)  # Mark done
    assert not session.dirty and (session.label == before).all() and not window.current.done and not asked
    gate.set()
    qtbot.waitUntil(lambda: window.projects.project is not None and len(window.docs) == 300, timeout=WAIT_MS)
    window.jobs.wait_idle()
    project = Project.open(tmp_path / "proj")
    assert len(project.images) == 300 and not project.annotated() and not project.recoverable()
    assert window.canvas.isEnabled() and window.menuBar().isEnabled()


def test_another_open_or_esc_cancels_the_project_being_read(qtbot, window, model_path, tmp_path):
    from qgn.project import Project

    for name, count in (("first", 300), ("second", 250), ("third", 280)):
        Project.create(tmp_path / name, many_images(tmp_path / f"{name}_imgs", count), CLASSES)
    window.start([], str(model_path))
    gate = held_jobs(window)
    window.projects.open_project(tmp_path / "first")
    window.projects.open_project(tmp_path / "second")  # replaces the first: read after it, shown alone
    gate.set()
    qtbot.waitUntil(lambda: not window.workspace.opening, timeout=WAIT_MS)
    window.jobs.wait_idle()
    QtWidgets.QApplication.processEvents()
    assert window.projects.project.root == (tmp_path / "second").resolve() and len(window.docs) == 250

    gate = held_jobs(window)
    window.projects.open_project(tmp_path / "third")
    window.cancel()  # Esc
    assert not window.workspace.opening and window.canvas.isEnabled()
    gate.set()
    window.jobs.wait_idle()
    QtWidgets.QApplication.processEvents()
    assert window.projects.project.root == (tmp_path / "second").resolve() and len(window.docs) == 250


def test_a_big_list_reads_the_previews_of_the_rows_shown_not_of_every_image(qtbot, window, model_path, tmp_path,
                                                                            monkeypatch):
    """20,000 rows queued 20,000 preview reads at once: thousands of signals, each a turn of the
    UI thread, for rows nobody looks at. The first rows are read ahead; the rest as they are shown."""
    from qgn.project import Project

    from qgn_studio.panels.images import THUMBNAILS_AHEAD

    Project.create(tmp_path / "proj", many_images(tmp_path / "imgs", 600), CLASSES)
    window.start([], str(model_path))
    asked = []
    monkeypatch.setattr(window.thumbnails, "request", lambda paths, replace=False: asked.extend(paths))
    monkeypatch.setattr(window.images.rows, "wanted", asked.append)
    window.projects.open_project(tmp_path / "proj")
    qtbot.waitUntil(lambda: len(window.docs) == 600 and not window.workspace.opening, timeout=WAIT_MS)
    QtWidgets.QApplication.processEvents()
    assert THUMBNAILS_AHEAD <= len(asked) < 300 and len(set(asked)) == len(asked)

    def shown_last_row() -> bool:
        window.images.list.scrollToBottom()  # once the rows are laid out (in batches)
        window.images.list.grab()  # painted: the rows in view are drawn
        return window.docs[-1].path in asked

    qtbot.waitUntil(shown_last_row, timeout=WAIT_MS)  # a row shown asks for its preview


def test_images_moved_away_are_summed_up_in_a_short_banner(qtbot, window, model_path, tmp_path):
    from qgn.project import Project

    root = tmp_path / "proj"
    moved = many_images(tmp_path / "many", 200)
    kept = many_images(tmp_path / "kept", 2)
    Project.create(root, moved + kept, CLASSES)
    shutil.move(tmp_path / "many", tmp_path / "elsewhere")
    height = window.height()
    window.start([str(root)], str(model_path))
    qtbot.waitUntil(lambda: window.projects.project is not None and len(window.docs) == 2, timeout=WAIT_MS)
    text, kind = window.canvas.banner.messages["open"]
    text = html.unescape(text)
    assert kind == "warning" and text.count("<br>") == 0 and len(text) < 500
    assert text.startswith(f"200 of the project's 202 images are missing from {tmp_path / 'many'} "
                           "(img_000.png, img_001.png, img_002.png, …)")
    assert "Put them back there and open the project again" in text
    QtWidgets.QApplication.processEvents()
    assert window.height() == height
    assert window.canvas.banner.height() < 0.3 * window.canvas.height()
    assert len(Project.open(root).images) == 202  # opening changed nothing


def test_many_paths_that_cannot_be_opened_fit_in_the_banner(qtbot, window, tmp_path):
    """A drop of 60 paths that are gone: a few lines and a count, and the window keeps its size."""
    from qgn_studio.window_opening import PROBLEMS_SHOWN

    height = window.height()
    window.open_paths([str(tmp_path / f"gone_<b>{i}</b>.png") for i in range(60)], append=True)
    QtWidgets.QApplication.processEvents()
    text, _kind = window.canvas.banner.messages["open"]
    assert text.count("<br>") == PROBLEMS_SHOWN and text.endswith(f"… and {60 - PROBLEMS_SHOWN} more like these")
    assert "&lt;b&gt;0&lt;/b&gt;" in text and "<b>" not in text  # a path is text, not markup
    assert window.height() == height


def test_the_banner_scrolls_instead_of_growing(qtbot, window):
    """Whatever a message holds, the banner stays a few lines high."""
    banner = window.canvas.banner
    height = window.height()
    window.canvas.show_message("<br>".join(f"line {i}" for i in range(300)), "warning", "test")
    QtWidgets.QApplication.processEvents()
    line = banner.label.fontMetrics().lineSpacing()
    assert banner.scroll.height() <= banner.MAX_LINES * line + 4
    assert window.height() == height
    window.canvas.show_message("one line", "warning", "test")
    QtWidgets.QApplication.processEvents()
    assert banner.scroll.height() < 2 * line + 4


def open_300_image_project(qtbot, window, model_path, tmp_path):
    """A project of 300 images open in ``window``, its first image shown and the job thread idle."""
    from qgn.project import Project

    root = tmp_path / "proj"
    Project.create(root, many_images(tmp_path / "imgs", 300), CLASSES)
    window.start([], str(model_path))
    assert window.projects.open_project(root)
    qtbot.waitUntil(lambda: len(window.docs) == 300, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.current is not None and window.current.image is not None, timeout=WAIT_MS)
    window.jobs.wait_idle()
    QtWidgets.QApplication.processEvents()
    return root


def test_marking_an_image_done_in_a_big_project_makes_no_path_per_image_on_the_ui_thread(
        qtbot, window, model_path, tmp_path, monkeypatch):
    # once the mark is recorded, the project's done flags of the marked images are shown: that made
    # a Path of every image of the project on the UI thread (0.9 s a mark at 100,000 images)
    from qgn.project import Project
    from qgn_studio import project_controller, project_marks, project_watch

    root = open_300_image_project(qtbot, window, model_path, tmp_path)
    made = []

    class Counted(type(Path())):
        def __new__(cls, *args, **kwargs):
            if threading.current_thread() is threading.main_thread():
                made.append(args)
            return Path(*args, **kwargs)

    for module in (project_controller, project_marks, project_watch):  # each on the mark's way (_record_marks, _show_project_done)
        monkeypatch.setattr(module, "Path", Counted)
    window.annotator.set_done(True)
    qtbot.waitUntil(lambda: Project.open(root).images[0].done, timeout=WAIT_MS)
    window.jobs.wait_idle()
    QtWidgets.QApplication.processEvents()
    monkeypatch.undo()
    assert window.docs[0].done and not any(d.done for d in window.docs[1:])
    assert len(made) < 30, len(made)


def test_a_mark_after_another_writers_change_rebuilds_no_path_index_on_the_ui_thread(
        qtbot, window, model_path, tmp_path, monkeypatch):
    # the mark's write merged another writer's change (the project's images replaced): showing the
    # project's flag of the marked image then rebuilt the whole path index on the UI thread (0.4 s
    # at 100,000 images) - read on the job thread instead
    from qgn.project import Project

    root = open_300_image_project(qtbot, window, model_path, tmp_path)
    # the merge must be the mark's write's and the index read the mark's report's: on a loaded machine
    # a watch tick (1.5 s) merged the other writer's change first, and a prediction arriving during the
    # mark looked up the previous frame (carry) through the index the merge had just made stale (CI)
    qtbot.waitUntil(lambda: window.current.result is not None, timeout=WAIT_MS)
    window.projects.watch.stop()
    other = Project.open(root)
    other.set_done(other.images[5], True)  # another writer: merged by the mark's write
    rebuilt = ui_thread_index_builds(monkeypatch)
    window.annotator.set_done(True)
    qtbot.waitUntil(lambda: Project.open(root).images[0].done, timeout=WAIT_MS)
    window.jobs.wait_idle()
    QtWidgets.QApplication.processEvents()
    monkeypatch.undo()
    assert window.projects.project.images[5].done, "the other writer's mark was merged"
    assert window.docs[0].done
    assert rebuilt == [], rebuilt


def test_the_watch_showing_another_writers_change_rebuilds_no_path_index_on_the_ui_thread(
        qtbot, window, model_path, tmp_path, monkeypatch):
    # the watch's tick read and merged another writer's change of project.json on the UI thread, and the
    # next look-up by path (a prediction's arrival, the tick's own looks) rebuilt the path index there:
    # ~0.8 s and ~0.5 s at 100,000 images (benchmarks/bench_watch_merge.py) - read, merged and indexed
    # on the job thread instead, shown here once ready
    from qgn.project import Project

    root = open_300_image_project(qtbot, window, model_path, tmp_path)
    qtbot.waitUntil(lambda: window.current.result is not None, timeout=WAIT_MS)
    window.projects.watch.stop()  # the tick under test is the one called here
    other = Project.open(root)
    other.set_done(other.images[5], True)  # another writer
    other.add_images(many_images(tmp_path / "more", 1))  # and a new image
    rebuilt, read_here = ui_thread_index_builds(monkeypatch), []
    read = Project.refresh

    def refresh(self, *args, **kwargs):
        if threading.current_thread() is threading.main_thread():
            read_here.append(self.root)
        return read(self, *args, **kwargs)

    monkeypatch.setattr(Project, "refresh", refresh)
    window.projects.check_project_on_disk()
    qtbot.waitUntil(lambda: window.docs[5].done and len(window.docs) == 301, timeout=WAIT_MS)
    window.jobs.wait_idle()
    QtWidgets.QApplication.processEvents()
    for doc in window.docs:  # every look-up by path the window makes next
        window.projects.project.image_for(doc.path)
    monkeypatch.undo()
    assert window.docs[-1].path == (tmp_path / "more" / "img_000.png").resolve()
    assert not any(d.done for d in window.docs[:5] + window.docs[6:])
    assert read_here == [] and rebuilt == [], (read_here, rebuilt)


def test_removing_an_image_of_a_big_project_rebuilds_no_path_index_on_the_ui_thread(
        qtbot, window, model_path, tmp_path, monkeypatch):
    # Image > Remove replaces the project's image list (its write on the job thread): the next look-up by
    # path on the UI thread (a prediction's arrival, a mark shown) rebuilt the whole path index there
    # (~0.4 s at 100,000 images) - each job that changes the images leaves it built on the job thread
    from qgn.project import Project

    root = open_300_image_project(qtbot, window, model_path, tmp_path)
    qtbot.waitUntil(lambda: window.current.result is not None, timeout=WAIT_MS)
    window.projects.watch.stop()
    window.jobs.wait_idle()
    rebuilt = ui_thread_index_builds(monkeypatch)
    project = window.projects.project
    written, looked = threading.Event(), threading.Event()
    warm = window.jobs.after_each

    def paused():  # the job thread after the removal's write, before its warm-up: a look-up by path here
        if len(project.images) == 299 and not written.is_set():  # on the UI thread (a selection) found
            written.set()  # the new list with a stale index, and rebuilt it (found by a read-only review)
            looked.wait(10)
        warm()

    monkeypatch.setattr(window.jobs, "after_each", paused)
    window.projects.ask_remove = lambda names, project: True
    gone = window.docs[7].path
    assert window.projects.remove_images([window.docs[7]])
    assert written.wait(10)
    for doc in window.docs[:3]:
        assert project.image_for(doc.path).path == doc.path
    looked.set()
    qtbot.waitUntil(lambda: len(Project.open(root).images) == 299, timeout=WAIT_MS)
    window.jobs.wait_idle()
    QtWidgets.QApplication.processEvents()
    for doc in window.docs:  # every look-up by path the window makes next
        window.projects.project.image_for(doc.path)
    monkeypatch.undo()
    assert len(window.docs) == 299 and gone not in {d.path for d in window.docs}
    assert rebuilt == [], rebuilt


def test_another_writers_class_change_in_a_big_project_reads_no_image_list_on_the_ui_thread(
        qtbot, window, model_path, tmp_path, monkeypatch):
    # another writer renamed a class: the project is read again on the job thread, but the reload then
    # made the shown done flags and new-image list (a Path and a file check per image) and built the
    # reloaded project's path index on the UI thread (~0.6 s and ~0.4 s at 100,000 images)
    from qgn.classes_edit import rename_class
    from qgn.project import Project
    from qgn.project_class_edit import apply_class_edit
    from qgn_studio import project_class_changes, project_watch

    root = open_300_image_project(qtbot, window, model_path, tmp_path)
    window.projects.watch.stop()
    rebuilt = ui_thread_index_builds(monkeypatch)
    views, real_view = [], project_watch.merged_view

    def view(*args, **kwargs):
        if threading.current_thread() is threading.main_thread():
            views.append(1)
        return real_view(*args, **kwargs)

    for module in (project_class_changes, project_watch):  # each module that calls it (the reload, the watch)
        monkeypatch.setattr(module, "merged_view", view)
    other = Project.open(root)
    apply_class_edit(other, rename_class(other.classes, 2, "vehicle"))
    window.projects.check_project_on_disk()
    qtbot.waitUntil(lambda: window.projects.project.classes.names[2] == "vehicle", timeout=WAIT_MS)
    window.jobs.wait_idle()
    QtWidgets.QApplication.processEvents()
    for doc in window.docs[:5]:  # the look-ups by path the window makes next
        window.projects.project.image_for(doc.path)
    monkeypatch.undo()
    assert window.annotator.classes.names[2] == "vehicle" and len(window.docs) == 300
    assert views == [] and rebuilt == [], (views, rebuilt)


def test_a_long_banner_shows_whole_lines(qtbot, window):
    """A message longer than the banner's six lines shows six whole lines, the seventh under the
    fold (half of it showed, cut: the cap counted the font's leading, which rich text leaves out).
    The line bottoms are those of the same text laid out by a QTextDocument at the label's width."""
    banner = window.canvas.banner
    window.canvas.show_message("<br>".join(f"line {i} of a long message" for i in range(20)), "warning", "test")
    QtWidgets.QApplication.processEvents()
    label = banner.label
    document = QtGui.QTextDocument()
    document.setDefaultFont(label.font())
    document.setDocumentMargin(0)
    document.setHtml(label.text())
    document.setTextWidth(label.width())
    bottoms, block = [], document.begin()
    while block.isValid():
        top = document.documentLayout().blockBoundingRect(block).top()
        layout = block.layout()
        bottoms += [round(top + layout.lineAt(i).y() + layout.lineAt(i).height()) for i in range(layout.lineCount())]
        block = block.next()
    shown = banner.scroll.viewport().height()
    assert shown < bottoms[-1]  # it scrolls
    whole = [b for b in bottoms if b <= shown]
    assert len(whole) == banner.MAX_LINES, (shown, bottoms[:8])
    assert shown - whole[-1] <= 2, (shown, whole[-1])  # no part of the next line shows


def test_a_project_open_shows_how_far_its_check_of_the_files_on_disk_is(qtbot, window, model_path, tmp_path,
                                                                           monkeypatch):
    """The check of which image files are on disk (``discovery.existing_files``, 0.8-0.9 s for
    20,000 images) reported nothing: the line sat at "0 of 20,000 images" through it. It now says
    how many it checked, then how many documents are made, the bar going up through both."""
    from qgn.project import Project

    import qgn_studio.discovery as discovery
    import qgn_studio.project_open as project_open

    Project.create(tmp_path / "proj", many_images(tmp_path / "imgs", 300), CLASSES)
    window.start([], str(model_path))
    monkeypatch.setattr(project_open, "PROGRESS_EVERY", 50)
    checking, real = [False], discovery.existing_files

    def watched(*args, **kw):
        checking[0] = True
        try:
            return real(*args, **kw)
        finally:
            checking[0] = False

    monkeypatch.setattr(discovery, "existing_files", watched)
    reports = []
    opening = project_open.read_project(tmp_path / "proj", [], lambda *step: reports.append((checking[0], *step)))
    assert len(opening.images) == 300
    during = [r[1:] for r in reports if r[0]]
    assert during == [(n, 300, "checking") for n in range(50, 301, 50)], reports  # (none before)

    shown = []
    window.workspace.progress.connect(lambda text, done, total, _cancel: shown.append((text, done, total)))
    assert window.projects.open_project(tmp_path / "proj")
    qtbot.waitUntil(lambda: not window.workspace.opening, timeout=WAIT_MS)
    assert len(window.docs) == 300
    head = "Opening the project proj: "
    assert (f"{head}checking its images on disk, 150 of 300", 150, 600) in shown, shown
    assert (f"{head}150 of 300 images", 450, 600) in shown, shown
    steps = [done for text, done, total in shown if text.startswith(head)]
    assert steps == sorted(steps), shown


def test_the_check_of_the_files_on_disk_counts_from_its_start(tmp_path, monkeypatch):
    """``existing_files`` made every path absolute and listed every folder before its first count:
    half of a 20,000-image check (0.2 s of 0.4 s) sat at "0 of 20,000". Its count now moves from the
    first paths: a folder is listed when its first path is checked."""
    import os

    import qgn_studio.discovery as discovery

    paths = [folder / f"im{k:03d}.png" for folder in (tmp_path / "a", tmp_path / "b") for k in range(100)]
    for path in paths[::2]:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"")
    events, real_scandir = [], os.scandir

    def scandir(folder):
        events.append(("listed", Path(folder).name))
        return real_scandir(folder)

    monkeypatch.setattr(discovery.os, "scandir", scandir)
    present, missing = discovery.existing_files(paths, lambda n: events.append(("checked", n)), every=50)
    assert present == [p.resolve() for p in paths[::2]] and missing == paths[1::2]
    reports = [event for event in events if event[0] == "listed" or event[1]]
    assert reports == [("listed", "a"), ("checked", 50), ("checked", 100), ("listed", "b"),
                       ("checked", 150), ("checked", 200)], events


def test_a_cancelled_open_still_queued_goes_at_once_and_leaves_the_running_jobs_line(qtbot, window, model_path,
                                                                                       tmp_path, monkeypatch):
    """An open cancelled while its read still waited behind another job said "Cancelling opening
    the project proj… (and 1 more task)" over that job's own count and time left for the job's
    whole run, then still ran ``Project.open`` and built the path index. A read that never started
    now goes at once (its line hides; it stops before ``Project.open``), and the running job's line
    shows its own progress."""
    from qgn.project import Project

    Project.create(tmp_path / "proj", many_images(tmp_path / "imgs", 300), CLASSES)
    window.start([], str(model_path))
    window.jobs.wait_idle()
    opened, real_open = [], Project.open.__func__

    def counted(cls, *a, **k):
        if threading.current_thread() is not threading.main_thread():
            opened.append(a[0])
        return real_open(cls, *a, **k)

    monkeypatch.setattr(Project, "open", classmethod(counted))
    gate = held_jobs(window)  # another job runs (an export, a save round), showing its own progress
    ws = window.workspace
    ws.show_progress("Counting the annotations… 3/100", 3, 100, lambda: None, owner="counting")
    assert window.projects.open_project(tmp_path / "proj")
    window.cancel()  # Esc: the open, queued behind the job, is cancelled
    ws.show_progress("Counting the annotations… 4/100", 4, 100, lambda: None, owner="counting")
    assert window.progress.label.text().startswith("Counting the annotations… 4/100"), window.progress.label.text()
    assert "more task" not in window.progress.label.text() and window.progress.tasks() == 1
    gate.set()
    window.jobs.wait_idle()
    QtWidgets.QApplication.processEvents()
    assert opened == [], "the cancelled read still opened the project"
    assert window.projects.project is None and window.docs == []
    ws.hide_progress("counting")
    assert not window.progress.isVisible()


def test_a_cancelled_project_open_says_cancelling_until_its_read_stopped(qtbot, window, model_path, tmp_path,
                                                                           monkeypatch):
    """Esc hid the open's line at once while its read went on on the job thread: the line now says
    "Cancelling opening the project …" until the read stopped (at its next step), the window can be
    used meanwhile, and nothing of the read is applied."""
    from qgn.project import Project

    import qgn_studio.project_open as project_open
    from qgn_studio.document import ImageDocument

    Project.create(tmp_path / "proj", many_images(tmp_path / "imgs", 300), CLASSES)
    window.start([], str(model_path))
    monkeypatch.setattr(project_open, "PROGRESS_EVERY", 10)
    reached, gate, made = threading.Event(), threading.Event(), []
    real_doc = ImageDocument.__init__

    def held(self, path):
        if threading.current_thread() is not threading.main_thread():
            made.append(path)
            if len(made) == 1:
                reached.set()
                gate.wait(WAIT_MS / 1000)
        real_doc(self, path)

    monkeypatch.setattr(ImageDocument, "__init__", held)
    assert window.projects.open_project(tmp_path / "proj")
    assert reached.wait(WAIT_MS / 1000)
    window.cancel()  # Esc, while the read is making its documents
    assert not window.workspace.opening and window.canvas.isEnabled()
    assert window.progress.isVisible(), "the line hid while the read went on"
    assert window.progress.label.text() == "Cancelling opening the project proj…"
    assert not window.progress.cancel_button.isEnabled()
    gate.set()
    qtbot.waitUntil(lambda: not window.progress.isVisible(), timeout=WAIT_MS)  # the read stopped
    window.jobs.wait_idle()
    QtWidgets.QApplication.processEvents()
    assert len(made) <= 10  # stopped at its next step
    assert window.projects.project is None and window.docs == []


@pytest.mark.parametrize("phase", ["entries", "images", "index"])
def test_a_project_open_cancelled_while_project_json_is_read_stops_there(qtbot, window, model_path, tmp_path,
                                                                          monkeypatch, phase):
    """Reading project.json (its entries checked, its images made, their path index built: ~2.4 s at
    100,000 images, ``benchmarks/bench_project_json.py``) polled no cancel: Esc said "Cancelling…" until
    the whole file was read. Each of those loops now stops at its next ``STOP_CHECK_EVERY`` entries, the
    later ones never run, and nothing of the project is written, nor anything open changed."""
    import qgn.project_errors as project_errors
    import qgn.project_file as project_file
    import qgn.project_images as project_images
    from qgn.project import Project

    from qgn_studio.document import ImageDocument

    root = tmp_path / "proj"
    Project.create(root, many_images(tmp_path / "imgs", 300), CLASSES)
    before = {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
    window.start([], str(model_path))
    monkeypatch.setattr(project_errors, "STOP_CHECK_EVERY", 10)
    reached, gate = threading.Event(), threading.Event()
    calls = {"entries": [], "images": [], "index": [], "documents": []}

    def counted(name, real):
        def call(*args, **kw):
            if threading.current_thread() is not threading.main_thread():
                calls[name].append(1)
                if name == phase and len(calls[name]) == 1:
                    reached.set()
                    gate.wait(WAIT_MS / 1000)
            return real(*args, **kw)
        return call

    monkeypatch.setattr(project_file, "_done_flag", counted("entries", project_file._done_flag))
    monkeypatch.setattr(Project, "_absolute", staticmethod(counted("images", Project._absolute)))
    monkeypatch.setattr(project_images, "path_key", counted("index", project_images.path_key))
    monkeypatch.setattr(ImageDocument, "__init__", counted("documents", ImageDocument.__init__))
    assert window.projects.open_project(root)
    assert reached.wait(WAIT_MS / 1000)
    window.cancel()  # Esc, while project.json is being read
    assert window.progress.label.text() == "Cancelling opening the project proj…"
    gate.set()
    qtbot.waitUntil(lambda: not window.progress.isVisible(), timeout=WAIT_MS)  # the read stopped
    window.jobs.wait_idle()
    QtWidgets.QApplication.processEvents()
    assert len(calls[phase]) <= 10 + 1, f"{phase}: {len(calls[phase])} of 300 after the cancel"
    later = ("entries", "images", "index", "documents")
    assert all(not calls[name] for name in later[later.index(phase) + 1:]), calls
    assert window.projects.project is None and window.docs == []
    assert {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()} == before  # nothing written
