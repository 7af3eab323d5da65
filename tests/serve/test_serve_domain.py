"""`qgn serve` follows the model's domain check as the app does: an image unlike the model's
training images gets no pre-annotation (its annotator starts from an empty map) and a score below
every image the model knows, the farther from them the lower, with the reason in the answer and the log; `--domain-check off` sends every prediction; the
versions it fine-tunes carry their original's reference, which a restart finds; a reference that
cannot be used costs the check, never a prediction. The model is the tiny test model with a
reference its samples are inside of and colour noise is not (``model_with_reference``, ``noise``)."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from qgn.data.imageio import read_rgb
from qgn.formats.labelstudio import label_config
from qgn.serve.backend import QGNBackend
from qgn.serve.flagged import FLAGGED_SCORE


def tasks(*names):
    return {"tasks": [{"id": i + 1, "data": {"image": name}} for i, name in enumerate(names)]}


def predict(backend, classes, *names) -> list[dict]:
    """The /predict results of ``names`` (paths under the document root) as Label Studio asks."""
    return backend.predict({**tasks(*names), "label_config": label_config(classes)})["results"]


@pytest.fixture
def classes(model_path):
    from qgn.model.checkpoint import load_model

    return load_model(model_path).config.classes


@pytest.fixture
def flagged(model_with_reference, samples, noise):
    """The reference's own verdicts, judged apart from qgn serve: the first sample inside, noise out."""
    from qgn.domain import judge, reference_for
    from qgn.model.checkpoint import load_model

    model, reference = load_model(model_with_reference), reference_for(model_with_reference)
    inside, outside = (judge(model, read_rgb(p), reference) for p in (samples[0], noise))
    assert inside.inside and not outside.inside
    return outside


def test_an_image_unlike_the_models_training_images_gets_no_pre_annotation_and_says_why(
        model_with_reference, samples, noise, flagged, classes, tmp_path, capfd):
    backend = QGNBackend(model_with_reference, "cpu", tmp_path)
    capfd.readouterr()
    sample, outside = predict(backend, classes, "data/images/scene_00.png", "noise.png")
    assert sample["result"] and sample["domain"]["inside"] and 0 < sample["score"] <= 1
    assert outside["result"] == [] and 0 < outside["score"] < FLAGGED_SCORE <= sample["score"]
    assert outside["model_version"] == sample["model_version"] == backend.current.version
    assert outside["domain"]["inside"] is False and outside["domain"]["score"] == pytest.approx(flagged.score, abs=1e-3)
    assert "empty map" in outside["domain"]["note"]
    log = capfd.readouterr().err.splitlines()
    assert [line for line in log if "unlike" in line] == [f"qgn serve: task 2: {outside['domain']['note']}"]
    # asked again (a cached answer): the same answer, not said again
    assert predict(backend, classes, "noise.png")[0] == outside
    assert "unlike" not in capfd.readouterr().err


def test_with_the_domain_check_off_every_image_gets_its_prediction(model_with_reference, noise, flagged, classes,
                                                                  tmp_path, capfd):
    from qgn.infer import predict as qgn_predict

    backend = QGNBackend(model_with_reference, "cpu", tmp_path, domain_check=False)
    (outside,) = predict(backend, classes, "noise.png")
    assert outside["result"] and "domain" not in outside and outside["score"] > 0
    expected = qgn_predict(backend.current.model, read_rgb(noise)).label()
    assert {r["value"]["brushlabels"][0] for r in outside["result"]} == {classes.names[c] for c in np.unique(expected)}
    assert "domain" not in capfd.readouterr().err  # off: nothing to say about it


def test_the_cli_says_the_domain_check_option(capsys):
    from qgn.cli.main import main

    with pytest.raises(SystemExit) as ended:
        main(["serve", "--help"])
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps the help
    assert ended.value.code == 0 and "--domain-check {on,off}" in out and "empty map" in out
    assert "references are still kept" in out  # off: what fine-tunes still write
    # a fine-tune whose encoder learnt (--train-encoder auto from 32 annotations) carries no check: said
    assert "carries its original's reference only if its encoder stayed frozen" in out
    assert "32 or more annotations lets the encoder learn" in out


def test_a_fine_tuned_version_carries_the_reference_and_a_restart_finds_it(model_with_reference, samples, noise,
                                                                         classes, tmp_path):
    """Fine-tuned with the encoder frozen (serve's only recipe), a version judges as its original;
    the reference lands beside the final weights (not left in the staging folder), bound to them."""
    from qgn.domain import judge, reference_for, reference_path
    from qgn.fileio import file_sha256
    from qgn.model.checkpoint import load_model

    models = tmp_path / "models"
    backend = QGNBackend(model_with_reference, "cpu", tmp_path, train_out=models, finetune_iterations=2)
    label = np.asarray(Image.open(samples[0].parent.parent / "labels" / samples[0].name), np.int64)
    pair = (read_rgb(samples[0]), label, 9)
    assert backend._train([pair], backend.current) is None, backend.training_status
    ls1 = models / f"{model_with_reference.stem}-ls1.safetensors"
    assert backend.current.path == ls1
    carried = reference_for(ls1)
    assert carried is not None and carried.model_sha256 == file_sha256(ls1)
    assert not list(models.glob(".qgn-serve-*"))
    original, reference = load_model(model_with_reference), reference_for(model_with_reference)
    for image in (read_rgb(samples[1]), read_rgb(noise)):
        assert judge(load_model(ls1), image, carried).score == judge(original, image, reference).score
    assert predict(backend, classes, "noise.png")[0]["result"] == []  # the new version checks too

    backend._train([pair], backend.current)  # fine-tuned from ls1, which carries it on
    assert reference_for(models / f"{model_with_reference.stem}-ls2.safetensors") is not None
    for fd in backend.kept.locks:
        os.close(fd)  # killed: the system drops its locks
    again = QGNBackend(model_with_reference, "cpu", tmp_path, train_out=models, finetune_iterations=2)
    assert again.current.version.endswith("-ls2") and again.current.reference is not None
    flagged_again, sample = predict(again, classes, "noise.png", "data/images/scene_01.png")
    assert flagged_again["result"] == [] and sample["result"]
    assert reference_path(ls1).is_file()


def test_a_version_killed_before_its_reference_was_moved_gets_it_at_the_next_start(model_with_reference,
                                                                                  tmp_path):
    """Killed after its weights were linked out of the staging folder and before its reference
    was: the next start (``finish_staged``) moves the reference with the JSON, bound to the
    weights, instead of removing the folder with it."""
    from qgn.domain import reference_for
    from qgn.serve.staging import finish_staged

    models = tmp_path / "models"
    staging, final = staged_version(model_with_reference, models)
    final.with_suffix(".json").touch()  # reserve_number's placeholder
    assert finish_staged(staging, models)
    assert final.with_suffix(".json").stat().st_size and reference_for(final) is not None


@pytest.mark.parametrize("damage", ["not JSON", "mismatched arrays", "another encoder", "another model file",
                                    "a std that overflows", "a mean that overflows", "pixels below the floor"])
def test_a_reference_that_cannot_be_used_costs_the_check_not_the_prediction(model_with_reference, noise, classes,
                                                                           tmp_path, capfd, damage):
    """Each is said once in the log, and every image (noise too) gets its prediction. A std of
    1e-300 (finite and positive) or a mean of 1e300 gave every image a NaN/infinite score: all
    were flagged, and the JSON held NaN; "pixels" of [1, 1] judged each image resized to a speck
    (the samples, of its own kind, were flagged)."""
    from qgn.domain import reference_path

    ref = reference_path(model_with_reference)
    doc = json.loads(ref.read_text())
    if damage == "not JSON":
        ref.write_text(ref.read_text()[:100])
    elif damage == "mismatched arrays":
        doc["mean"] = doc["mean"][:10]
        ref.write_text(json.dumps(doc))
    elif damage == "another encoder":  # its SHA-256 blank, so only its length tells (when an image is judged)
        doc["model_sha256"] = ""
        for key in ("mean", "std"):
            doc[key] = doc[key] * 2
        doc["components"] = [c * 2 for c in doc["components"]]
        ref.write_text(json.dumps(doc))
    elif damage == "another model file":
        doc["model_sha256"] = "0" * 64
        ref.write_text(json.dumps(doc))
    else:
        if damage == "a std that overflows":  # refused when read
            doc["std"] = [1e-300] * len(doc["std"])
        elif damage == "a mean that overflows":  # read, but its distance is infinite
            doc["mean"] = [1e300] * len(doc["mean"])
        else:
            doc["pixels"] = [1, 1]
        ref.write_text(json.dumps(doc))
    backend = QGNBackend(model_with_reference, "cpu", tmp_path)
    first = predict(backend, classes, "noise.png", "data/images/scene_00.png")
    second = predict(backend, classes, "data/images/scene_01.png")
    assert all(r["result"] and "domain" not in r for r in first + second)
    json.dumps(first + second, allow_nan=False)  # Label Studio's strict JSON
    said = [line for line in capfd.readouterr().err.splitlines() if "no domain check" in line]
    assert len(said) == 1 and backend.current.version in said[0] and "every image gets its prediction" in said[0]


@pytest.mark.parametrize("kind", ["fifo", "folder", "link to /dev/zero"])
def test_what_stands_where_the_reference_belongs_is_said_as_what_it_is(model_with_reference, noise, classes, tmp_path,
                                                                     capfd, kind):
    """Not "no domain reference beside the model": the log names what is there instead."""
    from qgn.domain import reference_path

    ref = reference_path(model_with_reference)
    ref.unlink()
    if kind == "fifo":
        os.mkfifo(ref)
    elif kind == "folder":
        ref.mkdir()
    else:
        ref.symlink_to("/dev/zero")
    backend = QGNBackend(model_with_reference, "cpu", tmp_path)
    (result,) = predict(backend, classes, "noise.png")
    said = [line for line in capfd.readouterr().err.splitlines() if "no domain check" in line]
    what = {"fifo": "a named pipe (FIFO)", "folder": "a folder", "link to /dev/zero": "a character device"}[kind]
    assert result["result"] and len(said) == 1 and f"{ref} is {what}, not a domain reference file" in said[0]


def train_pair(samples, i=0):
    label = np.asarray(Image.open(samples[i].parent.parent / "labels" / samples[i].name), np.int64)
    return read_rgb(samples[i]), label, 9


def test_a_reference_left_by_a_version_deleted_by_hand_takes_its_number(model_with_reference, samples, tmp_path,
                                                                        capfd):
    """ls1's weights and JSON deleted by hand, its .domain.json left: the next version is ls2 (not
    a second ls1 whose reference the old one is in the way of, served unchecked, and every
    version fine-tuned from it after), with its own reference; the old one is left as it was."""
    from qgn.domain import reference_for, reference_path

    models = tmp_path / "models"
    backend = QGNBackend(model_with_reference, "cpu", tmp_path, train_out=models, finetune_iterations=2)
    assert backend._train([train_pair(samples)], backend.current) is None
    ls1 = models / f"{model_with_reference.stem}-ls1.safetensors"
    left = reference_path(ls1).read_bytes()
    for fd in backend.kept.locks:
        os.close(fd)
    ls1.unlink()
    ls1.with_suffix(".json").unlink()
    again = QGNBackend(model_with_reference, "cpu", tmp_path, train_out=models, finetune_iterations=2)
    capfd.readouterr()
    assert again._train([train_pair(samples, 1)], again.current) is None
    assert again._train([train_pair(samples, 2)], again.current) is None
    ls2, ls3 = (models / f"{model_with_reference.stem}-ls{n}.safetensors" for n in (2, 3))
    assert not ls1.exists() and reference_path(ls1).read_bytes() == left
    assert again.current.path == ls3 and again.current.reference is not None
    assert reference_for(ls2) is not None and reference_for(ls3) is not None
    assert "not kept" not in capfd.readouterr().err


def test_a_fine_tune_carries_the_served_versions_reference_as_loaded(model_with_reference, samples, tmp_path):
    """The reference file beside the served model deleted (or replaced) after qgn serve loaded
    it: the fine-tuned version still carries the reference the served one is judged by."""
    from qgn.domain import reference_for, reference_path
    from qgn.fileio import file_sha256

    models = tmp_path / "models"
    backend = QGNBackend(model_with_reference, "cpu", tmp_path, train_out=models, finetune_iterations=2)
    loaded = backend.current.reference
    reference_path(model_with_reference).unlink()
    assert backend._train([train_pair(samples)], backend.current) is None
    carried = reference_for(backend.current.path)
    assert carried is not None and carried.model_sha256 == file_sha256(backend.current.path)
    assert np.array_equal(carried.mean, loaded.mean) and carried.threshold == loaded.threshold
    assert loaded.model_sha256 == file_sha256(model_with_reference)  # the served one's is not changed


def staged_version(model_with_reference, models):
    """A version killed after its weights were linked out of the staging folder, its JSON and
    reference (bound to the weights) still there: (staging folder, final weights path)."""
    from qgn.domain import DomainReference, reference_path
    from qgn.fileio import file_sha256

    staging = models / ".qgn-serve-abcd1234"
    staging.mkdir(parents=True)
    staged = staging / "dev-ls1.safetensors"
    staged.write_bytes(model_with_reference.read_bytes())
    staged.with_suffix(".json").write_bytes(model_with_reference.with_suffix(".json").read_bytes())
    reference = DomainReference.load(reference_path(model_with_reference))
    reference.model_sha256 = file_sha256(staged)
    reference.save(reference_path(staged))
    final = models / staged.name
    os.link(staged, final)
    return staging, final


def test_finishing_a_killed_version_never_moves_its_reference_over_a_link(model_with_reference, tmp_path, capfd):
    """A dangling link where the reference goes (not "existing", so os.replace took its place):
    left as it is, said in the log; the version's JSON is still finished."""
    from qgn.domain import reference_path
    from qgn.serve.staging import finish_staged

    models = tmp_path / "models"
    staging, final = staged_version(model_with_reference, models)
    final.with_suffix(".json").touch()  # reserve_number's placeholder
    reference_path(final).symlink_to("elsewhere.json")
    assert finish_staged(staging, models)
    assert reference_path(final).is_symlink() and os.readlink(reference_path(final)) == "elsewhere.json"
    assert final.with_suffix(".json").stat().st_size
    assert "domain reference was not kept" in capfd.readouterr().err


def test_finishing_a_killed_version_moves_its_reference_only_with_its_json(model_with_reference, tmp_path):
    """Its placeholder no longer empty (something else wrote that JSON): neither the JSON nor the
    reference is moved, as save_version moves neither for a version it cannot finish."""
    from qgn.domain import reference_path
    from qgn.serve.staging import finish_staged

    models = tmp_path / "models"
    staging, final = staged_version(model_with_reference, models)
    final.with_suffix(".json").write_text("{}")
    assert not finish_staged(staging, models)
    assert not reference_path(final).exists() and reference_path(staging / final.name).is_file()


def test_flagged_images_are_ordered_the_least_like_the_training_images_first_and_a_task_without_id_is_named_so(
        model_with_reference, samples, noise, classes, tmp_path, capfd):
    """Every flagged image scored 0, so Label Studio's own order decided among them; now the farther
    an image is from the training images (its domain score, judged apart from qgn serve) the lower
    its score - uncertainty sampling serves the lowest first - and every one stays below every
    image the model knows. A flagged task without an id was logged as "task 0"."""
    from qgn.domain import judge, reference_for
    from qgn.model.checkpoint import load_model

    Image.fromarray(np.full((64, 96, 3), (255, 0, 255), np.uint8)).save(tmp_path / "magenta.png")
    model, reference = load_model(model_with_reference), reference_for(model_with_reference)
    verdicts = [judge(model, read_rgb(tmp_path / name), reference) for name in ("noise.png", "magenta.png")]
    assert not any(v.inside for v in verdicts) and verdicts[0].score != pytest.approx(verdicts[1].score, rel=1e-3)
    backend = QGNBackend(model_with_reference, "cpu", tmp_path)
    capfd.readouterr()
    answers = predict(backend, classes, "noise.png", "magenta.png", "data/images/scene_00.png")
    flagged_scores = [a["score"] for a in answers[:2]]
    assert all(0 < score < FLAGGED_SCORE <= answers[2]["score"] for score in flagged_scores)
    farther = max(range(2), key=lambda i: verdicts[i].score)
    assert flagged_scores[farther] < flagged_scores[1 - farther]
    backend.cache.clear()
    capfd.readouterr()
    backend.predict({"tasks": [{"data": {"image": "noise.png"}}], "label_config": label_config(classes)})
    log = [line for line in capfd.readouterr().err.splitlines() if "unlike" in line]
    assert len(log) == 1 and log[0].startswith("qgn serve: a task without an id: ")


def test_a_flagged_score_is_strictly_between_0_and_the_scores_of_the_known_images():
    """Rounded to 6 decimals, a domain score a little above WARN_AT (1.5001, 1.5007) scored
    FLAGGED_SCORE itself - a tie with the images the model knows - and a far one (3001) scored 0;
    each is now strictly inside (0, FLAGGED_SCORE), the farther the lower."""
    import math

    from qgn.domain import WARN_AT
    from qgn.serve.flagged import FLAGGED_SCORE, flagged_score

    domain_scores = [math.nextafter(WARN_AT, math.inf), WARN_AT + 1e-4, WARN_AT + 7e-4, 1.6, 3.0, 3001.0, 1e9]
    scores = [flagged_score(s) for s in domain_scores]
    assert all(0 < score < FLAGGED_SCORE for score in scores), scores
    assert all(a > b for a, b in zip(scores, scores[1:])), scores  # the farther, the lower: no tie
    for far in (1e305, math.inf, math.nan):
        assert 0 < flagged_score(far) < FLAGGED_SCORE


def test_a_flagged_images_note_prints_its_score_below_the_known_images():
    """The note said a flagged score just below FLAGGED_SCORE (a domain score a hair above WARN_AT)
    as "0.001" (``:g``), the score of the images the model knows; it prints enough digits now."""
    import math
    import re
    from types import SimpleNamespace

    from qgn.domain import WARN_AT

    for domain_score in (math.nextafter(WARN_AT, math.inf), WARN_AT + 1e-4, 1.6, 3001.0, math.inf):
        answer = QGNBackend.flagged_answer(SimpleNamespace(score=domain_score, inside=False),
                                           SimpleNamespace(version="v1"))
        shown = re.search(r"its score is ([^,]+), below", answer["domain"]["note"]).group(1)
        assert 0 < float(shown) < FLAGGED_SCORE, shown
        assert float(shown) == pytest.approx(answer["score"], rel=1e-3)
