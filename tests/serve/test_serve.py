"""`qgn serve` without Label Studio (#23): the protocol's answers, the project's own names, the
score, 4xx with reasons for bad requests, /health while a slow image predicts, and fine-tuning from
webhooks into a new model version that never replaces the original."""
from __future__ import annotations

import re

import json
import os
import shutil
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest

from qgn.data.imageio import read_rgb
from qgn.formats.labelstudio import decode_ls_rle, encode_ls_rle, label_config
from qgn.infer import predict
from qgn.resources import bundled_model_path, samples_dir
from qgn.serve import inorder
from qgn.serve.backend import QGNBackend
from qgn.serve.server import make_server

CONFIG = ('<View><Image name="photo" value="$img"/><BrushLabels name="paint" toName="photo">'
          '<Label value="Sky"/><Label value="road"/><Label value="grass"/><Label value="building"/>'
          '<Label value="tree"/><Label value="pole"/><Label value="sign"/><Label value="fence"/></BrushLabels></View>')


@pytest.fixture(autouse=True)
def webhooks_answer_their_result(monkeypatch):
    """A webhook here is read well within Label Studio's 1 s on an idle machine; on a loaded one its
    answer must still be its result, not "accepted" (qgn.serve.inorder)."""
    monkeypatch.setattr(inorder, "WAIT_S", 60.0)


@pytest.fixture
def server(tmp_path):
    backend = QGNBackend(bundled_model_path("demo"), "cpu", samples_dir(), train_out=tmp_path / "models",
                         train_every=2, finetune_iterations=2)
    httpd = make_server(backend, "127.0.0.1", 0, quiet=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", backend
    httpd.shutdown()
    httpd.server_close()


def call(url, path, body=None, raw=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url + path, data, {"Content-Type": "application/json"},
                                     method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def task(name, id=1):
    return {"id": id, "data": {"img": f"/data/local-files/?d=images/{name}"}}


def test_predict_speaks_the_projects_names_and_equals_qgn_predict(server):
    url, backend = server
    assert call(url, "/health") == (200, {"status": "UP", "model_class": "QGN", "model_version": "qgn-demo",
                                          "training": "idle"})
    assert call(url, "/setup", {"project": "3.1700000000", "schema": CONFIG, "hostname": "http://localhost:8080",
                                "access_token": "t"}) == (200, {"model_version": "qgn-demo"})
    status, answer = call(url, "/predict", {"tasks": [task("scene_01.png", 4), task("scene_02.png", 5)],
                                            "label_config": CONFIG, "project": "3.1700000000"})
    assert status == 200 and len(answer["results"]) == 2
    classes = backend.current.model.config.classes
    for name, result in zip(["scene_01.png", "scene_02.png"], answer["results"]):
        expected = predict(backend.current.model, read_rgb(samples_dir() / "images" / name)).label()
        got = np.full(expected.shape, -1)
        for region in result["result"]:
            assert (region["from_name"], region["to_name"], region["type"]) == ("paint", "photo", "brushlabels")
            mask = decode_ls_rle(region["value"]["rle"]).reshape(*expected.shape, 4)[:, :, 3] > 0
            (label,) = region["value"]["brushlabels"]
            got[mask] = {"Sky": classes.names.index("sky")}.get(label, classes.names.index(label) if label in
                                                                   classes.names else -2)
        np.testing.assert_array_equal(got, expected)
        assert 0 < result["score"] <= 1 and result["model_version"] == "qgn-demo"


def test_a_bad_task_in_a_batch_keeps_its_place_and_the_others_results(server):
    """Label Studio takes a batch's results by position and drops them all when their count is
    not the tasks' count (unless it is one): a failed task holds its place with an error that Label
    Studio logs and skips (ml/models.py: an entry without 'result' is skipped)."""
    url, _ = server
    tasks = [task("scene_01.png", 1), task("missing.png", 2), task("scene_02.png", 3)]
    status, answer = call(url, "/predict", {"tasks": tasks, "label_config": CONFIG})
    assert status == 200 and len(answer["results"]) == 3
    good, bad, other = answer["results"]
    assert good["result"] and other["result"] and "result" not in bad
    assert "task 2" in bad["error"] and "missing.png" in bad["error"]
    assert answer["errors"] == [bad["error"]]
    alone = [call(url, "/predict", {"tasks": [t], "label_config": CONFIG}) for t in (tasks[0], tasks[2])]
    assert [a["results"][0]["result"] for _, a in alone] == [good["result"], other["result"]]


def test_bad_requests_get_a_4xx_with_a_reason(server):
    url, _ = server
    cases = [
        ("/predict", None, b"{not json", 400, "not JSON"),
        ("/predict", [1], None, 400, "must be a JSON object"),
        ("/predict", {"tasks": []}, None, 400, "non-empty list"),
        ("/predict", {"tasks": [task("scene_01.png")], "label_config": "<View><Image name='i' value='$img'/>"
                      "<PolygonLabels name='p' toName='i'><Label value='road'/></PolygonLabels></View>"}, None, 400,
         "no <BrushLabels>"),
        ("/predict", {"tasks": [task("scene_01.png")], "label_config": CONFIG.replace("$img", "img")}, None, 400,
         'value="$key"'),
        ("/predict", {"tasks": [task("../../etc/passwd")], "label_config": CONFIG}, None, 403, "outside the document root"),
        ("/predict", {"tasks": [task("missing.png")], "label_config": CONFIG}, None, 404, "not a file"),
        ("/predict", {"tasks": [{"id": 1, "data": {"img": "/data/upload/1/x.png"}}], "label_config": CONFIG}, None,
         422, "no Label Studio URL is known"),
        ("/predict", {"tasks": [task("scene_01.png")], "label_config": CONFIG.replace("Sky", "cat").replace(
            '"road"', '"dog"').replace("grass", "x").replace("building", "y").replace("tree", "z").replace(
            "pole", "w").replace('"sign"', '"v"').replace("fence", "u")}, None, 400, "none of the config's labels"),
        ("/nope", {}, None, 404, "no such endpoint"),
    ]
    for path, body, raw, code, reason in cases:
        status, answer = call(url, path, body, raw)
        assert status == code and reason in answer["error"], (path, body, status, answer)
        assert "Traceback" not in answer["error"]
    request = urllib.request.Request(url + "/predict", b"x" * 10, {"Content-Length": str(1 << 40)}, method="POST")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=30)
    assert info.value.code == 413


def test_a_slow_image_does_not_block_health(server, monkeypatch):
    """Label Studio gives /health 1 s: it must answer while a prediction is still running."""
    url, backend = server
    original = backend.infer
    started, release = threading.Event(), threading.Event()

    def slow(image, served):
        started.set()
        release.wait(60)  # the prediction stays in flight until /health has answered
        return original(image, served)

    monkeypatch.setattr(backend, "infer", slow)
    worker = threading.Thread(target=call, args=(url, "/predict", {"tasks": [task("scene_03.png")],
                                                                   "label_config": CONFIG}))
    worker.start()
    assert started.wait(60)
    try:
        assert call(url, "/health")[0] == 200
        assert worker.is_alive()  # answered beside the running prediction, not after it
    finally:
        release.set()
        worker.join()


def test_webhook_fine_tunes_into_a_new_version_and_never_over_the_original(server, tmp_path):
    url, backend = server
    original = backend.original.read_bytes()
    project = {"id": 3, "label_config": label_config(backend.current.model.config.classes)}
    label = np.full((256, 384), backend.current.model.config.classes.names.index("road"))
    annotation = {"id": 9, "result": [{"from_name": "tag", "to_name": "image", "type": "brushlabels",
                                       "original_width": 384, "original_height": 256,
                                       "value": {"rle": encode_ls_rle(label >= 0), "brushlabels": ["road"]}}]}
    hook = {"action": "ANNOTATION_CREATED", "project": project, "annotation": annotation,
            "task": {"id": 1, "data": {"image": "/data/local-files/?d=images/scene_01.png"}}}
    assert call(url, "/webhook", {"action": "PROJECT_UPDATED"})[1]["status"] == "ignored"
    assert call(url, "/webhook", hook)[1] == {"status": "kept", "corrections": 1, "train_every": 2}
    hook["task"] = {"id": 2, "data": {"image": "/data/local-files/?d=images/scene_02.png"}}
    assert call(url, "/webhook", hook)[1]["status"] == "training"
    backend.training.join(300)
    assert backend.current.version == "qgn-demo-ls1", backend.training_status
    assert (tmp_path / "models" / "demo-ls1.safetensors").is_file()
    assert backend.original.read_bytes() == original
    assert call(url, "/health")[1]["model_version"] == "qgn-demo-ls1"
    # Label Studio asks GET /versions (with a JSON body) for the versions to offer; a 404 offered the current
    # one alone, with "Upgrade your ML backend version to latest" (ml/api.py)
    assert call(url, "/versions") == (200, {"versions": ["qgn-demo", "qgn-demo-ls1"]})
    status, answer = call(url, "/predict", {"tasks": [task("scene_01.png")], "label_config": CONFIG})
    assert status == 200 and answer["results"][0]["model_version"] == "qgn-demo-ls1"


def test_webhook_without_train_out_is_ignored_with_the_reason(tmp_path):
    backend = QGNBackend(bundled_model_path("demo"), "cpu", samples_dir())
    answer = backend.webhook({"action": "START_TRAINING", "project": {}})
    assert answer == {"status": "ignored", "reason": "fine-tuning is off: start qgn serve with --train-out DIR"}


def test_a_restarted_server_goes_on_from_its_last_fine_tune(tmp_path):
    """A restart served the original model again, and its next fine-tune started from it on the
    annotations made since the restart alone, as a version numbered after the ones that knew more."""
    samples = samples_dir()
    models = tmp_path / "models"
    first = QGNBackend(bundled_model_path("demo"), "cpu", samples, train_out=models, finetune_iterations=2)
    classes = first.current.model.config.classes
    pair = (read_rgb(samples / "images" / "scene_01.png"), np.full((256, 384), classes.names.index("road")), 9)
    first._train([pair], first.current)
    first._train([pair], first.current)
    assert first.current.version == "qgn-demo-ls2", first.training_status
    shutil.copy(first.original, models / "demo-ls3.safetensors")  # a model of that name not fine-tuned from it
    shutil.copy(first.original.with_suffix(".json"), models / "demo-ls3.json")
    (models / "demo-ls4.json").write_text("{}")  # a JSON left without its weights
    before = sorted(p.name for p in models.iterdir())

    for fd in first.kept.locks:
        os.close(fd)  # killed: the system drops its locks
    again = QGNBackend(bundled_model_path("demo"), "cpu", samples, train_out=models, finetune_iterations=2)
    assert again.current.version == "qgn-demo-ls2" and again.current.path == models / "demo-ls2.safetensors"
    assert again.versions == ["qgn-demo", "qgn-demo-ls1", "qgn-demo-ls2"]
    assert [str(models / "demo-ls3.safetensors") in note for note in again.resume_notes] == [True]
    answer = again.predict({"tasks": [task("scene_02.png")], "label_config": CONFIG})
    expected = first.predict({"tasks": [task("scene_02.png")], "label_config": CONFIG})
    assert answer == expected and answer["model_version"] == "qgn-demo-ls2"
    assert sorted(p.name for p in models.iterdir()) == before  # starting wrote nothing

    again._train([pair], again.current)  # the next number free of both files, fine-tuned from ls2
    assert again.current.version == "qgn-demo-ls5", again.training_status
    from qgn.model.checkpoint import load_config

    assert load_config(models / "demo-ls5.safetensors").extra["finetune"]["from"] == \
        str((models / "demo-ls2.safetensors").resolve())
    assert sorted(p.name for p in models.iterdir()) == \
        sorted([*before, "demo-ls5.json", "demo-ls5.safetensors", "demo-ls5.domain.json"])  # the demo's reference, carried


@pytest.mark.parametrize("every_s", [0.0, 1e9])
def test_a_fine_tune_logs_its_progress_and_time_left(tmp_path, capsys, monkeypatch, every_s):
    """A fine-tune (minutes on a CPU for many annotations) said nothing in the log - where Label
    Studio shows a backend's training - and /health said only the step. It now logs its start, the
    images' features and the steps with the time left (at most every TRAINING_LOG_EVERY_S, always
    the first and last of each pass) and the version it serves after; /health's training follows."""
    import qgn.progress
    from qgn.serve import training_log

    monkeypatch.setattr(training_log, "TRAINING_LOG_EVERY_S", every_s)
    monkeypatch.setattr(qgn.progress, "SHOW_AFTER_S", 0.0)
    samples = samples_dir()
    served = QGNBackend(bundled_model_path("demo"), "cpu", samples, train_out=tmp_path / "models",
                        finetune_iterations=4)
    classes = served.current.model.config.classes
    pairs = [(read_rgb(samples / "images" / f"scene_0{i}.png"), np.full((256, 384), classes.names.index("road")), i)
             for i in (1, 2)]
    statuses = []
    real = training_log.TrainingLog._report

    def seen(self, *args):
        real(self, *args)
        statuses.append(served.training_status)

    monkeypatch.setattr(training_log.TrainingLog, "_report", seen)
    capsys.readouterr()
    assert served._train(pairs, served.current) is None, served.training_status
    lines = capsys.readouterr().err.splitlines()
    assert "\r" not in "".join(lines) and all(line.startswith("qgn serve: ") for line in lines), lines
    head = "qgn serve: fine-tuning qgn-demo on 2 annotation(s)"
    assert lines[0] == f"{head}, 4 iterations; the decoder alone learns (the encoder frozen, --train-encoder auto: " \
                       "under 32 annotations)"
    progress = [line[len(head) + 2:] for line in lines[1:-1]]
    counts = [p.split(" · ")[0].rsplit(", loss", 1)[0] for p in progress]
    if every_s:
        assert counts == ["encoding 0/2 images", "encoding 2/2 images", "step 1 of 4", "step 4 of 4"], progress
    else:
        assert counts == ["encoding 0/2 images", "encoding 1/2 images", "encoding 2/2 images",
                          "step 1 of 4", "step 2 of 4", "step 3 of 4", "step 4 of 4"], progress
        assert re.search(r" · (about [1-9]\d* (s|min \d\d s)|under a second) left$", progress[5]), progress  # step 3: from steps 2 and 3
    assert lines[-1].startswith("qgn serve: fine-tuned in ") and lines[-1].endswith(
        f"serving qgn-demo-ls1 ({tmp_path / 'models' / 'demo-ls1.safetensors'})")
    assert statuses[-1].startswith(f"{head[len('qgn serve: '):]}: step 4 of 4, loss ")
    assert served.training_status.startswith("idle (last: demo-ls1.safetensors")


@pytest.mark.parametrize("asked, annotations, learnt", [("auto", 31, "frozen"), ("auto", 32, "train"),
                                                         ("frozen", 40, "frozen"), ("train", 2, "train")])
def test_a_fine_tune_lets_learn_what_the_dock_and_qgn_finetune_would(tmp_path, monkeypatch, capsys, asked, annotations,
                                                                     learnt):
    """`qgn serve` fine-tuned with the encoder frozen whatever it had learnt from, where the app's
    Fine-tune dock and `qgn finetune` let the encoder learn from 32 corrected images
    (``qgn.train.finetune.auto_encoder``, benchmarks/RESULTS.md "A fine-tune whose encoder learns").
    Its default is now the same rule on the annotations it trains on; --train-encoder frozen or
    train forces either (fails before: 'frozen' at 32 annotations)."""
    from types import SimpleNamespace

    from qgn.train import finetune as finetune_module

    seen = []

    def recorded(model, images, labels, config, **kwargs):  # the recipe it was given, then "stopped"
        seen.append((config.encoder, len(images)))
        return SimpleNamespace(cancelled=True)

    monkeypatch.setattr(finetune_module, "finetune", recorded)
    backend = QGNBackend(bundled_model_path("demo"), "cpu", samples_dir(), train_out=tmp_path / "models",
                         finetune_iterations=2, finetune_encoder=asked)
    pair = (np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.int64), 0)
    backend._train([pair] * annotations, backend.current)
    assert seen == [(learnt, annotations)]
    said = capsys.readouterr().err
    assert ("the encoder learns too" if learnt == "train" else "the decoder alone learns") in said


def test_train_encoder_reaches_the_backend(monkeypatch, tmp_path):
    """--train-encoder is handed to the backend (default auto)."""
    from qgn.cli.main import main
    from qgn.serve import backend as backend_module

    given = []

    class Stop(Exception):
        pass

    def made(*args, **kwargs):
        given.append(kwargs.get("finetune_encoder"))
        raise Stop

    monkeypatch.setattr(backend_module, "QGNBackend", made)
    for extra in ([], ["--train-encoder", "frozen"]):
        main(["serve", "--port", "0", "--train-out", str(tmp_path / "models"), *extra])  # stops at the backend
    assert given == ["auto", "frozen"]
