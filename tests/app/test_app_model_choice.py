"""A model the user opens is remembered — for the next start (settings) and in the open project
(project.json) — only once it has loaded: one that fails is recorded nowhere, and the banner says
which model stays in use."""
from __future__ import annotations

from qgn.project import Project
from studio_steps import WAIT_MS

SAMPLE_COUNT = 1


def broken_model(model_path, folder):
    """A copy of the model at ``model_path`` whose weights are cut in half (its JSON is intact)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "broken.safetensors"
    weights = model_path.read_bytes()
    out.write_bytes(weights[: len(weights) // 2])
    out.with_suffix(".json").write_bytes(model_path.with_suffix(".json").read_bytes())
    return out


def good_copy(model_path, folder):
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "other.safetensors"
    out.write_bytes(model_path.read_bytes())
    out.with_suffix(".json").write_bytes(model_path.with_suffix(".json").read_bytes())
    return out


def test_a_model_that_fails_is_not_remembered_for_the_next_start(qtbot, windows, samples, model_path, tmp_path):
    broken, other = broken_model(model_path, tmp_path / "models"), good_copy(model_path, tmp_path / "models")
    win = windows()
    win.start([str(samples[0])], str(model_path))
    qtbot.waitUntil(lambda: win.model_info is not None, timeout=WAIT_MS)
    with qtbot.waitSignal(win.worker.model_loaded, timeout=WAIT_MS):
        win.load_model(other)
    assert win.settings.value("model/path") == str(other)
    with qtbot.waitSignal(win.worker.model_failed, timeout=WAIT_MS):
        win.load_model(broken)
    assert win.settings.value("model/path") == str(other)  # the last model that loaded
    win.close()

    again = windows()
    again.start([str(samples[0])], None)  # the app without --model: the remembered model
    qtbot.waitUntil(lambda: again.model_info is not None, timeout=WAIT_MS)
    assert again.model_info.path == other.resolve() and "model" not in again.canvas.banner.messages


def test_a_model_that_fails_is_not_recorded_in_the_project(qtbot, windows, samples, model_path, tmp_path):
    from qgn.data.synthetic import SYNTHETIC_CLASSES

    broken, other = broken_model(model_path, tmp_path / "models"), good_copy(model_path, tmp_path / "models")
    root = tmp_path / "project"
    Project.create(root, samples, SYNTHETIC_CLASSES, str(model_path))
    win = windows(folder=root)
    win.start([str(root)], str(model_path))
    qtbot.waitUntil(lambda: win.projects.project is not None and win.model_info is not None, timeout=WAIT_MS)
    with qtbot.waitSignal(win.worker.model_failed, timeout=WAIT_MS):
        win.load_model(broken)
    win.jobs.wait_idle()
    assert Project.open(root).model == str(model_path)  # reopening it loads a model that works
    with qtbot.waitSignal(win.worker.model_loaded, timeout=WAIT_MS):
        win.load_model(other)
    win.jobs.wait_idle()
    assert Project.open(root).model == str(other)  # a model that loaded is the project's


def test_a_model_that_fails_says_which_model_stays_in_use(qtbot, windows, samples, model_path, tmp_path):
    """Opening a broken model while one works: the red banner named only the failure, so it read as
    if the app had no model left (predictions went on with the old one)."""
    broken = broken_model(model_path, tmp_path / "models")
    win = windows()
    win.start([str(samples[0])], str(model_path))
    qtbot.waitUntil(lambda: win.model_info is not None, timeout=WAIT_MS)
    with qtbot.waitSignal(win.worker.model_failed, timeout=WAIT_MS):
        win.load_model(broken)
    text, kind = win.canvas.banner.messages["model"]
    assert kind == "error" and f"{win.model_info.name} on {win.model_info.device} stays in use" in text
    assert win.model_info.path == model_path.resolve()


def test_a_first_model_that_fails_while_the_next_one_loads_is_told(qtbot, windows, samples, model_path, tmp_path):
    """The first model failed to load, and the one chosen next had already loaded on the worker
    when the window heard of the failure: a model in use but none shown yet, whose name and device
    the message read (an AttributeError in the window's slot)."""
    import time

    broken, other = broken_model(model_path, tmp_path / "models"), good_copy(model_path, tmp_path / "models")
    win = windows()
    win.start([str(samples[0])], str(broken))
    win.load_model(other)  # chosen before the window heard of the failure
    deadline = time.monotonic() + WAIT_MS / 1000
    while not win.worker.has_model and time.monotonic() < deadline:  # the window's events wait meanwhile
        time.sleep(0.01)
    assert win.worker.has_model and win.model_info is None
    qtbot.waitUntil(lambda: win.model_info is not None, timeout=WAIT_MS)  # the failure, then the load
    assert win.model_info.path == other.resolve()
    assert win.device_label.text().startswith(win.model_info.name)
