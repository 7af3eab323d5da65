"""What a killed ``qgn serve`` (kill -9: nothing of it runs after) leaves and what the next start
makes of it: the annotations Label Studio sent for fine-tuning are learnt from after the restart
(Label Studio sends each once), and the staging folder of a version being saved is cleaned up once
no process holds it - never one a live server holds, nor anything else in the folder."""
from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import pytest

from qgn.resources import bundled_model_path, samples_dir
from qgn.serve import fetch, inorder, request, webhooks
from qgn.serve import staging as staging_module
from qgn.serve.backend import QGNBackend

CONFIG = ('<View><Image name="image" value="$image"/><BrushLabels name="tag" toName="image">'
          '<Label value="road"/><Label value="Sky"/></BrushLabels></View>')


@pytest.fixture(autouse=True)
def webhooks_answer_their_result(monkeypatch):
    monkeypatch.setattr(inorder, "WAIT_S", 60.0)

def wait_until(condition, seconds: float = 120, step: float = 0.05) -> None:
    """Poll ``condition()`` until it holds or ``seconds`` pass (the caller asserts what it needs)."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(step)


def started(models):
    """A ``qgn serve`` backend fine-tuning into ``models`` (started anew: as after a kill)."""
    return QGNBackend(bundled_model_path("demo"), "cpu", samples_dir(), train_out=models, train_every=5,
                      finetune_iterations=2)


def killed(*backends):
    """What the system does to a killed server's locks (its process gone, they go with it)."""
    for backend in backends:
        for fd in backend.kept.locks:
            os.close(fd)
        backend.kept.locks.clear()


def annotated(task: int, scene: int, annotation: int, action="ANNOTATION_CREATED", port: int | None = None):
    """A webhook of one rectangle on scene ``scene``; with ``port``, its image is fetched from a
    Label Studio stand-in on that local port (``label_studio_up``) instead of the document root."""
    image = f"images/scene_0{scene}.png" if port is None else f"http://127.0.0.1:{port}/images/scene_0{scene}.png"
    region = {"from_name": "tag", "to_name": "image", "type": "rectanglelabels", "original_width": 384,
              "original_height": 256, "value": {"x": 0, "y": 0, "width": 10 * task, "height": 50,
                                                 "rectanglelabels": ["road"]}}
    return {"action": action, "project": {"id": 7, "label_config": CONFIG},
            "task": {"id": task, "data": {"image": image}},
            "annotation": {"id": annotation, "result": [region]}}


def kept(backend) -> dict:
    return {key: (image.copy(), label.copy(), annotation) for key, (image, label, annotation) in
            backend.corrections.items()}


def assert_same(found: dict, expected: dict) -> None:
    assert list(found) == list(expected)
    for key, (image, label, annotation) in expected.items():
        np.testing.assert_array_equal(found[key][0], image)
        np.testing.assert_array_equal(found[key][1], label)
        assert found[key][2] == annotation


def test_annotations_kept_for_fine_tuning_outlive_a_kill(tmp_path):
    """They lived in memory only: a restart before the next fine-tune lost every annotation
    received since the last one, which Label Studio never sends again."""
    models = tmp_path / "models"
    first = started(models)
    for hook in (annotated(1, 1, 9), annotated(2, 2, 10), annotated(1, 1, 11, "ANNOTATION_UPDATED")):
        assert first.webhook(hook)["status"] == "kept"
    before = kept(first)
    assert list(before) == [(7, 2), (7, 1)]

    killed(first)
    again = started(models)  # killed: nothing of the first ran after its last answer
    assert_same(kept(again), before)
    assert again.new_since_training == 2  # each task's latest annotation
    deleted = {"action": "ANNOTATIONS_DELETED", "project": {"id": 7}, "annotations": [{"id": 10}]}
    assert again.webhook(deleted)["forgotten"] == 1
    killed(again)
    restart = started(models)
    assert list(restart.corrections) == [(7, 1)]  # deleted in Label Studio: not learnt from after a restart
    killed(restart)

    assert again.webhook({"action": "START_TRAINING", "project": {"id": 7}})["status"] == "training"
    again.training.join(300)
    assert again.current.version == "qgn-demo-ls1", again.training_status
    killed(again)
    third = started(models)  # serves ls1, which learnt from the annotation kept: nothing new
    assert third.current.version == "qgn-demo-ls1" and list(third.corrections) == [(7, 1)]
    assert third.webhook({"action": "START_TRAINING", "project": {"id": 7}})["status"] == "up to date"
    assert third.webhook(annotated(3, 2, 12))["status"] == "kept" and third.new_since_training == 1


def test_a_kept_file_that_cannot_be_read_is_named_and_left(tmp_path):
    models = tmp_path / "models"
    first = started(models)
    assert first.webhook(annotated(1, 1, 9))["status"] == "kept"
    bad = first.kept.folder / "0123.npz"
    bad.write_bytes(b"not an npz")
    killed(first)
    again = started(models)
    assert list(again.corrections) == [(7, 1)] and bad.read_bytes() == b"not an npz"
    assert [str(bad) in note for note in again.resume_notes] == [True]


def aged(path, seconds=3600):
    past = time.time() - seconds
    os.utime(path, (past, past))
    return path


def test_a_killed_servers_staging_folder_is_removed_and_a_live_ones_kept(tmp_path):
    """A kill -9 while a version was being saved left ``.qgn-serve-XXXXXXXX`` (with a model's
    worth of staged weights) in train_out for good."""
    models = tmp_path / "models"
    killed, live, young, users = (models / name for name in (".qgn-serve-abcd_123", ".qgn-serve-live0000",
                                                              ".qgn-serve-young000", ".qgn-serve-notes"))
    for folder in (killed, live, young, users):
        folder.mkdir(parents=True)
    (killed / "demo-ls1.safetensors").write_bytes(b"staged")
    holder = subprocess.Popen([sys.executable, "-c", "import time; from qgn.serve.staging import holding\n"
                               f"with holding({str(live)!r}):\n print('held', flush=True); time.sleep(600)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        for folder in (killed, live, users):
            aged(folder)  # young stays just made: its server may not hold it yet
        backend = started(models)
        assert not killed.exists() and live.is_dir() and young.is_dir() and users.is_dir()
        assert [str(killed) in note for note in backend.resume_notes] == [True]
    finally:
        holder.kill()
        holder.wait()
    assert staging_module.remove_stale_staging(models) == [live]  # its server gone, it goes too


KILLED_WHILE_SAVING = """
import os, signal, sys
from pathlib import Path
from qgn.serve import backend as module
from qgn.train.finetune import save_new_model

served = module.QGNBackend(Path(sys.argv[1]), "cpu", train_out=Path(sys.argv[2]))
replace = os.replace
def replace_or_die(src, dst):
    if Path(dst) == Path(sys.argv[2]) / "demo-ls1.json":
        os.kill(os.getpid(), signal.SIGKILL)  # its weights linked into place, its JSON not yet moved
    return replace(src, dst)
os.replace = replace_or_die
extra = {"finetune": {"from": str(served.original.resolve())}}
served.save_version(lambda staged: save_new_model(served.current.model, staged, extra=extra))
"""


NO_LINKS = """
def no_links(src, dst):
    raise PermissionError(1, "Operation not permitted")  # FAT, some network shares: no hard links
os.link = no_links
"""


def test_a_version_killed_between_its_weights_and_its_json_is_finished(tmp_path):
    models = tmp_path / "models"
    run = subprocess.run([sys.executable, "-c", KILLED_WHILE_SAVING, str(bundled_model_path("demo")), str(models)],
                         capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == -9, run.stderr
    staging, = models.glob(".qgn-serve-*")
    assert (models / "demo-ls1.json").stat().st_size == 0  # the placeholder: that version could not be loaded
    aged(staging)
    again = started(models)
    assert not staging.exists() and again.current.version == "qgn-demo-ls1", again.resume_notes


def test_where_no_hard_links_a_version_killed_before_its_json_is_finished_not_deleted(tmp_path):
    """Without hard links (FAT, some network shares) the weights are renamed out of the staging
    folder, so the cleanup found no staged weights to finish and deleted the folder with the
    version's only JSON: its weights could never be loaded again."""
    script = KILLED_WHILE_SAVING.replace("replace = os.replace", NO_LINKS + "replace = os.replace")
    models = tmp_path / "models"
    run = subprocess.run([sys.executable, "-c", script, str(bundled_model_path("demo")), str(models)],
                         capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == -9, run.stderr
    staging, = models.glob(".qgn-serve-*")
    assert sorted(p.name for p in staging.iterdir()) == ["demo-ls1.json"]
    assert (models / "demo-ls1.json").stat().st_size == 0
    aged(staging)
    again = started(models)
    assert not staging.exists() and again.current.version == "qgn-demo-ls1", again.resume_notes


def test_a_staging_folder_with_a_versions_only_json_that_cannot_be_finished_is_left(tmp_path):
    models = tmp_path / "models"
    staging = models / ".qgn-serve-abcd1234"
    staging.mkdir(parents=True)
    (staging / "demo-ls1.json").write_text("{}")  # the weights renamed out, the placeholder gone (by hand)
    (models / "demo-ls1.safetensors").write_bytes(b"weights")
    aged(staging)
    assert staging_module.remove_stale_staging(models) == [] and (staging / "demo-ls1.json").read_text() == "{}"


def test_webhooks_still_waiting_to_be_read_outlive_a_kill(tmp_path):
    """A webhook is answered "accepted" when its work would outlast Label Studio's 1 s wait (it
    waits behind others): it lived in the queue in memory only, and a kill then lost it."""
    models = tmp_path / "models"
    first = started(models)
    first.webhooks.wait_s = 0.05
    stuck = threading.Event()
    first.keep_correction = lambda body, project, *stamp: stuck.wait(60)  # reading the first takes long
    deleted = {"action": "ANNOTATIONS_DELETED", "project": {"id": 7}, "annotations": [{"id": 10}]}
    hooks = [annotated(1, 1, 9), annotated(2, 2, 10), annotated(3, 1, 11, "ANNOTATION_UPDATED"), deleted]
    try:
        assert [first.webhook(hook)["status"] for hook in hooks] == ["accepted"] * 4
        killed(first)  # the system drops its locks
        again = started(models)  # none of the first's webhooks was read
        assert again.webhooks.settle(120)
        assert list(again.corrections) == [(7, 1), (7, 3)]  # read in the order they came: the deletion last
        assert again.corrections[(7, 3)][2] == 11
        assert not again.kept.pending()
        killed(again)
        assert list(started(models).corrections) == [(7, 1), (7, 3)]  # read once, kept since
    finally:
        stuck.set()


def test_an_image_a_killed_server_was_fetching_is_removed_at_the_next_start(tmp_path, monkeypatch):
    """kill -9 during a fetch left ``qgn-serve-XXXXXXXX/image.jpg`` (up to 256 MB) in the system's
    temporary folder; the next start removes it, not a fetch under way nor anyone else's file."""
    temp = tmp_path / "tmp"
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    left, young, other = temp / "qgn-serve-k1ll3d_x", temp / "qgn-serve-y0ung_xx", temp / "qgn-serve-body-notours"
    for folder in (left, young, other):
        folder.mkdir(parents=True)
    (left / "image.jpg").write_bytes(b"fetched")
    aged(left), aged(other)
    backend = QGNBackend(bundled_model_path("demo"), "cpu", samples_dir())
    assert not left.exists() and young.is_dir() and other.is_dir()
    assert [str(left) in note for note in backend.resume_notes] == [True]


def test_a_held_webhook_whose_image_cannot_be_fetched_yet_is_read_once_label_studio_connects(tmp_path,
                                                                                              monkeypatch):
    """An upload's image is fetched from Label Studio, whose address a server started without
    --label-studio-url learns at /setup: at the start the held webhook cannot be read yet."""
    models = tmp_path / "models"
    first = started(models)
    first.webhooks.wait_s = 0.05
    stuck = threading.Event()
    first.keep_correction = lambda body, project, *stamp: stuck.wait(60)
    try:
        assert first.webhook(annotated(1, 1, 9))["status"] == "accepted"
        killed(first)
        unreachable = label_studio_unknown(monkeypatch)
        again = started(models)
        assert again.webhooks.settle(120) and not again.corrections and len(again.unread) == 1
        unreachable[0] = False
        again.setup({"hostname": "http://label-studio.example:8080"})
        assert again.webhooks.settle(120) and list(again.corrections) == [(7, 1)]
        assert not again.unread and not list((models / "kept-annotations" / "pending").rglob("*.json"))
    finally:
        stuck.set()


def test_an_annotation_after_a_deleted_one_counts_as_new_after_a_restart(tmp_path):
    """Its order number was one past the newest kept, i.e. the deleted one's, which the last
    fine-tune had learnt from: after a restart it counted as learnt too, and START_TRAINING answered
    "up to date" without ever learning from it."""
    models = tmp_path / "models"
    first = started(models)
    for hook in (annotated(1, 1, 9), annotated(2, 2, 10)):
        assert first.webhook(hook)["status"] == "kept"
    assert first.webhook({"action": "START_TRAINING", "project": {"id": 7}})["status"] == "training"
    first.training.join(300)
    assert first.current.version == "qgn-demo-ls1", first.training_status
    deleted = {"action": "ANNOTATIONS_DELETED", "project": {"id": 7}, "annotations": [{"id": 10}]}
    assert first.webhook(deleted)["forgotten"] == 1
    assert first.webhook(annotated(3, 2, 11))["status"] == "kept"
    killed(first)
    again = started(models)
    assert list(again.corrections) == [(7, 1), (7, 3)] and again.new_since_training == 1
    assert again.webhook({"action": "START_TRAINING", "project": {"id": 7}})["status"] == "training"
    again.training.join(300)


def test_an_annotation_kept_while_a_fine_tune_starts_is_learnt_or_counts_as_new_after_a_restart(tmp_path):
    """Its order number was taken, its file written, and only then was it put among the kept ones:
    a fine-tune starting in between took that number as learnt without learning from it, and after
    a restart START_TRAINING answered "up to date" for good."""
    models = tmp_path / "models"
    first = started(models)
    assert first.webhook(annotated(1, 1, 9))["status"] == "kept"
    saving, go, learnt = threading.Event(), threading.Event(), []
    real_save, real_train = first.kept.save, first._train

    def slow_save(key, *args):
        if key == (7, 2):
            saving.set()
            go.wait(60)  # compressing a big image to disk
        return real_save(key, *args)

    def train(pairs, served):
        learnt.extend(annotation for *_, annotation in pairs)
        return real_train(pairs, served)

    first.kept.save, first._train = slow_save, train
    answers = []
    hook = threading.Thread(target=lambda: answers.append(first.webhook(annotated(2, 2, 10))))
    hook.start()
    try:
        assert saving.wait(60)
        with first.state_lock:
            assert first.request_training()["status"] == "training"
        first.training.join(300)
        assert first.current.version == "qgn-demo-ls1", first.training_status
    finally:
        go.set()
        hook.join(60)
    assert answers[0]["status"] == "kept"
    killed(first)
    again = started(models)  # killed / restarted before the next fine-tune
    assert list(again.corrections) == [(7, 1), (7, 2)]
    not_learnt = {9, 10} - set(learnt)
    assert again.new_since_training == len(not_learnt)
    expected = "training" if not_learnt else "up to date"
    assert again.webhook({"action": "START_TRAINING", "project": {"id": 7}})["status"] == expected
    if again.training is not None:
        again.training.join(300)


def test_a_truncated_kept_file_is_named_and_left_and_the_server_starts(tmp_path):
    """A half-copied kept file (a sync tool, a full disk elsewhere, bit rot) raised BadZipFile out of
    the start: qgn serve did not start at all until the file was found and removed by hand."""
    models = tmp_path / "models"
    first = started(models)
    for hook in (annotated(1, 1, 9), annotated(2, 2, 10)):
        assert first.webhook(hook)["status"] == "kept"
    from qgn.serve.kept import file_name

    torn = first.kept.folder / file_name((7, 1))
    data = torn.read_bytes()
    torn.write_bytes(data[: len(data) // 2])
    killed(first)
    again = started(models)
    assert list(again.corrections) == [(7, 2)] and torn.read_bytes() == data[: len(data) // 2]
    assert [str(torn) in note for note in again.resume_notes] == [True]


def test_a_second_server_fine_tuning_into_the_same_folder_is_refused(tmp_path):
    """Kept annotations are filed by (project, task) alone and numbered by one server: a second
    server into the same --train-out (another Label Studio, a second backend) replaced the first's
    annotation of its task 1 with its own, which the first then learnt from after a restart."""
    from qgn.serve.kept import TrainOutInUse

    models = tmp_path / "models"
    first = started(models)
    assert first.webhook(annotated(1, 1, 9))["status"] == "kept"
    with pytest.raises(TrainOutInUse, match="another --train-out"):
        started(models)
    other = started(tmp_path / "other")  # another folder: no clash
    assert other.webhook(annotated(1, 2, 500))["status"] == "kept"
    killed(first)
    again = started(models)
    assert [annotation for *_, annotation in again.corrections.values()] == [9]


def held_then_killed(models, hook) -> None:
    """``hook`` answered "accepted" and held by a server killed before reading it."""
    first = started(models)
    first.webhooks.wait_s = 0.05
    first.keep_correction = lambda body, project, *stamp: threading.Event().wait()  # nothing of it runs after
    assert first.webhook(hook)["status"] == "accepted"
    killed(first)


def test_an_annotation_deleted_while_its_webhook_waits_for_label_studio_is_not_learnt(tmp_path, monkeypatch):
    """A held webhook whose image needed Label Studio waited for /setup; a deletion meanwhile found
    nothing kept to forget, and at /setup the deleted annotation was read and learnt from."""
    models = tmp_path / "models"
    held_then_killed(models, annotated(1, 1, 9))
    unreachable = label_studio_unknown(monkeypatch)
    again = started(models)
    assert again.webhooks.settle(120) and len(again.unread) == 1
    other = {"action": "ANNOTATIONS_DELETED", "project": {"id": 8}, "annotations": [{"id": 9}]}
    assert again.webhook(other)["forgotten"] == 0 and len(again.unread) == 1  # another project's annotation 9
    deleted = {"action": "ANNOTATIONS_DELETED", "project": {"id": 7}, "annotations": [{"id": 9}]}
    assert again.webhook(deleted)["forgotten"] == 1
    unreachable[0] = False
    again.setup({"hostname": "http://label-studio.example:8080"})
    assert again.webhooks.settle(120) and not again.corrections
    assert not list((models / "kept-annotations" / "pending").rglob("*.json"))
    killed(again)
    assert not started(models).corrections


def test_a_held_webhook_that_can_never_be_read_is_set_aside_once(tmp_path, capsys):
    """A held webhook whose image is gone was kept in pending/ and read again, and failed again, at
    every start for good; one that fails for any reason but a missing Label Studio URL is now
    moved into kept-annotations/failed/ (nothing deleted) and named once."""
    models = tmp_path / "models"
    bad = annotated(1, 1, 9)
    bad["task"]["data"]["image"] = "images/no_such_scene.png"
    held_then_killed(models, bad)
    capsys.readouterr()
    again = started(models)
    assert again.webhooks.settle(120) and not again.unread and not again.corrections
    assert not list((models / "kept-annotations" / "pending").rglob("*.json"))
    aside, = (models / "kept-annotations" / "failed").glob("*.json")
    assert json.loads(aside.read_text())["task"]["data"]["image"] == "images/no_such_scene.png"
    err = capsys.readouterr().err
    assert err.count("no_such_scene") == 1 and str(aside) in err
    killed(again)
    third = started(models)
    assert third.webhooks.settle(120) and not third.unread and aside.is_file()
    assert "no_such_scene" not in capsys.readouterr().err


def test_where_there_are_no_folder_locks_no_webhook_is_held_to_pile_up(tmp_path, monkeypatch, capsys):
    """Where lock_folder cannot lock (Windows) no start may read another server's held webhooks, so
    each run's pending folder and bodies stayed for good, one more folder per start."""
    import qgn.fileio

    monkeypatch.setattr(qgn.fileio, "lock_folder", lambda folder, wait=True: None)
    monkeypatch.setattr(qgn.fileio, "folder_locks_work", lambda: False)
    models = tmp_path / "models"
    for start in range(2):
        server = started(models)
        server.webhooks.wait_s = 0.05
        stuck = threading.Event()
        server.keep_correction = lambda body, project, *stamp: stuck.wait(60)
        assert server.webhook(annotated(1, 1, 9))["status"] == "accepted"
        assert server.webhook(annotated(2, 1, 10))["status"] == "accepted"
        server.stop(0.1)  # a normal stop: the webhooks still waiting are not read
        stuck.set()
    kept = models / "kept-annotations"
    assert not list(kept.rglob("*.json")) and not list(kept.glob("pending/*")) and not list(kept.glob(".pending-*"))
    assert capsys.readouterr().err.count("no folder locks here") == 2  # once a server


def label_studio_unknown(monkeypatch) -> list:
    """Keeping an annotation fails with NoLabelStudio (its image needs Label Studio's URL, which
    /setup gives) while the returned flag's [0] is True; set it False to let keeping through."""
    keep, unreachable = QGNBackend.keep_correction, [True]

    def fetch_after_setup(backend, body, project, *stamp):
        if unreachable[0]:
            raise request.NoLabelStudio("no Label Studio URL is known", 422)
        return keep(backend, body, project, *stamp)

    monkeypatch.setattr(QGNBackend, "keep_correction", fetch_after_setup)
    return unreachable


def free_port() -> int:
    """A loopback port nothing listens on (a connection to it is refused)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def label_studio_up(port: int):
    """A stand-in for Label Studio's file server on ``port`` (loopback): the bundled samples."""
    import functools
    import http.server

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(samples_dir()))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def test_a_held_webhook_whose_label_studio_is_down_is_read_again_not_set_aside(tmp_path, capsys, monkeypatch):
    """A held webhook whose image could not be fetched because Label Studio was down (a refused
    connection) was moved into kept-annotations/failed/ and never learnt from unless a person moved
    it back: such a passing failure now leaves it in pending/, read again after a back-off (and at
    the next start), and learnt once Label Studio answers."""
    monkeypatch.setattr(webhooks, "HELD_RETRY_S", (0.2,))
    port = free_port()
    hook = annotated(1, 1, 9, port=port)
    models = tmp_path / "models"
    held_then_killed(models, hook)
    capsys.readouterr()
    again = started(models)
    assert again.webhooks.settle(120) and not again.corrections
    assert not (models / "kept-annotations" / "failed").exists()
    assert len(list((models / "kept-annotations" / "pending").rglob("*.json"))) == 1
    err = capsys.readouterr().err
    assert "tried again" in err and "next start" in err
    with label_studio_up(port):
        wait_until(lambda: again.corrections)
        assert again.webhooks.settle(120) and list(again.corrections) == [(7, 1)]
    assert not list((models / "kept-annotations" / "pending").rglob("*.json"))
    again.stop()
    killed(again)
    assert list(started(models).corrections) == [(7, 1)]  # kept on disk too


def test_a_held_webhook_label_studio_refuses_for_good_is_set_aside_and_says_how_to_read_it_again(tmp_path,
                                                                                                 capsys):
    """A 404 will not change: the held webhook goes to kept-annotations/failed/ at once, and the log
    says where it lies and how to have it read again."""
    port = free_port()
    hook = annotated(1, 1, 9)
    hook["task"]["data"]["image"] = f"http://127.0.0.1:{port}/images/no_such_scene.png"
    models = tmp_path / "models"
    held_then_killed(models, hook)
    capsys.readouterr()
    with label_studio_up(port):
        again = started(models)
        assert again.webhooks.settle(120) and not again.corrections and not again.unread
    aside, = (models / "kept-annotations" / "failed").glob("*.json")
    err = capsys.readouterr().err
    back = models / "kept-annotations" / "pending"
    assert "404" in err and f"{aside} (move it into a new folder in {back}/ and restart qgn serve" in err


def test_a_webhook_that_comes_while_label_studio_is_down_is_read_again_once_it_is_up(tmp_path, monkeypatch):
    """An annotation webhook whose image could not be fetched (Label Studio down) was answered with
    the error and its held body removed: Label Studio sends it once, so it was never learnt from. It
    now stays held and is read again after a back-off."""
    monkeypatch.setattr(webhooks, "HELD_RETRY_S", (0.2,))
    port = free_port()
    hook = annotated(1, 1, 9, port=port)
    models = tmp_path / "models"
    server = started(models)
    with pytest.raises(request.RequestError, match="Connection refused"):
        server.webhook(hook)
    assert not server.corrections
    with label_studio_up(port):
        wait_until(lambda: server.corrections)
        assert server.webhooks.settle(120) and list(server.corrections) == [(7, 1)]
    assert not list((models / "kept-annotations" / "pending").rglob("*.json"))
    server.stop()


@contextlib.contextmanager
def label_studio_overloaded_once(port: int):
    """``label_studio_up`` whose first GET is answered 503 (overloaded): a passing failure."""
    import functools
    import http.server

    count = [0]

    class FirstBusy(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            count[0] += 1
            if count[0] == 1:
                self.send_error(503, "overloaded")
                return
            super().do_GET()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(FirstBusy, directory=str(samples_dir())))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def fetched_from(port: int, task: int, annotation: int, width: int) -> dict:
    """An ANNOTATION_UPDATED of task ``task`` whose image is fetched from ``port``, a box ``width`` % wide."""
    hook = annotated(task, 1, annotation, "ANNOTATION_UPDATED", port=port)
    hook["annotation"]["result"][0]["value"]["width"] = width
    return hook


def test_an_older_webhook_read_again_after_a_passing_failure_does_not_replace_a_newer_one(tmp_path, monkeypatch):
    """An annotator's first version met a 503 and waited to be read again; the fix seconds later was
    kept; then the first was read again and replaced the fix, in memory and on disk, for good."""
    monkeypatch.setattr(webhooks, "HELD_RETRY_S", (0.3,))
    port = free_port()
    models = tmp_path / "models"
    server = started(models)
    with label_studio_overloaded_once(port):
        with pytest.raises(request.RequestError, match="503"):
            server.webhook(fetched_from(port, 1, 9, 10))  # the first version
        assert server.webhook(fetched_from(port, 1, 9, 80))["status"] == "kept"  # the fix
        newer = server.corrections[(7, 1)][1].copy()
        wait_until(lambda: not list((models / "kept-annotations" / "pending").rglob("*.json")))
        time.sleep(0.6)  # past the first version's back-off, had it been kept waiting
        assert server.webhooks.settle(120)
    np.testing.assert_array_equal(server.corrections[(7, 1)][1], newer)
    server.stop()
    killed(server)
    np.testing.assert_array_equal(started(models).corrections[(7, 1)][1], newer)


def test_an_older_webhook_read_at_a_start_does_not_replace_the_newer_one_kept(tmp_path):
    """A held webhook read at a start (a dead server's, or one moved back from failed/) replaced the
    annotation kept for its task whatever their ages: each kept one now carries its webhook's
    arrival, and an older webhook of the same task is left unlearnt."""
    models = tmp_path / "models"
    server = started(models)
    older = time.time_ns() - 10**9
    fix = annotated(1, 1, 9, "ANNOTATION_UPDATED")
    fix["annotation"]["result"][0]["value"]["width"] = 80
    assert server.webhook(fix)["status"] == "kept"
    newer = server.corrections[(7, 1)][1].copy()
    server.stop()
    killed(server)
    stale = annotated(1, 1, 9, "ANNOTATION_UPDATED")  # the same task's earlier version: a box 10 % wide
    dead = models / "kept-annotations" / "pending" / "dead"
    dead.mkdir(parents=True)
    (dead / f"{older:020d}-moved-back.json").write_text(json.dumps(stale))
    again = started(models)
    assert again.webhooks.settle(120)
    np.testing.assert_array_equal(again.corrections[(7, 1)][1], newer)
    assert not list((models / "kept-annotations" / "pending").rglob("*.json"))


def test_a_webhook_label_studio_stays_down_for_is_retried_for_a_bounded_time_and_said_now_and_then(
        tmp_path, capsys, monkeypatch):
    """Retries after a passing failure went on for ever, a log line and a thread each: they now go on
    for ``HELD_RETRY_FOR_S`` at most (the webhook then set aside in failed/ with its reason beside
    it), and the log says the first failure and every ``HELD_RETRY_LOG_EVERY``-th after."""
    monkeypatch.setattr(webhooks, "HELD_RETRY_S", (0.01,))
    tries = []
    download = QGNBackend.download

    def counted(*args):
        tries.append(1)
        return download(*args)

    monkeypatch.setattr(QGNBackend, "download", staticmethod(counted))
    port = free_port()
    hook = annotated(1, 1, 9, port=port)
    models = tmp_path / "models"
    server = started(models)
    with pytest.raises(request.RequestError, match="Connection refused"):
        server.webhook(hook)
    wait_until(lambda: len(tries) >= 35, step=0.01)
    said = capsys.readouterr().err.count("cannot be read now")
    assert len(tries) >= 35 and 1 <= said <= 2 + len(tries) // webhooks.HELD_RETRY_LOG_EVERY
    monkeypatch.setattr(webhooks, "HELD_RETRY_FOR_S", 0.0)  # its time is up
    wait_until(lambda: (models / "kept-annotations" / "failed").is_dir(), step=0.01)
    assert server.webhooks.settle(120)
    aside, = (models / "kept-annotations" / "failed").glob("*.json")
    assert "Connection refused" in aside.with_suffix(".txt").read_text()
    assert not server.unread and not server.retries and not list((models / "kept-annotations" / "pending").rglob("*.json"))
    server.stop()


def test_an_image_host_that_does_not_resolve_is_a_failure_that_does_not_pass(tmp_path, monkeypatch):
    """A name that does not resolve (a typo in the image's URL) was retried for good as if the host
    were down: it is now set aside at once, as a 404 is; a certificate that does not verify too."""
    import socket
    import ssl
    import urllib.error

    resolve = socket.getaddrinfo

    def no_such_host(host, *args, **kwargs):
        if host == "label-studio.invalid":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return resolve(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    hook = annotated(1, 1, 9)
    hook["task"]["data"]["image"] = "http://label-studio.invalid/images/scene_01.png"
    models = tmp_path / "models"
    held_then_killed(models, hook)
    again = started(models)
    assert again.webhooks.settle(120) and not again.unread and not again.corrections
    assert len(list((models / "kept-annotations" / "failed").glob("*.json"))) == 1
    assert not fetch.passing(urllib.error.URLError(ssl.SSLCertVerificationError(1, "self-signed")))
    assert fetch.passing(urllib.error.URLError(socket.gaierror(socket.EAI_AGAIN, "Temporary failure")))
    assert fetch.passing(urllib.error.URLError(ConnectionRefusedError(111, "Connection refused")))


def test_a_live_webhook_is_not_dropped_when_the_queue_is_full(tmp_path, monkeypatch):
    """A webhook that found ``inorder.LIMIT`` others waiting (retries among them) was answered 503 and
    its held body removed: Label Studio sends it once, so it was lost. It now stays held and is
    read once the ones before it are."""
    monkeypatch.setattr(inorder, "LIMIT", 1)
    models = tmp_path / "models"
    server = started(models)
    server.webhooks.wait_s = 0.05
    stuck, keep = threading.Event(), server.keep_correction
    server.keep_correction = lambda body, project, *stamp: stuck.wait(60) and keep(body, project, *stamp)
    try:
        answers = [server.webhook(annotated(task, 1, 10 + task))["status"] for task in (1, 2, 3)]
    finally:
        stuck.set()
    assert answers == ["accepted"] * 3
    wait_until(lambda: len(server.corrections) >= 3)
    assert server.webhooks.settle(120) and sorted(server.corrections) == [(7, 1), (7, 2), (7, 3)]
    assert not list((models / "kept-annotations" / "pending").rglob("*.json"))
    server.stop()


def full_disk_for_kept_files(backend) -> dict:
    """``backend``'s kept annotation files cannot be written (a full disk) while ``["on"]``."""
    import errno

    save, full = backend.kept.save, {"on": True}

    def kept_save(*args, **kwargs):
        if full["on"]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(backend.kept.folder / "7-1.npz"))
        return save(*args, **kwargs)

    backend.kept.save = kept_save
    return full


def test_an_annotation_whose_kept_file_a_full_disk_refused_outlives_a_restart(tmp_path, capsys):
    """The kept file cannot be written (a full disk): the annotation is learnt from, but its
    webhook's held body - on disk already - was released all the same, so a restart lost it. It
    now stays held and the next start reads it (and keeps its file); a deletion still drops it."""
    models = tmp_path / "models"
    first = started(models)
    full_disk_for_kept_files(first)
    assert first.webhook(annotated(1, 1, 9))["status"] == "kept"
    said = capsys.readouterr().err
    assert "stays held" in said and "No space left on device (free some disk space)" in said, said
    killed(first)
    again = started(models)
    assert again.webhooks.settle(120)
    assert list(again.corrections) == [(7, 1)] and again.corrections[(7, 1)][2] == 9
    assert not again.kept.pending()  # read, and its file kept this time: not held any more
    killed(again)
    assert list(started(models).corrections) == [(7, 1)]

    other = tmp_path / "other"
    first = started(other)
    full_disk_for_kept_files(first)
    assert first.webhook(annotated(1, 1, 9))["status"] == "kept"
    deleted = {"action": "ANNOTATIONS_DELETED", "project": {"id": 7}, "annotations": [{"id": 9}]}
    assert first.webhook(deleted)["forgotten"] == 1
    killed(first)
    again = started(other)
    assert again.webhooks.settle(120)
    assert not again.corrections  # deleted in Label Studio: its held webhook went with it


def test_a_server_on_a_file_system_without_locks_fine_tunes_there_and_says_so(tmp_path, monkeypatch, capsys):
    """On a file system without locks (NFSv3 without its lock manager: flock fails with ENOLCK) a
    --train-out was refused with a false "another qgn serve is fine-tuning into ..." (lock_folder's None
    for "no locks" read as "held"), and a version's staging folder (``holding``) failed with a bare
    "[Errno 37] No locks available". Now the server goes on there, as a project's writes and an export
    do, and says once at its start what is not kept apart; webhooks are kept in memory only (said once)."""
    from file_systems import no_locks_under

    from qgn.serve.staging import holding

    no_locks_under(monkeypatch, tmp_path)
    models = tmp_path / "models"
    first = started(models)
    said = [note for note in first.resume_notes if "gives no locks" in note]
    assert len(said) == 1 and "--train-out" in said[0] and str(models) in said[0] and "No locks available" in said[0]
    assert "another qgn serve" not in " ".join(first.resume_notes)
    assert first.webhook(annotated(1, 1, 9))["status"] == "kept"
    assert first.webhook(annotated(2, 2, 10))["status"] == "kept"
    err = capsys.readouterr().err
    assert err.count("kept in memory only") == 1 and "Errno" not in err, err
    staging = models / ".qgn-serve-abcdefgh"
    staging.mkdir()
    with holding(staging):
        (staging / "x").write_bytes(b"staged")
    assert (staging / "x").read_bytes() == b"staged"


def test_a_kept_folder_that_became_a_link_loop_is_a_failed_write_said_in_the_log(tmp_path, capsys):
    """kept-annotations/ replaced by a loop of symbolic links: ``make_folder`` raised LinkLoopError, a
    ValueError alone, which ``keep_on_disk`` (a failed write: an OSError) let through - out of the
    webhook, and out of the training loop after a fine-tune (``mark_trained``). It is an OSError
    (as the FileExistsError it raised before): said in the log, the annotation learnt from."""
    import shutil

    from qgn.fileio import LinkLoopError, make_folder

    models = tmp_path / "models"
    backend = started(models)
    folder = backend.kept.folder
    if folder.exists():
        shutil.rmtree(folder)
    os.symlink(folder.name + ".b", folder)
    os.symlink(folder.name, folder.with_name(folder.name + ".b"))
    with pytest.raises(OSError) as raised:
        make_folder(folder)
    assert isinstance(raised.value, LinkLoopError) and isinstance(raised.value, ValueError)
    assert backend.webhook(annotated(1, 1, 9))["status"] == "kept"
    assert list(backend.corrections) == [(7, 1)]
    assert backend.keep_on_disk(lambda: backend.kept.mark_trained("v1.safetensors", 1)) is False
    err = capsys.readouterr().err
    assert "loop" in err and "stays held" in err and "free disk space" not in err, err
    killed(backend)


@pytest.mark.parametrize("code, hint", [(errno.EACCES, "check its owner and permissions"),
                                        (errno.EROFS, "the disk is read-only")])
def test_a_kept_file_refused_for_permission_or_a_read_only_disk_is_said_in_words(tmp_path, capsys, code, hint):
    """A kept annotation's file refused for a permission or a read-only disk: the log said Python's
    "[Errno 13] Permission denied: '…'"; now the file, the reason and what to do (``os_error_text``)."""
    backend = started(tmp_path / "models")
    target = str(backend.kept.folder / "7-1.npz")

    def refused(*args, **kwargs):
        raise OSError(code, os.strerror(code), target)

    backend.kept.save = refused
    assert backend.webhook(annotated(1, 1, 9))["status"] == "kept"
    err = capsys.readouterr().err
    line = next(line for line in err.splitlines() if "stays held" in line)
    assert f"{target}: {os.strerror(code)} (" in line and hint in line, line
    assert "[Errno" not in line and "free" not in line, line
    killed(backend)
