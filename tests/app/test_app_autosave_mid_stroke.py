"""(A review found it.) an autosave that runs while a stroke is being painted (the map dirty already; the timer
fires 2 s after the first edit whatever the mouse does) records a version the undo log never recorded
(a stroke bumps ``version`` at every mouse move; ``_states`` is written at undo-log steps only). The next
autosave's autosave_undone() finds no state for it and says True: the mid-stroke autosave is kept as
discarded/<key>.undone-<hash>.qgt although nothing was undone."""
from __future__ import annotations

from studio_steps import WAIT_MS, paint, painted_and_saved

SAMPLE_COUNT, SAMPLE_SIZE = 2, (64, 96)


def test_autosave_mid_stroke_is_not_an_undo(qtbot, windows, samples, model_path, tmp_path):
    from qgn.project import DISCARDED_DIR

    folder = tmp_path / "project"
    win, session = painted_and_saved(qtbot, windows, samples, model_path, folder, 5)
    paint(win, 2, 1, [(1, 1), (30, 1)])            # dirty
    with qtbot.waitSignal(win.projects.autosaved, timeout=WAIT_MS):
        win.projects.autosave_now()
    win.jobs.wait_idle()
    tools = win.annotator.tools
    tools.set_level(2)
    tools.set_class(2)
    tools.press(1, 9)
    tools.move(30, 9)                                # mid-stroke: applied, not yet an undo step
    with qtbot.waitSignal(win.projects.autosaved, timeout=WAIT_MS):
        win.projects.autosave_now()                  # the 2 s timer fires while the mouse is down
    win.jobs.wait_idle()
    tools.move(40, 20)
    tools.release()
    print("autosave_undone() after the stroke ends (nothing undone):", session.autosave_undone())
    with qtbot.waitSignal(win.projects.autosaved, timeout=WAIT_MS):
        win.projects.autosave_now()
    win.jobs.wait_idle()
    kept = sorted(p.name for p in (folder / DISCARDED_DIR).glob("*")) if (folder / DISCARDED_DIR).exists() else []
    print("discarded/:", kept)
    assert not kept, "nothing was undone, yet an 'undone' autosave was kept in discarded/"


def _session_with_steps(count: int):
    import numpy as np

    from qgn.annotation import Annotation
    from qgn.classes import ClassSet
    from qgn_studio.annotation_doc import AnnotationSession, edit_between
    from qgn_studio.tools.commands import EditCommand

    classes = ClassSet(("a", "b", "c"), ((0, 0, 0), (1, 1, 1), (2, 2, 2)), 255)
    session = AnnotationSession("x.png", Annotation.from_prediction(np.zeros((8, 8), np.uint8), classes))

    def step(y: int, x: int, value: int, push: bool = True):
        target = session.label.copy()
        target[y % 8, x % 8] = value
        edit = edit_between(session.label, target)
        if push:
            session.undo.push(EditCommand(session, edit, "step"))
        else:
            session.apply(edit)  # a stroke's part, applied as the mouse moves
        return edit

    for i in range(count):
        step(i // 8, i, 1 + i % 2)
    return session, step


def test_lacks_judges_mid_stroke_versions_by_the_step_that_ends_the_stroke(qapp):
    """A version applied mid-stroke (no undo-log step yet) is held while the stroke goes on and once it is
    pushed, and lacked once that step is undone; the judgement survives ``drop_oldest``. Fails before: no
    ``lacks`` (``autosave_undone`` found no state for a mid-stroke version and said undone)."""
    import numpy as np

    from qgn_studio.annotation_doc import edit_between
    from qgn_studio.tools.commands import EditCommand

    session, step = _session_with_steps(4)
    before = session.version
    step(5, 1, 2, push=False)
    mid = session.version
    step(5, 2, 2, push=False)
    assert not session.lacks(mid) and not session.lacks(before)  # the stroke under way holds both
    stroke = edit_between(np.zeros_like(session.label), session.label)  # (any edit: applied=True, not replayed)
    session.undo.push(EditCommand(session, stroke, "stroke", applied=True))
    done = session.version
    assert not session.lacks(mid) and not session.lacks(done) and not session.lacks(before)
    session.undo.undo()
    assert session.lacks(mid) and session.lacks(done) and not session.lacks(before)
    session.undo.redo()
    assert not session.lacks(mid) and not session.lacks(done)
    session.undo.undo()
    step(6, 6, 1)  # a new edit drops the stroke from redo
    assert session.lacks(mid) and session.lacks(done) and not session.lacks(before)
    first = 1  # the map after the first step
    assert session.drop_oldest(2) == 2
    assert session.lacks(mid) and not session.lacks(before) and not session.lacks(session.version)
    assert session.lacks(first)  # below the log's bottom now: cannot be told, taken as lacked (kept)


def test_lacks_looks_at_one_step_whatever_the_log_length(qapp):
    """``holds`` scanned the applied steps from the bottom on the UI thread at every autosave round (30 ms
    at 50k steps). Now one look at the step at the mark's depth. Fails before: no ``lacks``."""
    session, step = _session_with_steps(2000)
    middle = 1950  # (recent: only the newest versions and those autosaved or saved are judged)
    real, looked = session.undo.command, []

    def command(i):
        looked.append(i)
        return real(i)

    session.undo.command = command
    session.undo.undo()
    assert not session.lacks(middle) and session.lacks(2000)
    assert len(looked) <= 4, looked


def test_the_autosaved_version_stays_judged_past_many_edits(qapp):
    """A long stroke bumps the version at every mouse move: the version autosaved before it must still be
    told held (not taken as lacked - a false 'undone' keep) however many versions came since."""
    session, step = _session_with_steps(5)
    session.mark_autosaved(3)
    for i in range(600):
        step(7, i, 1 + i % 2, push=False)
    step(0, 0, 2)
    assert not session.lacks(3)
    assert session.judge_autosaves().lacks == {3: False, session.version: False}
