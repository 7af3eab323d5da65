"""The ``session`` walk of ``qgn bench --only annotate`` (``qgn.bench.session``): images in order,
each started by the app's rule for the model in use, the dock's fine-tune every K saved images,
and the app's model change after it. A tiny synthetic run on the demo model (8x8 … 64x64 images,
two fine-tunes of two iterations) is checked against a reference computed by hand."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from qgn.cli.main import main
from qgn.resources import demo_model_path

pytestmark = pytest.mark.skipif(not demo_model_path().is_file(), reason="bundled demo model missing")

SIZES = [64, 64, 64, 64, 32, 32, 16, 8]  # 8 images; fine-tunes after 3 and 6 saved


class _Crop:
    def __init__(self, sample, size: int, name: str):
        self.image = np.ascontiguousarray(sample.image[:size, :size])
        self.label = np.ascontiguousarray(np.asarray(sample.label)[:size, :size]).astype(np.int64)
        self.name = name


def _samples():
    from qgn.data.registry import open_dataset

    data = open_dataset("synthetic", "val", n=len(SIZES), size=64)
    return [_Crop(data[i], size, f"img{i}") for i, size in enumerate(SIZES)], data.classes


@pytest.fixture(scope="module")
def walks():
    """{finetune: the walk's (model, reference, seq, empty, tuned, judged, given)}, each run once; ``given``:
    per image what its start rule was given (``_given``)."""
    walked = {}
    for finetune in (True, False):
        with pytest.MonkeyPatch.context() as monkeypatch:  # each walk patches the originals
            walked[finetune] = _walk(monkeypatch, finetune)
    return walked


def _walk(monkeypatch, finetune: bool):
    import qgn.bench.annotate
    import qgn.train.finetune
    from qgn.bench.annotate import AnnotateConfig
    from qgn.bench.session import dock_tune, session_walk
    from qgn.model.checkpoint import load_model

    monkeypatch.setattr(qgn.train.finetune, "ENCODER_LEARNS_FROM", 4)  # Automatic: the encoder from 4 images
    samples, classes = _samples()
    model = load_model(demo_model_path())
    reference = object()  # the model's domain reference (only passed on)
    tuned, judged = [], []

    def tune(m, images, labels, names, encoder, batch, iterations):
        out = dock_tune(m, images, labels, names, encoder, batch, iterations)
        tuned.append(dict(given=m, made=out, names=list(names), labels=list(labels), encoder=encoder, batch=batch,
                          iterations=iterations))
        return out

    def verdict(m, image, ref):
        judged.append((m, image.shape, ref))
        return None if ref is None else False  # every image flagged while the model has a reference

    given = []
    simulate, choices = qgn.bench.annotate._simulate_starts, qgn.bench.annotate._scenario_choices

    def simulate_starts(s, m, prediction, classes, config, wanted, trainer, *args, **kwargs):
        given.append(_given(s.name, trainer))  # the head's trainer as the image's start is made
        return simulate(s, m, prediction, classes, config, wanted, trainer, *args, **kwargs)

    def scenario_choices(runs, record, carry_record=(), *args, **kwargs):
        given[-1].update(record=list(record), carry_record=list(carry_record))  # the records it is judged by
        return choices(runs, record, carry_record, *args, **kwargs)

    monkeypatch.setattr(qgn.bench.annotate, "_simulate_starts", simulate_starts)
    monkeypatch.setattr(qgn.bench.annotate, "_scenario_choices", scenario_choices)
    config = AnnotateConfig(tolerance=1, domain=reference)
    seq, empty = session_walk(model, samples, classes, config, every=3, learns="auto", finetune=finetune,
                              tune=tune, verdict=verdict, iterations=2)
    return model, reference, seq, empty, tuned, judged, given


def _given(name: str, trainer) -> dict:
    """A copy of the head trainer's samples and record (the walk goes on changing them)."""
    return dict(name=name, samples={k: (f.clone(), y.clone()) for k, (f, y) in trainer.samples.items()},
                head_record=dict(trainer.record))


def test_the_walk_starts_each_image_with_the_model_in_use_and_fine_tunes_on_what_was_saved(walks) -> None:
    model, reference, seq, empty, tuned, judged, _ = walks[True]
    info = seq.extra["session"]
    # by hand: 8 images, K = 3 -> fine-tunes after saved images 3 and 6 (none after the last image)
    assert info["generation"] == [0, 0, 0, 1, 1, 1, 2, 2]
    assert seq.names == [f"img{i}" for i in range(8)] and len(seq.actions) == len(empty.actions) == 8
    # comparison_split: of 3, the last held aside; of 6, the last (6 // 4 = 1)
    assert [t["names"] for t in tuned] == [["img0", "img1"], ["img0", "img1", "img2", "img3", "img4"]]
    assert [(f["trained"], f["held"]) for f in info["finetunes"]] == [
        (["img0", "img1"], ["img2"]), (["img0", "img1", "img2", "img3", "img4"], ["img5"])]
    # Automatic on the images trained on (2, then 5; the encoder from 4 here); batch min(4, saved)
    assert [t["encoder"] for t in tuned] == ["frozen", "train"] and [t["batch"] for t in tuned] == [3, 4]
    assert [f["reference_kept"] for f in info["finetunes"]] == [True, False]
    # each fine-tune starts from the model in use and trains on the maps saved, as saved
    assert tuned[0]["given"] is model and tuned[1]["given"] is tuned[0]["made"]
    saved = seq.extra["saved_maps"]
    for t in tuned:
        for name, label in zip(t["names"], t["labels"]):
            assert label is saved[int(name[3:])]
    # the domain check: each image judged by the model in use, with the reference while it is kept
    makers = [model, tuned[0]["made"], tuned[1]["made"]]
    assert [m for m, _, _ in judged] == [makers[g] for g in info["generation"]]
    assert [r for _, _, r in judged] == [reference] * 6 + [None] * 2
    assert info["verdicts"] == [False] * 6 + [None] * 2
    # the starts: image 0 has nothing before it; image 3 (first after the model changed) has a carried
    # map (64 after 64) and the carried start's record, kept across the model change, prefers it (images 1
    # and 2 judged against the empty start they would replace); image 6 (no reference: no verdict; no
    # carried map, 16 after 32) from the model (the head's record was forgotten); image 7 the model's or the head's
    assert seq.starts[0] == "empty" and seq.starts[3] == "previous" and seq.starts[6] == "model"
    assert seq.starts[7] in ("model", "head")
    assert all(s in ("empty", "previous") for s in seq.starts[:6])
    assert seq.finetune_seconds == [f["seconds"] for f in info["finetunes"]] and len(seq.finetune_seconds) == 2
    assert info["blocks"] == [np.mean(seq.actions[0:3]), np.mean(seq.actions[3:6]), np.mean(seq.actions[6:8])]
    for i, s in enumerate(seq.starts):  # a saved map is the corrected one from the start taken
        assert saved[i].shape == (SIZES[i], SIZES[i])


def test_without_fine_tunes_the_walk_keeps_one_model_and_the_same_empty_starts(walks) -> None:
    _, reference, seq, empty, tuned, judged, _ = walks[False]
    empty_tuned = walks[True][3]
    assert seq.name == "session_none" and not tuned and seq.extra["session"]["finetunes"] == []
    assert seq.extra["session"]["generation"] == [0] * 8
    assert [r for _, _, r in judged] == [reference] * 8
    assert empty.actions == empty_tuned.actions  # the empty start does not depend on the model


def test_on_flagged_images_the_carried_start_is_judged_against_the_empty_start_it_replaces(walks) -> None:
    """Every image is flagged here: the start the carried one replaces is empty, and it is judged
    against that (no pixel right), not against the model's and the head's starts, which are not
    offered (a more accurate frozen fine-tune made it lose its place to empty: RESULTS, "A whole
    session"). So once judged it is taken on every flagged image that has one (images 2, 3 and 5)."""
    _, _, seq, _, _, _, kept = walks[False]
    record = kept[-1]["carry_record"]  # images 1, 2, 3 and 5 judged
    assert len(record) == 4 and all(other == 0.0 and carried > 0 for carried, other in record)
    assert [seq.starts[i] for i in (2, 3, 5)] == ["previous"] * 3


def test_a_model_change_keeps_the_carried_record_forgets_the_heads_and_refits_the_head(walks) -> None:
    from qgn.project_head import HeadTrainer

    _, _, seq, _, tuned, _, given = walks[True]
    _, _, _, _, _, _, kept = walks[False]
    samples, classes = _samples()
    saved = seq.extra["saved_maps"]
    assert [g["name"] for g in given] == [f"img{i}" for i in range(8)]
    # the carried start is judged on each image that had a carried map (the same size as the one before:
    # images 1, 2, 3 and 5); its record holds them all, a model change (fine-tunes after 3 and 6) or none:
    # the carried start does not read the model (it was forgotten: image 3 then started empty)
    assert [len(g["carry_record"]) for g in given] == [0, 0, 1, 2, 3, 3, 4, 4]
    assert [len(g["carry_record"]) for g in kept] == [0, 0, 1, 2, 3, 3, 4, 4]
    assert given[-1]["carry_record"][:2] == kept[-1]["carry_record"][:2]  # the same images 1, 2 before the change
    # the head's record: the images it did not train on, judged since the last model change
    assert [sorted(g["head_record"]) for g in given] == [
        [], [], ["img1"], [], ["img3"], ["img3", "img4"], [], ["img6"]]
    assert [g["record"] for g in given] == [list(g["head_record"].values()) for g in given]
    # the head's samples: every saved map, and right after a fine-tune their features are the new model's
    # (a fresh trainer fed the saved maps in order, as the app's refit does)
    makers = {3: tuned[0]["made"], 6: tuned[1]["made"]}  # the first image after each fine-tune
    for i, maker in makers.items():
        reference = HeadTrainer(classes)
        for j in range(i):
            reference.add(samples[j].name, maker, samples[j].image, saved[j])
        got = given[i]["samples"]
        assert sorted(got) == sorted(reference.samples) == [f"img{j}" for j in range(i)]
        for key, (features, labels) in reference.samples.items():
            assert torch.equal(got[key][0], features) and torch.equal(got[key][1], labels), (i, key)


@pytest.mark.parametrize("argv, message", [
    (["--every", "0", "--scenarios", "session"], "--every must be at least 1 image; got 0"),
    (["--learns", "train", "--scenarios", "app_domain"], "--learns train: only the scenarios session use it"),
    # the walks without fine-tunes learn nothing: --learns beside them alone was silently ignored
    (["--learns", "train", "--scenarios", "session_none,session_empty"], "--learns train: only the scenarios session"),
    (["--every", "4", "--learns", "frozen", "--scenarios", "session_none"], "--learns frozen: only the scenarios se"),
    (["--domain-model", "demo", "--scenarios", "app_domain,session"], "the session walks judge each image with"),
    # --annotate-iters 0 was silently the default (40 / 300 iterations); a negative count too
    (["--annotate-iters", "0", "--scenarios", "session"], "--annotate-iters must be at least 1 fine-tune iteration; got 0"),
    (["--annotate-iters", "-3", "--scenarios", "session"], "--annotate-iters must be at least 1 fine-tune iteration; got -3"),
])
def test_bad_session_options_are_said(argv, message, capsys) -> None:
    code = main(["bench", "--only", "annotate", "--model", str(demo_model_path()), "--data", "synthetic",
                 "--images", "1", *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err, err


def test_annotate_iters_outside_the_annotate_section_is_said(capsys) -> None:
    code = main(["bench", "--only", "memory", "--annotate-iters", "5", "--quick"])
    err = capsys.readouterr().err
    assert code == 2 and "--annotate-iters 5: only the annotate section uses it" in err, err


@pytest.mark.parametrize("argv, iterations, every", [
    (["--quick"], 2, 2),  # the session's fine-tunes were 300 iterations every 16 images under --quick
    (["--quick", "--annotate-iters", "7", "--every", "3"], 7, 3),
    ([], 300, 16),
    (["--annotate-iters", "1"], 1, 16),
])
def test_quick_shortens_the_session_fine_tunes_and_annotate_iters_sets_them(argv, iterations, every, monkeypatch,
                                                                             capsys) -> None:
    import qgn.bench.session as S

    given = []
    monkeypatch.setattr(S, "run_sessions", lambda model, samples, classes, config, *a, **k: given.append(config) or [])
    code = main(["bench", "--only", "annotate", "--model", str(demo_model_path()), "--data", "synthetic",
                 "--images", "1", "--scenarios", "session_none", *argv])
    assert code == 0, capsys.readouterr().err
    assert [(c.session_iterations, c.session_every) for c in given] == [(iterations, every)]


@pytest.mark.parametrize("rule, lengths", [("one", [0, 0, 1, 2, 3, 3, 4, 4]), ("verdict", [0, 0, 0, 1, 1, 2, 1, 3])])
def test_the_carried_starts_records_one_or_one_per_verdict(monkeypatch, rule, lengths) -> None:
    """``carry_records``: "one" (the app's rule) reads every judged image's entry; "verdict" reads only
    the entries of images with the image's own verdict. Here even images are flagged and images 1, 2,
    3 and 5 are judged (their predecessor has their size): by hand, a flagged image reads image 2's
    entry alone (against the empty start: 0), the others images 1, 3 and 5's."""
    import qgn.bench.annotate
    from qgn.bench.annotate import AnnotateConfig
    from qgn.bench.session import session_walk
    from qgn.model.checkpoint import load_model

    samples, classes = _samples()
    flagged = {s.name: int(s.name[3:]) % 2 == 0 for s in samples}
    shapes = {}
    given = []
    choices = qgn.bench.annotate._scenario_choices

    def verdict(m, image, ref):  # the image's name by its shape and order: the walk asks once per image
        name = samples[len(shapes)].name
        shapes[name] = image.shape
        return not flagged[name]

    def scenario_choices(runs, record, carry_record=(), *args, **kwargs):
        given.append(list(carry_record))
        return choices(runs, record, carry_record, *args, **kwargs)

    monkeypatch.setattr(qgn.bench.annotate, "_scenario_choices", scenario_choices)
    config = AnnotateConfig(tolerance=1, domain=object(), carry_records=rule)
    session_walk(load_model(demo_model_path()), samples, classes, config, finetune=False, verdict=verdict)
    assert [len(g) for g in given] == lengths
    if rule == "verdict":
        assert given[4] == given[6] and given[4][0][1] == 0.0  # image 2's entry, against the empty start
        assert all(other > 0.0 for _, other in given[7])  # images 1, 3, 5: against the model's or head's start
