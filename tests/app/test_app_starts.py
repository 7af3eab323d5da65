"""What a new annotation starts from (qgn_studio.start_controller): the start that cost the simulated
annotator the fewest actions on the images saved before — an empty map included, which pixel
accuracy gives no credit."""
from __future__ import annotations

import threading

import numpy as np
from PIL import Image

from studio_steps import WAIT_MS, corrected_to_truth, hold, paint, start_annotating

SIZE = (64, 96)


def striped_images(folder, count: int = 3):
    """``count`` images of three flat vertical stripes (classes 1, 2, 3, a little texture) with their
    truth in ``labels/``: an empty start needs a click a stripe, the test model's fragmented map more."""
    h, w = SIZE
    (folder / "images").mkdir(parents=True)
    (folder / "labels").mkdir()
    rng = np.random.default_rng(1)
    colours = rng.integers(0, 255, (8, 3)).astype(np.int16)
    paths = []
    for k in range(count):
        label = np.broadcast_to(((np.arange(w) + 4 * k) // 24) % 3 + 1, (h, w)).astype(np.uint8)
        image = np.clip(colours[label] + rng.integers(-8, 9, (h, w, 1)), 0, 255).astype(np.uint8)
        path = folder / "images" / f"scene_{k:03d}.png"
        Image.fromarray(image).save(path)
        Image.fromarray(label).save(folder / "labels" / path.name)
        paths.append(path)
    return paths


def _no_head(win):
    """The head's fit not ready (it follows each save): only the empty and the model's start are
    offered, so the test compares those two."""
    win.head.available = lambda doc=None: False


def _reference(win, label):
    """The actions simulate_annotator needs from an empty map and from the current image's prediction
    to ``label`` (image tools, 1 px, 99 %): the test's own reckoning of what the app judged."""
    from qgn.annotation.superpixels import oversegment
    from qgn.bench.annotate_sim import simulate_annotator
    from qgn.bench.annotate_tools import ImageTools

    doc, classes = win.current, win.annotator.classes
    tools = [ImageTools(oversegment(doc.image))]
    starts = {"empty": np.full(label.shape, classes.ignore_index), "model": win.annotator.start_label(doc, "prediction")}
    return {name: simulate_annotator(label, start, classes, target=0.99, tools=tools, tolerance=1)[0].actions
            for name, start in starts.items()}


def _saved_and_judged(qtbot, win):
    with qtbot.waitSignal(win.starts.judged, timeout=WAIT_MS):
        assert win.projects.save()
        win.jobs.wait_idle()
    return win.starts.record[win.annotator.file_key(win.current)]


def test_a_new_image_starts_empty_where_the_empty_start_cost_less(qtbot, windows, model_path, tmp_path):
    paths = striped_images(tmp_path / "scenes")
    win = windows(folder=tmp_path / "project")
    messages = []
    win.workspace.status.connect(lambda text, _ms: messages.append(text))
    start_annotating(qtbot, win, paths, model_path)
    _no_head(win)
    corrected_to_truth(qtbot, win)
    truth = np.asarray(win.current.ground_truth).astype(np.int64)
    reference = _reference(win, truth)
    assert reference["empty"] < reference["model"]  # the scene: an untrained model's map is fragmented
    assert _saved_and_judged(qtbot, win) == reference
    win.step_image(1)
    qtbot.waitUntil(lambda: win.current.annotation is not None, timeout=WAIT_MS)
    assert win.current.annotation.origin == "empty"
    told = [m for m in messages if m.startswith("New images start from an empty map")]
    assert told and f"it took {reference['empty']} actions" in told[-1] and "(simulated)" in told[-1]


def test_a_new_image_keeps_the_prediction_where_it_cost_less(qtbot, windows, model_path, tmp_path):
    paths = striped_images(tmp_path / "scenes")
    win = windows(folder=tmp_path / "project")
    messages = []
    win.workspace.status.connect(lambda text, _ms: messages.append(text))
    start_annotating(qtbot, win, paths, model_path)
    _no_head(win)
    paint(win, 2, 3, [(10, 10), (30, 20)])  # the prediction, one stroke corrected
    qtbot.waitUntil(lambda: win.current.annotation.dirty, timeout=WAIT_MS)
    label = win.current.annotation.label.astype(np.int64)
    reference = _reference(win, label)
    assert reference["model"] < reference["empty"]
    assert _saved_and_judged(qtbot, win) == reference
    win.step_image(1)
    qtbot.waitUntil(lambda: win.current.annotation is not None, timeout=WAIT_MS)
    assert win.current.annotation.origin == "prediction"
    assert any(m.startswith("New images start from the prediction: it took") for m in messages)


def test_the_judge_runs_off_the_ui_thread_and_the_next_image_does_not_wait_for_it(qtbot, windows, model_path,
                                                                                  tmp_path, monkeypatch):
    import qgn.bench.annotate

    started, release = hold(monkeypatch, qgn.bench.annotate, "judge_starts")
    threads = []
    real = qgn.bench.annotate.judge_starts
    monkeypatch.setattr(qgn.bench.annotate, "judge_starts",
                        lambda *a, **k: threads.append(threading.current_thread()) or real(*a, **k))
    paths = striped_images(tmp_path / "scenes")
    win = windows(folder=tmp_path / "project")
    start_annotating(qtbot, win, paths, model_path)
    corrected_to_truth(qtbot, win)
    assert win.projects.save()
    win.jobs.wait_idle()
    qtbot.waitUntil(started.is_set, timeout=WAIT_MS)  # judging, held
    win.step_image(1)  # the next image's prediction and start come meanwhile
    qtbot.waitUntil(lambda: win.current.annotation is not None, timeout=WAIT_MS)
    assert win.current.path == paths[1] and not win.starts.record
    with qtbot.waitSignal(win.starts.judged, timeout=WAIT_MS):
        release.set()
    assert threads and threads[0] is not threading.main_thread() and len(win.starts.record) == 1


def test_a_judge_that_fails_leaves_the_usual_start_and_says_so_once(qtbot, windows, model_path, tmp_path,
                                                                    monkeypatch):
    import qgn.bench.annotate

    def broken(*_args, **_kwargs):
        raise RuntimeError("the simulator broke")

    monkeypatch.setattr(qgn.bench.annotate, "judge_starts", broken)
    paths = striped_images(tmp_path / "scenes")
    win = windows(folder=tmp_path / "project")
    messages = []
    win.workspace.status.connect(lambda text, _ms: messages.append(text))
    start_annotating(qtbot, win, paths, model_path)
    for _ in range(2):
        corrected_to_truth(qtbot, win)
        with qtbot.waitSignal(win.starts.failed, timeout=WAIT_MS):
            assert win.projects.save()
            win.jobs.wait_idle()
        win.step_image(1)
        qtbot.waitUntil(lambda: win.current.annotation is not None, timeout=WAIT_MS)
        usual = win.carry.default_source(win.current)  # the inner default, or empty outside the model's domain
        if usual == "prediction" and win.starts.outside_domain(win.current):
            usual = "empty"
        assert win.current.annotation.origin == usual
    told = [m for m in messages if "could not be judged" in m]
    assert len(told) == 1 and "the simulator broke" in told[0] and "usual start" in told[0]


def test_once_judged_only_the_judge_says_what_new_images_start_from(qtbot, windows, model_path, tmp_path):
    """The head's refit and the carry's judgement still report their accuracy, but no longer claim a
    start for new images that the judge has not chosen (two messages contradicting each other)."""
    paths = striped_images(tmp_path / "scenes", 4)
    win = windows(folder=tmp_path / "project")
    messages = []
    start_annotating(qtbot, win, paths, model_path)
    for step in range(3):
        corrected_to_truth(qtbot, win)
        with qtbot.waitSignals([win.starts.judged, win.head.fitted], timeout=WAIT_MS):
            assert win.projects.save()
        if step == 0:
            win.workspace.status.connect(lambda text, _ms: messages.append(text))
        win.jobs.wait_idle()
        win.step_image(1)
        qtbot.waitUntil(lambda: win.current.annotation is not None, timeout=WAIT_MS)
    win.carry.judged.emit(win.carry._generation, ("judged before", (1.0, 0.0)))  # the carry's own message too
    qtbot.waitUntil(lambda: not win.head.fitting, timeout=WAIT_MS)
    claims = [m for m in messages if "new images" in m.lower()]
    chosen = {"empty": "an empty map", "prediction": "the prediction", "head": "the project head",
              "previous": "the image before's labels"}[win.starts.default_source(win.current)]
    assert claims and all(m.startswith("New images start from") and m.endswith("(simulated)") for m in claims), claims
    assert claims[-1].startswith(f"New images start from {chosen}: it took")  # what the next image gets
    assert any(m.startswith("Labels carried from the image before") for m in messages)


def test_closing_ends_a_judge_at_its_next_step(qtbot, windows, model_path, tmp_path, monkeypatch):
    """The judge only scores: a window that closes while one waits for a prediction to end (or is
    under way) does not first judge the whole image."""
    import qgn.bench.annotate

    calls = []
    monkeypatch.setattr(qgn.bench.annotate, "judge_starts", lambda *args, **kwargs: calls.append(args) or {})
    paths = striped_images(tmp_path / "scenes")
    win = windows(folder=tmp_path / "project")
    start_annotating(qtbot, win, paths, model_path)
    corrected_to_truth(qtbot, win)
    win.starts._worker_busy(True)  # as the inference worker says while it computes a prediction
    assert win.projects.save()
    qtbot.waitUntil(lambda: win.starts.runner.pending() == 1, timeout=WAIT_MS)  # the judge, waiting
    win.starts.shutdown()
    assert win.starts.runner.isFinished() and calls == []


def test_before_any_judgement_an_image_outside_the_models_domain_starts_empty(qtbot, windows, model_path, tmp_path):
    """Nothing judged yet: the usual start (the prediction), unless the domain check — whose warning
    the canvas shows — calls the image unlike the model's training images; then an empty map. A
    head the project preferred is not overruled (it learnt this project's images)."""
    from qgn.domain import DomainVerdict

    paths = striped_images(tmp_path / "scenes")
    win = windows(folder=tmp_path / "project")
    start_annotating(qtbot, win, paths, model_path)
    doc = win.current
    assert not win.starts.record
    win.head.verdicts[doc.path] = DomainVerdict(0.9)
    assert win.starts.default_source(doc) == "prediction"
    win.head.verdicts[doc.path] = DomainVerdict(3.0)
    assert win.starts.default_source(doc) == "empty"
    win.head.verdicts[doc.path] = None  # still being checked
    assert win.starts.default_source(doc) == "prediction"
    win.head.verdicts[doc.path] = DomainVerdict(3.0)
    inner = win.starts._inner_default
    win.starts._inner_default = lambda d: "head"
    assert win.starts.default_source(doc) == "head"
    win.starts._inner_default = inner
    win.starts.record = {"other": {"model": 1, "empty": 9}}  # judged: the record decides
    assert win.starts.default_source(doc) == "prediction"
